// The OpenAI-compatible server (lib/server, focusllm serve), spoken to with
// the official `openai` client: chat and text completions, whole and
// streamed, equal to model.generate on the same inputs (greedy, and sampled
// with the same seed); documents; cancellation by aborting the request (the
// server's generation stops); FIFO queueing; invalid requests (status and
// the API's error shape); the API key. On a small random model with the
// LLaMA-2 tokenizer and its chat template, chunked by FocusLLM for the long
// inputs.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import OpenAI from 'openai';
import t, { type Test } from 'tap';

import { writeRandomModel } from '../bench/random-model';
import { runServe } from '../lib/cli/serve';
import { main } from '../lib/cli/main';
import { buildInput, type GenerateRequest } from '../lib/generate';
import { loadModel, type Model } from '../lib/model';
import { createServer, type FocusServer, type RequestRecord } from '../lib/server/index';
import { captureStdout } from './helpers/cli';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'focusllm-server-'));
t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
const dir = path.join(root, 'tiny-chat');
// About 600 tokens: chunked (minChunkedLength 256) into 64-token chunks.
const documentText = Array.from({ length: 30 }, (_, i) => `Paragraph ${i}: the pass key is ${1000 + i * 37}, remember it.`).join('\n');
const focus = { localWindow: 64, chunkSize: 64, promptCap: 16, minChunkedLength: 256 };

let model: Model;
let server: FocusServer;
let client: OpenAI;
let baseURL: string;
const records: RequestRecord[] = [];
const MODEL = 'tiny-chat';

t.before(async () => {
  await writeRandomModel(dir, { hidden: 32, heads: 2, layers: 1, tokenizer: 'llama2', tieWordEmbeddings: true, seed: 4 });
  // The LLaMA-2 chat template, so that chat requests go through a real one.
  fs.copyFileSync(path.join(__dirname, 'fixtures-text', 'llama2-chat', 'tokenizer_config.json'), path.join(dir, 'tokenizer_config.json'));
  model = await loadModel(dir, { backend: 'cpu', threads: 1 });
  server = createServer(model, { focus });
  server.on('request', (r: RequestRecord) => records.push(r));
  const addr = await server.listen(0);
  baseURL = `http://127.0.0.1:${addr.port}/v1`;
  client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 });
});
t.teardown(async () => {
  await server?.close();
  model?.dispose();
});

/** The library's answer: model.generate's pieces joined. */
async function libraryText(req: GenerateRequest): Promise<string> {
  let s = '';
  for await (const piece of model.generate({ focus, ...req })) s += piece;
  return s;
}

/** The request fails with an openai APIError whose status and error body match `want`. */
async function fails(t: Test, p: Promise<unknown>, want: { status: number; error?: Record<string, unknown> }): Promise<void> {
  const e = await p.then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(e instanceof OpenAI.APIError, `an APIError (${String(e)})`);
  const err = e as InstanceType<typeof OpenAI.APIError>;
  t.match({ status: err.status, error: err.error }, want, `status ${want.status}`);
}

const sessionsOpen = () => (model as unknown as { sessions: Set<unknown> }).sessions.size;

/** The next 'request' record the server emits. */
const nextRecord = () => new Promise<RequestRecord>((resolve) => server.once('request', resolve));

t.test('GET /v1/models lists the served model', async (t) => {
  const list = await client.models.list();
  t.same(list.data.map((m) => [m.id, m.object, m.owned_by]), [[MODEL, 'model', 'focusllm']]);
  t.equal((await client.models.retrieve(MODEL)).id, MODEL);
  await fails(t, client.models.retrieve('gpt-4'), { status: 404 });
});

