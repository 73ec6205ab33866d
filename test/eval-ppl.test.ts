// Perplexity arithmetic on the fixture models: the FocusLLM-mode NLLs against
// the float64 reference logits and against model.logits(); the sliding
// window against forwards of the windows it claims to use.
import fs from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { tokenNll } from '../lib/eval/decode';
import { runPpl } from '../lib/eval/ppl';
import { loadModel, type Model } from '../lib/model';
import type { SessionOptions } from '../lib/session';

const FX = path.join(__dirname, 'fixtures');

interface Case {
  ids: number[];
  continuation: number[];
  options: { local_window: number; chunk_size: number; prompt_cap: number; min_chunked_length: number } | null;
  logits: number[][];
}
const load = (f: string): Case => JSON.parse(fs.readFileSync(path.join(FX, f), 'utf8'));

/** -log softmax(row)[target] in float64, written out here rather than shared with the code under test. */
function nll(row: ArrayLike<number>, target: number): number {
  let mx = -Infinity;
  for (let i = 0; i < row.length; i++) mx = Math.max(mx, row[i]);
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i] - mx);
  return Math.log(s) + mx - row[target];
}

const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;

function focusOf(c: Case): SessionOptions {
  const o = c.options;
  return o ? { localWindow: o.local_window, chunkSize: o.chunk_size, promptCap: o.prompt_cap, minChunkedLength: o.min_chunked_length, cacheType: 'f32' } : { cacheType: 'f32' };
}

let model: Model;
t.before(async () => {
  model = await loadModel(path.join(FX, 'tiny-gqa'), { backend: 'cpu', threads: 2 });
});
t.teardown(() => model?.dispose());

t.test('tokenNll is log-sum-exp minus the target logit', async (t) => {
  // logits [0, ln 3]: softmax = [1/4, 3/4]; NLL of token 1 = ln(4/3), of token 0 = ln 4
  const row = Float32Array.of(0, Math.log(3));
  t.ok(Math.abs(tokenNll(row, 1) - Math.log(4 / 3)) < 1e-6);
  t.ok(Math.abs(tokenNll(row, 0) - Math.log(4)) < 1e-6);
  t.throws(() => tokenNll(row, 2), /outside the vocabulary/);
});

t.test('FocusLLM mode: the last R tokens of ids ++ continuation, against the float64 reference', async (t) => {
  const c = load('tiny-gqa.focus.json');
  const all = [...c.ids, ...c.continuation];
  const R = c.continuation.length;
  const r = await runPpl(model, all, { scoreLast: R, focus: focusOf(c), keepNlls: true });
  // Reference: row 0 (after ingesting ids) scores continuation[0]; row i (after stepping continuation[i-1]) scores continuation[i].
  const ref = c.continuation.map((tok, i) => nll(c.logits[i], tok));
  t.equal(r.scored, R);
  t.equal(r.length, all.length);
  t.equal(r.focus!.sessionMode, 'focus', 'the context ran chunked');
  t.equal(r.focus!.chunks, Math.ceil((c.ids.length - c.options!.local_window) / c.options!.chunk_size));
  r.nlls!.forEach((v, i) => t.ok(Math.abs(v - ref[i]) < 2e-3, `token ${i}: NLL ${v.toFixed(5)} vs reference ${ref[i].toFixed(5)}`));
  t.ok(Math.abs(r.meanNll - mean(ref)) < 1e-3, `mean NLL ${r.meanNll} vs ${mean(ref)}`);
  t.ok(Math.abs(r.ppl - Math.exp(mean(ref))) / Math.exp(mean(ref)) < 1e-3, `ppl ${r.ppl}`);
  t.ok(r.tokensPerSecond > 0 && r.seconds > 0);
  t.match(r.method, /teacher forcing/);
  t.notMatch(r.method, /DESIGN/, 'cites the README, which users have, not DESIGN.md');
});

t.test('FocusLLM mode equals NLLs computed from model.logits() rows', async (t) => {
  const c = load('tiny-gqa.focus.json');
  const all = [...c.ids, ...c.continuation];
  for (const R of [1, 3, 40]) {
    const N = all.length - 2; // not the whole input: --length takes a prefix
    const x = all.slice(0, N);
    const rows = await model.logits(x.slice(0, N - R), { continuation: x.slice(N - R, N - 1), focus: focusOf(c) });
    const mine = rows.map((row, i) => nll(row, x[N - R + i]));
    const r = await runPpl(model, all, { length: N, scoreLast: R, focus: focusOf(c), keepNlls: true });
    t.equal(r.nlls!.length, R);
    t.ok(r.nlls!.every((v, i) => Math.abs(v - mine[i]) < 1e-9), `R=${R}: identical NLLs`);
    t.ok(Math.abs(r.ppl - Math.exp(mean(mine))) < 1e-9 * r.ppl, `R=${R}: ppl = exp(mean NLL) = ${r.ppl}`);
  }
});

