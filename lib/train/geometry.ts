// Sampling the geometry of one FocusLLM training example (DESIGN.md 1b): the
// local window [s, s+l), the chunk length C and the loss kind. Pure functions
// over a seeded Rng; the native trainer computes the loss from them.
import type { NativeFocusExample } from '../../typings/native';
import type { Rng } from './rng';

export type FocusLossKind = 'continuation' | 'repetition';
/** random: one kind per example, 50/50; both: both kinds on the same geometry, summed; or only one kind */
export type LossMix = 'random' | 'both' | FocusLossKind;

export const LOSS_MIXES: readonly LossMix[] = ['random', 'both', 'continuation', 'repetition'];
/**
 * Where the scored token lies: block (the official sampling: inside a full
 * W-block, see sampleGeometry) or last (the document's last token, l still
 * drawn: for documents built so that their last token needs the memory, such
 * as a pass-key prompt ending inside its answer).
 */
export type TargetMode = 'block' | 'last';
export const TARGET_MODES: readonly TargetMode[] = ['block', 'last'];

/** The official training window and chunk lengths ("memory strides"). */
export const DEFAULT_WINDOW = 3072;
export const DEFAULT_CHUNK_SIZES: readonly number[] = [64, 128, 256, 512, 1024, 2048];
export const OFFICIAL_LOCAL_MIN = 30;

export interface GeometryOptions {
  /** W: the training window */
  window: number;
  /** smallest local window l (default: defaultLocalMin(W)) */
  localMin: number;
  /** largest local window l (default W - 2) */
  localMax: number;
  /** C is drawn uniformly from these */
  chunkSizes: readonly number[];
  losses: LossMix;
  /** where the target lies (default block, the official sampling) */
  target: TargetMode;
}

export interface Geometry {
  /** the loss kinds computed on this geometry (two with losses "both") */
  kinds: FocusLossKind[];
  /** s: first token of the local window */
  localStart: number;
  /** l: local window length; the target is x[s + l] */
  localSize: number;
  /** C: chunk length */
  chunkSize: number;
}

/**
 * The smallest local window for a training window W: the official 30, scaled
 * down for small windows to floor(W / 8) (at least 1), so that short test
 * windows still draw from a wide range of lengths: W = 3072 gives 30, W = 32
 * gives 4, W = 4 gives 1.
 */
export function defaultLocalMin(window: number): number {
  return Math.max(1, Math.min(OFFICIAL_LOCAL_MIN, Math.floor(window / 8)));
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

/** Fills the defaults and checks every value; an Error names the option. */
export function resolveGeometry(o: Partial<GeometryOptions> = {}): GeometryOptions {
  const window = o.window ?? DEFAULT_WINDOW;
  if (!isInt(window) || window < 3) throw new Error(`option window must be an integer >= 3, got ${String(o.window)}`);
  const localMin = o.localMin ?? defaultLocalMin(window);
  const localMax = o.localMax ?? window - 2;
  if (!isInt(localMax) || localMax < 1 || localMax > window - 2)
    throw new Error(`option localMax must be an integer from 1 to window - 2 (${window - 2}), got ${String(o.localMax)}`);
  if (!isInt(localMin) || localMin < 1 || localMin > localMax)
    throw new Error(`option localMin must be an integer from 1 to localMax (${localMax}), got ${String(o.localMin)}`);
  const chunkSizes = o.chunkSizes ?? DEFAULT_CHUNK_SIZES;
  if (!Array.isArray(chunkSizes) || chunkSizes.length === 0) throw new Error('option chunkSizes must be a non-empty list of chunk lengths');
  chunkSizes.forEach((c, i) => {
    if (!isInt(c) || c < 1) throw new Error(`option chunkSizes[${i}] must be a positive integer, got ${String(c)}`);
  });
  const losses = o.losses ?? 'random';
  if (!LOSS_MIXES.includes(losses)) throw new Error(`option losses must be one of ${LOSS_MIXES.join(', ')}, got ${JSON.stringify(o.losses)}`);
  const target = o.target ?? 'block';
  if (!TARGET_MODES.includes(target)) throw new Error(`option target must be one of ${TARGET_MODES.join(', ')}, got ${JSON.stringify(o.target)}`);
  return { window, localMin, localMax, chunkSizes: [...chunkSizes], losses, target };
}

/**
 * One geometry for a sequence of n tokens (n >= W). Draws, in this order:
 * the loss kind (losses "random" only), l, C, then s:
 * - continuation (and "both"): s = (floor(n/W) - 1) * W + u, u uniform in
 *   [1, W - l - 1]: the local window starts in the last full W-block, at
 *   least one token of memory before it;
 * - repetition: block b uniform in [0, floor(n/W) - 1], s = b * W + u, u
 *   uniform in [0, W - l - 1].
 * Either way s + l <= (block + 1) * W - 1 < n: the target x[s + l] exists.
 * With target "last" (either kind), s = n - 1 - l: the target is x[n - 1]
 * (no draw for s).
 */
export function sampleGeometry(rng: Rng, n: number, g: GeometryOptions): Geometry {
  const W = g.window;
  if (!isInt(n) || n < W) throw new Error(`sampleGeometry: a sequence of ${n} tokens is shorter than the window ${W}`);
  const kinds: FocusLossKind[] =
    g.losses === 'both' ? ['continuation', 'repetition'] : g.losses === 'random' ? [rng.next() < 0.5 ? 'continuation' : 'repetition'] : [g.losses];
  const l = rng.int(g.localMin, g.localMax);
  const C = rng.pick(g.chunkSizes);
  const blocks = Math.floor(n / W);
  let s: number;
  if (g.target === 'last') s = n - 1 - l;
  else if (kinds[0] === 'continuation') s = (blocks - 1) * W + rng.int(1, W - l - 1);
  else s = rng.int(0, blocks - 1) * W + rng.int(0, W - l - 1);
  return { kinds, localStart: s, localSize: l, chunkSize: C };
}

/** The native examples of one geometry (one per loss kind), each with gradient weight `weight`. */
export function focusExamples(ids: Int32Array, g: Geometry, promptCap: number, weight: number): NativeFocusExample[] {
  return g.kinds.map((loss) => ({
    kind: 'focus',
    ids,
    loss,
    localStart: g.localStart,
    localSize: g.localSize,
    chunkSize: g.chunkSize,
    promptCap,
    weight,
  }));
}

/**
 * Tokens the forward of one focus example runs: the memory (s or n tokens),
 * one dynamic prompt of t + 1 tokens per chunk, and the local window with its
 * BOS. For throughput figures.
 */
export function focusTokens(n: number, g: Geometry, promptCap: number): number {
  const t = Math.min(promptCap, g.chunkSize, g.localSize);
  let total = 0;
  for (const kind of g.kinds) {
    const m = kind === 'continuation' ? g.localStart : n;
    total += m + Math.ceil(m / g.chunkSize) * (t + 1) + g.localSize + 1;
  }
  return total;
}
