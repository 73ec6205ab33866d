// Training end to end on tiny random checkpoints (lib/train over the native
// Trainer): the candidates learn a memorisation task, the checkpoint folder
// reloads with the trained logits, a resumed run equals an uninterrupted
// one, the base checkpoint is never written, an lm run on every tensor
// learns, and bad inputs fail before any work with the option or file named.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import t from 'tap';

import { loadModel, type Model } from '../lib/model';
import { makeRng } from '../lib/sampling';
import type { Tokenizer } from '../lib/tokenizer/types';
import { DataOrder, runTraining } from '../lib/train';
import type { TrainOptions } from '../lib/train/options';
import type { TrainProgress } from '../lib/train/loop';
import { prepareTraining } from '../lib/train/plan';
import { writeTinyModel } from './helpers/checkpoint';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'focusllm-train-run-'));
t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));

// hidden 64: enough room for the candidates to memorise a 64-token sequence in a few dozen steps.
const base = writeTinyModel({ seed: 3, hidden: 64, inter: 96 }, path.join(root, 'base'));
fs.writeFileSync(path.join(base, 'generation_config.json'), JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }));
fs.writeFileSync(path.join(base, 'special_tokens_map.json'), JSON.stringify({ bos_token: '<s>' }));

function hashFolder(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir).sort()) {
    const st = fs.statSync(path.join(dir, f));
    out[f] = `${crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, f))).digest('hex')} ${st.mtimeMs}`;
  }
  return out;
}
const baseHash = hashFolder(base);

/** JSONL of `docs` random sequences of n tokens (BOS first, ids from [3, vocab)). */
function randomData(name: string, docs: number, n: number, seed: number, vocab = 96): string {
  const r = makeRng(seed);
  const lines = Array.from({ length: docs }, () => JSON.stringify({ ids: [1, ...Array.from({ length: n - 1 }, () => 3 + Math.floor(r() * (vocab - 3)))] }));
  const f = path.join(root, name);
  fs.writeFileSync(f, lines.join('\n') + '\n');
  return f;
}

const memo = randomData('memo.jsonl', 1, 64, 5);
const mixed = randomData('mixed.jsonl', 6, 80, 6);

const load = (dir: string) => loadModel(dir, { backend: 'cpu', threads: 2, tokenizer: false });
const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;

/** FocusLLM-mode logits (4 chunks of 8 + a local window of 16), and one step. */
const FOCUS = { localWindow: 16, chunkSize: 8, promptCap: 4, minChunkedLength: 32 };
const probe = Array.from(randomData('probe.jsonl', 1, 48, 9).length ? JSON.parse(fs.readFileSync(path.join(root, 'probe.jsonl'), 'utf8')).ids : []) as number[];
async function focusLogits(m: Model): Promise<Float32Array[]> {
  return m.logits(probe, { continuation: [7], focus: { ...FOCUS, cacheType: 'f32' } });
}
function maxDiff(a: Float32Array[], b: Float32Array[]): number {
  let d = 0;
  a.forEach((row, i) => row.forEach((v, j) => (d = Math.max(d, Math.abs(v - b[i][j])))));
  return d;
}

