// Regressions from review: inputs that once crashed the process, corrupted a
// session, or made memory grow without bound.
import fs from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { main } from '../lib/cli/main';
import { loadModel } from '../lib/model';
import { native } from '../lib/native';
import { captureStdout } from './helpers/cli';
import { writeTinyModel } from './helpers/checkpoint';
import { buildSafetensors } from './helpers/safetensors';
import { tinyTensors } from './helpers/checkpoint';
import { RefModel, refLogits, relErr } from './helpers/reference';

const FX = path.join(__dirname, 'fixtures');

t.test('scratch memory does not grow with every call', async (t) => {
  const model = await loadModel(path.join(FX, 'tiny-gqa'), { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  // Each forward is a little longer than the last: the workspace must grow
  // only when it is short (this once asked for 24 GiB at 44 tokens).
  for (let n = 2; n <= 300; n++) {
    const ids = Array.from({ length: n }, (_, i) => (i === 0 ? 1 : 3 + (i % 500)));
    await model.forward(ids);
  }
  // A long FocusLLM generation with a small local window.
  const s = model.createSession({ localWindow: 32, chunkSize: 24, promptCap: 16, minChunkedLength: 64, maxSteps: 260 });
  let l = await s.ingest(Array.from({ length: 150 }, (_, i) => (i === 0 ? 1 : 3 + (i % 500))));
  for (let i = 0; i < 260; i++) l = await s.step(3 + (i % 400));
  t.equal(l.length, 512, '260 steps done');
  s.dispose();
});

t.test('a pool or candidate set of another model is refused, not used', async (t) => {
  const a = writeTinyModel({ layers: 1, hidden: 16, heads: 2, kvHeads: 1, inter: 16 });
  const b = writeTinyModel({ layers: 3, hidden: 64, heads: 4, kvHeads: 4, inter: 64 });
  t.teardown(() => [a, b].forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  const ma = await loadModel(a, { backend: 'cpu', threads: 1 });
  const mb = await loadModel(b, { backend: 'cpu', threads: 1 });
  t.teardown(() => (ma.dispose(), mb.dispose()));
  const pool = ma.native.createKvPool(1, 8, 'f32');
  const set = ma.native.createCandidateSet(1);
  await t.rejects(mb.run([{ tokens: Int32Array.of(1, 2), pool, slot: 0 }]), /its KV cache pool belongs to another model/);
  await t.rejects(mb.run([{ tokens: Int32Array.of(1, 2), cand: set, candSlot: 0 }]), /candidate set belongs to another model/);
});

t.test('absurd sizes are errors, not overflows', async (t) => {
  const model = await loadModel(path.join(FX, 'tiny-gqa'), { backend: 'cpu', threads: 1 });
  t.teardown(() => model.dispose());
  t.throws(() => model.native.createKvPool(48912491, 736597059, 'f32'), /slots must be an integer from 1 to/);
  t.throws(() => model.native.createKvPool(1 << 24, 1 << 30, 'f32'), /out of memory|more than 2\^62/);
  t.throws(() => model.native.createCandidateSet(-1), /slots must be an integer/);
  t.throws(() => model.createSession({ maxSteps: 2 ** 32 }), /maxSteps must be an integer from 0 to/);
  // config.json whose heads x head_dim wraps 32 bits.
  const dir = writeTinyModel({ layers: 1 });
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, num_attention_heads: 15790321, num_key_value_heads: 15790321, head_dim: 272 }));
  await t.rejects(loadModel(dir, { backend: 'cpu' }), /field 'num_attention_heads' times head_dim is 4294967312/);
  // A tensor shape whose byte count would overflow 64 bits.
  const ts = tinyTensors({ vocab: 96, hidden: 32, inter: 48, layers: 1, heads: 4, kvHeads: 2, headDim: 8, dtype: 'F32', candidates: [], candidateMlp: false, attentionBias: false, tie: false, ropeTheta: 10000, rmsNormEps: 1e-6, seed: 3 });
  const buf = buildSafetensors(ts, (h) => {
    h['junk'] = { dtype: 'F16', shape: [2 ** 31, 2 ** 31], data_offsets: [0, 0] };
  });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  fs.writeFileSync(path.join(dir, 'model.safetensors'), buf);
  await t.rejects(loadModel(dir, { backend: 'cpu' }), /tensor 'junk': shape \(2147483648, 2147483648\) needs more bytes than the data section has/);
});

