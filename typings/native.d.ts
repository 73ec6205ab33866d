// The native addon (build/Release/focusllm.node), one to one with
// cpp/napi/ (addon.cpp is its entry). lib/ talks to C++ through these types only.

export type NativeDtype = 'f32' | 'f16' | 'bf16';

export interface NativeConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: 'none' | 'linear' | 'llama3';
  ropeFactor: number;
  tieWordEmbeddings: boolean;
  attentionBias: boolean;
  bosTokenId: number;
  eosTokenIds: number[];
  maxPositionEmbeddings: number;
  /** null when config.json has no beacon_param */
  beaconParam: string[] | null;
  torchDtype: string;
}

export interface NativeModelInfo {
  /** base model parameters */
  parameters: number;
  /** parameters of the candidate projections in use */
  candidateParameters: number;
  /** storage type of most weights: "F32", "F16", "BF16" */
  dtype: string;
  fileBytes: number;
  /** bytes the backend holds for weights (0 on the CPU: they stay memory-mapped) */
  backendWeightBytes: number;
  /**
   * which candidate projections the checkpoint has, in every layer: of "q", "k", "v", "o", "mlp"
   * (a projection present in some layers only does not load)
   */
  candidateProjections: string[];
  /**
   * tensors of the checkpoint that the model does not read, sorted (known unused ones, such as
   * model.beacon_embed_tokens.weight, excepted): candidates beacon_param leaves out, a lm_head
   * with tied embeddings, or names the loader does not know (a misspelt tensor)
   */
  unusedTensors: string[];
  /** activation / candidate KV storage type of the backend */
  actDtype: NativeDtype;
  maxBatchTokens: number;
}

/** Cancellation and progress of one run, shared with the native thread. */
export declare class RunControl {
  constructor();
  cancel(): void;
  readonly cancelled: boolean;
  readonly tokensDone: number;
  readonly tokensTotal: number;
}

/** KV caches of `slots` sequences, `capacity` tokens each, in one allocation. */
export declare class KvPool {
  private constructor();
  readonly slots: number;
  readonly capacity: number;
  readonly bytes: number;
  readonly dtype: NativeDtype;
  readonly disposed: boolean;
  /** tokens cached in a slot */
  length(slot: number): number;
  /** forget the cached tokens of a slot past `length` */
  truncate(slot: number, length: number): void;
  dispose(): void;
}

/** Candidate KVs (keys before rotary, and values) of `slots` chunks. */
export declare class CandidateSet {
  private constructor();
  readonly slots: number;
  readonly bytes: number;
  readonly disposed: boolean;
  /** number of slots that hold a candidate */
  filled(): number;
  dispose(): void;
}

export const enum LogitsMode {
  None = 0,
  Last = 1,
  All = 2,
}

/** One sequence of a batched step. */
export interface NativeSeq {
  /** new tokens, at least one */
  tokens: Int32Array;
  /**
   * cache to attend to and append to; without one the keys live in scratch.
   * A sequence with a cache runs in micro-batches of at most maxBatchTokens
   * rows, unless it has a prefix: then, like one without a cache, it runs whole.
   */
  pool?: KvPool;
  slot?: number;
  /**
   * fully visible prefix: candidates [0, nPrefix) of this set, at positions
   * 0..nPrefix-1. A candidate that an earlier sequence of the same batch
   * writes is read as written by it (one written by a later one is an error).
   */
  prefix?: CandidateSet;
  nPrefix?: number;
  /** the last token is a candidate: candidate projections; its KV goes to cand[candSlot] */
  cand?: CandidateSet;
  candSlot?: number;
  /** 0 none, 1 the last token's, 2 every token's */
  logits?: LogitsMode;
  /** with logits 2: only the rows of tokens logitsFrom.. (default 0) */
  logitsFrom?: number;
  /**
   * seeded cache: before any work of the run, the (empty) slot of `pool`
   * gets a copy of the first baseLength cached tokens of base's slot
   * baseSlot (same dtype); the tokens then run on top. base is only read.
   */
  base?: KvPool;
  baseSlot?: number;
  baseLength?: number;
}

export declare class Model {
  private constructor();
  readonly config: NativeConfig;
  readonly info: NativeModelInfo;
  readonly backend: 'cpu' | 'cuda';
  readonly backendDescription: string;
  readonly disposed: boolean;
  /** bytes of the runner's scratch now allocated (activations, logits, tables); grows only when a run needs more */
  readonly scratchBytes: number;
  /** milliseconds the last finished run spent in the native runner (validation to results; no N-API or JS) */
  readonly lastRunMs: number;
  /** dtype "act" = the backend's activation type */
  createKvPool(slots: number, capacity: number, dtype: NativeDtype | 'act'): KvPool;
  createCandidateSet(slots: number): CandidateSet;
  /**
   * A slot's first `length` cached tokens, copied off the main thread:
   * (2, numLayers, length, numKvHeads*headDim) elements of the pool's dtype,
   * keys then values (keys rotated, as cached).
   */
  kvRead(pool: KvPool, slot: number, length: number): Promise<Uint8Array>;
  /** Writes kvRead's layout into a slot and sets its length (bytes.length must match exactly). */
  kvWrite(pool: KvPool, slot: number, bytes: Uint8Array, length: number): Promise<void>;
  /** Runs the batch off the main thread; resolves with the requested logits rows, (rows, vocab). */
  run(batch: NativeSeq[], control?: RunControl): Promise<Float32Array>;
  /**
   * The same run, but every requested logits row is sampled on the backend
   * (only the token crosses to the host): one token per row, drawn with
   * uniforms[row] in [0, 1). See lib/sampling.ts sampleLogits for the rule.
   */
  runSample(batch: NativeSeq[], params: NativeSampleParams, uniforms: Float32Array, control?: RunControl): Promise<Int32Array>;
  /**
   * Makes this model trainable (CPU backend only). The trainable tensors get
   * float32 master copies that the model itself then runs with, so
   * generation after training uses the trained weights. One trainer per model.
   */
  createTrainer(options: NativeTrainerOptions): Trainer;
  dispose(): void;
}