t.test('native sliding window with W >= N is one plain forward: equals the native reference', async (t) => {
  const c = load('tiny-gqa.native.json');
  const all = [...c.ids, ...c.continuation];
  const R = c.continuation.length;
  const ref = c.continuation.map((tok, i) => nll(c.logits[i], tok));
  const r = await runPpl(model, all, { mode: 'native', scoreLast: R, window: 4096, keepNlls: true });
  t.equal(r.windows, 1);
  r.nlls!.forEach((v, i) => t.ok(Math.abs(v - ref[i]) < 2e-3, `token ${i}: ${v.toFixed(5)} vs ${ref[i].toFixed(5)}`));
  // FocusLLM mode on a short input runs natively too: same numbers
  const f = await runPpl(model, all, { scoreLast: R, keepNlls: true });
  t.equal(f.focus!.sessionMode, 'native');
  f.nlls!.forEach((v, i) => t.ok(Math.abs(v - r.nlls![i]) < 1e-4, `focus-mode (native session) token ${i}`));
});

t.test('native sliding window: each token scored over the window it claims', async (t) => {
  const c = load('tiny-gqa.focus.json');
  const x = c.ids; // 150 tokens, BOS first
  const N = x.length;
  for (const [W, S, R, bos] of [
    [16, 3, 10, true],
    [16, 15, 20, true],
    [12, 5, 11, false],
  ] as [number, number, number, boolean][]) {
    const r = await runPpl(model, x, { mode: 'native', window: W, stride: S, scoreLast: R, windowBos: bos, keepNlls: true });
    t.equal(r.windows, Math.ceil(R / S), `W=${W} S=${S}: windows`);
    for (let k = 0; k < R; k++) {
      const p = N - R + k;
      // Target p is in block floor(k / S); the block's window ends at its last target - 1.
      const last = Math.min(N - R + (Math.floor(k / S) + 1) * S, N) - 1;
      const ctx = bos ? [1, ...x.slice(last - (W - 1), p)] : x.slice(last - W, p);
      const ctxTokens = ctx.length - (bos ? 1 : 0);
      t.ok(ctx.length <= W && ctxTokens >= W - S - (bos ? 1 : 0) + 1, `W=${W} S=${S} p=${p}: ${ctxTokens} tokens of context`);
      const row = await model.forward(ctx);
      t.ok(Math.abs(r.nlls![k] - nll(row, x[p])) < 1e-4, `W=${W} S=${S} p=${p}: NLL from the last row of its window`);
    }
  }
});

t.test('errors name the option', async (t) => {
  const x = load('tiny-gqa.native.json').ids;
  await t.rejects(runPpl(model, x, { length: x.length + 1 }), /option length is \d+ but the text has only \d+ tokens/);
  await t.rejects(runPpl(model, x, { scoreLast: x.length }), /scoreLast .* must be smaller than length/);
  await t.rejects(runPpl(model, x, { scoreLast: 0 }), /option scoreLast must be a positive integer/);
  await t.rejects(runPpl(model, x, { scoreLast: 4, mode: 'nope' as 'focus' }), /option mode must be "focus" or "native"/);
  await t.rejects(runPpl(model, x, { scoreLast: 4, mode: 'native', window: 8, stride: 8 }), /stride \(8\) must be below window \(8\)/);
  await t.rejects(runPpl(model, [1, 2, 9999], { scoreLast: 1 }), /ids\[2\] = 9999 is not a token id/);
  await t.rejects(runPpl(model, x, { scoreLast: 4, focus: { localWindow: 0 } }), /localWindow must be a positive integer/);
  const ac = new AbortController();
  ac.abort();
  await t.rejects(runPpl(model, x, { scoreLast: 4, signal: ac.signal }), { name: 'AbortError' });
  await t.rejects(runPpl(model, x, { mode: 'native', scoreLast: 4, signal: ac.signal }), { name: 'AbortError' });
});
