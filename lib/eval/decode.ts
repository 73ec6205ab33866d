// Greedy decoding and token scoring on a FocusLLM session, with the timings
// and session facts the evaluations report.
import type { Model } from '../model';
import type { IngestProgress, SessionOptions } from '../session';

export type FocusOptions = Omit<SessionOptions, 'maxSteps'>;

export interface GreedyOptions {
  maxNewTokens: number;
  /** ids that end generation (not part of the output) */
  stopIds?: Iterable<number>;
  /** stop ids cannot be chosen before this many new tokens (like HF generate's min_length) */
  minNewTokens?: number;
  /** called after each new token with all new tokens so far; true ends generation */
  stopWhen?: (ids: readonly number[]) => boolean;
  focus?: FocusOptions;
  signal?: AbortSignal;
  onIngestProgress?: (p: IngestProgress) => void;
}

export interface GreedyResult {
  ids: number[];
  /** why generation ended */
  stop: 'eos' | 'stopWhen' | 'maxNewTokens';
  inputTokens: number;
  ingestSeconds: number;
  decodeSeconds: number;
  /** "native" or "focus": how the session ran the input */
  mode: 'native' | 'focus';
  chunks: number;
}

function argmaxExcept(logits: Float32Array, banned: Set<number> | null): number {
  let best = -1;
  let bv = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i];
    if (v > bv && !(banned && banned.has(i))) {
      bv = v;
      best = i;
    }
  }
  // every logit -inf or NaN: fall back to the first allowed id
  if (best < 0) for (let i = 0; i < logits.length && best < 0; i++) if (!banned?.has(i)) best = i;
  return best;
}

/** Greedy decoding after `input` on a FocusLLM session (native mode below minChunkedLength). */
export async function greedyDecode(model: Model, input: readonly number[], opts: GreedyOptions): Promise<GreedyResult> {
  const maxNew = opts.maxNewTokens;
  if (!Number.isInteger(maxNew) || maxNew < 1) throw new Error(`maxNewTokens must be a positive integer, got ${String(maxNew)}`);
  const stop = new Set(opts.stopIds ?? []);
  const minNew = opts.minNewTokens ?? 0;
  const s = model.createSession({ ...opts.focus, maxSteps: maxNew });
  try {
    const t0 = performance.now();
    let logits = await s.ingest(input, { signal: opts.signal, onProgress: opts.onIngestProgress });
    const t1 = performance.now();
    const ids: number[] = [];
    let why: GreedyResult['stop'] = 'maxNewTokens';
    for (;;) {
      const tok = argmaxExcept(logits, ids.length < minNew && stop.size ? stop : null);
      if (stop.has(tok)) {
        why = 'eos';
        break;
      }
      ids.push(tok);
      if (opts.stopWhen?.(ids)) {
        why = 'stopWhen';
        break;
      }
      if (ids.length >= maxNew) break;
      logits = await s.step(tok, { signal: opts.signal });
    }
    return {
      ids,
      stop: why,
      inputTokens: input.length,
      ingestSeconds: (t1 - t0) / 1000,
      decodeSeconds: (performance.now() - t1) / 1000,
      mode: s.mode ?? 'native',
      chunks: s.chunks,
    };
  } finally {
    s.dispose();
  }
}

/** -log softmax(row)[target], in float64 with the max-shift trick. */
export function tokenNll(logits: Float32Array, target: number, offset = 0, vocab = logits.length - offset): number {
  if (!Number.isInteger(target) || target < 0 || target >= vocab) throw new Error(`target token ${String(target)} is outside the vocabulary (${vocab})`);
  let mx = -Infinity;
  for (let i = 0; i < vocab; i++) mx = Math.max(mx, logits[offset + i]);
  let sum = 0;
  for (let i = 0; i < vocab; i++) sum += Math.exp(logits[offset + i] - mx);
  return mx + Math.log(sum) - logits[offset + target];
}