t.test('disposing the model from a getter while run() reads the batch does not crash', async (t) => {
  const m = await native().loadModel(path.join(FX, 'tiny-gqa'), { backend: 'cpu', threads: 1 });
  const seq: Record<string, unknown> = { tokens: Int32Array.of(1, 2, 3) };
  Object.defineProperty(seq, 'logits', {
    get() {
      m.dispose();
      return 1;
    },
  });
  const out = await m.run([seq as never]);
  t.equal(out.length, 512, 'the run finishes on the model it started with');
  t.throws(() => m.run([{ tokens: Int32Array.of(1) }]), /disposed/);
});

t.test('pool lengths cannot be read or changed while a run uses them', async (t) => {
  const model = await loadModel(path.join(FX, 'tiny-gqa'), { backend: 'cpu', threads: 1 });
  t.teardown(() => model.dispose());
  const pool = model.native.createKvPool(1, 256, 'f32');
  // The native call queues the run at once (Model.run would wait for its queue).
  const p = model.native.run([{ tokens: Int32Array.from({ length: 200 }, (_, i) => 3 + i), pool, slot: 0 }]);
  t.throws(() => pool.length(0), /in use by a run/);
  t.throws(() => pool.truncate(0, 0), /in use by a run/);
  await p;
  t.equal(pool.length(0), 200, 'readable again after the run');
});

t.test('an aborted or failed step leaves a session that refuses to step until it ingests again', async (t) => {
  const dir = path.join(FX, 'tiny-gqa');
  const model = await loadModel(dir, { backend: 'cpu', threads: 2, maxBatchTokens: 2 });
  t.teardown(() => model.dispose());
  const f = { localWindow: 20, chunkSize: 10, promptCap: 6, minChunkedLength: 30, cacheType: 'f32' as const };
  const x = Array.from({ length: 60 }, (_, i) => (i === 0 ? 1 : 3 + ((i * 37) % 500)));
  const s = model.createSession({ ...f, maxSteps: 4 });
  await s.ingest(x);
  // Abort deterministically between the step's two native calls: once the
  // chunks' run has finished (their caches advanced) and before the local one.
  const ac = new AbortController();
  const run = model.run.bind(model);
  model.run = async (batch, control) => {
    const out = await run(batch, control);
    if (batch.length > 1) ac.abort();
    return out;
  };
  await t.rejects(s.step(7, { signal: ac.signal }), { name: 'AbortError' });
  await t.rejects(s.step(7), /no longer consistent \(the last step was aborted\): ingest again/);
  // A native call that fails part-way through a step has the same effect.
  await s.ingest(x);
  model.run = async (batch, control) => {
    if (batch.length === 1) throw new Error('device lost');
    return run(batch, control);
  };
  await t.rejects(s.step(7), /device lost/);
  await t.rejects(s.step(7), /no longer consistent \(the last step failed\): ingest again/);
  model.run = run;
  // Ingesting again restores exact behaviour.
  const rows = [await s.ingest(x), await s.step(7)];
  const want = refLogits(new RefModel(dir), x, [7], f);
  rows.forEach((r, i) => t.ok(relErr(r, want[i]) <= 1e-4, `row ${i} after re-ingest`));
  // An ingest whose signal is already aborted changes nothing.
  await t.rejects(s.ingest(x.slice(0, 40), { signal: AbortSignal.abort() }), { name: 'AbortError' });
  t.equal(s.mode, 'focus', 'still the previous ingest');
  t.ok(relErr(await s.step(9), refLogits(new RefModel(dir), x, [7, 9], f)[2]) <= 1e-4, 'and it steps correctly');
  s.dispose();
});

t.test('an onProgress callback that throws stops the run with its error', async (t) => {
  const model = await loadModel(path.join(FX, 'tiny-gqa'), { backend: 'cpu', threads: 1, maxBatchTokens: 4 });
  t.teardown(() => model.dispose());
  const s = model.createSession({ localWindow: 20, chunkSize: 10, promptCap: 6, minChunkedLength: 30 });
  const x = Array.from({ length: 3000 }, (_, i) => (i === 0 ? 1 : 3 + (i % 500)));
  await t.rejects(
    s.ingest(x, {
      onProgress: () => {
        throw new Error('progress bar broke');
      },
    }),
    /progress bar broke/,
  );
  s.dispose();
});

t.test('the CLI refuses command names that are Object properties', async (t) => {
  for (const name of ['__proto__', 'valueOf', 'constructor']) {
    const r = await captureStdout(() => main([name]));
    t.equal(r.code, 2, `${name}: exit 2`);
    t.match(r.stderr, /unknown command/);
  }
  const r = await captureStdout(() => main(['info', '--model', path.join(FX, 'tiny-gqa'), '--context', '-5']));
  t.equal(r.code, 2, 'negative --context is a usage error');
});
