// Token sampling: greedy, temperature, top-k, top-p, seeded. The rule is
// written once per place that must run it, and this file is its reference:
//   - here, for users who sample logits themselves (makeSampler) and for the
//     seeded uniform stream the native samplers draw with (makeNativeSampler);
//   - cpp/cpu/sampling.cpp and cuda/sampling.cu (core/backend.h SampleParams),
//     which generation uses so that only the chosen token leaves the backend:
//     the CUDA one cannot call into JavaScript, and a round trip of the logits
//     per token is what they exist to avoid.
// test/sampling.test.ts holds the CPU backend to this rule (same logits, same
// uniforms, same tokens); test/cpp/cuda_ops_test.cu holds the CUDA kernel to
// the kept set and probabilities of the same rule.

export interface SamplingOptions {
  /** 0 (default) = greedy; otherwise logits are divided by it before softmax */
  temperature?: number;
  /** keep only the k most likely tokens (0 = all) */
  topK?: number;
  /** keep the smallest set of most likely tokens whose probability reaches p (1 = all) */
  topP?: number;
  /** seed of the random generator (default: random) */
  seed?: number;
}

/** mulberry32: small, fast, good enough for sampling, reproducible from a 32-bit seed. */
export function makeRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Index of the largest value (the lowest index among equal maxima). */
export function argmax(logits: ArrayLike<number>, offset = 0, n = logits.length - offset): number {
  let best = 0;
  let bv = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = logits[offset + i];
    if (v > bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}

export interface CheckedSampling {
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
}

export function checkSampling(o: SamplingOptions): CheckedSampling {
  const temperature = o.temperature ?? 0;
  const topK = o.topK ?? 0;
  const topP = o.topP ?? 1;
  if (typeof temperature !== 'number' || !(temperature >= 0) || !Number.isFinite(temperature))
    throw new Error(`option temperature must be a number >= 0, got ${String(o.temperature)}`);
  if (!Number.isInteger(topK) || topK < 0) throw new Error(`option topK must be an integer >= 0, got ${String(o.topK)}`);
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1))
    throw new Error(`option topP must be a number in (0, 1], got ${String(o.topP)}`);
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 32);
  if (!Number.isInteger(seed)) throw new Error(`option seed must be an integer, got ${String(o.seed)}`);
  return { temperature, topK, topP, seed };
}

/**
 * One draw from `logits` with uniform number u in [0, 1): greedy at
 * temperature 0; otherwise the kept set is a prefix of the order "descending
 * logit, ties to the lower index" (top-k, then the shortest prefix whose
 * weight reaches topP of theirs), and the draw is the first kept token in
 * vocabulary order whose running weight reaches u times the kept total.
 */
export function sampleLogits(logits: ArrayLike<number>, o: Omit<CheckedSampling, 'seed'>, u: number): number {
  const n = logits.length;
  if (o.temperature === 0) return argmax(logits);
  const mx = logits[argmax(logits)];
  const w = (i: number) => Math.exp((logits[i] - mx) / o.temperature);
  let keep: Uint8Array | null = null;
  const topK = o.topK > 0 && o.topK < n;
  if (topK || o.topP < 1) {
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
    let k = topK ? o.topK : n;
    if (o.topP < 1) {
      let total = 0;
      for (let i = 0; i < k; i++) total += w(order[i]);
      let acc = 0;
      for (let i = 0; i < k; i++) {
        acc += w(order[i]);
        if (acc >= o.topP * total) {
          k = i + 1;
          break;
        }
      }
    }
    keep = new Uint8Array(n);
    for (let i = 0; i < k; i++) keep[order[i]] = 1;
  }
  let total = 0;
  let last = 0;
  for (let i = 0; i < n; i++)
    if (!keep || keep[i]) {
      total += w(i);
      last = i;
    }
  const target = u * total;
  let acc = 0;
  for (let i = 0; i < n; i++) {
    if (keep && !keep[i]) continue;
    acc += w(i);
    if (acc >= target) return i;
  }
  return last;
}

/** A host sampler: logits in, token id out. */
export function makeSampler(opts: SamplingOptions = {}): (logits: Float32Array) => number {
  const o = checkSampling(opts);
  if (o.temperature === 0) return (l) => argmax(l);
  const rng = makeRng(o.seed);
  return (logits) => sampleLogits(logits, o, rng());
}

/** Sampling done by the backend: its parameters and the next uniform number of the seeded stream. */
export interface NativeSampler {
  readonly params: { temperature: number; topK: number; topP: number };
  /** the uniform number for the next draw (the same stream makeSampler() uses) */
  nextUniform(): number;
}

export function makeNativeSampler(opts: SamplingOptions = {}): NativeSampler {
  const o = checkSampling(opts);
  const rng = makeRng(o.seed);
  return {
    params: { temperature: o.temperature, topK: o.topK, topP: o.topP },
    // Greedy draws consume nothing, as in makeSampler().
    nextUniform: () => (o.temperature === 0 ? 0 : rng()),
  };
}
