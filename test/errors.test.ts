// DESIGN section 5: every bad input is a JS Error naming what is wrong and
// where; the process never aborts; nothing the user passed is modified.
import fs from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { loadModel } from '../lib/model';
import { buildSafetensors, type TensorSpec } from './helpers/safetensors';
import { tinyTensors, writeTinyModel } from './helpers/checkpoint';

const base = {
  vocab: 96, hidden: 32, inter: 48, layers: 1, heads: 4, kvHeads: 2, headDim: 8, dtype: 'F32' as const,
  candidates: [] as ('q' | 'k' | 'v' | 'o')[], candidateMlp: false, attentionBias: false, tie: false,
  ropeTheta: 10000, rmsNormEps: 1e-6, seed: 3,
};

/** A valid tiny model folder whose model.safetensors is replaced by `file`. */
function withFile(t: tap.Test, file: Buffer): string {
  const dir = writeTinyModel({ layers: 1, candidates: [] });
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'model.safetensors'), file);
  return dir;
}

function tensors(): Record<string, TensorSpec> {
  return tinyTensors(base);
}

async function rejectsWith(t: tap.Test, p: Promise<unknown>, re: RegExp, what: string) {
  await t.rejects(p, re, what);
}

t.test('safetensors: truncated file', async (t) => {
  const dir = withFile(t, Buffer.from([1, 2, 3]));
  await rejectsWith(t, loadModel(dir, { backend: 'cpu', tokenizer: false }), /model\.safetensors.*truncated/, 'names the file');
});

t.test('safetensors: header length past the end of the file', async (t) => {
  const b = buildSafetensors(tensors());
  b.writeBigUInt64LE(BigInt(b.length * 2), 0);
  const dir = withFile(t, b);
  await rejectsWith(t, loadModel(dir, { backend: 'cpu', tokenizer: false }), /model\.safetensors.*header length \d+ runs past the end/, 'names the file');
});

t.test('safetensors: invalid header JSON', async (t) => {
  const b = buildSafetensors(tensors());
  b.write('{"x"', 8); // corrupt the JSON
  const dir = withFile(t, b);
  await rejectsWith(t, loadModel(dir, { backend: 'cpu', tokenizer: false }), /model\.safetensors.*invalid JSON/, 'names the file');
});

t.test('safetensors: data offsets out of range', async (t) => {
  const b = buildSafetensors(tensors(), (h) => {
    (h['model.norm.weight'] as { data_offsets: number[] }).data_offsets = [10 ** 9, 10 ** 9 + 128];
  });
  const dir = withFile(t, b);
  await rejectsWith(t, loadModel(dir, { backend: 'cpu', tokenizer: false }), /tensor 'model\.norm\.weight'.*out of range/, 'names the tensor');
});

t.test('safetensors: file cut short (data past the end)', async (t) => {
  const b = buildSafetensors(tensors());
  const dir = withFile(t, b.subarray(0, b.length - 100));
  await rejectsWith(t, loadModel(dir, { backend: 'cpu', tokenizer: false }), /model\.safetensors: tensor '.*': data_offsets \[\d+, \d+\] are out of range/, 'names a tensor');
});

t.test('safetensors: overlapping data offsets', async (t) => {
  const b = buildSafetensors(tensors(), (h) => {
    const a = h['model.layers.0.mlp.up_proj.weight'] as { data_offsets: number[] };
    const c = h['model.layers.0.mlp.gate_proj.weight'] as { data_offsets: number[] };
    c.data_offsets = [a.data_offsets[0] + 4, a.data_offsets[1] + 4];
  });
  const dir = withFile(t, b);
  await rejectsWith(t, loadModel(dir, { backend: 'cpu', tokenizer: false }), /overlapping data_offsets/, 'says overlapping');
});

t.test('safetensors: unknown dtype', async (t) => {
  const b = buildSafetensors(tensors(), (h) => {
    (h['model.norm.weight'] as { dtype: string }).dtype = 'X9';
  });
  const dir = withFile(t, b);
  await rejectsWith(t, loadModel(dir, { backend: 'cpu', tokenizer: false }), /tensor 'model\.norm\.weight': unknown dtype 'X9'/, 'names tensor and dtype');
});

t.test('safetensors: a known but unsupported dtype on a weight', async (t) => {
  const b = buildSafetensors(tensors(), (h) => {
    const e = h['model.norm.weight'] as { dtype: string; shape: number[] };
    e.dtype = 'I32'; // same size as F32
  });
  const dir = withFile(t, b);
  await rejectsWith(t, loadModel(dir, { backend: 'cpu', tokenizer: false }), /tensor 'model\.norm\.weight' has dtype I32; supported: F32, F16, BF16/, 'names tensor and dtype');
});

