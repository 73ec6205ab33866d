// DESIGN 1b, the exactness contract of training: the native Trainer's loss
// and gradients against the float64 oracle (test/helpers/train-reference.ts,
// itself checked by finite differences in train-reference.test.ts). Per
// tensor max|ours - ref| / max|ref| (max over every trainable tensor) <= 1e-4,
// loss <= 1e-5 relative; FocusLLM losses of many geometries and the lm loss,
// on the shared fixtures and on tiny checkpoints with each feature; mostly
// through the API, and through `focusllm grad`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import t from 'tap';

import { main } from '../lib/cli/main';
import { loadModel } from '../lib/model';
import { native } from '../lib/native';
import { makeRng } from '../lib/sampling';
import type { NativeTrainExample, Trainer } from '../typings/native';
import { writeTinyModel, type TinyModelSpec } from './helpers/checkpoint';
import { captureStdout } from './helpers/cli';
import { TrainRef, type RefFocusExample, type RefTrainExample } from './helpers/train-reference';

const FX = path.join(__dirname, 'fixtures');
const GRAD_TOL = 1e-4;
const LOSS_TOL = 1e-5;

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'focusllm-train-grad-'));
t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
let nDirs = 0;
const tiny = (spec: TinyModelSpec) => writeTinyModel(spec, path.join(root, `m${nDirs++}`));

/** x: BOS first, then ids drawn from [3, vocab) (no BOS / EOS), with BOS again at `bosAt`. */
function makeIds(n: number, vocab: number, seed: number, bosAt: number[] = []): number[] {
  const r = makeRng(seed);
  const x = [1];
  for (let i = 1; i < n; i++) x.push(3 + Math.floor(r() * (vocab - 3)));
  for (const i of bosAt) x[i] = 1;
  return x;
}

const focus = (ids: number[], loss: 'continuation' | 'repetition', s: number, l: number, C: number, cap = 512): RefFocusExample => ({
  kind: 'focus', ids, loss, localStart: s, localSize: l, chunkSize: C, promptCap: cap,
});

function toNative(ex: RefTrainExample, weight?: number): NativeTrainExample {
  const w = weight === undefined ? {} : { weight };
  if (ex.kind === 'lm') return { kind: 'lm', ids: Int32Array.from(ex.ids), ...(ex.lossStart === undefined ? {} : { lossStart: ex.lossStart }), ...w };
  return { ...ex, ids: Int32Array.from(ex.ids), ...w };
}

/** Every geometry of the contract, on x of 24 tokens. */
function allGeometries(vocab: number, seed: number): [string, RefTrainExample][] {
  const x = makeIds(24, vocab, seed);
  const xb = makeIds(24, vocab, seed + 1, [9]);
  return [
    ['continuation, 3 chunks, last shorter, t = C', focus(x, 'continuation', 11, 6, 4)],
    ['repetition, 5 chunks, last shorter, t = C', focus(x, 'repetition', 5, 7, 5)],
    ['continuation, chunk size 1', focus(x, 'continuation', 4, 3, 1)],
    ['repetition, chunk size 1', focus(x.slice(0, 10), 'repetition', 3, 4, 1)],
    ['continuation, l = 1, t = l', focus(x, 'continuation', 6, 1, 4)],
    ['repetition, l = 1', focus(x, 'repetition', 20, 1, 8)],
    ['repetition, t = promptCap', focus(x, 'repetition', 2, 8, 6, 3)],
    ['continuation, one chunk, t = l < C', focus(x, 'continuation', 8, 3, 8)],
    ['continuation, x[s] = BOS (local gets no extra BOS)', focus(xb, 'continuation', 9, 5, 3)],
    ['continuation, x[s] = BOS = P[0] (neither gets one)', focus(xb, 'continuation', 9, 3, 4)],
    ['repetition, s = 0 (x[0] = BOS)', focus(x, 'repetition', 0, 6, 7)],
    ['lm', { kind: 'lm', ids: x }],
    ['lm, 2 tokens', { kind: 'lm', ids: x.slice(0, 2) }],
    ['lm, scored from token 15 (a prompt before it)', { kind: 'lm', ids: x, lossStart: 15 }],
    ['lm, only the last token scored', { kind: 'lm', ids: x, lossStart: 23 }],
  ];
}

