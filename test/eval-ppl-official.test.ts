// The official (FocusLLM eval_lm.py) perplexity protocol: the windows and
// scored positions written out by hand, each window's NLLs against
// model.logits() (FocusLLM) and model.forward() (native) on the fixture
// model, the per-document and over-document means, --max-windows and the
// native forward's position cap.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import t from 'tap';

import { pplOfficialDocuments, pplOfficialWindows, readTextJsonl, runPplOfficial, type PplOfficialResult } from '../lib/eval/ppl-official';
import { loadModel, type Model } from '../lib/model';
import { makeRng } from '../lib/sampling';
import type { SessionOptions } from '../lib/session';

const FX = path.join(__dirname, 'fixtures');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'focusllm-ppl-official-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** -log softmax(row)[target] in float64, written out here rather than shared with the code under test. */
function nll(row: ArrayLike<number>, target: number, off = 0, n = row.length - off): number {
  let mx = -Infinity;
  for (let i = 0; i < n; i++) mx = Math.max(mx, row[off + i]);
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.exp(row[off + i] - mx);
  return Math.log(s) + mx - row[off + target];
}
const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;

let model: Model;
t.before(async () => {
  model = await loadModel(path.join(FX, 'tiny-gqa'), { backend: 'cpu', threads: 2 });
});
t.teardown(() => model?.dispose());

t.test('windows: BOS + t[begin:end], maxLength tokens with BOS, every stride, until one reaches the end', async (t) => {
  // 10 tokens, windows of 5 (BOS + 4), every 3: [0,4) [3,7) [6,10), and 6 + 4 = 10 ends it.
  t.same(pplOfficialWindows(10, 5, 3), [
    { begin: 0, end: 4 },
    { begin: 3, end: 7 },
    { begin: 6, end: 10 },
  ]);
  // A stride above the window leaves gaps; the last window is short.
  t.same(pplOfficialWindows(10, 5, 8), [
    { begin: 0, end: 4 },
    { begin: 8, end: 10 },
  ]);
  // A document shorter than a window: one window over all of it.
  t.same(pplOfficialWindows(3, 8, 2), [{ begin: 0, end: 3 }]);
  // Stops at the first window that reaches the end, although range(0, n, stride) goes on.
  t.same(pplOfficialWindows(7, 6, 1), [
    { begin: 0, end: 5 },
    { begin: 1, end: 6 },
    { begin: 2, end: 7 },
  ]);
  t.same(pplOfficialWindows(1, 2, 5), [{ begin: 0, end: 1 }]);
  t.throws(() => pplOfficialWindows(10, 1, 3), /option maxLength must be an integer >= 2/);
  t.throws(() => pplOfficialWindows(10, 5, 0), /option stride must be an integer >= 1/);
});

t.test('documents: ids lose a leading BOS, text is tokenized without specials', async (t) => {
  // A character tokenizer that adds BOS (1) unless told not to.
  const tok = { encode: (s: string, o?: { addSpecial?: boolean }) => [...(o?.addSpecial === false ? [] : [1]), ...[...s].map((c) => c.charCodeAt(0))] };
  const stub = { dir: 'stub', config: { vocabSize: 512 }, tokenizer: tok } as unknown as Model;
  t.same(pplOfficialDocuments(stub, [{ text: 'ab' }, { name: 'x', ids: [1, 5, 6] }, { ids: [5, 1] }], 1), [
    { name: '0', ids: [97, 98] },
    { name: 'x', ids: [5, 6] },
    { name: '2', ids: [5, 1] },
  ]);
  t.throws(() => pplOfficialDocuments(stub, [], 1), /documents must be a non-empty array/);
  t.throws(() => pplOfficialDocuments(stub, [{ name: 'd', ids: [1] }], 1), /document 0 \(d\) has no tokens/);
  t.throws(() => pplOfficialDocuments(stub, [{ text: 'a', ids: [3] }], 1), /document 0 needs exactly one of "ids" and "text"/);
  t.throws(() => pplOfficialDocuments(stub, [{ ids: [3] }, { ids: [3, 512] }], 1), /document 1: ids\[1\] = 512 is not a token id \(vocabulary size 512\)/);
  const noTok = { ...stub, tokenizer: null } as unknown as Model;
  t.throws(() => pplOfficialDocuments(noTok, [{ text: 'a' }], 1), /document 0 is text but stub has no tokenizer\.json/);
  const f = path.join(tmp, 'docs.jsonl');
  fs.writeFileSync(f, '{"text": "one"}\n\n{"text": "two", "name": "second"}\n');
  t.same(readTextJsonl(f), [
    { name: 'docs.jsonl:1', text: 'one' },
    { name: 'second', text: 'two' },
  ]);
  fs.writeFileSync(f, '{"text": "one"}\n{"txt": "two"}\n');
  t.throws(() => readTextJsonl(f), /docs\.jsonl:2: field "text" must be a string/);
  fs.writeFileSync(f, '{"text": \n');
  t.throws(() => readTextJsonl(f), /docs\.jsonl:1: /);
  fs.writeFileSync(f, '\n');
  t.throws(() => readTextJsonl(f), /no records/);
});