t.test('candidate training memorises a sequence; the checkpoint reloads with the trained logits', async (t) => {
  const m = await load(base);
  t.teardown(() => m.dispose());
  const before = await focusLogits(m);
  const progress: TrainProgress[] = [];
  const out = path.join(root, 'memo-out');
  const s = await m.train({
    data: [memo],
    out,
    window: 32,
    chunkSizes: [4, 8],
    promptCap: 8,
    losses: 'repetition',
    steps: 40,
    batch: 8,
    lr: 2e-2,
    schedule: 'constant',
    seed: 1,
    onProgress: (p) => progress.push(p),
  });
  const first = mean(s.losses.slice(0, 3));
  const last = mean(s.losses.slice(-5));
  t.ok(last < 0.5 * first, `repetition loss ${first.toFixed(3)} (first 3 steps) -> ${last.toFixed(3)} (last 5)`);
  t.match(s, { out, steps: 40, totalSteps: 40, stepsThisRun: 40, interrupted: false, seed: 1, tensors: 8, parameters: 2 * (2 * 64 * 64 + 2 * 32 * 64) });
  t.equal(s.losses.length, 40);
  t.same(progress.filter((p) => p.phase === 'step').map((p) => p.step), Array.from({ length: 40 }, (_, i) => i + 1));
  t.ok(progress.every((p) => p.lr === 2e-2 && p.tokens > 0 && p.gradNorm > 0 && p.lossByKind.repetition !== undefined && p.lossByKind.continuation === undefined));
  t.equal(progress[progress.length - 1].phase, 'checkpoint');

  // The folder: HF layout + resume files.
  t.same(fs.readdirSync(out).sort(), [
    'config.json', 'generation_config.json', 'loss-curve.svg', 'model.safetensors', 'model.safetensors.index.json',
    'optimizer.safetensors', 'special_tokens_map.json', 'train-log.jsonl', 'trainer_state.json',
  ]);
  const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  const baseCfg = JSON.parse(fs.readFileSync(path.join(base, 'config.json'), 'utf8'));
  t.same(cfg, { ...baseCfg, beacon_param: ['q', 'k', 'v', 'o'] }, "the base's config.json, beacon_param = what was trained");
  const state = JSON.parse(fs.readFileSync(path.join(out, 'trainer_state.json'), 'utf8'));
  t.match(state, { format: 'focusllm-trainer-state', step: 40, done: true, base, options: { steps: 40, seed: 1, window: 32 }, data: { units: 1 } });
  t.same(state.losses, s.losses);
  const log = fs.readFileSync(path.join(out, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.equal(log[0].event, 'start');
  t.match(log[0], { data: { documents: 1, tooShort: 0 }, units: 1, tensors: 8 });
  t.equal(log.filter((r) => r.event === 'step').length, 40);
  t.same(log.slice(-2).map((r) => r.event), ['checkpoint', 'end']);
  t.match(fs.readFileSync(path.join(out, 'loss-curve.svg'), 'utf8'), /<svg[\s\S]*>step<[\s\S]*>loss<[\s\S]*<\/svg>/);

  // The in-memory model runs with the trained weights; the folder reloads to the same logits.
  const after = await focusLogits(m);
  t.ok(maxDiff(before, after) > 1e-3, `training changed the FocusLLM logits (${maxDiff(before, after).toExponential(2)})`);
  const re = await load(out);
  t.teardown(() => re.dispose());
  const reloaded = await focusLogits(re);
  t.ok(maxDiff(after, reloaded) <= 1e-6, `reloaded checkpoint logits equal the trained model's (${maxDiff(after, reloaded).toExponential(2)})`);
  t.same(re.info.candidateProjections, ['q', 'k', 'v', 'o']);
});

t.test('a resumed run equals an uninterrupted one, bit for bit', async (t) => {
  const opts: TrainOptions = {
    data: [mixed],
    window: 32,
    chunkSizes: [4, 8],
    promptCap: 6,
    losses: 'random',
    steps: 6,
    batch: 2,
    accum: 2,
    lr: 1e-2,
    warmup: 2,
    schedule: 'linear',
    clip: 0.5,
    weightDecay: 0.01,
    seed: 11,
  };
  const a = await load(base);
  const whole = await a.train({ ...opts, out: path.join(root, 'whole'), saveEvery: 2 });
  a.dispose();
  t.equal(whole.steps, 6);
  const saves = fs.readFileSync(path.join(root, 'whole', 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.event === 'checkpoint');
  t.same(saves.map((r) => r.step), [2, 4, 6], 'saveEvery 2: checkpoints at steps 2 and 4, and the last');
  const rc = await load(base);
  const recomputed = await rc.train({ ...opts, out: path.join(root, 'recompute'), recompute: true });
  rc.dispose();
  t.same(recomputed.losses, whole.losses, 'recompute: the same losses');

  const b = await load(base);
  const ac = new AbortController();
  const part = await b.train({ ...opts, out: path.join(root, 'part'), onProgress: (p) => p.step === 3 && p.phase === 'step' && ac.abort(), signal: ac.signal });
  b.dispose();
  t.match(part, { interrupted: true, steps: 3, totalSteps: 6 }, 'the abort saved at step 3');
  t.match(JSON.parse(fs.readFileSync(path.join(root, 'part', 'trainer_state.json'), 'utf8')), { step: 3, done: false });
  t.equal(fs.readFileSync(path.join(root, 'part', 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).event).pop(), 'interrupted');

  const c = await load(path.join(root, 'part'));
  const rest = await c.train({ resume: path.join(root, 'part') });
  c.dispose();
  t.match(rest, { interrupted: false, steps: 6, stepsThisRun: 3 });
  t.same(rest.losses, whole.losses, 'the same losses, step by step');

  // Every trainable tensor, through a trainer on each reloaded checkpoint.
  const x = await load(path.join(root, 'whole'));
  const y = await load(path.join(root, 'part'));
  const tx = x.native.createTrainer({ params: 'candidate' });
  const ty = y.native.createTrainer({ params: 'candidate' });
  let worst = 0;
  for (const { name } of tx.tensors) {
    const wx = tx.getWeight(name);
    const wy = ty.getWeight(name);
    for (let i = 0; i < wx.length; i++) worst = Math.max(worst, Math.abs(wx[i] - wy[i]));
  }
  t.equal(tx.tensors.length, 8);
  t.equal(worst, 0, 'every trained weight equal');
  tx.dispose();
  ty.dispose();
  x.dispose();
  y.dispose();
  t.ok(fs.readFileSync(path.join(root, 'whole', 'optimizer.safetensors')).equals(fs.readFileSync(path.join(root, 'part', 'optimizer.safetensors'))), 'the same optimizer state');
  const steps = fs.readFileSync(path.join(root, 'part', 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.event === 'step');
  t.same(steps.map((r) => r.step), [1, 2, 3, 4, 5, 6], 'the log has each step once');

  // Resuming a finished run with more steps continues it; options other than steps may not change.
  const d = await load(path.join(root, 'part'));
  t.teardown(() => d.dispose());
  await t.rejects(d.train({ resume: path.join(root, 'part'), lr: 1 }), /option lr cannot change on resume/);
  const more = await d.train({ resume: path.join(root, 'part'), steps: 7 });
  t.match(more, { steps: 7, stepsThisRun: 1 });
});

t.test('lm training of a model loaded with beaconParam: the output config.json says what it ran', async (t) => {
  const f = path.join(root, 'bp-lm.jsonl');
  fs.writeFileSync(f, JSON.stringify({ ids: [1, ...Array.from({ length: 40 }, (_, i) => 10 + (i % 7))] }) + '\n');
  const m = await loadModel(base, { backend: 'cpu', threads: 2, tokenizer: false, beaconParam: ['q', 'v'] });
  t.teardown(() => m.dispose());
  const out = path.join(root, 'bp-lm-out');
  await m.train({ data: [f], out, params: 'all', seqLen: 32, steps: 1, batch: 1, lr: 1e-3, seed: 2 });
  t.same(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).beacon_param, ['q', 'v']);
  t.same(JSON.parse(fs.readFileSync(path.join(base, 'config.json'), 'utf8')).beacon_param, ['q', 'k', 'v', 'o'], 'the base config.json is untouched');
  const re = await load(out);
  t.teardown(() => re.dispose());
  t.same(re.info.candidateProjections, ['q', 'v']);
});

t.test('lm training of every tensor lowers the loss; the checkpoint reloads', async (t) => {
  // A short repeating pattern: the next token is predictable.
  const pattern = [10, 20, 30, 40, 50, 60, 70];
  const f = path.join(root, 'pattern.jsonl');
  fs.writeFileSync(f, Array.from({ length: 4 }, (_, k) => JSON.stringify({ ids: [1, ...Array.from({ length: 63 }, (_, i) => pattern[(i + k) % 7])] })).join('\n'));
  const m = await load(base);
  t.teardown(() => m.dispose());
  const out = path.join(root, 'lm-out');
  const s = await m.train({ data: [f], out, params: 'all', seqLen: 32, steps: 12, batch: 2, lr: 1e-2, seed: 2, weightDecay: 0.1 });
  // embeddings, final norm, lm_head; per layer 2 norms, q k v o, gate up down; not the 4 candidate
  // projections: the lm loss never reads them, so weight decay alone would move them
  t.match(s, { steps: 12, tensors: 3 + 2 * (2 + 4 + 3) });
  const tensorsOf = (dir: string) => {
    const buf = fs.readFileSync(path.join(dir, 'model.safetensors'));
    const n = Number(buf.readBigUInt64LE(0));
    const h = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>;
    const at = (k: string) => buf.subarray(8 + n + h[k].data_offsets[0], 8 + n + h[k].data_offsets[1]);
    return { h, at };
  };
  const b0 = tensorsOf(base), b1 = tensorsOf(out);
  const cand = Object.keys(b0.h).filter((k) => k.includes('.beacon_'));
  t.equal(cand.length, 2 * 4 + 1, `the base has candidate projections and beacon_embed_tokens (${cand.join(', ')})`);
  t.ok(cand.every((k) => b1.h[k]?.dtype === b0.h[k].dtype && b1.at(k).equals(b0.at(k))), 'they come out as they went in, dtype and bytes');
  t.notOk(b1.at('model.layers.0.self_attn.q_proj.weight').equals(b0.at('model.layers.0.self_attn.q_proj.weight')), 'the base projections trained');
  // A run saved by a version that still trained them holds their moments: resuming drops those.
  const m2 = await load(base);
  const ac = new AbortController();
  const partOut = path.join(root, 'lm-part');
  const lmOpts = { data: [f], params: 'all' as const, seqLen: 32, steps: 4, batch: 2, lr: 1e-2, seed: 2 };
  await m2.train({ ...lmOpts, out: partOut, onProgress: (p) => p.step === 2 && p.phase === 'step' && ac.abort(), signal: ac.signal });
  m2.dispose();
  const opt = path.join(partOut, 'optimizer.safetensors');
  const buf = fs.readFileSync(opt);
  const n = Number(buf.readBigUInt64LE(0));
  const h = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  let end = Math.max(...Object.values(h).filter((v) => v.data_offsets).map((v) => v.data_offsets[1]));
  const extra: Buffer[] = [];
  for (const k of cand.filter((k) => !k.includes('embed_tokens')))
    for (const mv of ['m.', 'v.']) {
      const bytes = b0.at(k).length * (b0.h[k].dtype === 'F32' ? 1 : 2);
      h[mv + k] = { dtype: 'F32', shape: [bytes / 4], data_offsets: [end, end + bytes] };
      extra.push(Buffer.alloc(bytes));
      end += bytes;
    }
  const head = Buffer.from(JSON.stringify(h));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(head.length));
  fs.writeFileSync(opt, Buffer.concat([len, head, buf.subarray(8 + n), ...extra]));
  const m3 = await load(partOut);
  t.teardown(() => m3.dispose());
  t.match(await m3.train({ resume: partOut }), { steps: 4, stepsThisRun: 2 }, 'an old optimizer state with candidate moments resumes');
  t.ok(mean(s.losses.slice(-3)) < 0.5 * mean(s.losses.slice(0, 2)), `lm loss ${s.losses[0].toFixed(3)} -> ${s.losses[s.losses.length - 1].toFixed(3)}`);
  const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  t.equal(cfg.torch_dtype, 'float32');
  t.same(cfg.beacon_param, ['q', 'k', 'v', 'o'], 'beacon_param as the base had it');
  const re = await load(out);
  t.teardown(() => re.dispose());
  const ids = [1, 10, 20, 30, 40, 50, 60];
  const a = await m.forward(ids, { all: true });
  const b = await re.forward(ids, { all: true });
  let d = 0;
  a.forEach((v, i) => (d = Math.max(d, Math.abs(v - b[i]))));
  t.ok(d <= 1e-6, `reloaded logits equal (${d.toExponential(2)})`);
});

t.test('lm scored on the output: input/output records one sequence each, loss over their output tokens only', async (t) => {
  // One token per character ('a' -> 3 ...), BOS 1: records need a tokenizer, the tiny checkpoint has none.
  const charTok: Tokenizer = {
    vocabSize: 96, bosId: 1, eosIds: [2], addBos: true,
    encode: (text, o = {}) => [...(o.addSpecial === false ? [] : [1]), ...[...text].map((c) => 3 + ((c.codePointAt(0) ?? 0) % 90))],
    decode: () => '', streamDecoder: () => ({ push: () => '', flush: () => '' }), tokenToId: () => null, idToToken: () => null,
    hasChatTemplate: false, applyChatTemplate: () => '',
  };
  const f = path.join(root, 'io.jsonl');
  const text = 'the quick brown fox jumps over the lazy dog '.repeat(3);
  fs.writeFileSync(
    f,
    [JSON.stringify({ input: 'key 4711 is the key; the key is', output: ' 4711' }), JSON.stringify({ input: 'nothing to answer', output: '' }), JSON.stringify({ text })].join('\n') + '\n',
  );
  const m = await load(base);
  t.teardown(() => m.dispose());
  const src = { dir: base, config: m.config, tokenizer: charTok };
  const opts: TrainOptions = { data: [f], out: path.join(root, 'io-out'), params: 'all', lmScore: 'output', seqLen: 40, steps: 1, batch: 1, lr: 1e-3, seed: 4 };
  const plan = prepareTraining(src, opts);
  const rec = [1, ...charTok.encode('key 4711 is the key; the key is', { addSpecial: false }), ...charTok.encode(' 4711', { addSpecial: false })];
  t.same(plan.units.map((u) => u.length), [rec.length, 40, 40, 40], 'the record whole, then the text cut into sequences of seqLen');
  t.same(plan.unitStarts, [rec.length - 5, 1, 1, 1], 'the record scored from its output, the text sequences in full');
  t.equal(plan.emptyOutputs, 1, 'the record with an empty output skipped and counted');
  t.same([...plan.units[0]], rec);
  // The first step's loss is the mean NLL of the 5 output tokens under the untrained weights.
  const order = new DataOrder(plan.units.length, 4);
  const first = order.next();
  const ids = [...plan.units[first]];
  const from = plan.unitStarts![first];
  const logits = await m.forward(ids, { all: true });
  const V = m.config.vocabSize;
  let nll = 0;
  for (let j = from; j < ids.length; j++) {
    const row = logits.subarray((j - 1) * V, j * V);
    let mx = -Infinity;
    for (const v of row) mx = Math.max(mx, v);
    let z = 0;
    for (const v of row) z += Math.exp(v - mx);
    nll += mx + Math.log(z) - row[ids[j]];
  }
  nll /= ids.length - from;
  const s = await runTraining(m, plan);
  t.ok(Math.abs(s.losses[0] - nll) <= 1e-4 * nll, `step 1 loss ${s.losses[0].toFixed(5)} = the scored tokens' mean NLL ${nll.toFixed(5)}`);
  await t.rejects(m.train({ ...opts, out: path.join(root, 'io-out2'), loss: 'focus', params: undefined }), /option lmScore is for loss "lm"/);
  await t.rejects(m.train({ ...opts, out: path.join(root, 'io-out3'), lmScore: 'outputs' as 'output' }), /option lmScore must be one of all, output/);
});

t.test('bad inputs fail before any work, naming the option or file', async (t) => {
  const m = await load(base);
  t.teardown(() => m.dispose());
  const out = path.join(root, 'bad-out');
  const ok: TrainOptions = { data: [memo], out, window: 32, chunkSizes: [4], steps: 1, batch: 1 };
  await t.rejects(m.train({ out }), /option data: give at least one data file/);
  await t.rejects(m.train({ ...ok, data: [path.join(root, 'nope.jsonl')] }), /data file .*nope\.jsonl: no such file/);
  await t.rejects(m.train({ ...ok, window: 128 }), /nothing to train on: none of the 1 documents in .*memo\.jsonl has at least 128 tokens/);
  await t.rejects(m.train({ ...ok, params: 'all', seqLen: 100 }), /nothing to train on: .* fewer than one sequence of seqLen 100/);
  await t.rejects(m.train({ ...ok, lr: 0 }), /option lr must be a number > 0/);
  await t.rejects(m.train({ ...ok, params: 'all', loss: 'focus' }), /option params "all" needs option loss "lm"/);
  await t.rejects(m.train({ ...ok, out: base }), /option out: .* is the base checkpoint folder/);
  await t.rejects(m.train({ ...ok, out: path.join(base, 'trained') }), /option out: .* is inside the base checkpoint folder/);
  await t.rejects(m.train({ ...ok, out: path.join(memo, 'x') }), /option out: .*memo\.jsonl is not a folder/);
  await t.rejects(m.train({ ...ok, out: path.join(root, 'memo-out') }), /option out: .*memo-out is not empty .*it holds a run: continue it with resume/);
  await t.rejects(m.train({ ...ok, resume: root }), /option resume: .* has no trainer_state\.json/);
  await t.rejects(m.train({ ...ok, resume: path.join(root, 'memo-out') }), /option resume: load the model from the checkpoint being resumed/);
  const ac = new AbortController();
  ac.abort();
  await t.rejects(m.train({ ...ok, signal: ac.signal }), { name: 'AbortError' }, 'an already aborted signal starts nothing');
  t.notOk(fs.existsSync(out), 'nothing was written');
  // The model still trains after all that.
  const s = await m.train(ok);
  t.equal(s.steps, 1);
});

t.test('the base checkpoint was never written', async (t) => {
  t.same(hashFolder(base), baseHash, 'same files, contents and times');
});