/** A few geometries per checkpoint variant. */
function someGeometries(vocab: number, seed: number): [string, RefTrainExample][] {
  const x = makeIds(20, vocab, seed);
  return [
    ['continuation, 3 chunks, last shorter', focus(x, 'continuation', 9, 5, 3)],
    ['repetition, t = promptCap', focus(x, 'repetition', 4, 6, 4, 2)],
    ['continuation, chunk size 1, l = 1', focus(x, 'continuation', 3, 1, 1)],
    ['lm', { kind: 'lm', ids: x }],
  ];
}

interface Diff {
  /** max over tensors of max|ours - ref| / max|ref over all tensors| */
  grad: number;
  tensor: string;
  loss: number;
}

function diff(ref: { loss: number; grads: Map<string, Float64Array> }, loss: number, ours: (name: string) => ArrayLike<number>): Diff {
  let gmax = 0;
  for (const g of ref.grads.values()) for (const v of g) gmax = Math.max(gmax, Math.abs(v));
  const d: Diff = { grad: 0, tensor: '', loss: Math.abs(loss - ref.loss) / Math.abs(ref.loss) };
  for (const [name, g] of ref.grads) {
    const o = ours(name);
    let e = o.length === g.length ? 0 : Infinity;
    for (let i = 0; i < g.length && e < Infinity; i++) e = Math.max(e, Number.isNaN(o[i]) ? Infinity : Math.abs(o[i] - g[i]));
    e = gmax > 0 ? e / gmax : e;
    if (e >= d.grad) Object.assign(d, { grad: e, tensor: name });
  }
  return d;
}

const describe = (d: Diff) =>
  `loss ${d.loss.toExponential(1)}, grad ${d.grad.toExponential(1)}` + (d.grad > GRAD_TOL ? ` (worst ${d.tensor})` : '');

const addon = native();
const hasTrainer = typeof addon.Trainer === 'function';

/** One trainer per params mode on `dir`; every example checked against the oracle. */
async function checkModel(
  t: tap.Test,
  dir: string,
  examples: [string, RefTrainExample][],
  opts: { recompute?: boolean; maxBatchTokens?: number } = {},
): Promise<void> {
  const ref = new TrainRef(dir);
  for (const params of ['candidate', 'all'] as const) {
    const mine = examples.filter(([, ex]) => (ex.kind === 'lm') === (params === 'all'));
    if (!mine.length) continue;
    const model = await loadModel(dir, { backend: 'cpu', threads: 2, tokenizer: false, maxBatchTokens: opts.maxBatchTokens });
    let trainer: Trainer | undefined;
    try {
      trainer = model.native.createTrainer({ params, recompute: opts.recompute });
      const want = ref.trainableNames(mine[0][1]);
      const got = trainer.tensors.map((x) => x.name);
      t.same([...got].sort(), [...want].sort(), `params '${params}': the trainable tensors`);
      const shapes = new Map(trainer.tensors.map((x) => [x.name, x.shape]));
      const badShape = want.find((n) => shapes.has(n) && shapes.get(n)!.join() !== ref.weights.get(n)!.shape.join());
      t.notOk(badShape, `params '${params}': shapes as in the checkpoint${badShape ? ` (${badShape}: ${shapes.get(badShape)})` : ''}`);
      for (const [what, ex] of mine) {
        trainer.zeroGrad();
        const [loss] = await trainer.accumulate([toNative(ex)]);
        const tr = trainer;
        const d = diff(ref.lossAndGrad(ex), loss, (n) => (shapes.has(n) ? tr.getGradient(n) : []));
        t.ok(d.grad <= GRAD_TOL && d.loss <= LOSS_TOL, `${what}: ${describe(d)}`);
      }
    } finally {
      trainer?.dispose();
      model.dispose();
    }
  }
}

t.test('the addon has the Trainer', async (t) => {
  t.ok(hasTrainer, 'build/Release/focusllm.node exports Trainer (else the addon predates training: rebuild it)');
});

