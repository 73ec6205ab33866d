// Text generation: context + prompt in, text pieces out.
import type { Model } from './model';
import { chunkCount } from './plan';
import { makeNativeSampler, type SamplingOptions } from './sampling';
import type { IngestProgress, Session, SessionOptions } from './session';
import type { Tokenizer } from './tokenizer/types';

export interface GenerateProgress {
  phase: 'tokenize' | 'ingest' | 'decode' | 'done';
  /** chunks whose candidates are computed / all chunks (0 / 0 in native mode) */
  chunksDone: number;
  chunksTotal: number;
  /** input tokens */
  inputTokens: number;
  generatedTokens: number;
  /** decode speed so far */
  tokensPerSecond: number;
  /** seconds since the call started */
  elapsed: number;
}

export interface GenerateRequest extends SamplingOptions {
  /** the long document (text) */
  context?: string;
  /** input ids instead of / before the text (the prompt's text is appended) */
  ids?: ArrayLike<number>;
  /** the question or instruction, placed after the context */
  prompt?: string;
  /** render context + prompt as one user message with the checkpoint's chat template */
  chat?: boolean | { system?: string };
  /** at most this many new tokens (default 256) */
  maxNewTokens?: number;
  /** strings that end generation; the text up to the stop string is returned */
  stop?: string[];
  /** token ids that end generation (default: the tokenizer's and config's EOS ids) */
  stopIds?: number[];
  signal?: AbortSignal;
  /** FocusLLM options (chunking parameters, cache type, ...) */
  focus?: Omit<SessionOptions, 'maxSteps'>;
  onProgress?: (p: GenerateProgress) => void;
}

/** The input ids of a request, with the tokenizer's BOS and chat rules. */
export function buildInput(tok: Tokenizer | null, req: GenerateRequest): number[] {
  const hasText = req.context !== undefined || req.prompt !== undefined;
  if (req.context !== undefined && typeof req.context !== 'string') throw new Error('option context must be a string');
  if (req.prompt !== undefined && typeof req.prompt !== 'string') throw new Error('option prompt must be a string');
  if (hasText && !tok) throw new Error('this model folder has no tokenizer.json: pass token ids (option ids) instead of text');
  const text = [req.context, req.prompt].filter((s): s is string => s !== undefined && s.length > 0).join('\n\n');
  const ids = req.ids ? Array.from(req.ids) : [];
  if (!hasText) {
    if (ids.length === 0) throw new Error('nothing to generate from: give context, prompt or ids');
    return ids;
  }
  if (req.chat) {
    const messages = [];
    if (typeof req.chat === 'object' && req.chat.system) messages.push({ role: 'system', content: req.chat.system });
    messages.push({ role: 'user', content: text });
    const rendered = tok!.applyChatTemplate(messages, { addGenerationPrompt: true });
    // Chat templates write their own BOS.
    return [...ids, ...tok!.encode(rendered, { addSpecial: false })];
  }
  return [...ids, ...tok!.encode(text, { addSpecial: ids.length === 0 })];
}

/** Finds stop strings in streamed text, holding back what could start one. */
export class StopMatcher {
  private pending = '';
  constructor(private readonly stops: string[]) {
    for (const s of stops) if (typeof s !== 'string' || s.length === 0) throw new Error('stop strings must be non-empty strings');
  }
  /** Feeds text; returns the text safe to emit and whether a stop string was hit. */
  push(text: string): { text: string; stopped: boolean } {
    this.pending += text;
    let cut = -1;
    for (const s of this.stops) {
      const i = this.pending.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      const out = this.pending.slice(0, cut);
      this.pending = '';
      return { text: out, stopped: true };
    }
    // Keep the longest suffix that is a prefix of some stop string.
    let keep = 0;
    for (const s of this.stops)
      for (let n = Math.min(s.length - 1, this.pending.length); n > keep; n--)
        if (this.pending.endsWith(s.slice(0, n))) {
          keep = n;
          break;
        }
    const out = this.pending.slice(0, this.pending.length - keep);
    this.pending = this.pending.slice(this.pending.length - keep);
    return { text: out, stopped: false };
  }
  flush(): string {
    const out = this.pending;
    this.pending = '';
    return out;
  }
}