t.test('chat, not streamed, greedy: the library answer, usage counts', async (t) => {
  const prompt = 'What is the pass key?';
  const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: prompt }], temperature: 0, max_tokens: 12 });
  const want = await libraryText({ prompt, chat: true, temperature: 0, maxNewTokens: 12 });
  t.ok(want.length > 0, `library text ${JSON.stringify(want)}`);
  t.equal(r.choices[0].message.content, want, 'same text as model.generate');
  t.equal(r.choices[0].message.role, 'assistant');
  t.equal(r.object, 'chat.completion');
  t.equal(r.model, MODEL);
  t.equal(r.usage!.prompt_tokens, buildInput(model.tokenizer, { prompt, chat: true }).length, 'prompt tokens');
  t.ok(r.usage!.completion_tokens >= 1 && r.usage!.completion_tokens <= 12, `${r.usage!.completion_tokens} completion tokens`);
  t.equal(r.usage!.total_tokens, r.usage!.prompt_tokens + r.usage!.completion_tokens);
  t.equal(r.choices[0].finish_reason, r.usage!.completion_tokens === 12 ? 'length' : 'stop');
  // A system message goes through the template as the library's chat: { system }.
  const s = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: prompt }],
    temperature: 0,
    max_tokens: 8,
  });
  t.equal(s.choices[0].message.content, await libraryText({ prompt, chat: { system: 'Be brief.' }, temperature: 0, maxNewTokens: 8 }));
  t.equal(sessionsOpen(), 0, 'no session left open');
});

t.test('chat, streamed, sampled with a seed: the library answer; role first, finish, usage, [DONE]', async (t) => {
  const prompt = 'Tell me a story.';
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: prompt }],
    temperature: 1,
    top_p: 0.9,
    seed: 7,
    max_tokens: 20,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
  for await (const c of stream) chunks.push(c);
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  const want = await libraryText({ prompt, chat: true, temperature: 1, topP: 0.9, seed: 7, maxNewTokens: 20 });
  t.equal(text, want, 'same text as model.generate with the same seed');
  t.ok(chunks.length >= 4, `${chunks.length} chunks`);
  t.equal(chunks[0].choices[0].delta.role, 'assistant', 'the first chunk names the role');
  t.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id), 'one id, chunk objects');
  const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
  t.equal(finish.length, 1, 'one finish chunk');
  const last = chunks[chunks.length - 1];
  t.same(last.choices, [], 'the usage chunk has no choices');
  t.equal(last.usage!.prompt_tokens, buildInput(model.tokenizer, { prompt, chat: true }).length);
  t.equal(finish[0].choices[0].finish_reason, last.usage!.completion_tokens === 20 ? 'length' : 'stop');
});

t.test('a conversation of several turns is rendered with the chat template', async (t) => {
  const messages = [
    { role: 'system' as const, content: 'You are terse.' },
    { role: 'user' as const, content: 'Hi' },
    { role: 'assistant' as const, content: 'Hello!' },
    { role: 'user' as const, content: 'What is a llama?' },
  ];
  const r = await client.chat.completions.create({ model: MODEL, messages, temperature: 0, max_tokens: 10 });
  const ids = model.tokenizer!.encode(model.tokenizer!.applyChatTemplate(messages, { addGenerationPrompt: true }), { addSpecial: false });
  t.equal(r.choices[0].message.content, await libraryText({ ids, temperature: 0, maxNewTokens: 10 }));
  t.equal(r.usage!.prompt_tokens, ids.length);
});

