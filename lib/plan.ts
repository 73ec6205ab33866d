// The FocusLLM chunk plan (DESIGN.md section 1): pure functions, no native code.

export interface FocusParams {
  /** tokens of local context (default 2048) */
  localWindow: number;
  /** memory chunk length, the official "memory_stride" (default 2048) */
  chunkSize: number;
  /** cap on the dynamic prompt (default 512) */
  promptCap: number;
  /** inputs shorter than this run natively (default 4096) */
  minChunkedLength: number;
}

export const DEFAULT_FOCUS: Readonly<FocusParams> = Object.freeze({
  localWindow: 2048,
  chunkSize: 2048,
  promptCap: 512,
  minChunkedLength: 4096,
});

/** Fills defaults and checks `minChunkedLength > localWindow >= 1`, `chunkSize >= 1`, `promptCap >= 1`. */
export function resolveFocusParams(p: Partial<FocusParams> = {}): FocusParams {
  const out = { ...DEFAULT_FOCUS };
  for (const key of Object.keys(DEFAULT_FOCUS) as (keyof FocusParams)[]) {
    const v = p[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
      throw new Error(`focus option ${key} must be a positive integer, got ${String(v)}`);
    out[key] = v;
  }
  if (!(out.minChunkedLength > out.localWindow))
    throw new Error(
      `focus option minChunkedLength (${out.minChunkedLength}) must be larger than localWindow (${out.localWindow})`,
    );
  return out;
}

export function withBos(x: readonly number[], bosId: number): number[] {
  return x.length > 0 && x[0] === bosId ? x.slice() : [bosId, ...x];
}

export type Plan =
  | { mode: 'native'; local: number[] }
  | {
      mode: 'focus';
      /** memory tokens: x[0 : memory] */
      memory: number;
      /** the dynamic prompt P = withBos(x[L-t : L]) */
      prompt: number[];
      /** chunk i's tokens, without the prompt */
      chunks: number[][];
      /** the local sequence withBos(x[memory : L]) */
      local: number[];
    };

/** Cuts input ids into the FocusLLM plan. */
export function planIngest(ids: readonly number[], params: FocusParams, bosId: number): Plan {
  const L = ids.length;
  if (L === 0) throw new Error('cannot ingest an empty input');
  if (L < params.minChunkedLength) return { mode: 'native', local: withBos(ids, bosId) };
  const M = L - params.localWindow;
  const t = Math.min(params.promptCap, params.chunkSize, params.localWindow);
  const prompt = withBos(ids.slice(L - t), bosId);
  const chunks: number[][] = [];
  for (let b = 0; b < M; b += params.chunkSize) chunks.push(ids.slice(b, Math.min(b + params.chunkSize, M)));
  return { mode: 'focus', memory: M, prompt, chunks, local: withBos(ids.slice(M), bosId) };
}

/** Number of chunks an input of `length` tokens is cut into (0 when it runs natively). */
export function chunkCount(length: number, params: FocusParams): number {
  if (length < params.minChunkedLength) return 0;
  return Math.ceil((length - params.localWindow) / params.chunkSize);
}
