// Checkpoints that parse but do not describe the model they claim to: each was
// once loaded and run, with wrong logits. From the reliability issue:
//   "A safetensors header length short by 1-4 bytes loads (the bytes between
//   the header and the first tensor are not covered) and gives all-NaN or
//   wrong logits."
//   "A missing or misspelt beacon_* tensor in one layer silently falls back to
//   the base projection while info still reports q, k, v, o."
//   "num_hidden_layers smaller than the checkpoint's layers runs a truncated
//   model; eos_token_id: [4294967298] becomes [2]; a rope factor of 5e-324
//   gives NaN."
import fs from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { loadModel } from '../lib/model';
import { tinyTensors, writeTinyModel } from './helpers/checkpoint';
import { buildSafetensors, type TensorSpec } from './helpers/safetensors';

const spec = {
  vocab: 96, hidden: 32, inter: 48, layers: 2, heads: 4, kvHeads: 2, headDim: 8, dtype: 'F32' as const,
  candidates: ['q', 'k', 'v', 'o'] as ('q' | 'k' | 'v' | 'o')[], candidateMlp: false, attentionBias: false, tie: false,
  ropeTheta: 10000, rmsNormEps: 1e-6, seed: 5,
};

function model(t: tap.Test, extra: Parameters<typeof writeTinyModel>[0] = {}): string {
  const dir = writeTinyModel({ ...spec, ...extra });
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const load = (dir: string) => loadModel(dir, { backend: 'cpu', threads: 1, tokenizer: false });

/** A safetensors file whose header JSON is followed by `pad` spaces and whose length field is `pad - short` more than the JSON. */
function padded(tensors: Record<string, TensorSpec>, pad: number, short: number, tail = Buffer.alloc(0)): Buffer {
  const b = buildSafetensors(tensors);
  const n = Number(b.readBigUInt64LE(0));
  const json = b.subarray(8, 8 + n).toString('utf8').trimEnd();
  const header = Buffer.from(json + ' '.repeat(pad));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length - short));
  return Buffer.concat([len, header, b.subarray(8 + n), tail]);
}

t.test('safetensors: the data section starts right after the header and is covered exactly', async (t) => {
  const dir = model(t);
  const file = path.join(dir, 'model.safetensors');
  const ts = tinyTensors(spec);
  const ids = [1, 4, 9, 16, 25];
  const want = await (async () => {
    const m = await load(dir);
    try {
      return Array.from(await m.forward(ids));
    } finally {
      m.dispose();
    }
  })();
  // Spaces inside the header's length are the legal padding.
  fs.writeFileSync(file, padded(ts, 13, 0));
  const m = await load(dir);
  t.same(Array.from(await m.forward(ids)), want, 'header padded with 13 spaces: same logits');
  m.dispose();
  // A length 1-4 bytes short still ends inside the padding: the JSON parses,
  // and every tensor would be read 1-4 bytes early.
  for (const short of [1, 2, 3, 4]) {
    fs.writeFileSync(file, padded(ts, 8, short));
    await t.rejects(load(dir), new RegExp(`model\\.safetensors: the data section has (\\d+) bytes but its tensors cover \\d+ \\(bytes \\[\\d+, \\1\\) belong to no tensor: wrong header length`), `header length short by ${short}`);
  }
  fs.writeFileSync(file, padded(ts, 8, 0, Buffer.from([0, 0, 0, 0])));
  await t.rejects(load(dir), /model\.safetensors: the data section has \d+ bytes but its tensors cover \d+/, 'trailing bytes after the last tensor');
  // A gap before the first tensor, and between two tensors.
  const shift = (name: string) =>
    buildSafetensors(ts, (h) => {
      const sorted = Object.entries(h).filter(([k]) => k !== '__metadata__') as [string, { data_offsets: number[] }][];
      const i = sorted.findIndex(([k]) => k === name);
      // every tensor from `name` on moves 4 bytes later; 4 bytes are appended
      for (const [, e] of sorted.slice(i)) e.data_offsets = e.data_offsets.map((x) => x + 4);
    });
  const first = Object.keys(ts)[0];
  const b = shift(first);
  fs.writeFileSync(file, Buffer.concat([b, Buffer.alloc(4)]));
  await t.rejects(load(dir), new RegExp(`bytes \\[0, 4\\) of the data section, before tensor '${first.replace(/\./g, '\\.')}', belong to no tensor`), 'gap before the first tensor');
  const third = Object.keys(ts)[2];
  fs.writeFileSync(file, Buffer.concat([shift(third), Buffer.alloc(4)]));
  await t.rejects(load(dir), new RegExp(`before tensor '${third.replace(/\./g, '\\.')}', belong to no tensor \\(the format allows no gaps\\)`), 'gap between tensors');
});