t.test('a tensor whose shape disagrees with config.json', async (t) => {
  const ts = tensors();
  ts['model.layers.0.self_attn.k_proj.weight'] = { dtype: 'F32', shape: [32, 32], data: new Float64Array(32 * 32) };
  const dir = withFile(t, buildSafetensors(ts));
  await rejectsWith(t, loadModel(dir, { backend: 'cpu', tokenizer: false }), /tensor 'model\.layers\.0\.self_attn\.k_proj\.weight' has shape \(32, 32\) but config\.json implies \(16, 32\)/, 'names tensor and both shapes');
});

t.test('a missing tensor', async (t) => {
  const ts = tensors();
  delete ts['model.layers.0.mlp.down_proj.weight'];
  const dir = withFile(t, buildSafetensors(ts));
  await rejectsWith(t, loadModel(dir, { backend: 'cpu', tokenizer: false }), /missing tensor 'model\.layers\.0\.mlp\.down_proj\.weight'/, 'names the tensor');
});

t.test('sharded checkpoints: index naming a missing shard', async (t) => {
  const dir = writeTinyModel({ layers: 1, shards: 2 });
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.rmSync(path.join(dir, 'model-00002-of-00002.safetensors'));
  await rejectsWith(t, loadModel(dir, { backend: 'cpu', tokenizer: false }), /model-00002-of-00002\.safetensors: cannot open/, 'names the shard');
});

t.test('config.json: missing, invalid JSON, bad fields', async (t) => {
  const dir = writeTinyModel({ layers: 1 });
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cfgPath = path.join(dir, 'config.json');
  const good = fs.readFileSync(cfgPath, 'utf8');
  fs.rmSync(cfgPath);
  await rejectsWith(t, loadModel(dir, { backend: 'cpu', tokenizer: false }), /config\.json: cannot open/, 'missing config.json');
  fs.writeFileSync(cfgPath, '{"hidden_size": 32,');
  await rejectsWith(t, loadModel(dir, { backend: 'cpu', tokenizer: false }), /config\.json: invalid JSON/, 'invalid JSON');
  const edits: [Record<string, unknown>, RegExp][] = [
    [{ hidden_size: '32' }, /field 'hidden_size' must be an integer/],
    [{ num_key_value_heads: 3 }, /field 'num_key_value_heads' \(3\) must divide num_attention_heads \(4\)/],
    [{ vocab_size: 0 }, /field 'vocab_size' must be at least 1/],
    [{ hidden_act: 'gelu' }, /field 'hidden_act' must be "silu"/],
    [{ rope_scaling: { type: 'yarn', factor: 4 } }, /field 'rope_scaling' has type 'yarn'/],
    [{ mlp_bias: true }, /field 'mlp_bias' is true/],
    [{ num_hidden_layers: undefined }, /field 'num_hidden_layers' is missing/],
  ];
  for (const [edit, re] of edits) {
    fs.writeFileSync(cfgPath, JSON.stringify({ ...JSON.parse(good), ...edit }));
    await rejectsWith(t, loadModel(dir, { backend: 'cpu', tokenizer: false }), re, `config ${JSON.stringify(edit)}`);
  }
});

t.test('not a model folder', async (t) => {
  await rejectsWith(t, loadModel('/nonexistent/focusllm-model', { backend: 'cpu' }), /no such model folder/, 'missing folder');
  await rejectsWith(t, loadModel(__filename, { backend: 'cpu' }), /not a folder/, 'a file');
});

t.test('options: threads, backend, focus parameters', async (t) => {
  const dir = writeTinyModel({ layers: 1 });
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  await rejectsWith(t, loadModel(dir, { backend: 'cpu', threads: 0 }), /option threads must be an integer from 1 to 1024, got 0/, 'threads = 0');
  await rejectsWith(t, loadModel(dir, { backend: 'cpu', threads: 1.5 }), /option threads/, 'threads = 1.5');
  await rejectsWith(t, loadModel(dir, { backend: 'tpu' as 'cpu' }), /option backend must be/, 'unknown backend');
  const model = await loadModel(dir, { backend: 'cpu', threads: 1 });
  t.teardown(() => model.dispose());
  t.throws(() => model.createSession({ minChunkedLength: 100, localWindow: 100 }), /minChunkedLength \(100\) must be larger than localWindow \(100\)/);
  t.throws(() => model.createSession({ chunkSize: 0 }), /chunkSize must be a positive integer, got 0/);
  t.throws(() => model.createSession({ promptCap: -3 }), /promptCap must be a positive integer/);
  t.throws(() => model.createSession({ localWindow: 1.5 }), /localWindow must be a positive integer/);
  t.throws(() => model.createSession({ cacheType: 'f8' as 'f16' }), /cacheType must be/);
  t.throws(() => model.createSession({ maxSteps: -1 }), /maxSteps must be an integer from 0 to/);
  t.throws(() => model.createSession({ bosId: 10 ** 6 }), /bosId must be a token id/);
});