/** What a trainer trains. */
export interface NativeTrainerOptions {
  /**
   * 'candidate': the candidate projections named by config.json's
   * beacon_param (default q, k, v, o; mlp adds beacon_up/down), missing
   * tensors starting as copies of their base projections; 'all': every
   * tensor of the checkpoint the model runs with (not beacon_embed_tokens,
   * nor candidate tensors beacon_param leaves out: they are copied as they are).
   */
  params: 'candidate' | 'all';
  /** keep only each layer's input and recompute the layer in the backward (less memory, ~1/3 more compute) */
  recompute?: boolean;
}

/** A trainable tensor, by its checkpoint name (e.g. model.layers.0.self_attn.beacon_q_proj.weight). */
export interface NativeTrainTensor {
  name: string;
  shape: number[];
}

/** One FocusLLM training example (DESIGN 1b): loss on the single token ids[localStart + localSize]. */
export interface NativeFocusExample {
  kind: 'focus';
  /** x, BOS first */
  ids: Int32Array;
  /** continuation: memory = x[0:s]; repetition: memory = all of x */
  loss: 'continuation' | 'repetition';
  /** s: first token of the local window (>= 1 for continuation) */
  localStart: number;
  /** l: local window length (>= 1); s + l < ids.length */
  localSize: number;
  /** C: chunk length */
  chunkSize: number;
  /** cap on the dynamic prompt, t = min(promptCap, C, l) */
  promptCap: number;
  /** the example's gradient is multiplied by this (default 1) */
  weight?: number;
}

/** Causal LM example: mean next-token cross-entropy over ids[lossStart..] (ids.length >= 2). */
export interface NativeLmExample {
  kind: 'lm';
  ids: Int32Array;
  /** the first scored token, 1..ids.length-1 (default 1: every next token); the ones before are context only */
  lossStart?: number;
  /** the example's gradient is multiplied by this (default 1) */
  weight?: number;
}

export type NativeTrainExample = NativeFocusExample | NativeLmExample;

export interface NativeAdamW {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** gradients are multiplied by this before the update (clipping, averaging) */
  gradScale: number;
}

export declare class Trainer {
  private constructor();
  readonly params: 'candidate' | 'all';
  /** trainable tensors, in a fixed order */
  readonly tensors: NativeTrainTensor[];
  /** params 'candidate': which candidate projections train ("q", "k", "v", "o", "mlp"), for config.json's beacon_param */
  readonly candidateParams: string[];
  /** optimizer steps taken (restored by loadState) */
  readonly step: number;
  readonly disposed: boolean;
  /**
   * Forward + backward of every example, off the main thread; each example's
   * gradient, times its weight, is added to the gradient buffers. Resolves
   * with each example's (unweighted) loss. Validates every example first.
   */
  accumulate(examples: NativeTrainExample[], control?: RunControl): Promise<Float64Array>;
  /**
   * Scratch bytes one example needs (activations, gradients, the chunks'
   * float32 caches), reserved before it runs; on top of the model and 16
   * bytes per trainable element (master weight, gradient, two moments).
   */
  exampleBytes(example: NativeTrainExample): number;
  /** zeroes the gradient buffers */
  zeroGrad(): void;
  /** global L2 norm of the accumulated gradients (before gradScale) */
  gradNorm(): number;
  /** one AdamW update of every trainable tensor (bias-corrected, decoupled weight decay) */
  applyAdamW(options: NativeAdamW): Promise<void>;
  /** copies of a trainable tensor's gradient and current weight (row-major) */
  getGradient(name: string): Float32Array;
  getWeight(name: string): Float32Array;
  /**
   * Writes one safetensors file: every tensor of the base checkpoint, each
   * trainable one replaced by its float32 trained weight, and candidate
   * tensors the base lacked added. Never writes into the base checkpoint's
   * folder's files (the path must not be one of them).
   */
  saveWeights(path: string): Promise<void>;
  /** optimizer state (AdamW moments and step) to / from a safetensors file */
  saveState(path: string): Promise<void>;
  loadState(path: string): Promise<void>;
  /** frees the gradients and optimizer state; the model keeps the trained weights */
  dispose(): void;
}

export interface NativeSampleParams {
  /** 0 = greedy */
  temperature: number;
  topK: number;
  topP: number;
}

export interface NativeLoadOptions {
  backend?: 'cpu' | 'cuda';
  threads?: number;
  device?: number;
  maxBatchTokens?: number;
  beaconParam?: string[];
}

export interface NativeBackends {
  cpu: true;
  cuda: { compiled: boolean; available: boolean; reason: string };
}

export interface NativeAddon {
  version: string;
  loadModel(dir: string, options?: NativeLoadOptions): Promise<Model>;
  readConfig(dir: string): NativeConfig;
  backends(): NativeBackends;
  /** the instruction set of the CPU kernels, e.g. "kernels avx512 (...)" */
  cpuDescription(): string;
  RunControl: typeof RunControl;
  KvPool: typeof KvPool;
  CandidateSet: typeof CandidateSet;
  Model: typeof Model;
  Trainer: typeof Trainer;
}