t.test('text completions, whole and streamed, with stop strings: the library answer', async (t) => {
  const prompt = 'Once upon a time';
  const full = await libraryText({ prompt, temperature: 1, seed: 3, maxNewTokens: 24 });
  t.ok(full.length >= 6, `text to cut: ${JSON.stringify(full)}`);
  const stop = full.slice(Math.floor(full.length / 2), Math.floor(full.length / 2) + 2);
  const want = await libraryText({ prompt, temperature: 1, seed: 3, maxNewTokens: 24, stop: [stop] });
  t.ok(want.length < full.length, 'the stop string cuts the library text');
  const r = await client.completions.create({ model: MODEL, prompt, temperature: 1, seed: 3, max_tokens: 24, stop: [stop] });
  t.equal(r.choices[0].text, want);
  t.equal(r.choices[0].finish_reason, 'stop');
  t.equal(r.object, 'text_completion');
  const stream = await client.completions.create({ model: MODEL, prompt, temperature: 1, seed: 3, max_tokens: 24, stream: true });
  let text = '';
  let finish: string | null = null;
  for await (const c of stream) {
    text += c.choices[0]?.text ?? '';
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  t.equal(text, full, 'streamed: the library text');
  t.ok(finish === 'stop' || finish === 'length', `finish ${finish}`);
  // A token-id prompt is the library's ids.
  const ids = buildInput(model.tokenizer, { prompt });
  const byIds = await client.completions.create({ model: MODEL, prompt: ids, temperature: 0, max_tokens: 6 });
  t.equal(byIds.choices[0].text, await libraryText({ ids, temperature: 0, maxNewTokens: 6 }));
});

/** focusllm's document_id field: the client sends what it is given, its types do not know it. */
const docField = (id: string) => ({ document_id: id }) as object;

/** Uploads a document and polls it until its ingest ends. */
async function upload(body: Record<string, unknown>) {
  const doc = await client.post<{ id: string; status: string; bytes: number; chat: boolean }>('/documents', { body });
  let info: { status: string; tokens: number | null; chat: boolean; chunks_done: number; chunks_total: number } = await client.get(`/documents/${doc.id}`);
  for (let i = 0; i < 500 && (info.status === 'queued' || info.status === 'ingesting'); i++) {
    await new Promise((r) => setTimeout(r, 20));
    info = await client.get(`/documents/${doc.id}`);
  }
  return { doc, info };
}

t.test('documents: upload, ingest progress, questions by document_id equal the library with the document as context', async (t) => {
  const { doc, info } = await upload({ text: documentText });
  t.match(doc.id, /^doc-/);
  t.equal(doc.bytes, Buffer.byteLength(documentText));
  t.equal(info.status, 'ready');
  t.equal(info.chat, true, 'ingested for chat questions (the model has a chat template)');
  t.ok(info.tokens! > model.tokenizer!.encode(documentText).length, `${info.tokens} tokens: the text in the template's first user message`);
  t.equal(info.chunks_total, Math.ceil(info.tokens! / focus.chunkSize), 'every chunk of the document');
  t.equal(info.chunks_done, info.chunks_total, 'all ingested');
  const question = 'What is the pass key in paragraph 7?';
  const chat = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: question }],
    temperature: 0,
    max_tokens: 8,
    ...docField(doc.id),
  });
  const want = await libraryText({ context: documentText, prompt: question, chat: true, temperature: 0, maxNewTokens: 8 });
  t.equal(chat.choices[0].message.content, want, 'chat about the document');
  t.equal(chat.usage!.prompt_tokens, buildInput(model.tokenizer, { context: documentText, prompt: question, chat: true }).length);
  t.ok(chat.usage!.prompt_tokens > focus.minChunkedLength, 'long enough to run chunked');
  // Streamed, sampled, with a system message the document was not ingested with: still the library's answer.
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'system', content: 'Answer with a number.' }, { role: 'user', content: question }],
    temperature: 1,
    seed: 9,
    max_tokens: 8,
    stream: true,
    ...docField(doc.id),
  });
  let streamed = '';
  for await (const c of stream) streamed += c.choices[0]?.delta?.content ?? '';
  t.equal(
    streamed,
    await libraryText({ context: documentText, prompt: question, chat: { system: 'Answer with a number.' }, temperature: 1, seed: 9, maxNewTokens: 8 }),
  );
  // A text completion about a chat document: exact too (it reuses less).
  const text = await client.completions.create({
    model: MODEL,
    prompt: question,
    temperature: 1,
    seed: 11,
    max_tokens: 8,
    ...docField(doc.id),
  });
  t.equal(text.choices[0].text, await libraryText({ context: documentText, prompt: question, temperature: 1, seed: 11, maxNewTokens: 8 }));
  // A conversation of several turns cannot name a document.
  await fails(
    t,
    client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'user', content: 'c' }],
      max_tokens: 2,
      ...docField(doc.id),
    }),
    { status: 400, error: { param: 'messages' } },
  );
  const list = await client.get<{ data: { id: string }[] }>('/documents');
  t.same(list.data.map((d) => d.id), [doc.id]);
  // Unknown and deleted documents are 404s.
  await fails(
    t,
    client.completions.create({ model: MODEL, prompt: 'x', max_tokens: 2, ...docField('doc-nope') }),
    { status: 404, error: { code: 'document_not_found', param: 'document_id' } },
  );
  t.same(await client.delete(`/documents/${doc.id}`), { id: doc.id, object: 'document.deleted', deleted: true });
  await fails(t, client.get(`/documents/${doc.id}`), { status: 404 });
  await fails(t, client.post('/documents', { body: { text: '' } }), { status: 400, error: { param: 'text' } });
  await fails(t, client.post('/documents', { body: { text: 'x', chat: 'yes' } }), { status: 400, error: { param: 'chat' } });
});

