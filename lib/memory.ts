// Memory a context needs, computed from the architecture (the same sizes the
// native side allocates: KvPool, CandidateSet, the runner's workspace).
import type { NativeConfig, NativeDtype } from '../typings/native';
import { chunkCount, type FocusParams } from './plan';

export interface MemoryEstimate {
  mode: 'native' | 'focus';
  chunks: number;
  /** per-chunk KV caches (needed to generate more than one token) */
  chunkCaches: number;
  /** the chunks' candidate KVs */
  candidates: number;
  /** native mode: the sequence's KV cache */
  localCache: number;
  /** the runner's scratch (activations, scratch KV, logits) at its largest */
  activations: number;
  /** total with chunk caches kept / with keepChunkCaches: false */
  totalKeep: number;
  totalScoring: number;
  /**
   * model.ingestDocument() of `context` tokens: the caches the document keeps
   * (every chunkSize block of its tokens, no prompt), held while it lives;
   * each question then needs about the figures above on top.
   */
  document: { chunks: number; chunkCaches: number };
}

const BYTES: Record<NativeDtype, number> = { f32: 4, f16: 2, bf16: 2 };

export function estimateMemory(
  c: NativeConfig,
  opts: {
    context: number;
    params: FocusParams;
    maxNewTokens: number;
    cacheType: NativeDtype;
    actDtype: NativeDtype;
    maxBatchTokens: number;
    /** the session's step mode: every mode but exact keeps the local sequence's KV cache (default exact) */
    stepMode?: string;
  },
): MemoryEstimate {
  const kvd = c.numKvHeads * c.headDim;
  const qd = c.numHeads * c.headDim;
  const act = BYTES[opts.actDtype];
  const L = opts.context;
  const p = opts.params;
  const k = chunkCount(L, p);
  const docChunks = Math.ceil(L / p.chunkSize);
  const document = { chunks: docChunks, chunkCaches: 2 * c.numLayers * docChunks * Math.min(p.chunkSize, L) * kvd * BYTES[opts.cacheType] };
  // Per row of the runner's workspace: x, h, q, k, v, att, gate, up, scratch K and V, rotary table.
  const perRow = (2 * c.hiddenSize + 2 * qd + 4 * kvd + 2 * c.intermediateSize) * act + c.headDim * 4 + 200;
  const logits = 256 * (c.vocabSize * 4 + c.hiddenSize * act);
  if (k === 0) {
    const n = L + 1 + opts.maxNewTokens;
    const localCache = 2 * c.numLayers * n * kvd * act;
    const activations = Math.max(opts.maxBatchTokens, 1) * perRow + logits;
    return {
      mode: 'native',
      chunks: 0,
      chunkCaches: 0,
      candidates: 0,
      localCache,
      activations,
      totalKeep: localCache + activations,
      totalScoring: localCache + activations,
      document,
    };
  }
  const M = L - p.localWindow;
  const t = Math.min(p.promptCap, p.chunkSize, p.localWindow);
  const promptLen = t + 1; // withBos(x[L-t:L]) is t or t+1 tokens
  const chunkLen = Math.min(p.chunkSize, M) + promptLen;
  const cap = chunkLen + opts.maxNewTokens;
  const chunkCaches = 2 * k * c.numLayers * cap * kvd * BYTES[opts.cacheType];
  const candidates = 2 * c.numLayers * k * kvd * act;
  const localRows = p.localWindow + 1 + opts.maxNewTokens;
  const rowsKeep = Math.max(opts.maxBatchTokens, localRows);
  const rowsScoring = Math.max(opts.maxBatchTokens, chunkLen, localRows);
  const prefix = k * (kvd * act + c.headDim * 4);
  const localCache = (opts.stepMode ?? 'exact') === 'exact' ? 0 : 2 * c.numLayers * localRows * kvd * act;
  return {
    mode: 'focus',
    chunks: k,
    chunkCaches,
    candidates,
    localCache,
    activations: rowsKeep * perRow + logits + prefix,
    totalKeep: chunkCaches + candidates + localCache + rowsKeep * perRow + logits + prefix,
    totalScoring: candidates + rowsScoring * perRow + logits + prefix,
    document,
  };
}

export function formatBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(2)} ${u[i]}`;
}
