// The float64 training oracle (test/helpers/train-reference.ts) checked on
// its own, before anything is checked against it: its losses equal the
// section-1 forward reference composed by hand, and its gradients equal
// central finite differences of its loss, on tiny models with every feature.
import fs from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { writeTinyModel, type TinyModelSpec } from './helpers/checkpoint';
import { RefModel } from './helpers/reference';
import { finiteDifference, focusPlan, TrainRef, type RefFocusExample, type RefTrainExample } from './helpers/train-reference';

const dirs: string[] = [];
t.teardown(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const tiny = (spec: TinyModelSpec) => {
  const d = writeTinyModel({ vocab: 40, hidden: 16, inter: 24, heads: 4, kvHeads: 2, ...spec });
  dirs.push(d);
  return d;
};

const ids = (n: number, seed: number, vocab = 40) => {
  const x = [1];
  for (let i = 1; i < n; i++) x.push(3 + ((i * 17 + seed * 29 + ((i * i * 7) % 11)) % (vocab - 3)));
  return x;
};

function logSoftmaxAt(row: Float64Array, target: number): number {
  const mx = Math.max(...row);
  let z = 0;
  for (const x of row) z += Math.exp(x - mx);
  return mx + Math.log(z) - row[target];
}

/** The loss of section 1b composed from RefModel.forward, the section-1 oracle. */
function forwardLoss(m: RefModel, bos: number, ex: RefTrainExample): number {
  if (ex.kind === 'lm') {
    const s0 = ex.lossStart ?? 1;
    let s = 0;
    for (let j = s0; j < ex.ids.length; j++) s += logSoftmaxAt(m.forward(ex.ids.slice(0, j)).logits, ex.ids[j]);
    return s / (ex.ids.length - s0);
  }
  const plan = focusPlan(ex, bos);
  const K: Float64Array[][] = [], V: Float64Array[][] = [];
  for (const chunk of plan.chunks) {
    const r = m.forward([...chunk, ...plan.prompt], { candidateLast: true });
    r.lastK.forEach((k, l) => (K[l] ??= []).push(k));
    r.lastV.forEach((v, l) => (V[l] ??= []).push(v));
  }
  const r = m.forward(plan.local, { pos0: plan.chunks.length, prefix: { k: K, v: V } });
  return logSoftmaxAt(r.logits, plan.target);
}

const focus = (x: number[], loss: 'continuation' | 'repetition', s: number, l: number, C: number, cap = 512): RefFocusExample => ({
  kind: 'focus', ids: x, loss, localStart: s, localSize: l, chunkSize: C, promptCap: cap,
});

t.test('chunk plan of DESIGN 1b', async (t) => {
  const x = [1, 10, 11, 12, 13, 14, 15, 16, 17, 18];
  const p = focusPlan(focus(x, 'continuation', 5, 3, 2, 512), 1);
  t.same(p.chunks, [[1, 10], [11, 12], [13]], 'memory x[0:5] in chunks of 2, the last shorter');
  t.same(p.prompt, [1, 15, 16], 'P = withBos(x[s+l-t : s+l]), t = min(cap, C, l) = 2');
  t.same(p.local, [1, 14, 15, 16]);
  t.equal(p.target, 17);
  const r = focusPlan(focus(x, 'repetition', 0, 4, 4, 3), 1);
  t.same(r.chunks, [[1, 10, 11, 12], [13, 14, 15, 16], [17, 18]], 'repetition: all of x');
  t.same(r.prompt, [1, 10, 11, 12], 't = 3, limited by promptCap');
  t.same(r.local, [1, 10, 11, 12], 'x[0] is BOS: withBos adds nothing');
  t.throws(() => focusPlan(focus(x, 'continuation', 0, 3, 2), 1), /bad geometry/, 'continuation needs s >= 1');
  t.throws(() => focusPlan(focus(x, 'repetition', 5, 5, 2), 1), /bad geometry/, 's + l < N');
});

const variants: [string, TinyModelSpec][] = [
  ['GQA, candidates q k v o', { seed: 3 }],
  ['MHA, bias, candidate MLP, tied', { seed: 4, kvHeads: 4, attentionBias: true, candidateMlp: true, tie: true }],
  ['1 KV head, candidates missing (copies), linear rope', { seed: 5, kvHeads: 1, candidates: ['k'], beaconParam: ['q', 'k', 'v', 'o', 'mlp'], ropeScaling: { type: 'linear', factor: 2 } }],
  ['bias with missing candidates, llama3 rope', {
    seed: 6, attentionBias: true, candidates: [], beaconParam: ['q', 'v', 'o'],
    ropeScaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 },
  }],
];