t.test('candidate tensors are in every layer or in none', async (t) => {
  const ts = tinyTensors(spec);
  const dir = model(t);
  const file = path.join(dir, 'model.safetensors');
  const full = await load(dir);
  t.same(full.info.candidateProjections, ['q', 'k', 'v', 'o'], 'all four in both layers');
  t.same(full.info.unusedTensors, [], 'nothing unused (model.beacon_embed_tokens.weight is known)');
  full.dispose();

  const missing = { ...ts };
  delete missing['model.layers.1.self_attn.beacon_q_proj.weight'];
  fs.writeFileSync(file, buildSafetensors(missing));
  await t.rejects(load(dir), {
    message: `${dir}: candidate projection 'q' is in layers 0 but missing in layers 1 (no tensor 'model.layers.1.self_attn.beacon_q_proj.weight'); a checkpoint holds a candidate projection in every layer or in none`,
  }, 'one layer lacks beacon_q_proj');

  const misspelt = { ...missing, 'model.layers.1.self_attn.beacon_q_prj.weight': ts['model.layers.1.self_attn.beacon_q_proj.weight'] };
  fs.writeFileSync(file, buildSafetensors(misspelt));
  await t.rejects(load(dir), /candidate projection 'q' is in layers 0 but missing in layers 1 \(no tensor 'model\.layers\.1\.self_attn\.beacon_q_proj\.weight'; that layer has 'model\.layers\.1\.self_attn\.beacon_q_prj\.weight', which is not a tensor name the model knows\)/, 'a misspelt name is pointed at');

  // The candidate MLP follows the same rule.
  const mlp = tinyTensors({ ...spec, candidateMlp: true });
  delete mlp['model.layers.0.mlp.beacon_up_proj.weight'];
  delete mlp['model.layers.0.mlp.beacon_down_proj.weight'];
  fs.writeFileSync(file, buildSafetensors(mlp));
  const cfgFile = path.join(dir, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
  fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, beacon_param: ['q', 'k', 'v', 'o', 'mlp'] }));
  await t.rejects(load(dir), /candidate projection 'mlp' is in layers 1 but missing in layers 0/, 'candidate MLP in one layer only');

  // A projection beacon_param leaves out is not checked (it is not used): it is listed as unused.
  const partial = { ...ts };
  delete partial['model.layers.0.self_attn.beacon_o_proj.weight'];
  fs.writeFileSync(file, buildSafetensors(partial));
  fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, beacon_param: ['q', 'k', 'v'] }));
  const m = await load(dir);
  t.same(m.info.candidateProjections, ['q', 'k', 'v']);
  t.same(m.info.unusedTensors, ['model.layers.1.self_attn.beacon_o_proj.weight']);
  m.dispose();
});

t.test('tensors the model does not read are reported', async (t) => {
  const dir = model(t);
  const ts = tinyTensors(spec);
  ts['model.layers.0.self_attn.rotary_emb.inv_freq'] = { dtype: 'F32', shape: [4], data: [1, 0.1, 0.01, 0.001] };
  ts['model.layers.0.mlp.extra_proj.weight'] = { dtype: 'F32', shape: [2], data: [1, 2] };
  ts['classifier.weight'] = { dtype: 'F32', shape: [3], data: [1, 2, 3] };
  fs.writeFileSync(path.join(dir, 'model.safetensors'), buildSafetensors(ts));
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));
  const m = await load(dir);
  t.teardown(() => m.dispose());
  t.same(m.info.unusedTensors, ['classifier.weight', 'model.layers.0.mlp.extra_proj.weight'], 'sorted; inv_freq is a known unused buffer');
  await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
  const w = warnings.find((x) => (x as Error & { code?: string }).code === 'FOCUSLLM_UNUSED_TENSORS' && x.message.startsWith(dir + ':'));
  t.ok(w, 'one warning');
  t.match(w?.message ?? '', /does not use 2 tensors of the checkpoint: classifier\.weight, model\.layers\.0\.mlp\.extra_proj\.weight/);
});