t.test('a document ingested for completions answers them as the library does', async (t) => {
  const { doc, info } = await upload({ text: documentText, chat: false });
  t.equal(info.status, 'ready');
  t.equal(info.chat, false);
  t.equal(info.tokens, model.tokenizer!.encode(documentText).length, 'the text\'s tokens, BOS first');
  for (const prompt of ['Which pass key comes first?', 'And the last one?']) {
    const r = await client.completions.create({
      model: MODEL,
      prompt,
      temperature: 0,
      max_tokens: 6,
      ...docField(doc.id),
    });
    t.equal(r.choices[0].text, await libraryText({ context: documentText, prompt, temperature: 0, maxNewTokens: 6 }), prompt);
  }
  await client.delete(`/documents/${doc.id}`);
  // A text/plain body is the document itself (for chat questions here: the model has a template).
  const ingested = new Promise<[{ id: string; status: string; chat: boolean }, number]>((r) => server.once('document', (d, ms) => r([d, ms])));
  const plain = await fetch(`${baseURL}/documents`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'A short note.' });
  t.equal(plain.status, 202);
  const id = ((await plain.json()) as { id: string }).id;
  const [event] = await ingested;
  t.same([event.id, event.status, event.chat], [id, 'ready', true], "the 'document' event");
  await client.delete(`/documents/${id}`);
});

t.test('aborting a streamed request cancels its generation on the server', async (t) => {
  const ac = new AbortController();
  const done = nextRecord();
  const stream = await client.completions.create(
    { model: MODEL, prompt: 'Count to a thousand:', temperature: 1, seed: 5, max_tokens: 4000, stream: true },
    { signal: ac.signal },
  );
  let got = 0;
  const t0 = performance.now();
  try {
    for await (const c of stream) {
      if (c.choices[0]?.text) got++;
      if (got >= 2) ac.abort();
    }
  } catch (e) {
    t.equal((e as Error).name, 'APIUserAbortError', 'the client sees its own abort');
  }
  const rec = await done;
  const ms = performance.now() - t0;
  t.equal(rec.status, 'cancelled', 'the server records the request as cancelled');
  t.ok(rec.completionTokens >= 2 && rec.completionTokens < 4000, `stopped after ${rec.completionTokens} of 4000 tokens, ${ms.toFixed(0)} ms`);
  t.equal(sessionsOpen(), 0, 'its session is freed');
  t.equal(server.stats.active, 0, 'nothing runs on');
  const after = await client.completions.create({ model: MODEL, prompt: 'Hi', temperature: 0, max_tokens: 3 });
  t.equal(after.choices[0].text, await libraryText({ prompt: 'Hi', temperature: 0, maxNewTokens: 3 }), 'the server still answers');
});

t.test('requests wait their turn first come first served; one aborted while waiting never runs', async (t) => {
  const before = records.length;
  const long = new AbortController();
  const a = client.completions.create({ model: MODEL, prompt: 'A', temperature: 1, seed: 1, max_tokens: 4000 }, { signal: long.signal }).catch((e: Error) => e);
  for (let i = 0; i < 500 && server.stats.active === 0; i++) await new Promise((r) => setTimeout(r, 5));
  t.equal(server.stats.active, 1, 'A runs');
  const waitFor = async (n: number) => {
    for (let i = 0; i < 500 && server.stats.queued < n; i++) await new Promise((r) => setTimeout(r, 5));
  };
  const b = client.completions.create({ model: MODEL, prompt: 'B', temperature: 0, max_tokens: 3 });
  await waitFor(1);
  const cAbort = new AbortController();
  const c = client.completions.create({ model: MODEL, prompt: 'C', temperature: 0, max_tokens: 3 }, { signal: cAbort.signal }).catch((e: Error) => e);
  await waitFor(2);
  const d = client.completions.create({ model: MODEL, prompt: 'D', temperature: 0, max_tokens: 3 });
  await waitFor(3);
  t.equal(server.stats.queued, 3, 'B, C, D wait');
  cAbort.abort();
  for (let i = 0; i < 500 && server.stats.queued > 2; i++) await new Promise((r) => setTimeout(r, 5));
  t.equal(server.stats.queued, 2, 'C left the queue');
  long.abort();
  const [rb, rd] = await Promise.all([b, d]);
  t.type(await c, Error);
  t.type(await a, Error);
  const mine = records.slice(before);
  const order = mine.map((r) => (r.id === rb.id ? 'B' : r.id === rd.id ? 'D' : r.status === 'cancelled' && r.completionTokens === 0 ? 'C' : 'A'));
  t.same(order, ['C', 'A', 'B', 'D'], 'C cancelled while waiting, then A cancelled, then B and D in arrival order');
  const cRec = mine[order.indexOf('C')];
  t.equal(cRec.status, 'cancelled');
  t.equal(cRec.promptTokens, 0, 'C never ran');
  t.equal(mine[order.indexOf('A')].status, 'cancelled');
  t.ok(mine[order.indexOf('A')].completionTokens < 4000, 'A stopped early');
});

