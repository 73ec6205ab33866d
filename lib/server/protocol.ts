// OpenAI request bodies in, checked; the library's GenerateRequest out; and
// the response objects (whole and streamed chunks) the API's clients expect.
// Only what focusllm can honour is accepted: a field that would change the
// answer but is not implemented (n > 1, logprobs, tools, penalties, ...) is a
// 400 naming it, never silently ignored.
import type { GenerateRequest } from '../generate';
import type { ChatMessage, Tokenizer } from '../tokenizer/types';
import { ApiError, badParam } from './errors';

export interface SamplingFields {
  temperature: number;
  topP: number;
  topK: number;
  seed?: number;
}

/** A checked /v1/completions or /v1/chat/completions request. */
export interface CompletionJob {
  kind: 'chat' | 'text';
  model: string;
  stream: boolean;
  /** stream_options.include_usage: a last chunk with the usage */
  includeUsage: boolean;
  maxTokens: number;
  sampling: SamplingFields;
  stop: string[];
  documentId?: string;
  /** text: the prompt (a string, or token ids) */
  prompt?: string;
  ids?: number[];
  /** chat: the messages, text only */
  messages?: ChatMessage[];
}

export interface ProtocolLimits {
  /** max_tokens above this is refused */
  maxTokens: number;
  /** max_tokens when the request gives none */
  defaultMaxTokens: number;
  vocabSize: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function optNumber(body: Record<string, unknown>, key: string, dflt: number, ok: (v: number) => boolean, range: string): number {
  const v = body[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw badParam(key, `${key} must be a number ${range}, got ${JSON.stringify(v)}`);
  return v;
}

function optInt(body: Record<string, unknown>, key: string, lo: number, hi: number): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < lo || v > hi)
    throw badParam(key, `${key} must be an integer from ${lo} to ${hi}, got ${JSON.stringify(v)}`);
  return v;
}

/** Fields the API defines that focusllm does not implement: refused unless they have their neutral value. */
const UNSUPPORTED: [string, (v: unknown) => boolean][] = [
  ['n', (v) => v === 1],
  ['best_of', (v) => v === 1],
  ['logprobs', (v) => v === false || v === 0],
  ['top_logprobs', (v) => v === 0],
  ['echo', (v) => v === false],
  ['suffix', (v) => v === ''],
  ['frequency_penalty', (v) => v === 0],
  ['presence_penalty', (v) => v === 0],
  ['logit_bias', (v) => isObject(v) && Object.keys(v).length === 0],
  ['tools', (v) => Array.isArray(v) && v.length === 0],
  ['functions', (v) => Array.isArray(v) && v.length === 0],
  ['tool_choice', (v) => v === 'none'],
  ['function_call', (v) => v === 'none'],
  ['response_format', (v) => isObject(v) && v.type === 'text'],
  ['audio', () => false],
  ['prediction', () => false],
];

function checkUnsupported(body: Record<string, unknown>): void {
  for (const [key, neutral] of UNSUPPORTED) {
    const v = body[key];
    if (v === undefined || v === null || neutral(v)) continue;
    throw badParam(key, `${key} = ${JSON.stringify(v)} is not supported by this server`, 'unsupported_parameter');
  }
}

function parseStop(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length > 4 || !list.every((s) => typeof s === 'string' && s.length > 0))
    throw badParam('stop', 'stop must be a non-empty string or a list of at most 4 non-empty strings');
  return list as string[];
}

function messageText(content: unknown, where: string): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    // Content parts: text only (this is a text model).
    return content
      .map((p, i) => {
        if (!isObject(p) || p.type !== 'text' || typeof p.text !== 'string')
          throw badParam(`${where}[${i}]`, `${where}[${i}] must be a text part {"type": "text", "text": string} (this model reads text only)`);
        return p.text;
      })
      .join('');
  }
  throw badParam(where, `${where} must be a string or a list of text parts`);
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant']);

function parseMessages(v: unknown): ChatMessage[] {
  if (!Array.isArray(v) || v.length === 0) throw badParam('messages', 'messages must be a non-empty list of messages');
  return v.map((m, i) => {
    const where = `messages[${i}]`;
    if (!isObject(m)) throw badParam(where, `${where} must be an object with role and content`);
    if (typeof m.role !== 'string' || !ROLES.has(m.role))
      throw badParam(`${where}.role`, `${where}.role must be one of system, developer, user, assistant; got ${JSON.stringify(m.role)}`);
    // "developer" is the API's newer name for the system role.
    return { role: m.role === 'developer' ? 'system' : m.role, content: messageText(m.content, `${where}.content`) };
  });
}

