// The native addon (build/Release/focusllm.node), one to one with
// cpp/napi/addon.cpp. lib/ talks to C++ through these types only.

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
  /** which candidate projections the checkpoint has: of "q", "k", "v", "o", "mlp" */
  candidateProjections: string[];
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
  /** cache to attend to and append to; without one the keys live in scratch */
  pool?: KvPool;
  slot?: number;
  /** fully visible prefix: candidates [0, nPrefix) of this set, at positions 0..nPrefix-1 */
  prefix?: CandidateSet;
  nPrefix?: number;
  /** the last token is a candidate: candidate projections; its KV goes to cand[candSlot] */
  cand?: CandidateSet;
  candSlot?: number;
  /** 0 none, 1 the last token's, 2 every token's */
  logits?: LogitsMode;
  /** with logits 2: only the rows of tokens logitsFrom.. (default 0) */
  logitsFrom?: number;
}

export declare class Model {
  private constructor();
  readonly config: NativeConfig;
  readonly info: NativeModelInfo;
  readonly backend: 'cpu' | 'cuda';
  readonly backendDescription: string;
  readonly disposed: boolean;
  /** dtype "act" = the backend's activation type */
  createKvPool(slots: number, capacity: number, dtype: NativeDtype | 'act'): KvPool;
  createCandidateSet(slots: number): CandidateSet;
  /** Runs the batch off the main thread; resolves with the requested logits rows, (rows, vocab). */
  run(batch: NativeSeq[], control?: RunControl): Promise<Float32Array>;
  /**
   * The same run, but every requested logits row is sampled on the backend
   * (only the token crosses to the host): one token per row, drawn with
   * uniforms[row] in [0, 1). See lib/sampling.ts sampleLogits for the rule.
   */
  runSample(batch: NativeSeq[], params: NativeSampleParams, uniforms: Float32Array, control?: RunControl): Promise<Int32Array>;
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
}