const FOCUS: SessionOptions = { localWindow: 32, chunkSize: 24, promptCap: 16, minChunkedLength: 48, cacheType: 'f32' };
const rng = makeRng(17);
const doc0 = Array.from({ length: 150 }, () => 3 + Math.floor(rng() * 500));
const doc1 = Array.from({ length: 40 }, () => 3 + Math.floor(rng() * 500));
const win = (d: number[], begin: number, end: number) => [1, ...d.slice(begin, end)];

/** The NLLs of the last r tokens of `ids` by FocusLLM: ingest the rest, then step (model.logits). */
async function focusNlls(ids: number[], r: number): Promise<number[]> {
  const rows = await model.logits(ids.slice(0, ids.length - r), { continuation: ids.slice(ids.length - r, ids.length - 1), focus: FOCUS });
  return rows.map((row, i) => nll(row, ids[ids.length - r + i]));
}

/** The NLLs of the last r tokens of `ids` from one forward over `input` (which ends just before ids' last token). */
async function forwardNlls(input: number[], ids: number[], r: number): Promise<number[]> {
  const V = model.config.vocabSize;
  const rows = await model.forward(input, { all: true });
  const n = input.length;
  return Array.from({ length: r }, (_, k) => nll(rows, ids[ids.length - r + k], (n - r + k) * V, V));
}

const close = (a: number[], b: number[], tol: number) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) < tol);

