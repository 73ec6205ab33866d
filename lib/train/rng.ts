// A seeded random generator whose state can be saved and restored (resume).
// Same mulberry32 stream as lib/sampling.ts makeRng, with the state exposed.

export class Rng {
  private a: number;

  constructor(seed: number) {
    this.a = seed >>> 0;
  }

  /** the whole state: one 32-bit integer */
  get state(): number {
    return this.a;
  }

  static fromState(state: number): Rng {
    if (!Number.isInteger(state) || state < 0 || state > 0xffffffff) throw new Error(`RNG state must be a 32-bit unsigned integer, got ${String(state)}`);
    return new Rng(state);
  }

  /** goes back to a saved state */
  restore(state: number): void {
    this.a = state >>> 0;
  }

  /** uniform in [0, 1) */
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** uniform integer in [lo, hi] (both included; lo <= hi) */
  int(lo: number, hi: number): number {
    if (!(hi >= lo)) throw new Error(`Rng.int: empty range [${lo}, ${hi}]`);
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** one element of a non-empty list */
  pick<T>(list: readonly T[]): T {
    return list[this.int(0, list.length - 1)];
  }

  /** an in-place Fisher-Yates shuffle */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }
}

/** A 32-bit seed derived from a seed and a stream number (splitmix-like mixing). */
export function deriveSeed(seed: number, stream: number): number {
  let z = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(stream >>> 0, 0x85ebca6b)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x7feb352d) >>> 0;
  z = Math.imul(z ^ (z >>> 15), 0x846ca68b) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}
