// bench/random-model.ts: layout, value scale, determinism, dtypes, shards,
// tokenizer files (llama2, llama3), and that the engine loads and runs what it
// writes; `focusllm random-model`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import t from 'tap';

import { randomModelCli, writeRandomModel } from '../bench/random-model';
import { captureStdout } from './helpers/cli';
import { main } from '../lib/cli/main';
import { loadModel } from '../lib/model';
import { readSafetensors } from './helpers/safetensors';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'focusllm-random-'));
t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
const out = (name: string) => path.join(root, name);

function header(file: string): { size: number; json: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> } {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  return { size: n, json: JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) };
}

const spec = { vocab: 300, hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, seed: 9 };

t.test('layout: config.json, tensor names and shapes, candidate tensors incl. MLP', async (t) => {
  const info = await writeRandomModel(out('full'), { ...spec, candidates: ['q', 'k', 'v', 'o'], candidateMlp: true, attentionBias: true });
  const cfg = JSON.parse(fs.readFileSync(path.join(info.dir, 'config.json'), 'utf8'));
  t.same(cfg.beacon_param, ['q', 'k', 'v', 'o', 'mlp']);
  t.equal(cfg.vocab_size, 300);
  t.equal(cfg.num_key_value_heads, 2);
  t.equal(cfg.attention_bias, true);
  const { size, json } = header(path.join(info.dir, 'model.safetensors'));
  t.equal((8 + size) % 8, 0, 'tensor data 8-byte aligned');
  const l0 = 'model.layers.0.';
  t.same(json['model.embed_tokens.weight'].shape, [300, 64]);
  t.same(json['lm_head.weight'].shape, [300, 64]);
  t.same(json[l0 + 'self_attn.k_proj.weight'].shape, [32, 64], 'kv heads x head dim');
  t.same(json[l0 + 'self_attn.beacon_q_proj.weight'].shape, [64, 64]);
  t.same(json[l0 + 'self_attn.beacon_k_proj.bias'].shape, [32]);
  t.notOk(json[l0 + 'self_attn.beacon_o_proj.bias'], 'no o bias');
  t.same(json[l0 + 'mlp.beacon_up_proj.weight'].shape, [96, 64]);
  t.same(json[l0 + 'mlp.beacon_down_proj.weight'].shape, [64, 96]);
  // contiguous data, in order, exactly filling the file
  const spans = Object.entries(json).filter(([k]) => k !== '__metadata__').map(([, v]) => v.data_offsets).sort((a, b) => a[0] - b[0]);
  spans.forEach((s, i) => t.equal(s[0], i ? spans[i - 1][1] : 0));
  t.equal(8 + size + spans[spans.length - 1][1], fs.statSync(path.join(info.dir, 'model.safetensors')).size);
  t.equal(info.bytes, spans[spans.length - 1][1]);
  const model = await loadModel(info.dir, { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  t.same([...model.info.candidateProjections].sort(), ['k', 'mlp', 'o', 'q', 'v']);
  t.same(json['model.beacon_embed_tokens.weight'].shape, [1, 64], 'the unused training embedding, as released checkpoints have it');
  t.equal(model.info.parameters + model.info.candidateParameters + 64, info.parameters, 'every other parameter written is counted by the loader');
  // a FocusLLM run exercises the candidate tensors
  const ids = Array.from({ length: 40 }, (_, i) => (i * 37 + 1) % 300);
  const rows = await model.logits(ids, { continuation: [5, 6], focus: { localWindow: 8, chunkSize: 8, promptCap: 4, minChunkedLength: 16 } });
  t.ok(rows.every((r) => r.every(Number.isFinite)), 'finite logits');
});

t.test('values: uniform with std 1/sqrt(fan_in), norms 1, deterministic per seed', async (t) => {
  const a = await writeRandomModel(out('a'), spec);
  const w = readSafetensors(path.join(a.dir, 'model.safetensors'));
  for (const [name, fanIn] of [
    ['model.layers.1.mlp.down_proj.weight', 96],
    ['model.layers.0.self_attn.q_proj.weight', 64],
    ['model.embed_tokens.weight', 64],
  ] as [string, number][]) {
    const d = w.get(name)!.data;
    const mean = d.reduce((s, x) => s + x, 0) / d.length;
    const std = Math.sqrt(d.reduce((s, x) => s + (x - mean) ** 2, 0) / d.length);
    const want = 1 / Math.sqrt(fanIn);
    t.ok(Math.abs(mean) < 0.1 * want, `${name}: mean ${mean.toFixed(4)} ~ 0`);
    t.ok(Math.abs(std / want - 1) < 0.05, `${name}: std ${std.toFixed(4)} ~ ${want.toFixed(4)}`);
    t.ok(Math.max(...d.map(Math.abs)) <= Math.sqrt(3) * want + 1e-6, `${name}: bounded by sqrt(3)/sqrt(fan_in)`);
  }
  t.ok(w.get('model.norm.weight')!.data.every((x) => x === 1));
  const b = await writeRandomModel(out('b'), spec);
  const c = await writeRandomModel(out('c'), { ...spec, seed: 10 });
  const bytes = (d: string) => fs.readFileSync(path.join(d, 'model.safetensors'));
  t.ok(bytes(a.dir).equals(bytes(b.dir)), 'same seed, same bytes');
  t.notOk(bytes(a.dir).equals(bytes(c.dir)), 'another seed, other weights');
});

t.test('F16 and BF16 round the same random stream; shards load like one file', async (t) => {
  const ids = [1, 17, 42, 99, 250, 3];
  const f32 = await writeRandomModel(out('f32'), spec);
  const logits = async (dir: string) => {
    const m = await loadModel(dir, { backend: 'cpu', threads: 2 });
    try {
      return { l: await m.forward(ids), dtype: m.info.dtype };
    } finally {
      m.dispose();
    }
  };
  const ref = await logits(f32.dir);
  const scale = Math.max(...ref.l.map(Math.abs));
  for (const dtype of ['F16', 'BF16'] as const) {
    const info = await writeRandomModel(out(dtype), { ...spec, dtype });
    t.equal(info.bytes * 2, f32.bytes, `${dtype}: half the bytes`);
    const got = await logits(info.dir);
    t.equal(got.dtype, dtype);
    const err = Math.max(...got.l.map((x, i) => Math.abs(x - ref.l[i]))) / scale;
    t.ok(err < (dtype === 'F16' ? 5e-3 : 5e-2), `${dtype}: logits within ${err.toExponential(1)} of F32`);
  }
  const sharded = await writeRandomModel(out('sharded'), { ...spec, maxShardBytes: 60000 });
  t.ok(sharded.files.length > 2, `${sharded.files.length} shards`);
  const index = JSON.parse(fs.readFileSync(path.join(sharded.dir, 'model.safetensors.index.json'), 'utf8'));
  t.equal(Object.keys(index.weight_map).length, Object.keys(header(path.join(f32.dir, 'model.safetensors')).json).length - 1);
  const sl = await logits(sharded.dir);
  t.same(Array.from(sl.l), Array.from(ref.l), 'sharded = single file');
});

t.test('tokenizer files and vocabulary from the llama2 package', async (t) => {
  const info = await writeRandomModel(out('tok'), { hidden: 32, heads: 2, layers: 1, tokenizer: 'llama2', tieWordEmbeddings: true, dtype: 'BF16' });
  t.ok(info.files.includes('tokenizer.json') && info.files.includes('tokenizer_config.json'));
  t.equal(info.config.vocab_size, 32000, "vocab defaults to the tokenizer's");
  t.notOk(header(path.join(info.dir, 'model.safetensors')).json['lm_head.weight'], 'tied: no lm_head');
  const m = await loadModel(info.dir, { backend: 'cpu', threads: 2 });
  t.teardown(() => m.dispose());
  t.equal(m.tokenizer?.vocabSize, 32000);
  const ids = m.tokenizer!.encode('The pass key is 12345.');
  t.equal((await m.forward(ids)).length, 32000);
});

t.test('bad specs are Errors naming the field', async (t) => {
  await t.rejects(writeRandomModel(out('e1'), { heads: 4, kvHeads: 3 }), /heads \(4\) must be a multiple of kvHeads \(3\)/);
  await t.rejects(writeRandomModel(out('e2'), { vocab: 100, tokenizer: 'llama2' }), /vocab 100 is smaller than the tokenizer's 32000/);
  await t.rejects(writeRandomModel(out('e3'), { tokenizer: 'nope' }), /tokenizer "nope"/);
  await t.rejects(writeRandomModel(out('e4'), { hidden: 0 }), /hidden must be an integer >= 1/);
  await t.rejects(writeRandomModel(out('e5'), { dtype: 'F8' as 'F16' }), /dtype must be F32, F16 or BF16/);
  await t.rejects(writeRandomModel(out('e6'), { candidates: ['x' as 'q'] }), /candidates entries/);
  await t.rejects(writeRandomModel(out('e7'), { vocab: 10, bosTokenId: 10 }), /bosTokenId 10 is not below vocab 10/);
});

t.test('command line', async (t) => {
  const dir = out('cli');
  const r = await captureStdout(() => randomModelCli(['--out', dir, '--vocab', '64', '--hidden', '16', '--heads', '2', '--dtype', 'bf16', '--candidates', 'q,o', '--candidate-mlp']));
  t.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.equal(j.dir, dir);
  t.ok(j.parameters > 0 && j.bytes === 2 * j.parameters);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  t.same(cfg.beacon_param, ['q', 'o', 'mlp']);
  t.equal(cfg.torch_dtype, 'bfloat16');
  const bad = await captureStdout(() => randomModelCli(['--out', dir, '--dtype', 'f8']));
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--dtype must be F32, F16 or BF16, got 'f8'/);
  const missing = await captureStdout(() => randomModelCli(['--hidden', '8']));
  t.equal(missing.code, 2);
  t.match(missing.stderr, /--out is required/);
  const spec = await captureStdout(() => randomModelCli(['--out', dir, '--heads', '3', '--hidden', '12', '--kv-heads', '2']));
  t.equal(spec.code, 1);
  t.match(spec.stderr, /heads \(3\) must be a multiple of kvHeads \(2\)/);
});

t.test('the llama3 tokenizer (128K ids): vocabulary and BOS/EOS from its files', async (t) => {
  // Its vocabulary once overflowed the call stack (Math.max over 128000 arguments).
  const info = await writeRandomModel(out('llama3'), { hidden: 16, heads: 2, layers: 1, tokenizer: 'llama3', tieWordEmbeddings: true, dtype: 'BF16' });
  t.equal(info.config.vocab_size, 128256, 'vocab: 128000 + 256 added tokens');
  t.equal(info.config.bos_token_id, 128000, '<|begin_of_text|>');
  t.equal(info.config.eos_token_id, 128001, '<|end_of_text|>');
  const m = await loadModel(info.dir, { backend: 'cpu', threads: 2 });
  t.teardown(() => m.dispose());
  const ids = m.tokenizer!.encode('The pass key is 12345.');
  t.equal(m.tokenizer!.bosId, 128000, 'the tokenizer agrees on BOS');
  t.same(m.config.eosTokenIds, [128001]);
  t.equal((await m.forward(ids)).length, 128256);
  const l2 = await writeRandomModel(out('llama2-ids'), { hidden: 16, heads: 2, layers: 1, tokenizer: 'llama2', tieWordEmbeddings: true });
  t.same([l2.config.bos_token_id, l2.config.eos_token_id], [1, 2], 'llama2: <s> and </s>');
  const own = await writeRandomModel(out('llama3-own'), { hidden: 16, heads: 2, layers: 1, tokenizer: 'llama3', tieWordEmbeddings: true, eosTokenId: 128009 });
  t.equal(own.config.eos_token_id, 128009, 'an explicit id wins');
});

t.test('focusllm random-model writes a model the other commands run', async (t) => {
  const dir = out('cli-tok');
  const r = await captureStdout(() => main(['random-model', '--out', dir, '--hidden', '16', '--heads', '2', '--layers', '1', '--tokenizer', 'llama2', '--tie']));
  t.equal(r.code, 0, r.stderr);
  t.equal(JSON.parse(r.stdout).dir, dir);
  t.ok(fs.existsSync(path.join(dir, 'tokenizer.json')));
  const g = await captureStdout(() => main(['generate', '--model', dir, '--backend', 'cpu', '--prompt', 'Hello', '--max-new-tokens', '3']));
  t.equal(g.code, 0, g.stderr);
  t.ok(g.stdout.endsWith('\n'), 'generate prints text');
  const help = await captureStdout(() => main(['random-model', '--help']));
  t.equal(help.code, 0);
  t.match(help.stdout, /^usage: focusllm random-model \[options\]/);
  t.match(help.stdout, /--tokenizer <string>\s+llama2, llama3/);
  const bad = await captureStdout(() => main(['random-model', '--out', dir, '--tokenizer', 'gpt9']));
  t.equal(bad.code, 1);
  t.match(bad.stderr, /tokenizer "gpt9": neither llama2, llama3 nor a folder with tokenizer\.json/);
});