t.test('both modes over two documents: windows, scored positions, NLLs, means', async (t) => {
  const r = await runPplOfficial(model, [{ name: 'long', ids: [1, ...doc0] }, { name: 'short', ids: doc1 }], {
    maxLength: 64,
    stride: 32,
    mode: 'both',
    scoreLast: 8,
    nativeScoreLast: 16,
    focus: FOCUS,
    keepNlls: true,
  });
  t.match(r, { task: 'ppl', protocol: 'official', maxLength: 64, stride: 32, maxWindows: null, scoreLast: 8, nativeScoreLast: 16, nativeWindow: 256 });
  t.same(r.documents, [
    { name: 'long', tokens: 150, windows: 4 },
    { name: 'short', tokens: 40, windows: 1 },
  ]);
  // 150 tokens: BOS + 63 tokens every 32: [0,63) [32,95) [64,127) [96,150) (96 + 63 > 150 ends it); 40 tokens: one window.
  t.same(
    r.windows.map((w) => [w.doc, w.begin, w.end, w.tokens]),
    [
      [0, 0, 63, 64],
      [0, 32, 95, 64],
      [0, 64, 127, 64],
      [0, 96, 150, 55],
      [1, 0, 40, 41],
    ],
  );
  // FocusLLM scores the last 8 tokens of each window, the native forward the last 16.
  t.same(
    r.windows.map((w) => [w.focus!.from, w.focus!.scored, w.native!.from, w.native!.scored, w.native!.inputTokens]),
    [
      [55, 8, 47, 16, 63],
      [87, 8, 79, 16, 63],
      [119, 8, 111, 16, 63],
      [142, 8, 134, 16, 54],
      [32, 8, 24, 16, 40],
    ],
  );
  t.same(r.windows.map((w) => w.focus!.sessionMode), ['focus', 'focus', 'focus', 'native', 'native'], 'windows of 64 - 8 >= 48 tokens run chunked');
  t.equal(r.windows[0].focus!.chunks, Math.ceil((56 - 32) / 24));
  const docs = [doc0, doc1];
  const ref = { focus: [[], []] as number[][], native: [[], []] as number[][] };
  for (const w of r.windows) {
    const ids = win(docs[w.doc], w.begin, w.end);
    const f = await focusNlls(ids, 8);
    t.ok(close(w.focus!.nlls!, f, 1e-9), `doc ${w.doc} [${w.begin}, ${w.end}): FocusLLM NLLs = model.logits rows`);
    const n = await forwardNlls(ids.slice(0, -1), ids, 16);
    t.ok(close(w.native!.nlls!, n, 1e-4), `doc ${w.doc} [${w.begin}, ${w.end}): native NLLs = one forward over the window`);
    t.ok(Math.abs(w.focus!.meanNll - mean(f)) < 1e-9);
    ref.focus[w.doc].push(...f);
    ref.native[w.doc].push(...n);
  }
  t.same(r.results.map((m) => m.mode), ['focus', 'native']);
  for (const m of r.results) {
    const perDoc = ref[m.mode].map(mean); // token mean over all windows of the document
    t.same(m.documents.map((d) => [d.name, d.windows, d.scored]), m.mode === 'focus' ? [['long', 4, 32], ['short', 1, 8]] : [['long', 4, 64], ['short', 1, 16]]);
    m.documents.forEach((d, i) => t.ok(Math.abs(d.meanNll - perDoc[i]) < 1e-4 && Math.abs(d.ppl - Math.exp(d.meanNll)) < 1e-9 * d.ppl));
    t.ok(Math.abs(m.meanNll - mean(perDoc)) < 1e-4, `${m.mode}: mean of document means ${m.meanNll} vs ${mean(perDoc)}`);
    t.ok(Math.abs(m.meanNll - mean([...ref[m.mode][0], ...ref[m.mode][1]])) > 1e-3, `${m.mode}: not the token mean over all documents`);
    t.equal(m.ppl, Math.exp(m.meanNll));
    t.equal(m.scored, m.documents.reduce((s, d) => s + d.scored, 0));
    t.match(m.method, m.mode === 'focus' ? /FocusLLM scores the last 8 tokens/ : /last 16 tokens .* one plain causal forward of at most 256 tokens/);
  }
});

t.test('maxWindows keeps the last windows; a document without one does not count', async (t) => {
  const docs = [{ ids: doc0 }, { ids: doc1 }];
  const opts = { maxLength: 64, stride: 32, scoreLast: 8, focus: FOCUS };
  const all = await runPplOfficial(model, docs, opts);
  const two = await runPplOfficial(model, docs, { ...opts, maxWindows: 2 });
  t.same(two.windows.map((w) => [w.doc, w.begin]), [[0, 96], [1, 0]], 'the last two of five');
  t.equal(two.maxWindows, 2);
  t.same(two.documents.map((d) => d.windows), [4, 1], 'windows per document before the cut');
  t.same(two.results[0].documents.map((d) => [d.doc, d.windows]), [[0, 1], [1, 1]]);
  t.equal(two.windows[0].focus!.meanNll, all.windows[3].focus!.meanNll, 'the same window, the same score');
  const one = await runPplOfficial(model, docs, { ...opts, maxWindows: 1 });
  t.same(one.results[0].documents.map((d) => d.name), ['1'], 'only the short document is left');
  t.equal(one.results[0].meanNll, all.windows[4].focus!.meanNll);
  const many = await runPplOfficial(model, docs, { ...opts, maxWindows: 50 });
  t.equal(many.windows.length, 5);
  t.equal(many.results[0].meanNll, all.results[0].meanNll);
});

