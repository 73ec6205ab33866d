// The sequence FocusLLM's ingest runs for the chunk of a pass-key prompt that
// holds the key: that chunk, then the dynamic prompt (chunk ++ P, cut by
// lib/plan.ts planIngest). Its last token is the chunk's candidate. Used to
// measure the base there (passkey-ceiling.ts --chunk-lengths) and to train it
// there (answers.ts --chunk-share).
import { planIngest, type FocusParams } from '../../lib/plan';

/**
 * chunk ++ P for the chunk that holds the first of `digits` in `ids`, or null
 * when the prompt runs natively or the digits are not in memory (they lie in
 * the local window). The key's last digits may fall in the next chunk.
 */
export function keyChunkSequence(ids: readonly number[], digits: readonly number[], params: FocusParams, bosId: number): number[] | null {
  const plan = planIngest(ids, params, bosId);
  if (plan.mode !== 'focus' || digits.length === 0) return null;
  let at = 1;
  while (at < plan.memory && !digits.every((d, j) => ids[at + j] === d)) at++;
  if (at >= plan.memory) return null;
  return [...plan.chunks[Math.floor(at / params.chunkSize)], ...plan.prompt];
}
