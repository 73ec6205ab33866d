// FocusLLM edge cases and architecture variants, engine vs the independent
// float64 reference (test/helpers/reference.ts), at DESIGN's 1e-4.
import fs from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { loadModel, type Model } from '../lib/model';
import { chunkCount, planIngest, resolveFocusParams } from '../lib/plan';
import { RefModel, refLogits, relErr, type RefParams } from './helpers/reference';
import { writeTinyModel, type TinyModelSpec } from './helpers/checkpoint';

const FX = path.join(__dirname, 'fixtures');

function ids(n: number, vocab: number, seed: number): number[] {
  let s = seed;
  const out = [1];
  while (out.length < n) {
    s = (s * 1103515245 + 12345) >>> 0;
    out.push(3 + (s % (vocab - 3)));
  }
  return out;
}

async function compare(
  t: tap.Test,
  model: Model,
  ref: RefModel,
  x: number[],
  cont: number[],
  p: RefParams,
  what: string,
  extra: Record<string, unknown> = {},
) {
  const rows = await model.logits(x, { continuation: cont, focus: { ...p, cacheType: 'f32', ...extra } });
  const want = refLogits(ref, x, cont, p);
  t.equal(rows.length, cont.length + 1, `${what}: one row after the input and one per continuation token`);
  t.equal(want.length, rows.length, `${what}: as many rows as the reference`);
  let worst = 0;
  want.forEach((w, i) => (worst = Math.max(worst, rows[i] ? relErr(rows[i], w) : Infinity)));
  t.ok(worst <= 1e-4, `${what}: max rel err ${worst.toExponential(2)} <= 1e-4 over ${rows.length} rows`);
}

t.test('the float64 reference agrees with the shared fixtures (an independent implementation)', async (t) => {
  // The engine is checked against test/helpers/reference.ts where the shared
  // fixtures do not reach; so that oracle is itself checked against them. It
  // agrees to ~1.4e-8 (both float64; the fixtures are stored as decimals).
  const files: string[] = JSON.parse(fs.readFileSync(path.join(FX, 'cases.json'), 'utf8'));
  t.ok(files.length >= 4, `${files.length} fixture cases`);
  for (const f of files) {
    const c = JSON.parse(fs.readFileSync(path.join(FX, f), 'utf8'));
    const dir = path.join(FX, f.slice(0, f.indexOf('.')));
    const o = c.options;
    const p: RefParams | null = o
      ? { localWindow: o.local_window, chunkSize: o.chunk_size, promptCap: o.prompt_cap, minChunkedLength: o.min_chunked_length }
      : null;
    const rows = refLogits(new RefModel(dir), c.ids, c.continuation, p);
    t.equal(rows.length, c.logits.length, `${f}: as many rows as the fixture`);
    let worst = 0;
    rows.forEach((r, i) => (worst = Math.max(worst, relErr(r, c.logits[i]))));
    t.ok(worst <= 1e-6, `${f}: max rel err ${worst.toExponential(2)} <= 1e-6 over ${rows.length} rows`);
  }
});

t.test('chunk plan edges (pure)', async (t) => {
  const p = resolveFocusParams({ localWindow: 20, chunkSize: 10, promptCap: 50, minChunkedLength: 30 });
  const x = ids(60, 500, 1);
  const plan = planIngest(x, p, 1);
  if (plan.mode !== 'focus') throw new Error('expected focus mode');
  t.equal(plan.memory, 40);
  t.same(plan.chunks.map((c) => c.length), [10, 10, 10, 10], 'memory an exact multiple of the chunk size');
  t.equal(plan.prompt.length, 11, 'prompt = withBos(last min(promptCap, chunkSize, localWindow) = 10 tokens)');
  t.same(plan.local.slice(1), x.slice(40), 'local = withBos(x[M:L])');
  t.equal(plan.local[0], 1);
  const one = planIngest(ids(41 + 20, 500, 2), p, 1);
  if (one.mode !== 'focus') throw new Error('expected focus mode');
  t.same(one.chunks.map((c) => c.length), [10, 10, 10, 10, 1], 'last chunk of one token');
  t.equal(planIngest(ids(29, 500, 3), p, 1).mode, 'native', 'below minChunkedLength: native');
  t.equal(planIngest(ids(30, 500, 3), p, 1).mode, 'focus', 'exactly minChunkedLength: chunked');
  t.equal(chunkCount(30, p), 1);
  t.equal(chunkCount(29, p), 0);
  // withBos does not double a BOS that is already there.
  const y = ids(60, 500, 4);
  y[50] = 1;
  const pb = planIngest(y, p, 1);
  if (pb.mode !== 'focus') throw new Error('expected focus mode');
  t.equal(pb.prompt.length, 10, 'prompt slice starting with BOS keeps one BOS');
  y[40] = 1;
  const pl = planIngest(y, p, 1);
  if (pl.mode !== 'focus') throw new Error('expected focus mode');
  t.equal(pl.local.length, 20, 'local slice starting with BOS keeps one BOS');
  t.equal(pl.chunks[0][0], 1, 'only chunk 0 starts with BOS');
  t.not(pl.chunks[1][0], 1);
});

