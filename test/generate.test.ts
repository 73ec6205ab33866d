// Text generation, through the API (model.generate({ context, prompt })) and
// the CLI (focusllm generate, in-process): streaming, stop strings,
// cancellation, progress (never backwards, ending with every chunk), and the
// memory estimate `info --context` prints, checked against what a session
// allocates. On a small random model with the llama2 tokenizer, chunked.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import t from 'tap';

import { writeRandomModel } from '../bench/random-model';
import { progressLine } from '../lib/cli/generate';
import { main } from '../lib/cli/main';
import { buildInput, StopMatcher, type GenerateProgress, type GenerateRequest } from '../lib/generate';
import { estimateMemory, formatBytes } from '../lib/memory';
import { loadModel, type Model } from '../lib/model';
import { chunkCount, resolveFocusParams } from '../lib/plan';
import { captureStdout } from './helpers/cli';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'focusllm-generate-'));
t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
const dir = path.join(root, 'model');
const contextFile = path.join(root, 'context.txt');
// About 600 tokens: chunked (minChunkedLength 256) into several 64-token chunks.
const context = Array.from({ length: 30 }, (_, i) => `Paragraph ${i}: the pass key is ${1000 + i * 37}, remember it.`).join('\n');
fs.writeFileSync(contextFile, context);
const prompt = 'What is the pass key?';
const focus = { localWindow: 64, chunkSize: 64, promptCap: 16, minChunkedLength: 256 };
const focusFlags = ['--local-window', '64', '--chunk-size', '64', '--prompt-cap', '16', '--min-chunked-length', '256'];

let model: Model;
t.before(async () => {
  await writeRandomModel(dir, { hidden: 32, heads: 2, layers: 1, tokenizer: 'llama2', tieWordEmbeddings: true, seed: 4 });
  model = await loadModel(dir, { backend: 'cpu', threads: 2 });
});
t.teardown(() => model?.dispose());

async function collect(req: GenerateRequest): Promise<{ pieces: string[]; progress: GenerateProgress[] }> {
  const pieces: string[] = [];
  const progress: GenerateProgress[] = [];
  for await (const piece of model.generate({ ...req, onProgress: (p) => progress.push(p) })) pieces.push(piece);
  return { pieces, progress };
}

/** Two characters from the middle of a text on (else one), without spaces or commas. */
function stopIn(text: string): string {
  for (let i = Math.floor(text.length / 2); i + 2 <= text.length; i++) if (!/[\s,]/.test(text.slice(i, i + 2))) return text.slice(i, i + 2);
  return [...text].find((ch) => !/[\s,]/.test(ch)) ?? '';
}

/** "k/n chunks" counts in a progress-bar transcript, in order. */
const chunkCounts = (stderr: string) => [...stderr.matchAll(/(\d+)\/(\d+) chunks/g)].map((m) => [Number(m[1]), Number(m[2])]);

t.test('generate streams text pieces; progress goes tokenize, ingest (every chunk), decode, done, never backwards', async (t) => {
  const { pieces, progress } = await collect({ context, prompt, maxNewTokens: 12, stop: [], focus });
  t.ok(pieces.length > 0, `${pieces.length} pieces`);
  t.ok(pieces.every((p) => typeof p === 'string' && p.length > 0), 'non-empty strings');
  const phases = progress.map((p) => p.phase).filter((ph, i, a) => ph !== a[i - 1]);
  t.same(phases, ['tokenize', 'ingest', 'decode', 'done']);
  const ingest = progress.filter((p) => p.phase === 'ingest');
  const total = ingest[ingest.length - 1].chunksTotal;
  t.ok(total >= 4, `${total} chunks`);
  t.equal(ingest[0].inputTokens, buildInput(model.tokenizer, { context, prompt }).length, 'input tokens');
  const back = progress.findIndex((p, i) => i > 0 && p.chunksDone < progress[i - 1].chunksDone);
  t.equal(back, -1, `chunk count never goes back (${progress.map((p) => p.chunksDone).join(',')})`);
  t.equal(ingest[ingest.length - 1].chunksDone, total, 'the ingest ends with every chunk done');
  const last = progress[progress.length - 1];
  t.equal(last.phase, 'done');
  t.ok(last.generatedTokens >= 1 && last.generatedTokens <= 12, `${last.generatedTokens} tokens`);
  t.ok(progress.every((p, i) => i === 0 || p.elapsed >= progress[i - 1].elapsed), 'elapsed grows');
  t.equal((model as unknown as { sessions: Set<unknown> }).sessions.size, 0, 'the session is disposed');
});