if (hasTrainer) {
  t.test('fixture tiny-gqa (F32): every geometry, lm', (t) => checkModel(t, path.join(FX, 'tiny-gqa'), allGeometries(512, 1)));
  t.test('fixture tiny-gqa-bf16 (BF16, 2 shards)', (t) => checkModel(t, path.join(FX, 'tiny-gqa-bf16'), someGeometries(512, 2)));

  t.test('fixture tiny-gqa, recompute: every geometry, lm', (t) =>
    checkModel(t, path.join(FX, 'tiny-gqa'), allGeometries(512, 3), { recompute: true }));
  t.test('fixture tiny-gqa, longer sequences, micro-batches of 16 rows', (t) => {
    const x = makeIds(300, 512, 4);
    return checkModel(t, path.join(FX, 'tiny-gqa'), [
      ['continuation, 3 chunks of 64 (+ 65-token prompt), local 140', focus(x, 'continuation', 150, 140, 64)],
      ['repetition, 10 chunks of 30, local 100, t = promptCap 20', focus(x, 'repetition', 60, 100, 30, 20)],
      ['lm, 160 tokens', { kind: 'lm', ids: x.slice(0, 160) }],
    ], { maxBatchTokens: 16 });
  });

  const variants: [string, TinyModelSpec, boolean?][] = [
    ['head_dim 16 != hidden / heads', { seed: 10, headDim: 16 }],
    ['MHA, bias, candidate MLP, tied: every geometry', { seed: 11, kvHeads: 4, attentionBias: true, candidateMlp: true, tie: true }, true],
    ['F16', { seed: 12, dtype: 'F16' }],
    ['candidates missing (copies of the base)', { seed: 13, candidates: [], beaconParam: ['q', 'k', 'v', 'o'] }],
    ['some candidates missing', { seed: 14, candidates: ['q', 'o'], beaconParam: ['q', 'k', 'v', 'o'] }],
    ['beacon_param q, k only (v, o present, unused)', { seed: 15, beaconParam: ['q', 'k'] }],
    ['no beacon_param (default q k v o)', { seed: 16, beaconParam: null }],
    ['candidate MLP', { seed: 17, candidateMlp: true }],
    ['candidate MLP missing (copies)', { seed: 18, beaconParam: ['q', 'k', 'v', 'o', 'mlp'] }],
    ['MHA', { seed: 19, kvHeads: 4 }],
    ['1 KV head', { seed: 20, kvHeads: 1 }],
    ['tied embeddings', { seed: 21, tie: true }],
    ['linear rope', { seed: 22, ropeScaling: { type: 'linear', factor: 4 } }],
    ['llama3 rope', { seed: 23, ropeScaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 } }],
    ['attention_bias', { seed: 24, attentionBias: true }],
    ['attention_bias, candidates missing (biases copied)', { seed: 25, attentionBias: true, candidates: ['k'], beaconParam: ['q', 'k', 'v', 'o'] }],
    ['BF16, 3 shards, 1 KV head, bias, MLP, tied', { seed: 26, dtype: 'BF16', shards: 3, kvHeads: 1, attentionBias: true, candidateMlp: true, tie: true }],
  ];
  for (const [name, spec, all] of variants)
    t.test(name, (t) => checkModel(t, tiny(spec), all ? allGeometries(96, spec.seed!) : someGeometries(96, spec.seed!)));

  t.test('accumulate: weights scale each example, buffers add until zeroGrad', async (t) => {
    const dir = path.join(FX, 'tiny-gqa');
    const ref = new TrainRef(dir);
    const x = makeIds(24, 512, 31);
    const a = focus(x, 'continuation', 10, 6, 4), b = focus(x, 'repetition', 3, 9, 5);
    const ra = ref.lossAndGrad(a), rb = ref.lossAndGrad(b);
    const model = await loadModel(dir, { backend: 'cpu', threads: 2, tokenizer: false });
    const trainer = model.native.createTrainer({ params: 'candidate' });
    t.teardown(() => {
      trainer.dispose();
      model.dispose();
    });
    const combo = (wa: number, wb: number) => ({
      loss: 1,
      grads: new Map([...ra.grads].map(([n, g]) => [n, g.map((v, i) => wa * v + wb * rb.grads.get(n)![i])])),
    });
    trainer.zeroGrad();
    const losses = await trainer.accumulate([toNative(a, 0.5), toNative(b, 2)]);
    t.ok(Math.abs(losses[0] - ra.loss) / ra.loss <= LOSS_TOL && Math.abs(losses[1] - rb.loss) / rb.loss <= LOSS_TOL, 'losses unweighted, in order');
    let d = diff(combo(0.5, 2), 1, (n) => trainer.getGradient(n));
    t.ok(d.grad <= GRAD_TOL, `0.5 g(a) + 2 g(b): grad ${d.grad.toExponential(1)}`);
    await trainer.accumulate([toNative(a)]);
    d = diff(combo(1.5, 2), 1, (n) => trainer.getGradient(n));
    t.ok(d.grad <= GRAD_TOL, `another a adds: grad ${d.grad.toExponential(1)}`);
    trainer.zeroGrad();
    t.ok(trainer.tensors.every((x) => trainer.getGradient(x.name).every((v) => v === 0)), 'zeroGrad zeroes');
  });

  t.test('accumulate: an lm example\'s lossStart outside 1..N-1 is an Error naming it', async (t) => {
    const model = await loadModel(path.join(FX, 'tiny-gqa'), { backend: 'cpu', threads: 2, tokenizer: false });
    const trainer = model.native.createTrainer({ params: 'all' });
    t.teardown(() => {
      trainer.dispose();
      model.dispose();
    });
    const ids = Int32Array.from(makeIds(8, 512, 3));
    for (const s of [0, 8, -1, 1.5])
      await t.rejects(async () => trainer.accumulate([{ kind: 'lm', ids, lossStart: s }]), /example 0: lossStart/, `lossStart ${s}`);
    const [loss] = await trainer.accumulate([{ kind: 'lm', ids, lossStart: 7 }]);
    t.ok(Number.isFinite(loss) && loss > 0, 'lossStart N-1 (the last token alone) is fine');
  });
}

