// Sampling: the backend's sampler (only the token crosses to the host) and
// the host sampler follow one rule, so generation is reproducible from a seed
// whichever does the work.
import fs from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { loadModel } from '../lib/model';
import { argmax, makeNativeSampler, makeRng, makeSampler, sampleLogits } from '../lib/sampling';
import { writeTinyModel } from './helpers/checkpoint';

const FX = path.join(__dirname, 'fixtures');

t.test('host rule: greedy, top-k, top-p, and the draw in vocabulary order', async (t) => {
  const l = Float32Array.from([1, 3, 3, 0, 2]); // ties: index 1 before 2
  const o = { temperature: 0, topK: 0, topP: 1 };
  t.equal(sampleLogits(l, o, 0.5), 1, 'greedy: lowest index among equal maxima');
  t.equal(argmax(l), 1);
  // top-k 1 keeps only index 1 whatever u is.
  for (const u of [0, 0.3, 0.99]) t.equal(sampleLogits(l, { temperature: 1, topK: 1, topP: 1 }, u), 1);
  // top-k 2 keeps the two 3s: weights 1 and 1, drawn in index order.
  t.equal(sampleLogits(l, { temperature: 1, topK: 2, topP: 1 }, 0.49), 1);
  t.equal(sampleLogits(l, { temperature: 1, topK: 2, topP: 1 }, 0.51), 2);
  // top-p: weights e^(l-3) = [e^-2, 1, 1, e^-3, e^-1]; total 2.553; p = 0.5 is reached by the first
  // token in order (1/2.553 = 0.39 < 0.5, then 2/2.553 = 0.78 >= 0.5): kept {1, 2}.
  t.equal(sampleLogits(l, { temperature: 1, topK: 0, topP: 0.5 }, 0.99), 2);
  t.equal(sampleLogits(l, { temperature: 1, topK: 0, topP: 0.3 }, 0.99), 1, 'p below the first share keeps one token');
  // No filter: the draw walks index order: cumulative [0.135, 1.135, 2.135, 2.185, 2.553].
  const total = Math.exp(-2) + 1 + 1 + Math.exp(-3) + Math.exp(-1);
  t.equal(sampleLogits(l, { temperature: 1, topK: 0, topP: 1 }, 0.1 / total), 0);
  t.equal(sampleLogits(l, { temperature: 1, topK: 0, topP: 1 }, 2.2 / total), 4);
  // The empirical distribution of many draws follows the weights.
  const rng = makeRng(5);
  const counts = [0, 0, 0, 0, 0];
  const n = 20000;
  for (let i = 0; i < n; i++) counts[sampleLogits(l, { temperature: 1, topK: 0, topP: 1 }, rng())]++;
  const w = [Math.exp(-2), 1, 1, Math.exp(-3), Math.exp(-1)].map((x) => x / total);
  counts.forEach((c, i) => t.ok(Math.abs(c / n - w[i]) < 0.015, `token ${i}: ${(c / n).toFixed(3)} vs ${w[i].toFixed(3)}`));
});

t.test('the native sampler picks what the host rule picks on the same logits and uniforms', async (t) => {
  const model = await loadModel(path.join(FX, 'tiny-gqa'), { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  const ids = Array.from({ length: 40 }, (_, i) => (i === 0 ? 1 : 3 + ((i * 131) % 500)));
  const V = model.config.vocabSize;
  const rows = await model.forward(ids, { all: true });
  const paramsList = [
    { temperature: 0, topK: 0, topP: 1 },
    { temperature: 1, topK: 0, topP: 1 },
    { temperature: 0.7, topK: 40, topP: 1 },
    { temperature: 1.3, topK: 0, topP: 0.9 },
    { temperature: 0.5, topK: 5, topP: 0.8 },
    { temperature: 2, topK: 1, topP: 1 },
  ];
  for (const params of paramsList) {
    const rng = makeRng(11);
    const sampler = { params, nextUniform: () => rng() };
    const check = makeRng(11);
    const native = await model.runSample([{ tokens: Int32Array.from(ids), logits: 2 }], sampler);
    let same = 0;
    for (let r = 0; r < ids.length; r++) {
      const u = Math.fround(check());
      if (native[r] === sampleLogits(rows.subarray(r * V, (r + 1) * V), params, params.temperature ? u : 0)) same++;
    }
    t.equal(same, ids.length, `${JSON.stringify(params)}: ${same}/${ids.length} rows agree`);
  }
  await t.rejects(
    model.runSample([{ tokens: Int32Array.from(ids), logits: 1 }], { params: { temperature: -1, topK: 0, topP: 1 }, nextUniform: () => 0 }),
    /temperature must be a finite number >= 0/,
  );
});

t.test('generation with a seed is reproducible and equals host sampling of the same logits', async (t) => {
  const dir = writeTinyModel({ vocab: 300, hidden: 32, layers: 2, seed: 9 });
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const model = await loadModel(dir, { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  const focus = { localWindow: 8, chunkSize: 6, promptCap: 4, minChunkedLength: 16, cacheType: 'f32' as const };
  const ids = Array.from({ length: 30 }, (_, i) => (i === 0 ? 1 : 3 + ((i * 37) % 290)));
  const opts = { temperature: 0.9, topK: 50, topP: 0.95, seed: 1234, maxNewTokens: 12, stop: [], focus };
  const a: number[] = [];
  for await (const x of model.generate(ids, opts)) a.push(x);
  const b: number[] = [];
  for await (const x of model.generate(ids, opts)) b.push(x);
  t.same(a, b, 'same seed, same tokens');
  t.equal(a.length, 12);
  // Host path: session logits + makeSampler with the same seed.
  const sample = makeSampler(opts);
  const s = model.createSession({ ...focus, maxSteps: 12 });
  let logits = await s.ingest(ids);
  const c: number[] = [];
  for (let i = 0; i < 12; i++) {
    const x = sample(logits);
    c.push(x);
    if (i < 11) logits = await s.step(x);
  }
  s.dispose();
  t.same(a, c, 'backend sampling = host sampling');
  const g = makeNativeSampler({ temperature: 0 });
  t.equal(g.nextUniform(), 0, 'greedy draws consume no random numbers');
});