t.test('config.json values must fit the checkpoint and their types', async (t) => {
  const dir = model(t);
  const cfgFile = path.join(dir, 'config.json');
  const good = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ num_hidden_layers: 1 }, /config\.json: field 'num_hidden_layers' is 1 but .*model\.safetensors holds tensor 'model\.layers\.1\.[a-z_.]+' of layer 1/],
    [{ eos_token_id: [4294967298] }, /field 'eos_token_id' holds 4294967298, not a token id below vocab_size \(96\)/],
    [{ eos_token_id: [2, 96] }, /field 'eos_token_id' holds 96, not a token id below vocab_size \(96\)/],
    [{ eos_token_id: 4294967298 }, /field 'eos_token_id' is 4294967298; at most 2147483647 is supported/],
    [{ eos_token_id: 500 }, /field 'eos_token_id' is 500, not a token id below vocab_size \(96\)/],
    [{ bos_token_id: 4294967297 }, /field 'bos_token_id' is 4294967297; at most 2147483647/],
    [{ bos_token_id: 96 }, /field 'bos_token_id' is 96, not a token id below vocab_size \(96\)/],
    [{ rope_scaling: { type: 'linear', factor: 5e-324 } }, /field 'rope_scaling' factor is 4\.94066e-324; it must be at least 1/],
    [{ rope_scaling: { rope_type: 'llama3', factor: 5e-324, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 } }, /field 'rope_scaling' factor is 4\.94066e-324; it must be at least 1/],
    [{ rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 5e-324 } }, /original_max_position_embeddings is 4\.94066e-324; it must be at least 1/],
    [{ rope_theta: 5e-324 }, /field 'rope_theta' is 4\.94066e-324; it must be at least 1/],
    [{ rms_norm_eps: 1e-50 }, /field 'rms_norm_eps' is 1e-50; it must be in \[1\.17549e-38, 1\]/],
  ];
  for (const [edit, re] of cases) {
    fs.writeFileSync(cfgFile, JSON.stringify({ ...good, ...edit }));
    await t.rejects(load(dir), re, JSON.stringify(edit));
  }
  // Still fine: a list of eos ids, a linear factor of 1, llama3 defaults.
  for (const edit of [{ eos_token_id: [2, 95] }, { rope_scaling: { type: 'linear', factor: 1 } }, { rope_scaling: { rope_type: 'llama3', factor: 8 } }]) {
    fs.writeFileSync(cfgFile, JSON.stringify({ ...good, ...edit }));
    const m = await load(dir);
    if ('eos_token_id' in edit) t.same(m.config.eosTokenIds, [2, 95], `loads with ${JSON.stringify(edit)}`);
    else t.equal(m.config.ropeScaling, (edit.rope_scaling as { type?: string; rope_type?: string }).type ?? 'llama3', `loads with ${JSON.stringify(edit)}`);
    m.dispose();
  }
});

t.test('config.json is read as strict JSON (last duplicate key wins, as in Python and JavaScript)', async (t) => {
  const dir = model(t);
  const cfgFile = path.join(dir, 'config.json');
  const good = fs.readFileSync(cfgFile, 'utf8');
  // The first vocab_size would be wrong for the tensors; JSON.parse keeps the second.
  fs.writeFileSync(cfgFile, good.replace('{', '{"vocab_size": 7,'));
  t.equal(JSON.parse(fs.readFileSync(cfgFile, 'utf8')).vocab_size, 96);
  const m = await load(dir);
  t.equal(m.config.vocabSize, 96, 'the last vocab_size is used');
  m.dispose();
  fs.writeFileSync(cfgFile, good.replace('"rms_norm_eps": 0.000001', '"rms_norm_eps": NaN'));
  await t.rejects(load(dir), /config\.json: invalid JSON at byte \d+: unexpected character 'N'/, 'NaN is not JSON');
  fs.writeFileSync(cfgFile, good.replace('"hidden_size": 32', '"hidden_size": 032'));
  await t.rejects(load(dir), /config\.json: invalid JSON at byte \d+: malformed number: leading zeros/, 'leading zeros');
});
