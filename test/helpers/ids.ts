/** Deterministic pseudo-random token ids in [3, vocab) (an LCG; no BOS). */
export function pseudoIds(n: number, vocab: number, seed: number): number[] {
  const out: number[] = [];
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out.push(3 + ((s >>> 8) % (vocab - 3)));
  }
  return out;
}