t.test('native: a window longer than nativeWindow is cut from the left, BOS kept', async (t) => {
  const r = await runPplOfficial(model, [{ ids: doc0 }], { maxLength: 64, stride: 200, mode: 'native', nativeWindow: 20, nativeScoreLast: 16, keepNlls: true });
  t.equal(r.nativeWindow, 20);
  t.equal(r.windows.length, 1);
  const ids = win(doc0, 0, 63);
  // The forward: BOS and the 19 tokens before the window's last one; it scores the last 16.
  const input = [1, ...ids.slice(64 - 1 - 19, 63)];
  t.equal(input.length, 20);
  t.match(r.windows[0].native, { from: 47, scored: 16, inputTokens: 20 });
  t.ok(close(r.windows[0].native!.nlls!, await forwardNlls(input, ids, 16), 1e-4), 'NLLs of that forward');
  // With fewer positions than tokens to score, it scores nativeWindow - 1.
  const small = await runPplOfficial(model, [{ ids: doc0 }], { maxLength: 64, stride: 200, mode: 'native', nativeWindow: 10, keepNlls: true });
  t.match(small.windows[0].native, { from: 54, scored: 9, inputTokens: 10 });
  t.ok(close(small.windows[0].native!.nlls!, await forwardNlls([1, ...ids.slice(64 - 1 - 9, 63)], ids, 9), 1e-4));
  const plain = await runPplOfficial(model, [{ ids: doc0 }], { maxLength: 64, stride: 200, mode: 'native' });
  t.notOk(plain.windows[0].native!.nlls, 'NLLs left out unless keepNlls');
  t.same(plain.results.map((m) => m.mode), ['native']);
});

t.test('errors name the option or document', async (t) => {
  const d = [{ ids: doc1 }];
  await t.rejects(runPplOfficial(model, d, { maxLength: 1 }), /option maxLength must be an integer >= 2, got 1/);
  await t.rejects(runPplOfficial(model, d, {} as { maxLength: number }), /option maxLength must be an integer >= 2, got undefined/);
  await t.rejects(runPplOfficial(model, d, { maxLength: 64, stride: 0 }), /option stride must be an integer >= 1/);
  await t.rejects(runPplOfficial(model, d, { maxLength: 64, maxWindows: 0 }), /option maxWindows must be an integer >= 1/);
  await t.rejects(runPplOfficial(model, d, { maxLength: 64, scoreLast: 0 }), /option scoreLast must be an integer >= 1/);
  await t.rejects(runPplOfficial(model, d, { maxLength: 64, nativeWindow: 1 }), /option nativeWindow must be an integer >= 2/);
  await t.rejects(runPplOfficial(model, d, { maxLength: 64, mode: 'all' as 'both' }), /option mode must be "focus", "native" or "both"/);
  await t.rejects(runPplOfficial(model, d, { maxLength: 64, focus: { localWindow: 0 } }), /localWindow must be a positive integer/);
  await t.rejects(runPplOfficial(model, [{ ids: [1] }], { maxLength: 64 }), /document 0 has no tokens/);
  await t.rejects(runPplOfficial(model, [{ text: 'abc' }], { maxLength: 64 }), /document 0 is text but .* has no tokenizer\.json/);
  const ac = new AbortController();
  ac.abort();
  await t.rejects(runPplOfficial(model, d, { maxLength: 64, signal: ac.signal }), { name: 'AbortError' });
  const r: PplOfficialResult = await runPplOfficial(model, [{ ids: [1, 7] }], { maxLength: 64, mode: 'both' });
  t.same(r.windows.map((w) => [w.tokens, w.focus!.scored, w.native!.scored]), [[2, 1, 1]], 'one text token: one scored token');
});