t.test('a document uploaded while the model is busy waits its turn; a question about it waits for its ingest; deleting a waiting one drops it', async (t) => {
  const long = new AbortController();
  const a = client.completions.create({ model: MODEL, prompt: 'A', temperature: 1, seed: 1, max_tokens: 4000 }, { signal: long.signal }).catch((e: Error) => e);
  for (let i = 0; i < 500 && server.stats.active === 0; i++) await new Promise((r) => setTimeout(r, 5));
  const doc = await client.post<{ id: string; status: string }>('/documents', { body: { text: documentText, chat: false } });
  t.equal(doc.status, 'queued', 'queued behind the running request');
  t.equal((await client.get<{ status: string }>(`/documents/${doc.id}`)).status, 'queued');
  const dropped = await client.post<{ id: string }>('/documents', { body: { text: 'never ingested', chat: false } });
  const droppedEvent = new Promise<{ id: string; status: string }>((resolve) => {
    const on = (d: { id: string; status: string }) => {
      if (d.id !== dropped.id) return;
      server.off('document', on);
      resolve(d);
    };
    server.on('document', on);
  });
  const question = client.completions.create({ model: MODEL, prompt: 'Which key?', temperature: 0, max_tokens: 4, ...docField(doc.id) });
  await client.delete(`/documents/${dropped.id}`);
  t.equal((await droppedEvent).status, 'failed', 'the deleted document never ingests');
  long.abort();
  t.type(await a, Error);
  const answer = await question;
  t.equal(answer.choices[0].text, await libraryText({ context: documentText, prompt: 'Which key?', temperature: 0, maxNewTokens: 4 }), 'answered once ingested');
  t.equal((await client.get<{ status: string }>(`/documents/${doc.id}`)).status, 'ready');
  await client.delete(`/documents/${doc.id}`);
});