t.test('stop strings end the text before them, across piece boundaries', async (t) => {
  // Sampled (seeded) for varied text: random weights decode greedily into repeats.
  const req = { context, prompt, maxNewTokens: 24, temperature: 1, seed: 3, stop: [], focus };
  const full = (await collect(req)).pieces.join('');
  t.equal((await collect(req)).pieces.join(''), full, 'seeded sampling repeats');
  t.ok(full.length >= 8, `text to cut: ${JSON.stringify(full)}`);
  const stop = full.slice(Math.floor(full.length / 2), Math.floor(full.length / 2) + 3);
  const cut = await collect({ ...req, stop: ['never appears in the text \u0000', stop] });
  t.equal(cut.pieces.join(''), full.slice(0, full.indexOf(stop)), `cut before ${JSON.stringify(stop)}`);
  t.ok(cut.progress[cut.progress.length - 1].generatedTokens < 24, 'generation stopped early');
  const none = await collect({ ...req, stop: ['never appears in the text \u0000'] });
  t.equal(none.pieces.join(''), full, 'a stop string that never comes holds nothing back at the end');

  const m = new StopMatcher(['END', 'xyz']);
  t.same(m.push('abc E'), { text: 'abc ', stopped: false }, 'holds back a possible start');
  t.same(m.push('N'), { text: '', stopped: false });
  t.same(m.push('X'), { text: 'ENX', stopped: false }, 'releases it when it is not one');
  t.same(m.push('..EN'), { text: '..', stopped: false });
  t.same(m.push('Dtail'), { text: '', stopped: true }, 'a stop string split across pieces');
  t.equal(new StopMatcher(['ab']).flush(), '');
  const early = new StopMatcher(['zz', 'b']);
  t.same(early.push('azzb'), { text: 'a', stopped: true }, 'the earliest stop string wins');
  t.throws(() => new StopMatcher(['']), /stop strings must be non-empty strings/);
});

t.test('an abort ends generation with AbortError and frees the session; bad requests are Errors', async (t) => {
  const ac = new AbortController();
  const got: string[] = [];
  await t.rejects(
    (async () => {
      for await (const piece of model.generate({ context, prompt, maxNewTokens: 50, stop: [], focus, signal: ac.signal })) {
        got.push(piece);
        ac.abort();
      }
    })(),
    { name: 'AbortError' },
  );
  t.equal(got.length, 1, 'one piece before the abort');
  t.equal((model as unknown as { sessions: Set<unknown> }).sessions.size, 0, 'no session left open');
  await t.rejects(collect({ prompt, signal: AbortSignal.abort() }), { name: 'AbortError' }, 'an aborted signal: no work');
  t.same((await collect({ prompt, maxNewTokens: 0 })).pieces, [], 'maxNewTokens 0: nothing');
  await t.rejects(collect({ prompt, maxNewTokens: -1 }), /maxNewTokens must be a non-negative integer, got -1/);
  await t.rejects(collect({}), /nothing to generate from: give context, prompt or ids/);
  await t.rejects(collect({ prompt: 5 as unknown as string }), /option prompt must be a string/);
  // ids before the text: the prompt's text is appended without a second BOS
  const tok = model.tokenizer!;
  t.same(buildInput(tok, { ids: [1, 450], prompt: 'Hi' }), [1, 450, ...tok.encode('Hi', { addSpecial: false })]);
  t.same(buildInput(tok, { ids: [1, 450] }), [1, 450]);
});