export async function* generateText(
  model: Model,
  req: GenerateRequest,
  /** @internal a session factory (lib/document.ts), default model.createSession */
  makeSession?: (opts: SessionOptions & { maxSteps: number }) => Session,
): AsyncGenerator<string> {
  const t0 = performance.now();
  const tok = model.tokenizer;
  const maxNew = req.maxNewTokens ?? 256;
  if (!Number.isInteger(maxNew) || maxNew < 0)
    throw new Error(`option maxNewTokens must be a non-negative integer, got ${String(req.maxNewTokens)}`);
  const sampler = makeNativeSampler(req);
  const stopIds = new Set(req.stopIds ?? [...(tok?.eosIds ?? []), ...model.config.eosTokenIds]);
  const matcher = new StopMatcher(req.stop ?? []);
  if (!tok) throw new Error('this model folder has no tokenizer.json: use generateTokens(ids) for token ids');
  req.signal?.throwIfAborted();
  const progress: GenerateProgress = {
    phase: 'tokenize',
    chunksDone: 0,
    chunksTotal: 0,
    inputTokens: 0,
    generatedTokens: 0,
    tokensPerSecond: 0,
    elapsed: 0,
  };
  const report = (p: Partial<GenerateProgress>) => {
    Object.assign(progress, p, { elapsed: (performance.now() - t0) / 1000 });
    req.onProgress?.({ ...progress });
  };
  report({});
  const ids = buildInput(tok, req);
  if (maxNew === 0) return;
  const sessionOpts = { ...req.focus, maxSteps: maxNew };
  const session = makeSession ? makeSession(sessionOpts) : model.createSession(sessionOpts);
  report({ phase: 'ingest', inputTokens: ids.length, chunksTotal: chunkCount(ids.length, session.params) });
  try {
    const onIngest = (p: IngestProgress) =>
      report({ phase: 'ingest', chunksDone: p.chunksDone, chunksTotal: p.chunksTotal || session.chunks });
    // Sampled on the backend: only the chosen token crosses to the host.
    let id = await session.ingestToken(ids, sampler, { signal: req.signal, onProgress: onIngest });
    report({ phase: 'decode', chunksDone: session.chunks, chunksTotal: session.chunks });
    const decoder = tok.streamDecoder({ skipSpecial: true });
    const tDecode = performance.now();
    for (let n = 0; ; ) {
      if (stopIds.has(id)) break;
      n++;
      // A model whose vocabulary is padded past the tokenizer's can sample an
      // id with no text: it adds nothing to the output.
      const piece = matcher.push(id < tok.vocabSize ? decoder.push(id) : '');
      if (piece.text) yield piece.text;
      const secs = (performance.now() - tDecode) / 1000;
      report({ generatedTokens: n, tokensPerSecond: secs > 0 ? n / secs : 0 });
      if (piece.stopped) return;
      if (n >= maxNew) break;
      id = await session.stepToken(id, sampler, { signal: req.signal });
    }
    const tail = matcher.push(decoder.flush());
    const rest = tail.text + (tail.stopped ? '' : matcher.flush());
    if (rest) yield rest;
  } finally {
    session.dispose();
    report({ phase: 'done' });
  }
}

/**
 * The token loop of model.generateTokens and doc.generateTokens: ingest `x`,
 * then step, sampled on the backend (only the chosen token crosses to the
 * host); stops at a stop token (not yielded) or after maxNewTokens.
 */
export async function* sessionTokens(
  x: number[],
  opts: SamplingOptions & { maxNewTokens?: number; stop?: number[]; signal?: AbortSignal },
  eosIds: readonly number[],
  makeSession: (maxSteps: number) => Session,
): AsyncGenerator<number> {
  const maxNew = opts.maxNewTokens ?? 256;
  if (!Number.isInteger(maxNew) || maxNew < 0)
    throw new Error(`option maxNewTokens must be a non-negative integer, got ${String(opts.maxNewTokens)}`);
  const stop = new Set(opts.stop ?? eosIds);
  const sampler = makeNativeSampler(opts);
  if (maxNew === 0) return;
  const s = makeSession(maxNew);
  try {
    let tok = await s.ingestToken(x, sampler, { signal: opts.signal });
    for (let n = 0; ; ) {
      if (stop.has(tok)) return;
      yield tok;
      if (++n >= maxNew) return;
      tok = await s.stepToken(tok, sampler, { signal: opts.signal });
    }
  } finally {
    s.dispose();
  }
}