/** Checks a /v1/completions (kind 'text') or /v1/chat/completions (kind 'chat') body. */
export function parseCompletion(kind: 'chat' | 'text', body: unknown, limits: ProtocolLimits): CompletionJob {
  if (!isObject(body)) throw new ApiError(400, 'the request body must be a JSON object');
  if (typeof body.model !== 'string' || body.model.length === 0) throw badParam('model', 'model must be a non-empty string', null);
  checkUnsupported(body);
  const stream = body.stream ?? false;
  if (typeof stream !== 'boolean') throw badParam('stream', 'stream must be a boolean');
  let includeUsage = false;
  if (body.stream_options !== undefined && body.stream_options !== null) {
    if (!stream) throw badParam('stream_options', 'stream_options needs stream: true');
    if (!isObject(body.stream_options)) throw badParam('stream_options', 'stream_options must be an object');
    const iu = body.stream_options.include_usage ?? false;
    if (typeof iu !== 'boolean') throw badParam('stream_options.include_usage', 'stream_options.include_usage must be a boolean');
    includeUsage = iu;
  }
  // max_completion_tokens is the chat API's newer name of max_tokens.
  const mtKey = body.max_completion_tokens !== undefined && body.max_completion_tokens !== null ? 'max_completion_tokens' : 'max_tokens';
  const maxTokens = optInt(body, mtKey, 1, limits.maxTokens) ?? limits.defaultMaxTokens;
  // The API's defaults: temperature 1, top_p 1 (sampling); 0 is greedy.
  const temperature = optNumber(body, 'temperature', 1, (v) => v >= 0 && v <= 2, 'from 0 to 2');
  const topP = optNumber(body, 'top_p', 1, (v) => v > 0 && v <= 1, 'in (0, 1]');
  const topK = optInt(body, 'top_k', 0, 1 << 30) ?? 0; // not in the API; llama.cpp's and vLLM's servers take it
  const seed = optInt(body, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const stop = parseStop(body.stop);
  let documentId: string | undefined;
  if (body.document_id !== undefined && body.document_id !== null) {
    if (typeof body.document_id !== 'string' || !body.document_id) throw badParam('document_id', 'document_id must be a document id string');
    documentId = body.document_id;
  }
  const job: CompletionJob = { kind, model: body.model, stream, includeUsage, maxTokens, sampling: { temperature, topP, topK, seed }, stop, documentId };
  if (kind === 'chat') {
    job.messages = parseMessages(body.messages);
  } else {
    let p = body.prompt;
    // A list of one prompt is the prompt; a list of token ids is ids.
    if (Array.isArray(p) && p.length === 1 && (typeof p[0] === 'string' || Array.isArray(p[0]))) p = p[0];
    if (typeof p === 'string') job.prompt = p;
    else if (Array.isArray(p) && p.length > 0 && p.every((x) => Number.isInteger(x) && x >= 0 && x < limits.vocabSize)) job.ids = p as number[];
    else if (Array.isArray(p) && p.length > 1 && p.every((x) => typeof x === 'string' || Array.isArray(x)))
      throw badParam('prompt', 'several prompts in one request are not supported: send one request per prompt', 'unsupported_parameter');
    else throw badParam('prompt', `prompt must be a string or a non-empty list of token ids below ${limits.vocabSize}`);
    if (job.ids && documentId) throw badParam('prompt', 'a token-id prompt cannot be combined with document_id: give the question as text');
  }
  return job;
}

/**
 * The library request that answers `job` (sampling, stop and the rest added
 * by the caller; a kept document adds itself as the context). It is the call
 * a library user would write, so that the server's answer is model.generate's
 * on the same inputs:
 * - text: { prompt } or { ids }; with a document { context, prompt }.
 * - chat with a chat template: one user message (after an optional system
 *   message) is { prompt, chat } (with a document: { context, prompt, chat },
 *   the document before the question in that one user message); a longer
 *   conversation is rendered with the template into ids.
 * - chat without a chat template (a base model such as the shipped
 *   focus-tiny): the messages' texts joined by blank lines, as a plain
 *   prompt; what `focusllm generate --prompt` would do.
 */
export function toGenerateRequest(job: CompletionJob, tok: Tokenizer, withDocument: boolean): GenerateRequest {
  if (job.kind === 'text') return job.ids ? { ids: job.ids } : { prompt: job.prompt ?? '' };
  const msgs = job.messages!;
  if (!tok.hasChatTemplate) return { prompt: msgs.map((m) => m.content).join('\n\n') };
  const single =
    (msgs.length === 1 && msgs[0].role === 'user') || (msgs.length === 2 && msgs[0].role === 'system' && msgs[1].role === 'user');
  if (single) {
    const user = msgs[msgs.length - 1].content;
    const system = msgs.length === 2 ? msgs[0].content : undefined;
    return { prompt: user, chat: system ? { system } : true };
  }
  if (withDocument)
    throw badParam('messages', 'with document_id, messages must be one user message (the question), after an optional system message');
  let rendered: string;
  try {
    rendered = tok.applyChatTemplate(msgs, { addGenerationPrompt: true });
  } catch (e) {
    throw badParam('messages', `the chat template refused these messages: ${(e as Error).message}`);
  }
  return { ids: tok.encode(rendered, { addSpecial: false }) };
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function usage(prompt: number, completion: number): Usage {
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

export type FinishReason = 'stop' | 'length';

export interface Meta {
  id: string;
  created: number;
  model: string;
}

export function completionObject(kind: 'chat' | 'text', meta: Meta, text: string, finish: FinishReason, u: Usage): unknown {
  if (kind === 'chat')
    return {
      id: meta.id,
      object: 'chat.completion',
      created: meta.created,
      model: meta.model,
      choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: finish }],
      usage: u,
    };
  return {
    id: meta.id,
    object: 'text_completion',
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finish }],
    usage: u,
  };
}

/** One streamed chunk: a text delta, the first (role) chunk of a chat, the finish, or the usage (no choices). */
export function chunkObject(
  kind: 'chat' | 'text',
  meta: Meta,
  part: { text?: string; role?: boolean; finish?: FinishReason; usage?: Usage },
): unknown {
  const base =
    kind === 'chat'
      ? { id: meta.id, object: 'chat.completion.chunk', created: meta.created, model: meta.model }
      : { id: meta.id, object: 'text_completion', created: meta.created, model: meta.model };
  if (part.usage) return { ...base, choices: [], usage: part.usage };
  const finish = part.finish ?? null;
  if (kind === 'chat') {
    const delta: Record<string, string> = {};
    if (part.role) delta.role = 'assistant';
    if (part.text !== undefined) delta.content = part.text;
    return { ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] };
  }
  return { ...base, choices: [{ index: 0, text: part.text ?? '', logprobs: null, finish_reason: finish }] };
}