async function grad(args: string[]) {
  const r = await captureStdout(() => main(['grad', ...args]));
  return { ...r, json: r.code === 0 ? (JSON.parse(r.stdout) as { loss: number; grads: Record<string, number[]> }) : null };
}

t.test('focusllm grad: the same numbers through the CLI', { skip: !hasTrainer && 'the addon has no Trainer' }, async (t) => {
  const fx = path.join(FX, 'tiny-gqa');
  const x = makeIds(22, 512, 41);
  const ids = path.join(root, 'ids.json');
  fs.writeFileSync(ids, JSON.stringify(x));
  const idsObj = path.join(root, 'ids-obj.json');
  fs.writeFileSync(idsObj, JSON.stringify({ ids: x }));
  const ref = new TrainRef(fx);
  const cases: [string, string, string[], RefTrainExample][] = [
    ['continuation, 3 chunks, t = promptCap', fx, ['--ids', ids, '--loss', 'continuation', '--local-start', '9', '--local-size', '7', '--chunk-size', '4', '--prompt-cap', '3'], focus(x, 'continuation', 9, 7, 4, 3)],
    ['repetition, default promptCap, {"ids"} file', fx, ['--ids', idsObj, '--loss', 'repetition', '--local-start', '2', '--local-size', '5', '--chunk-size', '6'], focus(x, 'repetition', 2, 5, 6)],
  ];
  const tied = tiny({ seed: 42, tie: true, attentionBias: true });
  const tiedRef = new TrainRef(tied);
  const y = makeIds(16, 96, 43);
  const idsLm = path.join(root, 'ids-lm.json');
  fs.writeFileSync(idsLm, JSON.stringify(y));
  cases.push(['lm, tied embeddings, bias', tied, ['--ids', idsLm, '--loss', 'lm'], { kind: 'lm', ids: y }]);
  cases.push(['lm, --loss-start 11', tied, ['--ids', idsLm, '--loss', 'lm', '--loss-start', '11'], { kind: 'lm', ids: y, lossStart: 11 }]);
  for (const [what, dir, args, ex] of cases) {
    const r = await grad(['--model', dir, '--threads', '2', ...args]);
    t.equal(r.code, 0, `${what}: exit 0 ${r.stderr}`);
    if (!r.json) continue;
    const rr = (dir === tied ? tiedRef : ref).lossAndGrad(ex);
    t.same(Object.keys(r.json.grads).sort(), [...rr.grads.keys()].sort(), `${what}: one entry per trainable tensor`);
    const d = diff(rr, r.json.loss, (n) => r.json!.grads[n] ?? []);
    t.ok(d.grad <= GRAD_TOL && d.loss <= LOSS_TOL, `${what}: ${describe(d)}`);
  }
});