t.test('fixture model tiny-gqa: method edges against the float64 reference', async (t) => {
  const dir = path.join(FX, 'tiny-gqa');
  const model = await loadModel(dir, { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  const ref = new RefModel(dir);
  const cases: [string, number, RefParams][] = [
    ['memory an exact multiple of the chunk size', 60, { localWindow: 20, chunkSize: 10, promptCap: 6, minChunkedLength: 30 }],
    ['a single chunk', 45, { localWindow: 20, chunkSize: 32, promptCap: 6, minChunkedLength: 30 }],
    ['a last chunk of one token', 61, { localWindow: 20, chunkSize: 10, promptCap: 6, minChunkedLength: 30 }],
    ['promptCap larger than the chunk size', 60, { localWindow: 20, chunkSize: 8, promptCap: 50, minChunkedLength: 30 }],
    ['input exactly at minChunkedLength', 30, { localWindow: 20, chunkSize: 7, promptCap: 5, minChunkedLength: 30 }],
    ['input one below minChunkedLength (native)', 29, { localWindow: 20, chunkSize: 7, promptCap: 5, minChunkedLength: 30 }],
    ['local window of one token', 40, { localWindow: 1, chunkSize: 9, promptCap: 4, minChunkedLength: 30 }],
    ['chunks of one token', 36, { localWindow: 30, chunkSize: 1, promptCap: 3, minChunkedLength: 31 }],
  ];
  for (const [what, n, p] of cases) await compare(t, model, ref, ids(n, 512, n), [7, 300, 42], p, what);
  const x = ids(60, 512, 9);
  x[50] = 1; // the prompt's slice starts with BOS
  x[40] = 1; // the local slice starts with BOS
  await compare(t, model, ref, x, [5, 6], { localWindow: 20, chunkSize: 10, promptCap: 10, minChunkedLength: 30 }, 'BOS inside the input');
});

t.test('micro-batching: small maxBatchTokens splits cached chunks into pieces, same numbers', async (t) => {
  const dir = path.join(FX, 'tiny-gqa');
  const ref = new RefModel(dir);
  for (const mbt of [1, 7, 33]) {
    const model = await loadModel(dir, { backend: 'cpu', threads: 2, maxBatchTokens: mbt });
    await compare(t, model, ref, ids(70, 512, 11), [9, 8, 7], { localWindow: 20, chunkSize: 12, promptCap: 6, minChunkedLength: 30 }, `maxBatchTokens ${mbt}`);
    await compare(t, model, ref, ids(25, 512, 12), [9, 8], { localWindow: 20, chunkSize: 12, promptCap: 6, minChunkedLength: 30 }, `native, maxBatchTokens ${mbt}`);
    model.dispose();
  }
});

t.test('threads 1 and 2 agree', async (t) => {
  const dir = path.join(FX, 'tiny-gqa');
  const a = await loadModel(dir, { backend: 'cpu', threads: 1 });
  const b = await loadModel(dir, { backend: 'cpu', threads: 2 });
  const x = ids(80, 512, 5);
  const f = { localWindow: 20, chunkSize: 16, promptCap: 8, minChunkedLength: 30 };
  const ra = await a.logits(x, { continuation: [3, 4], focus: f });
  const rb = await b.logits(x, { continuation: [3, 4], focus: f });
  ra.forEach((r, i) => t.ok(relErr(r, rb[i]) <= 1e-6, `row ${i}`));
  a.dispose();
  b.dispose();
});

t.test('keepChunkCaches: false gives the same ingest logits and refuses to step', async (t) => {
  const dir = path.join(FX, 'tiny-gqa');
  const model = await loadModel(dir, { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  const f = { localWindow: 20, chunkSize: 10, promptCap: 6, minChunkedLength: 30, cacheType: 'f32' as const };
  const x = ids(64, 512, 21);
  const keep = model.createSession({ ...f, maxSteps: 0 });
  const scoring = model.createSession({ ...f, keepChunkCaches: false });
  const a = await keep.ingest(x);
  const b = await scoring.ingest(x);
  t.ok(relErr(b, a) <= 1e-6, 'same logits');
  t.equal(scoring.memory.chunkCaches, 0, 'no chunk caches held');
  t.ok(scoring.memory.candidates > 0, 'candidate KVs held');
  t.ok(keep.memory.chunkCaches > 0, 'the other session holds chunk caches');
  await t.rejects(scoring.step(5), /kept no chunk caches \(keepChunkCaches: false\)/);
  await t.rejects(keep.step(5), /sized for 0 steps \(option maxSteps\)/);
  keep.dispose();
  scoring.dispose();
  t.equal(keep.memory.chunkCaches + keep.memory.candidates, 0, 'dispose frees');
});

const variants: [string, TinyModelSpec, string[]][] = [
  ['no candidate tensors (zero-shot: base projections)', { candidates: [] }, []],
  ['candidate MLP tensors', { candidateMlp: true }, ['q', 'k', 'v', 'o', 'mlp']],
  ['beacon_param lists only q and v (k and o fall back)', { beaconParam: ['q', 'v'] }, ['q', 'v']],
  ['no beacon_param: candidates used when present', { beaconParam: null, candidates: ['k', 'o'] }, ['k', 'o']],
  ['attention biases, candidate biases included', { attentionBias: true }, ['q', 'k', 'v', 'o']],
  ['tied embeddings', { tie: true }, ['q', 'k', 'v', 'o']],
  ['multi-head (GQA ratio 1)', { heads: 4, kvHeads: 4 }, ['q', 'k', 'v', 'o']],
  ['GQA ratio 4, head_dim not hidden/heads', { heads: 4, kvHeads: 1, headDim: 16 }, ['q', 'k', 'v', 'o']],
  ['rope_theta and linear rope scaling', { ropeTheta: 500000, ropeScaling: { type: 'linear', factor: 4 } }, ['q', 'k', 'v', 'o']],
  ['llama3 rope scaling', { ropeTheta: 500000, ropeScaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 } }, ['q', 'k', 'v', 'o']],
  ['rms_norm_eps 1e-5', { rmsNormEps: 1e-5 }, ['q', 'k', 'v', 'o']],
  ['F16 weights', { dtype: 'F16' }, ['q', 'k', 'v', 'o']],
  ['BF16 weights in 3 shards', { dtype: 'BF16', shards: 3, candidateMlp: true }, ['q', 'k', 'v', 'o', 'mlp']],
];

for (const [what, spec, present] of variants) {
  t.test(`architecture variant: ${what}`, async (t) => {
    const dir = writeTinyModel({ seed: 7, ...spec });
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const model = await loadModel(dir, { backend: 'cpu', threads: 2 });
    t.teardown(() => model.dispose());
    t.same(model.info.candidateProjections, present, 'candidate projections in use');
    const ref = new RefModel(dir);
    const p = { localWindow: 12, chunkSize: 9, promptCap: 5, minChunkedLength: 20 };
    await compare(t, model, ref, ids(48, 96, 3), [4, 50, 6], p, 'FocusLLM');
    await compare(t, model, ref, ids(15, 96, 4), [4, 50], p, 'native');
  });
}

t.test('loadModel beaconParam takes the place of config.json beacon_param', async (t) => {
  const all = writeTinyModel({ seed: 7, candidateMlp: true });
  const qv = writeTinyModel({ seed: 7, candidateMlp: true, beaconParam: ['q', 'v'] });
  t.teardown(() => [all, qv].forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  const over = await loadModel(all, { backend: 'cpu', threads: 2, beaconParam: ['q', 'v'] });
  const plain = await loadModel(qv, { backend: 'cpu', threads: 2 });
  const full = await loadModel(all, { backend: 'cpu', threads: 2 });
  t.teardown(() => [over, plain, full].forEach((m) => m.dispose()));
  t.same(over.info.candidateProjections, ['q', 'v']);
  t.same(over.config.beaconParam, ['q', 'v']);
  t.same(full.info.candidateProjections, ['q', 'k', 'v', 'o', 'mlp']);
  const x = ids(48, 96, 3);
  const f = { localWindow: 12, chunkSize: 9, promptCap: 5, minChunkedLength: 20 };
  const a = await over.logits(x, { continuation: [4, 50], focus: f });
  const b = await plain.logits(x, { continuation: [4, 50], focus: f });
  const c = await full.logits(x, { continuation: [4, 50], focus: f });
  a.forEach((r, i) => t.ok(relErr(r, b[i]) === 0, `row ${i}: the same as beacon_param ["q", "v"] in config.json`));
  t.ok(relErr(a[0], c[0]) > 1e-4, 'and not the same as all five');
  t.same(JSON.parse(fs.readFileSync(path.join(all, 'config.json'), 'utf8')).beacon_param, ['q', 'k', 'v', 'o', 'mlp'], 'config.json untouched');
  for (const [bp, re] of [
    [[], /option beaconParam must be a non-empty list of q, k, v, o, mlp, got \[\]/],
    ['q', /option beaconParam must be a non-empty list/],
    [['q', 'gate'], /option beaconParam: "gate" is not a candidate projection/],
    [['k', 'k'], /option beaconParam lists "k" twice/],
  ] as [unknown, RegExp][])
    await t.rejects(loadModel(all, { backend: 'cpu', beaconParam: bp as string[] }), re, JSON.stringify(bp));
});
