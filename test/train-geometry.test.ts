// Training example geometry (lib/train/geometry.ts) and the saveable RNG:
// bounds over many draws, determinism from a seed, the small-window rule.
import t from 'tap';

import { makeRng } from '../lib/sampling';
import {
  DEFAULT_CHUNK_SIZES,
  defaultLocalMin,
  focusExamples,
  focusTokens,
  resolveGeometry,
  sampleGeometry,
  type GeometryOptions,
} from '../lib/train/geometry';
import { deriveSeed, Rng } from '../lib/train/rng';

t.test('Rng: the makeRng stream, with a state that saves and restores', async (t) => {
  const a = new Rng(12345);
  const ref = makeRng(12345);
  for (let i = 0; i < 100; i++) t.equal(a.next(), ref(), `draw ${i}`, { diagnostic: false });
  const saved = a.state;
  const next = [a.next(), a.next(), a.int(3, 9)];
  const b = Rng.fromState(saved);
  t.same([b.next(), b.next(), b.int(3, 9)], next, 'a restored state continues the same stream');
  a.restore(saved);
  t.same([a.next(), a.next(), a.int(3, 9)], next, 'restore() too');
  const r = new Rng(7);
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const v = r.int(-2, 3);
    t.ok(v >= -2 && v <= 3, 'int in range', { diagnostic: false });
    seen.add(v);
  }
  t.same([...seen].sort((x, y) => x - y), [-2, -1, 0, 1, 2, 3], 'both ends drawn');
  t.throws(() => r.int(2, 1), /empty range/);
  t.throws(() => Rng.fromState(-1), /32-bit/);
  t.same(r.shuffle([...Array(10).keys()]).sort((x, y) => x - y), [...Array(10).keys()], 'shuffle permutes');
  t.not(deriveSeed(1, 1), deriveSeed(1, 2));
  t.not(deriveSeed(1, 1), deriveSeed(2, 1));
  t.equal(deriveSeed(5, 9), deriveSeed(5, 9));
});

t.test('the smallest local window: official 30, scaled down as floor(W/8) for small windows', async (t) => {
  t.equal(defaultLocalMin(3072), 30);
  t.equal(defaultLocalMin(240), 30);
  t.equal(defaultLocalMin(239), 29);
  t.equal(defaultLocalMin(32), 4);
  t.equal(defaultLocalMin(8), 1);
  t.equal(defaultLocalMin(3), 1);
  const g = resolveGeometry();
  t.same(g, { window: 3072, localMin: 30, localMax: 3070, chunkSizes: [...DEFAULT_CHUNK_SIZES], losses: 'random', target: 'block' }, 'the official defaults');
  t.same(resolveGeometry({ window: 32 }), { window: 32, localMin: 4, localMax: 30, chunkSizes: [...DEFAULT_CHUNK_SIZES], losses: 'random', target: 'block' });
});

t.test('bad geometry options name the option', async (t) => {
  t.throws(() => resolveGeometry({ window: 2 }), /option window must be an integer >= 3, got 2/);
  t.throws(() => resolveGeometry({ window: 31.5 }), /option window/);
  t.throws(() => resolveGeometry({ window: 32, localMax: 31 }), /option localMax must be an integer from 1 to window - 2 \(30\), got 31/);
  t.throws(() => resolveGeometry({ window: 32, localMin: 20, localMax: 10 }), /option localMin must be an integer from 1 to localMax \(10\), got 20/);
  t.throws(() => resolveGeometry({ window: 32, localMin: 0 }), /option localMin/);
  t.throws(() => resolveGeometry({ chunkSizes: [] }), /option chunkSizes must be a non-empty list/);
  t.throws(() => resolveGeometry({ chunkSizes: [4, 0] }), /option chunkSizes\[1\] must be a positive integer, got 0/);
  t.throws(() => resolveGeometry({ losses: 'half' as never }), /option losses must be one of random, both, continuation, repetition, got "half"/);
  t.throws(() => resolveGeometry({ target: 'first' as never }), /option target must be one of block, last, got "first"/);
});

t.test('target "last": every example scores the last token, l still drawn over [localMin, localMax]', async (t) => {
  const g = resolveGeometry({ window: 32, localMin: 5, localMax: 30, chunkSizes: [4, 8], target: 'last' });
  const rng = new Rng(8);
  const ls = new Set<number>();
  const kinds = new Set<string>();
  for (let i = 0; i < 3000; i++) {
    const n = rng.int(32, 200);
    const x = sampleGeometry(rng, n, g);
    if (x.localStart + x.localSize !== n - 1 || x.localStart < 1) t.fail(`n=${n}: ${JSON.stringify(x)}`);
    ls.add(x.localSize);
    kinds.add(x.kinds[0]);
  }
  t.equal(ls.size, 26, 'every l of [5, 30]');
  t.same([...kinds].sort(), ['continuation', 'repetition'], 'both kinds (losses random)');
});