for (const [name, spec] of variants) {
  t.test(name, async (t) => {
    const dir = tiny(spec);
    const ref = new TrainRef(dir);
    const plain = new RefModel(dir);
    const x = ids(14, spec.seed ?? 0);
    const examples: [string, RefTrainExample][] = [
      ['continuation, 3 chunks, last shorter', focus(x, 'continuation', 5, 6, 2)],
      ['repetition, t limited by promptCap', focus(x, 'repetition', 3, 7, 4, 2)],
      ['continuation, l = 1, C = 1', focus(x, 'continuation', 4, 1, 1)],
      ['lm', { kind: 'lm', ids: x.slice(0, 9) }],
      ['lm, scored from token 6', { kind: 'lm', ids: x.slice(0, 9), lossStart: 6 }],
    ];
    for (const [what, ex] of examples) {
      const { loss, grads } = ref.lossAndGrad(ex);
      t.ok(Math.abs(loss - forwardLoss(plain, ref.bos, ex)) < 1e-12 * Math.max(1, loss), `${what}: loss equals the section-1 reference`);
      t.same([...grads.keys()], ref.trainableNames(ex), `${what}: a gradient per trainable tensor`);
      let gmax = 0;
      for (const g of grads.values()) for (const v of g) gmax = Math.max(gmax, Math.abs(v));
      t.ok(gmax > 0, `${what}: some gradient is not zero`);
      // Central differences on a few entries of every tensor: the largest
      // gradient entry, and two more picked deterministically.
      let worst = 0, checked = 0;
      for (const [n, g] of grads) {
        let im = 0;
        for (let i = 1; i < g.length; i++) if (Math.abs(g[i]) > Math.abs(g[im])) im = i;
        for (const i of new Set([im, (n.length * 7) % g.length, (n.length * 13 + 5) % g.length])) {
          const fd = finiteDifference(ref, ex, n, i);
          worst = Math.max(worst, Math.abs(fd - g[i]) / gmax);
          checked++;
        }
      }
      t.ok(worst < 1e-7, `${what}: ${checked} gradient entries within ${worst.toExponential(1)} of finite differences`);
    }
  });
}

t.test('candidate naming: trainable set, copies of missing ones', async (t) => {
  const ref = new TrainRef(tiny({ seed: 7, attentionBias: true, candidates: ['q'], beaconParam: ['q', 'k', 'mlp'] }));
  t.same(ref.candidateNames.filter((n) => n.startsWith('model.layers.0.')), [
    'model.layers.0.self_attn.beacon_q_proj.weight',
    'model.layers.0.self_attn.beacon_q_proj.bias',
    'model.layers.0.self_attn.beacon_k_proj.weight',
    'model.layers.0.self_attn.beacon_k_proj.bias',
    'model.layers.0.mlp.beacon_up_proj.weight',
    'model.layers.0.mlp.beacon_down_proj.weight',
  ]);
  t.same(ref.weights.get('model.layers.1.self_attn.beacon_k_proj.weight')!.data, ref.weights.get('model.layers.1.self_attn.k_proj.weight')!.data);
  t.same(ref.weights.get('model.layers.1.self_attn.beacon_k_proj.bias')!.data, ref.weights.get('model.layers.1.self_attn.k_proj.bias')!.data);
  const noBp = new TrainRef(tiny({ seed: 8, beaconParam: null, candidates: ['q', 'k', 'v', 'o'] }));
  t.equal(noBp.candidateNames.length, 8, 'no beacon_param: q k v o of each layer');
  t.ok(!fs.existsSync(path.join(tiny({ seed: 9 }), 'nothing')), 'no stray files');
});