t.test('invalid requests: the status and the API error shape', async (t) => {
  const bad = async (body: Record<string, unknown>, status: number, param: string | null, endpoint = 'chat/completions') => {
    const r = await fetch(`${baseURL}/${endpoint}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const j = (await r.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
    t.equal(r.status, status, `${JSON.stringify(body).slice(0, 60)} -> ${status}`);
    t.same(Object.keys(j.error).sort(), ['code', 'message', 'param', 'type']);
    t.equal(j.error.param, param, `param ${param}`);
    t.ok(j.error.message.length > 0);
    return j.error;
  };
  const msgs = [{ role: 'user', content: 'hi' }];
  t.equal((await bad({ model: MODEL, messages: [] }, 400, 'messages')).type, 'invalid_request_error');
  await bad({ model: MODEL, messages: msgs, temperature: 3 }, 400, 'temperature');
  await bad({ model: MODEL, messages: msgs, max_tokens: 0 }, 400, 'max_tokens');
  await bad({ model: MODEL, messages: msgs, max_tokens: 1e9 }, 400, 'max_tokens');
  await bad({ model: MODEL, messages: msgs, n: 2 }, 400, 'n');
  await bad({ model: MODEL, messages: msgs, stop: ['a', 'b', 'c', 'd', 'e'] }, 400, 'stop');
  await bad({ model: MODEL, messages: [{ role: 'wizard', content: 'x' }] }, 400, 'messages[0].role');
  await bad({ model: MODEL, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, 400, 'messages[0].content[0]');
  await bad({ messages: msgs }, 400, 'model');
  t.equal((await bad({ model: 'gpt-4o', messages: msgs }, 404, 'model')).code, 'model_not_found');
  await bad({ model: MODEL, prompt: { a: 1 } }, 400, 'prompt', 'completions');
  await bad({ model: MODEL, prompt: [1, 2, 1e9] }, 400, 'prompt', 'completions');
  // Through the client: its typed errors carry the same fields.
  await fails(t, client.chat.completions.create({ model: MODEL, messages: [], max_tokens: 2 }), {
    status: 400,
    error: { type: 'invalid_request_error', param: 'messages' },
  });
  // Not JSON, a wrong method, an unknown URL.
  const notJson = await fetch(`${baseURL}/completions`, { method: 'POST', body: '{"model": ' });
  t.equal(notJson.status, 400);
  t.equal(((await notJson.json()) as { error: { code: string } }).error.code, 'invalid_json');
  const get = await fetch(`${baseURL}/chat/completions`);
  t.equal(get.status, 405);
  const nowhere = await fetch(`${baseURL}/engines`);
  t.equal(nowhere.status, 404);
  t.equal(((await nowhere.json()) as { error: { code: string } }).error.code, 'unknown_url');
  const escape = await fetch(`${baseURL}/documents/%E0%A4%A`);
  t.equal(escape.status, 400, 'a malformed URL escape');
  // Bytes that are not HTTP at all: the connection is answered 400 and closed.
  const raw = await new Promise<string>((resolve, reject) => {
    const sock = net.connect(Number(new URL(baseURL).port), '127.0.0.1', () => sock.end('\x00\x01 not http\r\n\r\n'));
    let got = '';
    sock.on('data', (b) => (got += b.toString()));
    sock.on('close', () => resolve(got));
    sock.on('error', reject);
  });
  t.match(raw, /^HTTP\/1\.1 400/);
  t.equal(server.stats.active + server.stats.queued, 0, 'none of them reached the model');
  t.equal((await client.models.list()).data.length, 1, 'the server still answers');
});

t.test('body and document size limits: 413', async (t) => {
  const small = createServer(model, { maxBodyBytes: 1000, maxDocumentBytes: 100, maxDocuments: 1 });
  const addr = await small.listen(0);
  t.teardown(() => small.close());
  const url = `http://127.0.0.1:${addr.port}/v1`;
  const c = new OpenAI({ baseURL: url, apiKey: 'unused', maxRetries: 0 });
  await fails(t, c.completions.create({ model: MODEL, prompt: 'x'.repeat(2000), max_tokens: 2 }), {
    status: 413,
    error: { code: 'request_too_large' },
  });
  await fails(t, c.post('/documents', { body: { text: 'y'.repeat(101) } }), { status: 413, error: { code: 'document_too_large' } });
  // A chunked body without Content-Length is cut off while it is read.
  const r = await fetch(`${url}/completions`, {
    method: 'POST',
    body: new ReadableStream({
      start(ctl) {
        for (let i = 0; i < 10; i++) ctl.enqueue(new TextEncoder().encode('x'.repeat(500)));
        ctl.close();
      },
    }),
    duplex: 'half',
  } as RequestInit);
  t.equal(r.status, 413);
  // The document store holds one document: a second is a 429.
  const ok = await c.post<{ id: string }>('/documents', { body: { text: 'short' } });
  t.match(ok.id, /^doc-/);
  await fails(t, c.post('/documents', { body: { text: 'another' } }), { status: 429, error: { code: 'document_store_full' } });
  t.ok((await c.models.list()).data.length === 1, 'the server still answers');
});

t.test('a full queue answers 429 at once', async (t) => {
  const tight = createServer(model, { maxQueue: 0, focus });
  const addr = await tight.listen(0);
  t.teardown(() => tight.close());
  const c = new OpenAI({ baseURL: `http://127.0.0.1:${addr.port}/v1`, apiKey: 'unused', maxRetries: 0 });
  const ac = new AbortController();
  const first = c.completions.create({ model: MODEL, prompt: 'A', temperature: 1, seed: 2, max_tokens: 4000 }, { signal: ac.signal }).catch((e: Error) => e);
  for (let i = 0; i < 500 && tight.stats.active === 0; i++) await new Promise((r) => setTimeout(r, 5));
  t.equal(tight.stats.active, 1, 'one request runs');
  await fails(t, c.completions.create({ model: MODEL, prompt: 'B', max_tokens: 2 }), { status: 429, error: { code: 'queue_full' } });
  ac.abort();
  t.type(await first, Error);
});

t.test('with an API key every request needs it: 401 otherwise', async (t) => {
  const keyed = createServer(model, { apiKey: 'sesame', focus });
  const addr = await keyed.listen(0);
  t.teardown(() => keyed.close());
  const url = `http://127.0.0.1:${addr.port}/v1`;
  const wrong = new OpenAI({ baseURL: url, apiKey: 'open-up', maxRetries: 0 });
  await fails(t, wrong.models.list(), { status: 401, error: { code: 'invalid_api_key' } });
  await fails(t, wrong.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }), { status: 401 });
  const none = await fetch(`${url}/models`);
  t.equal(none.status, 401, 'no Authorization header');
  const body = (await none.json()) as { error: { type: string; code: string } };
  t.same([body.error.type, body.error.code], ['invalid_request_error', 'invalid_api_key']);
  const right = new OpenAI({ baseURL: url, apiKey: 'sesame', maxRetries: 0 });
  const r = await right.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], temperature: 0, max_tokens: 4 });
  t.equal(r.choices[0].message.content, await libraryText({ prompt: 'hi', chat: true, temperature: 0, maxNewTokens: 4 }));
});