t.test('focusllm grad: bad options are usage errors that name the option, before loading', async (t) => {
  const ids = path.join(root, 'ids-10.json');
  fs.writeFileSync(ids, JSON.stringify(makeIds(10, 512, 5)));
  const model = path.join(FX, 'tiny-gqa');
  const cases: [string[], RegExp][] = [
    [['--loss', 'continuation', '--local-start', '0', '--local-size', '3', '--chunk-size', '2'], /--local-start must be at least 1/],
    [['--loss', 'repetition', '--local-start', '-1', '--local-size', '3', '--chunk-size', '2'], /--local-start must be at least 0/],
    [['--loss', 'continuation', '--local-start', '4', '--local-size', '6', '--chunk-size', '2'], /--local-start \+ --local-size must be less than the 10 ids/],
    [['--loss', 'continuation', '--local-start', '4', '--local-size', '0', '--chunk-size', '2'], /--local-size must be at least 1/],
    [['--loss', 'repetition', '--local-start', '4', '--local-size', '2', '--chunk-size', '0'], /--chunk-size must be at least 1/],
    [['--loss', 'repetition', '--local-start', '4', '--local-size', '2', '--chunk-size', '2', '--prompt-cap', '0'], /--prompt-cap must be at least 1/],
    [['--loss', 'continuation', '--local-start', '4', '--local-size', '2'], /--chunk-size is required/],
    [['--loss', 'lm', '--chunk-size', '4'], /--chunk-size is for the focus losses/],
    [['--loss', 'ppl'], /--loss must be continuation, repetition or lm/],
    [['--loss', 'lm', '--loss-start', '10'], /--loss-start must be in 1\.\.9/],
    [['--loss', 'lm', '--loss-start', '0'], /--loss-start must be in 1\.\.9/],
    [['--loss', 'repetition', '--local-start', '4', '--local-size', '2', '--chunk-size', '2', '--loss-start', '3'], /--loss-start is for --loss lm/],
    [['--local-start', '1'], /--loss is required/],
  ];
  for (const [args, re] of cases) {
    const r = await grad(['--model', model, '--ids', ids, ...args]);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, re, `${args.join(' ')}: ${re.source}`);
  }
  fs.writeFileSync(path.join(root, 'ids-oov.json'), JSON.stringify([1, 5, 600, 7]));
  let r = await grad(['--model', model, '--ids', path.join(root, 'ids-oov.json'), '--loss', 'lm']);
  t.match(r.stderr, /ids\[2\] = 600 is not a token id \(vocabulary size 512\)/, 'token ids checked against config.json');
  fs.writeFileSync(path.join(root, 'ids-1.json'), JSON.stringify([1]));
  r = await grad(['--model', model, '--ids', path.join(root, 'ids-1.json'), '--loss', 'lm']);
  t.match(r.stderr, /the lm loss needs at least 2 tokens/);
  r = await grad(['--model', path.join(root, 'no-such-model'), '--ids', ids, '--loss', 'lm']);
  t.equal(r.code, 1, 'a missing model folder is an error');
  t.match(r.stderr, /no-such-model/, 'naming the folder');
  const help = await captureStdout(() => main(['--help']));
  t.match(help.stdout, /grad\s+loss and gradients/, 'listed in the help');
});