t.test('focusllm generate: streams the same text, draws a progress bar that ends at every chunk', async (t) => {
  const args = ['generate', '--model', dir, '--backend', 'cpu', '--threads', '2', '--context-file', contextFile, '--prompt', prompt, ...focusFlags];
  const want = (await collect({ context, prompt, maxNewTokens: 10, focus })).pieces.join('');
  const r = await captureStdout(() => main([...args, '--max-new-tokens', '10', '--progress']));
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, want + '\n', 'the API text');
  const counts = chunkCounts(r.stderr);
  t.ok(counts.length > 0, `bar drawn: ${JSON.stringify(r.stderr.slice(0, 200))}`);
  const total = counts[0][1];
  t.ok(
    counts.every(([done, n], i) => n === total && (i === 0 || done >= counts[i - 1][0])),
    `never backwards: ${counts.map((c) => c.join('/')).join(' ')}`,
  );
  t.same(counts[counts.length - 1], [total, total], `shows ${total}/${total}`);
  t.match(r.stderr, /^\r\x1b\[Ktokenizing\.\.\./, 'starts with the tokenize phase');
  t.match(r.stderr, /\r\x1b\[K$/, 'the bar is cleared');

  // The answer on the terminal: the bar clears before the first piece and stays away.
  const tty = Object.getOwnPropertyDescriptor(process.stdout, 'isTTY');
  Object.defineProperty(process.stdout, 'isTTY', { value: true, configurable: true });
  const onTerminal = await captureStdout(() => main([...args, '--max-new-tokens', '10', '--progress'])).finally(() => {
    if (tty) Object.defineProperty(process.stdout, 'isTTY', tty);
    else delete (process.stdout as { isTTY?: boolean }).isTTY;
  });
  t.equal(onTerminal.stdout, r.stdout);
  t.notMatch(onTerminal.stderr, /decode [1-9]/, 'no decode redraws over the text');
  t.match(onTerminal.stderr, /\r\x1b\[K$/, 'cleared');

  const quiet = await captureStdout(() => main([...args, '--max-new-tokens', '10', '--progress=false']));
  t.equal(quiet.code, 0, quiet.stderr);
  t.equal(quiet.stderr, '', '--progress=false: nothing on stderr');
  t.equal(quiet.stdout, r.stdout);

  // --stop is a comma-separated list of trimmed strings: pick one without spaces or commas.
  const stopAt = stopIn(want);
  t.ok(stopAt.length > 0, `a stop string from ${JSON.stringify(want)}`);
  const s = await captureStdout(() => main([...args, '--max-new-tokens', '10', '--stop', stopAt]));
  t.equal(s.stdout, want.slice(0, want.indexOf(stopAt)) + '\n', `--stop ${JSON.stringify(stopAt)}`);

  const chat = await captureStdout(() => main([...args, '--max-new-tokens', '3', '--chat', '--system', 'Be brief.']));
  t.equal(chat.code, 1, 'the llama2 package has no chat template');
  t.match(chat.stderr, /^focusllm generate: this tokenizer has no chat template/);
  const native = await captureStdout(() => main(['generate', '--model', dir, '--backend', 'cpu', '--prompt', 'Hi', '--max-new-tokens', '2', '--progress']));
  t.equal(native.code, 0, native.stderr);
  t.match(native.stderr, /ingesting \d+ tokens \(native\)/, 'a short input ingests natively');

  const none = await captureStdout(() => main(['generate', '--model', dir]));
  t.equal(none.code, 2);
  t.match(none.stderr, /give --context-file, --prompt or --ids/);
  const missing = await captureStdout(() => main(['generate', '--model', dir, '--context-file', path.join(root, 'nope.txt')]));
  t.equal(missing.code, 2);
  t.match(missing.stderr, /--context-file: ENOENT/);
});

t.test('progressLine', async (t) => {
  const p: GenerateProgress = { phase: 'ingest', chunksDone: 3, chunksTotal: 6, inputTokens: 449965, generatedTokens: 0, tokensPerSecond: 0, elapsed: 12.34 };
  t.equal(progressLine({ ...p, phase: 'tokenize' }), 'tokenizing...');
  t.equal(progressLine(p, 10), 'ingest [#####.....] 3/6 chunks, 449965 tokens, 12.3 s');
  t.equal(progressLine({ ...p, chunksDone: 6 }, 4), 'ingest [####] 6/6 chunks, 449965 tokens, 12.3 s');
  t.equal(progressLine({ ...p, chunksTotal: 0, chunksDone: 0 }), 'ingesting 449965 tokens (native)...');
  t.equal(progressLine({ ...p, phase: 'decode', generatedTokens: 7, tokensPerSecond: 3.5 }), 'decode 7 tokens, 3.50 tokens/s (6 chunks, 12.3 s)');
});

t.test('estimateMemory: the bytes a session allocates (an upper bound within 5%), in focus and native mode', async (t) => {
  const c = model.config;
  const i = model.info;
  const ids = buildInput(model.tokenizer, { context, prompt });
  for (const [what, opts, input] of [
    ['focus', focus, ids],
    ['focus', { ...focus, stepMode: 'incremental' }, ids],
    ['native', {}, ids.slice(0, 100)],
  ] as const) {
    const s = model.createSession({ ...opts, maxSteps: 8 });
    try {
      await s.ingest(input);
      const est = estimateMemory(c, {
        context: input.length,
        params: resolveFocusParams(opts as Parameters<typeof resolveFocusParams>[0]),
        maxNewTokens: 8,
        cacheType: s.resolvedCacheType(),
        actDtype: i.actDtype,
        maxBatchTokens: i.maxBatchTokens,
        stepMode: 'stepMode' in opts ? opts.stepMode : undefined,
      });
      t.equal(est.mode, what);
      t.equal(est.chunks, s.chunks, `${what}: chunks`);
      // An upper bound (it counts the BOS a plan may add), within a row or two.
      for (const k of ['chunkCaches', 'candidates', 'localCache'] as const) {
        const got = s.memory[k];
        if (k === 'localCache' && what === 'focus') t.equal(got > 0, 'stepMode' in opts, `${what}: a local cache only in the cheaper step modes`);
        t.ok(got <= est[k] && est[k] <= got * 1.05, `${what}: ${k} estimated ${est[k]}, allocated ${got}`);
      }
      t.ok(what === 'native' ? est.localCache > 0 : est.chunkCaches > 0 && est.candidates > 0, `${what}: the caches of the mode`);
      t.ok(est.totalKeep >= est.totalScoring && est.totalScoring > 0, `${what}: totals ${formatBytes(est.totalKeep)} / ${formatBytes(est.totalScoring)}`);
    } finally {
      s.dispose();
    }
  }
  t.equal(formatBytes(512), '512 B');
  t.equal(formatBytes(3 * 1024 * 1024), '3.00 MiB');
});

t.test('focusllm info --context sizes memory, as text and JSON', async (t) => {
  const j = await captureStdout(() => main(['info', '--model', dir, '--context', '1000', '--max-new-tokens', '8', ...focusFlags, '--json']));
  t.equal(j.code, 0, j.stderr);
  const out = JSON.parse(j.stdout);
  t.equal(out.tokenizer.vocab, 32000);
  t.equal(out.memory.context, 1000);
  t.equal(out.memory.mode, 'focus');
  t.equal(out.memory.chunks, chunkCount(1000, resolveFocusParams(focus)), 'chunks of 1000 tokens');
  t.ok(out.memory.totalKeep > out.memory.chunkCaches, 'the total includes the chunk caches');
  const text = await captureStdout(() => main(['info', '--model', dir, '--context', '1000', ...focusFlags]));
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, new RegExp(`^context\\s+1000 tokens: ${out.memory.chunks} chunks$`, 'm'));
  t.match(text.stdout, /^chunk caches\s+\S+ \S+ \(f32; needed to generate more than one token\)$/m);
  t.match(text.stdout, /^tokenizer\s+vocab 32000, BOS 1$/m);
  t.match(text.stdout, /^kept document \(ingestDocument\)\s+\S+ \S+ in \d+ chunk caches \(f32\)/m);
  // the figure is what a kept document of that length holds
  const m = await loadModel(dir, { threads: 1 });
  try {
    const doc = await m.ingestDocument(Array.from({ length: 1000 }, (_, i) => 1 + (i % 200)), { focus: { ...focus, cacheType: 'f32' } });
    t.same(out.memory.document, { chunks: doc.chunks, chunkCaches: doc.memory().chunkCaches }, 'a document of 1000 tokens');
    doc.dispose();
  } finally {
    m.dispose();
  }
  const nat = await captureStdout(() => main(['info', '--model', dir, '--context', '100']));
  t.equal(nat.code, 0, nat.stderr);
  t.match(nat.stdout, /^context\s+100 tokens: native \(below minChunkedLength\)$/m);
  t.match(nat.stdout, /^KV cache\s+\S+/m);
  const bad = await captureStdout(() => main(['info', '--model', dir, '--max-new-tokens', '-1']));
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--max-new-tokens must be at least 0, got -1/);
});

t.test('focusllm doctor reports the build and backends, as text and JSON', async (t) => {
  const text = await captureStdout(() => main(['doctor']));
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, /^focusllm \S+ on node v\d+/);
  t.match(text.stdout, /^backends compiled in: cpu/m);
  t.match(text.stdout, /^cuda: (usable|not usable - \S)/m);
  const j = await captureStdout(() => main(['doctor', '--json']));
  t.equal(j.code, 0, j.stderr);
  const r = JSON.parse(j.stdout);
  t.equal(r.node, process.version);
  t.type(r.addon.version, 'string');
  t.type(r.addon.cuda.compiled, 'boolean');
  t.notOk('backend' in r, 'no --backend: no verdict');
});