t.test('a model without a chat template (the shipped focus-tiny): chat messages are a plain prompt', async (t) => {
  const tiny = await loadModel(undefined, { backend: 'cpu', threads: 1 });
  t.teardown(() => tiny.dispose());
  t.equal(tiny.tokenizer!.hasChatTemplate, false);
  const srv = createServer(tiny);
  const addr = await srv.listen(0);
  t.teardown(() => srv.close());
  const c = new OpenAI({ baseURL: `http://127.0.0.1:${addr.port}/v1`, apiKey: 'unused', maxRetries: 0 });
  const r = await c.chat.completions.create({
    model: 'focus-tiny',
    messages: [{ role: 'system', content: 'The president said' }, { role: 'user', content: 'that the union' }],
    temperature: 0,
    max_tokens: 8,
  });
  let want = '';
  for await (const p of tiny.generate({ prompt: 'The president said\n\nthat the union', temperature: 0, maxNewTokens: 8 })) want += p;
  t.ok(want.length > 0);
  t.equal(r.choices[0].message.content, want, "the messages' texts joined by blank lines");
  await fails(t, c.post('/documents', { body: { text: 'x', chat: true } }), { status: 400, error: { param: 'chat' } });
});

t.test('focusllm serve: listens, answers, stops on its signal; usage errors', async (t) => {
  // No assertion while the command runs: captureStdout holds stdout, where tap writes them.
  const ac = new AbortController();
  let url = '';
  let listening = () => {};
  const up = new Promise<void>((r) => (listening = r));
  const run = captureStdout(() =>
    runServe(['--model', dir, '--port', '0', '--threads', '1', '--api-key', 'k', '--model-name', 'm'], {
      signal: ac.signal,
      onListening: (u) => {
        url = u;
        listening();
      },
    }),
  );
  await up;
  const c = new OpenAI({ baseURL: url, apiKey: 'k', maxRetries: 0 });
  const answer = await c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], temperature: 0, max_tokens: 3 }).catch((e: Error) => e);
  ac.abort();
  const r = await run;
  t.equal(r.code, 0, 'exit code 0');
  t.notOk(answer instanceof Error, `answered (${String(answer instanceof Error ? answer.message : 'ok')})`);
  t.equal((answer as OpenAI.Chat.Completions.ChatCompletion).model, 'm');
  t.match(r.stderr, /model 'm' at http:\/\/127\.0\.0\.1:\d+\/v1 \(API key required\)/);
  t.match(r.stderr, /chat completed \d+\+\d+ tokens/);
  const bad = await captureStdout(() => main(['serve', '--port', '70000']));
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--port must be from 0 to 65535/);
});