function check(t: tap.Test, g: GeometryOptions, n: number, draws: number, rng: Rng) {
  const W = g.window;
  const blocks = Math.floor(n / W);
  let bad = 0;
  const kinds = { continuation: 0, repetition: 0 };
  const ls = new Set<number>();
  const cs = new Set<number>();
  const repBlocks = new Set<number>();
  for (let i = 0; i < draws; i++) {
    const x = sampleGeometry(rng, n, g);
    const { localStart: s, localSize: l, chunkSize: C } = x;
    ls.add(l);
    cs.add(C);
    const ok =
      l >= g.localMin &&
      l <= g.localMax &&
      g.chunkSizes.includes(C) &&
      s >= 0 &&
      s + l < n && // the target x[s + l] exists
      Math.floor(s / W) === Math.floor((s + l) / W) && // the window and its target stay in one W-block
      (x.kinds[0] === 'repetition' || (s >= (blocks - 1) * W + 1 && s >= 1)) && // continuation: last block, offset >= 1
      (g.losses !== 'both' || (x.kinds.length === 2 && x.kinds[0] === 'continuation' && x.kinds[1] === 'repetition')) &&
      (g.losses === 'both' || x.kinds.length === 1) &&
      (g.losses === 'random' || g.losses === 'both' || x.kinds[0] === g.losses);
    if (!ok) {
      bad++;
      if (bad < 5) t.fail(`bad geometry for n=${n}: ${JSON.stringify(x)}`);
    }
    kinds[x.kinds[0]]++;
    if (x.kinds[0] === 'repetition') repBlocks.add(Math.floor(s / W));
  }
  return { bad, kinds, ls, cs, repBlocks };
}

t.test('property: every draw respects the bounds', async (t) => {
  const rng = new Rng(99);
  let total = 0;
  for (let trial = 0; trial < 300; trial++) {
    const W = rng.int(3, 80);
    const localMax = rng.int(1, W - 2);
    const localMin = rng.int(1, localMax);
    const g = resolveGeometry({
      window: W,
      localMin,
      localMax,
      chunkSizes: [rng.int(1, 9), rng.int(1, 40)],
      losses: rng.pick(['random', 'both', 'continuation', 'repetition'] as const),
    });
    const n = rng.int(W, 5 * W + 7);
    const r = check(t, g, n, 200, rng);
    t.equal(r.bad, 0, `W=${W} l in [${localMin}, ${localMax}] n=${n} ${g.losses}`, { diagnostic: false });
    total += 200;
  }
  t.ok(total >= 60000, `${total} draws`);
});

t.test('official-like draws: every l and C is reached, kinds 50/50, repetition in every block', async (t) => {
  const g = resolveGeometry({ window: 32, chunkSizes: [4, 8] });
  const r = check(t, g, 32 * 4 + 5, 20000, new Rng(3));
  t.equal(r.bad, 0);
  t.same([...r.ls].sort((a, b) => a - b), Array.from({ length: 27 }, (_, i) => 4 + i), 'l takes every value of [4, 30]');
  t.same([...r.cs].sort((a, b) => a - b), [4, 8]);
  t.ok(Math.abs(r.kinds.continuation / 20000 - 0.5) < 0.02, `continuation share ${r.kinds.continuation / 20000}`);
  t.same([...r.repBlocks].sort(), [0, 1, 2, 3], 'repetition windows start in every full block');
  // n == W: one block; continuation starts at 1 at the earliest.
  const one = check(t, resolveGeometry({ window: 8, losses: 'continuation', chunkSizes: [2] }), 8, 5000, new Rng(4));
  t.equal(one.bad, 0, 'n == W');
  t.same([...one.ls].sort(), [1, 2, 3, 4, 5, 6]);
  t.throws(() => sampleGeometry(new Rng(1), 7, resolveGeometry({ window: 8 })), /shorter than the window 8/);
});

t.test('determinism: the same seed draws the same geometries', async (t) => {
  const g = resolveGeometry({ window: 64, chunkSizes: [4, 8, 16] });
  const draw = (seed: number) => {
    const r = new Rng(seed);
    return Array.from({ length: 50 }, (_, i) => sampleGeometry(r, 100 + i * 7, g));
  };
  t.same(draw(11), draw(11));
  t.notSame(draw(11), draw(12));
});

t.test('native examples and token counts of a geometry', async (t) => {
  const ids = Int32Array.from({ length: 40 }, (_, i) => (i === 0 ? 1 : 3 + i));
  const geo = { kinds: ['continuation', 'repetition'] as ('continuation' | 'repetition')[], localStart: 33, localSize: 5, chunkSize: 8 };
  const ex = focusExamples(ids, geo, 3, 0.25);
  t.same(
    ex.map((e) => [e.kind, e.loss, e.localStart, e.localSize, e.chunkSize, e.promptCap, e.weight, e.ids === ids]),
    [
      ['focus', 'continuation', 33, 5, 8, 3, 0.25, true],
      ['focus', 'repetition', 33, 5, 8, 3, 0.25, true],
    ],
  );
  // continuation: memory 33 tokens = 5 chunks of <= 8, each with a prompt of t + 1 = 4; local 5 + BOS.
  // repetition: memory 40 tokens = 5 chunks.
  t.equal(focusTokens(40, geo, 3), 33 + 5 * 4 + 6 + (40 + 5 * 4 + 6));
});
