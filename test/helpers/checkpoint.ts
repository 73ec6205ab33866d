// Test helper: small random LLaMA checkpoints with any feature switched on,
// written by bench/random-model.ts's writeCheckpoint. The values are this
// file's own (tinyTensors), not writeRandomModel's: norm weights spread
// around 1 rather than all 1, so a norm weight applied wrongly shows.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { writeCheckpoint } from '../../bench/random-model';
import { makeRng } from '../../lib/sampling';
import { tensorSources, type Dtype, type TensorSpec } from './safetensors';

export interface TinyModelSpec {
  vocab?: number;
  hidden?: number;
  inter?: number;
  layers?: number;
  heads?: number;
  kvHeads?: number;
  headDim?: number;
  dtype?: Dtype;
  /** beacon_* projections among q, k, v, o (default all four) */
  candidates?: ('q' | 'k' | 'v' | 'o')[];
  candidateMlp?: boolean;
  /** value of config.json's beacon_param (default: the candidates present, + "mlp") */
  beaconParam?: string[] | null;
  attentionBias?: boolean;
  tie?: boolean;
  ropeScaling?: Record<string, unknown> | null;
  ropeTheta?: number;
  rmsNormEps?: number;
  seed?: number;
  /** split the tensors over this many shards with an index file */
  shards?: number;
  /** extra config.json fields */
  config?: Record<string, unknown>;
}

export function tinyTensors(s: Required<Omit<TinyModelSpec, 'config' | 'shards' | 'beaconParam' | 'ropeScaling'>>): Record<string, TensorSpec> {
  const r = makeRng(s.seed);
  const t: Record<string, TensorSpec> = {};
  const mat = (name: string, rows: number, cols: number, scale = 1 / Math.sqrt(cols)) => {
    const data = new Float64Array(rows * cols);
    for (let i = 0; i < data.length; i++) data[i] = (r() * 2 - 1) * scale * 1.7;
    t[name] = { dtype: s.dtype, shape: cols === 0 ? [rows] : [rows, cols], data };
  };
  const vec = (name: string, n: number, center: number, spread: number) => {
    const data = new Float64Array(n);
    for (let i = 0; i < n; i++) data[i] = center + (r() * 2 - 1) * spread;
    t[name] = { dtype: s.dtype, shape: [n], data };
  };
  const hd = s.headDim;
  const qd = s.heads * hd;
  const kvd = s.kvHeads * hd;
  mat('model.embed_tokens.weight', s.vocab, s.hidden, 1);
  vec('model.norm.weight', s.hidden, 1, 0.2);
  if (!s.tie) mat('lm_head.weight', s.vocab, s.hidden);
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}.`;
    vec(p + 'input_layernorm.weight', s.hidden, 1, 0.2);
    vec(p + 'post_attention_layernorm.weight', s.hidden, 1, 0.2);
    const proj: Record<string, [number, number]> = { q: [qd, s.hidden], k: [kvd, s.hidden], v: [kvd, s.hidden], o: [s.hidden, qd] };
    for (const [k, [rows, cols]] of Object.entries(proj)) {
      mat(`${p}self_attn.${k}_proj.weight`, rows, cols);
      if (s.attentionBias && k !== 'o') vec(`${p}self_attn.${k}_proj.bias`, rows, 0, 0.3);
      if ((s.candidates as string[]).includes(k)) {
        mat(`${p}self_attn.beacon_${k}_proj.weight`, rows, cols);
        if (s.attentionBias && k !== 'o') vec(`${p}self_attn.beacon_${k}_proj.bias`, rows, 0, 0.3);
      }
    }
    mat(p + 'mlp.gate_proj.weight', s.inter, s.hidden);
    mat(p + 'mlp.up_proj.weight', s.inter, s.hidden);
    mat(p + 'mlp.down_proj.weight', s.hidden, s.inter);
    if (s.candidateMlp) {
      mat(p + 'mlp.beacon_up_proj.weight', s.inter, s.hidden);
      mat(p + 'mlp.beacon_down_proj.weight', s.hidden, s.inter);
    }
  }
  if (s.candidates.length) mat('model.beacon_embed_tokens.weight', 1, s.hidden);
  return t;
}

/** Writes a checkpoint folder in a fresh temp dir and returns its path. */
export function writeTinyModel(spec: TinyModelSpec = {}, dir?: string): string {
  const s = {
    vocab: 96,
    hidden: 32,
    inter: 48,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    headDim: 0,
    dtype: 'F32' as Dtype,
    candidates: ['q', 'k', 'v', 'o'] as ('q' | 'k' | 'v' | 'o')[],
    candidateMlp: false,
    attentionBias: false,
    tie: false,
    ropeTheta: 10000,
    rmsNormEps: 1e-6,
    seed: 1,
    ...spec,
  };
  if (!s.headDim) s.headDim = s.hidden / s.heads;
  const out = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'focusllm-test-'));
  fs.mkdirSync(out, { recursive: true });
  const beaconParam =
    spec.beaconParam !== undefined ? spec.beaconParam : [...s.candidates, ...(s.candidateMlp ? ['mlp'] : [])];
  const config: Record<string, unknown> = {
    vocab_size: s.vocab,
    hidden_size: s.hidden,
    intermediate_size: s.inter,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    rms_norm_eps: s.rmsNormEps,
    rope_theta: s.ropeTheta,
    max_position_embeddings: 4096,
    tie_word_embeddings: s.tie,
    attention_bias: s.attentionBias,
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: 'silu',
    model_type: 'llama',
    ...(s.headDim !== s.hidden / s.heads ? { head_dim: s.headDim } : {}),
    ...(beaconParam ? { beacon_param: beaconParam } : {}),
    ...(spec.ropeScaling ? { rope_scaling: spec.ropeScaling } : {}),
    ...spec.config,
  };
  // Shards take the tensors in turn, so that each holds some of every layer.
  const tensors = tensorSources(tinyTensors(s));
  const shards = Math.max(1, spec.shards ?? 1);
  writeCheckpoint(out, config, Array.from({ length: shards }, (_, i) => tensors.filter((_, j) => j % shards === i)));
  return out;
}