t.test('token ids out of range, everywhere', async (t) => {
  const dir = writeTinyModel({ layers: 1, vocab: 96 });
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const model = await loadModel(dir, { backend: 'cpu', threads: 1 });
  t.teardown(() => model.dispose());
  await rejectsWith(t, model.forward([1, 5, 96]), /ids\[2\] = 96 is not a token id \(vocabulary size 96\)/, 'forward');
  await rejectsWith(t, model.forward([1, -1]), /ids\[1\] = -1/, 'negative');
  await rejectsWith(t, model.logits([1, 2, 3], { continuation: [4, 1000] }), /continuation\[1\] = 1000/, 'continuation');
  const s = model.createSession({ maxSteps: 2 });
  await rejectsWith(t, s.ingest([1, 2.5]), /ids\[1\] = 2\.5 is not a token id/, 'fractional id');
  await s.ingest([1, 2, 3]);
  await rejectsWith(t, s.step(96), /token id 96 is out of range/, 'step');
  // The native layer checks too (a second line of defence).
  await rejectsWith(
    t,
    model.run([{ tokens: Int32Array.of(1, 99999) }]),
    /token id 99999 at index 1 is out of range/,
    'native run',
  );
  await rejectsWith(t, model.forward([]), /ids is empty/, 'empty');
  s.dispose();
});

t.test('nothing the user passed is modified', async (t) => {
  const dir = writeTinyModel({ layers: 1, vocab: 96 });
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const model = await loadModel(dir, { backend: 'cpu', threads: 1 });
  t.teardown(() => model.dispose());
  const ids = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20];
  const idsCopy = ids.slice();
  const typed = Int32Array.from(ids);
  const focus = { localWindow: 4, chunkSize: 3, promptCap: 2, minChunkedLength: 8, cacheType: 'f32' as const };
  const focusCopy = { ...focus };
  const cont = [3, 4];
  await model.logits(ids, { continuation: cont, focus });
  await model.logits(typed, { focus });
  const out: number[] = [];
  for await (const tok of model.generate(ids, { maxNewTokens: 3, focus, stop: [] })) out.push(tok);
  t.same(ids, idsCopy, 'ids array unchanged');
  t.same(Array.from(typed), idsCopy, 'typed ids unchanged');
  t.same(focus, focusCopy, 'options unchanged');
  t.same(cont, [3, 4], 'continuation unchanged');
  t.equal(out.length, 3, 'generated 3 tokens');
});

t.test('use after dispose', async (t) => {
  const dir = writeTinyModel({ layers: 1 });
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const model = await loadModel(dir, { backend: 'cpu', threads: 1 });
  const s = model.createSession();
  model.dispose();
  await rejectsWith(t, model.forward([1, 2]), /disposed/, 'forward after dispose');
  await rejectsWith(t, s.ingest([1, 2]), /disposed/, 'session disposed with its model');
  t.throws(() => model.createSession(), /disposed/);
  model.dispose(); // twice is fine
});

t.test('run: a pool or base that is not a live KvPool is an Error naming the field', async (t) => {
  const dir = writeTinyModel({ layers: 1, candidates: [] });
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const model = await loadModel(dir, { threads: 1, tokenizer: false });
  t.teardown(() => model.dispose());
  const nm = model.native;
  const tokens = Int32Array.from([1, 5, 7]);
  const seq = (extra: Record<string, unknown>) => [{ tokens, ...extra }] as unknown as Parameters<typeof nm.run>[0];
  t.throws(() => nm.run(seq({ pool: {}, slot: 0 })), /sequence 0 of the batch: pool must be a KvPool/, 'pool of the wrong kind');
  t.throws(() => nm.run(seq({ base: 42 })), /base must be a KvPool/, 'base of the wrong kind');
  const gone = nm.createKvPool(1, 8, 'f32');
  gone.dispose();
  t.throws(() => nm.run(seq({ pool: gone, slot: 0 })), /its KV cache pool has been disposed/, 'a disposed pool');
  t.throws(() => nm.run(seq({ base: gone, baseSlot: 0, baseLength: 1 })), /its base KV cache pool has been disposed/, 'a disposed base');
});
