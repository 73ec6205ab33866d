// Token sampling on host logits: greedy, temperature, top-k, top-p, seeded.

export interface SamplingOptions {
  /** 0 (default) = greedy; otherwise logits are divided by it before softmax */
  temperature?: number;
  /** keep only the k most likely tokens (0 = all) */
  topK?: number;
  /** keep the smallest set of tokens whose probability reaches p (1 = all) */
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

export function checkSampling(o: SamplingOptions): Required<Omit<SamplingOptions, 'seed'>> & { seed: number } {
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

/** A sampler: logits in, token id out. */
export function makeSampler(opts: SamplingOptions = {}): (logits: Float32Array) => number {
  const o = checkSampling(opts);
  if (o.temperature === 0) return (l) => argmax(l);
  const rng = makeRng(o.seed);
  return (logits) => {
    const n = logits.length;
    let idx = Array.from({ length: n }, (_, i) => i);
    if (o.topK > 0 && o.topK < n) {
      idx.sort((a, b) => logits[b] - logits[a]);
      idx = idx.slice(0, o.topK);
    }
    let mx = -Infinity;
    for (const i of idx) mx = Math.max(mx, logits[i]);
    const p = idx.map((i) => Math.exp((logits[i] - mx) / o.temperature));
    let sum = p.reduce((s, v) => s + v, 0);
    if (o.topP < 1) {
      const order = p.map((_, j) => j).sort((a, b) => p[b] - p[a]);
      let acc = 0;
      const keep: number[] = [];
      for (const j of order) {
        keep.push(j);
        acc += p[j] / sum;
        if (acc >= o.topP) break;
      }
      idx = keep.map((j) => idx[j]);
      const kept = keep.map((j) => p[j]);
      sum = kept.reduce((s, v) => s + v, 0);
      let r = rng() * sum;
      for (let j = 0; j < kept.length; j++) {
        r -= kept[j];
        if (r <= 0) return idx[j];
      }
      return idx[idx.length - 1];
    }
    let r = rng() * sum;
    for (let j = 0; j < p.length; j++) {
      r -= p[j];
      if (r <= 0) return idx[j];
    }
    return idx[idx.length - 1];
  };
}
