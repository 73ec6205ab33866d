// Perplexity as FocusLLM's main/eval_lm.py computes it (the Activation
// Beacon evaluation): windows slid over each document, a fixed number of
// tokens scored at the end of each window, the token-mean NLL of each
// document, then the mean over documents. ppl.ts keeps focusllm's default
// protocol (the last R tokens of one text).
//
// Windows. A document is its text tokens t[0..n) (no BOS). Window k starts at
// begin = k * stride and is BOS + t[begin : end], end = min(begin +
// maxLength - 1, n): maxLength tokens with BOS, as the script, which lowers
// max_length by one when the tokenizer adds BOS. The last window is the
// first whose end reaches n (the script's `if end_loc == seq_len: break`),
// so only it (or a document shorter than a window) is short.
//
// Scored tokens. A window of L tokens (BOS included) has L - 1 targets.
// - focus: the last r = min(scoreLast, L - 1) tokens (scoreLast default 128),
//   as ppl.ts's FocusLLM mode: ingest the window's first L - r tokens, then
//   teacher-force the rest (README: The method).
// - native: the script's plain model, labels on the last 256 tokens of the
//   window (sub_trg_len = 256), one causal forward. The forward must fit the
//   model's positions (nativeWindow, default max_position_embeddings): the
//   window without its last token (whose logits score nothing) is cut from the
//   left to nativeWindow tokens, BOS kept first, so a capped window scores
//   min(256, nativeWindow - 1) tokens. Uncapped, this is the script's forward.
//
// Aggregation (evaluate_perplexity): per document, the sum of NLLs over its
// scored tokens (all its windows) over their count; the mean of that over the
// documents; ppl = exp(mean). maxWindows keeps the LAST maxWindows windows of
// all documents in order, as the script's
// train_test_split(max_sample_num, shuffle=False)["test"] does; a document
// with no window left does not count.
import fs from 'node:fs';
import path from 'node:path';

import type { Model } from '../model';
import { type FocusParams, resolveFocusParams } from '../plan';
import { definedOnly, type IngestProgress } from '../session';
import type { FocusOptions } from './decode';
import { runPpl } from './ppl';

/** A document: token ids (a leading BOS is dropped: every window brings its own) or text (tokenized without BOS). */
export interface PplDocument {
  name?: string;
  ids?: ArrayLike<number>;
  text?: string;
}

export type PplOfficialMode = 'focus' | 'native';

export interface PplOfficialOptions {
  /** window length in tokens, BOS included (the script's --max_length) */
  maxLength: number;
  /** tokens between window starts (default 2048, the script's default) */
  stride?: number;
  /** keep only the last N windows over all documents (the script's max_sample_num; default all) */
  maxWindows?: number;
  /** default "focus" */
  mode?: PplOfficialMode | 'both';
  /** focus: tokens scored at the end of each window (default 128) */
  scoreLast?: number;
  /** native: tokens scored at the end of each window (default 256) */
  nativeScoreLast?: number;
  /** native: positions a forward may hold (default config max_position_embeddings; none when that is 0) */
  nativeWindow?: number;
  /** FocusLLM parameters (focus mode) and the start token (both modes) */
  focus?: FocusOptions;
  /** keep each scored token's NLL in the window records (default false) */
  keepNlls?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: PplOfficialProgress) => void;
}

export interface PplOfficialProgress {
  /** windows finished, and all of them */
  done: number;
  total: number;
  doc: number;
  mode: PplOfficialMode;
  phase: 'ingest' | 'score' | 'forward';
  ingest?: IngestProgress;
}

/** One mode's scoring of one window. `from`: the document position of the first scored token (they run to the window's end). */
export interface PplOfficialWindowScore {
  from: number;
  scored: number;
  meanNll: number;
  /** focus: how the session ran and its chunks; native: the forward's tokens */
  sessionMode?: 'native' | 'focus';
  chunks?: number;
  inputTokens?: number;
  nlls?: number[];
}

export interface PplOfficialWindow {
  doc: number;
  /** the window is BOS + tokens [begin, end) of the document */
  begin: number;
  end: number;
  /** end - begin + 1 */
  tokens: number;
  focus?: PplOfficialWindowScore;
  native?: PplOfficialWindowScore;
}

export interface PplOfficialDocScore {
  doc: number;
  name: string;
  windows: number;
  scored: number;
  meanNll: number;
  ppl: number;
}

export interface PplOfficialScore {
  mode: PplOfficialMode;
  /** exp(meanNll) */
  ppl: number;
  /** mean over documents of each document's token-mean NLL */
  meanNll: number;
  /** tokens scored in all */
  scored: number;
  documents: PplOfficialDocScore[];
  seconds: number;
  method: string;
}

export interface PplOfficialResult {
  task: 'ppl';
  protocol: 'official';
  maxLength: number;
  stride: number;
  maxWindows: number | null;
  scoreLast: number;
  nativeScoreLast: number;
  nativeWindow: number | null;
  /** the documents given: text tokens, and windows before maxWindows */
  documents: { name: string; tokens: number; windows: number }[];
  /** the windows evaluated (after maxWindows) */
  windows: PplOfficialWindow[];
  /** the FocusLLM parameters in force */
  focus: FocusParams;
  results: PplOfficialScore[];
  seconds: number;
}

function positiveInt(name: string, v: unknown, min = 1): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new Error(`option ${name} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

/** The windows [begin, end) over a document of n text tokens: BOS + t[begin:end] is at most maxLength tokens. */
export function pplOfficialWindows(n: number, maxLength: number, stride: number): { begin: number; end: number }[] {
  positiveInt('maxLength', maxLength, 2);
  positiveInt('stride', stride);
  const out: { begin: number; end: number }[] = [];
  for (let begin = 0; begin < n; begin += stride) {
    const end = Math.min(begin + maxLength - 1, n);
    out.push({ begin, end });
    if (end === n) break;
  }
  return out;
}

/** The documents as text token ids, checked; errors name the document. */
export function pplOfficialDocuments(model: Model, docs: readonly PplDocument[], bosId: number): { name: string; ids: number[] }[] {
  if (!Array.isArray(docs) || docs.length === 0) throw new Error('ppl: documents must be a non-empty array');
  const vocab = model.config.vocabSize;
  return docs.map((d, i) => {
    const where = `document ${i}${d && typeof d.name === 'string' ? ` (${d.name})` : ''}`;
    if (!d || typeof d !== 'object') throw new Error(`ppl: ${where} must be an object with "ids" or "text"`);
    if ((d.ids === undefined) === (d.text === undefined)) throw new Error(`ppl: ${where} needs exactly one of "ids" and "text"`);
    let ids: number[];
    if (d.text !== undefined) {
      if (typeof d.text !== 'string') throw new Error(`ppl: ${where}: "text" must be a string`);
      if (!model.tokenizer) throw new Error(`ppl: ${where} is text but ${model.dir} has no tokenizer.json`);
      ids = model.tokenizer.encode(d.text, { addSpecial: false });
    } else {
      if (!d.ids || typeof d.ids.length !== 'number') throw new Error(`ppl: ${where}: "ids" must be an array of token ids`);
      ids = Array.from(d.ids);
      ids.forEach((v, j) => {
        if (!Number.isInteger(v) || v < 0 || v >= vocab) throw new Error(`ppl: ${where}: ids[${j}] = ${String(v)} is not a token id (vocabulary size ${vocab})`);
      });
      if (ids[0] === bosId) ids = ids.slice(1);
    }
    if (ids.length === 0) throw new Error(`ppl: ${where} has no tokens`);
    return { name: typeof d.name === 'string' ? d.name : String(i), ids };
  });
}

const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;

export async function runPplOfficial(model: Model, docs: readonly PplDocument[], opts: PplOfficialOptions): Promise<PplOfficialResult> {
  const t0 = performance.now();
  if (!opts || typeof opts !== 'object') throw new Error('ppl: options with maxLength are required');
  const maxLength = positiveInt('maxLength', opts.maxLength, 2);
  const stride = positiveInt('stride', opts.stride ?? 2048);
  const maxWindows = opts.maxWindows === undefined ? null : positiveInt('maxWindows', opts.maxWindows);
  const R = positiveInt('scoreLast', opts.scoreLast ?? 128);
  const RN = positiveInt('nativeScoreLast', opts.nativeScoreLast ?? 256);
  const cfgWindow = model.config.maxPositionEmbeddings;
  const P = opts.nativeWindow !== undefined ? positiveInt('nativeWindow', opts.nativeWindow, 2) : cfgWindow && cfgWindow >= 2 ? cfgWindow : null;
  const modeOpt = opts.mode ?? 'focus';
  if (!['focus', 'native', 'both'].includes(modeOpt)) throw new Error(`ppl: option mode must be "focus", "native" or "both", got ${JSON.stringify(modeOpt)}`);
  const modes: PplOfficialMode[] = modeOpt === 'both' ? ['focus', 'native'] : [modeOpt as PplOfficialMode];
  const { cacheType: _c, bosId: _b, keepChunkCaches: _k, ...params } = opts.focus ?? {};
  // As the session resolves them: the checkpoint's defaults where nothing is set.
  const focus = resolveFocusParams({ ...model.focusDefaults, ...definedOnly(params) });
  const bos = opts.focus?.bosId ?? model.config.bosTokenId;
  const documents = pplOfficialDocuments(model, docs, bos);

  const docWindows = documents.map((d) => pplOfficialWindows(d.ids.length, maxLength, stride));
  const perDoc = documents.map((d, i) => ({ name: d.name, tokens: d.ids.length, windows: docWindows[i].length }));
  let plan = docWindows.flatMap((ws, doc) => ws.map((w) => ({ doc, ...w })));
  if (maxWindows !== null && plan.length > maxWindows) plan = plan.slice(plan.length - maxWindows);

  // Per mode and document: NLL sum and count.
  const sums = new Map<PplOfficialMode, Map<number, { nll: number; n: number; windows: number }>>(modes.map((m) => [m, new Map()]));
  const seconds = new Map<PplOfficialMode, number>(modes.map((m) => [m, 0]));
  const windows: PplOfficialWindow[] = [];
  for (let i = 0; i < plan.length; i++) {
    const { doc, begin, end } = plan[i];
    const ids = [bos, ...documents[doc].ids.slice(begin, end)];
    const L = ids.length;
    const rec: PplOfficialWindow = { doc, begin, end, tokens: L };
    for (const mode of modes) {
      opts.signal?.throwIfAborted();
      const ta = performance.now();
      const progress = (phase: PplOfficialProgress['phase'], ingest?: IngestProgress) =>
        opts.onProgress?.({ done: i, total: plan.length, doc, mode, phase, ingest });
      let score: PplOfficialWindowScore;
      if (mode === 'focus') {
        const r = Math.min(R, L - 1);
        const res = await runPpl(model, ids, {
          scoreLast: r,
          focus: opts.focus,
          keepNlls: true,
          signal: opts.signal,
          onProgress: (p) => progress(p.phase === 'ingest' ? 'ingest' : 'score', p.ingest),
        });
        score = { from: end - r, scored: r, meanNll: res.meanNll, sessionMode: res.focus!.sessionMode, chunks: res.focus!.chunks, nlls: res.nlls! };
      } else {
        // The forward is ids[0, L-1) cut from the left to P tokens (BOS kept).
        const W = P ?? L;
        const r = Math.min(RN, L - 1, W - 1);
        progress('forward');
        const res = await runPpl(model, ids, { mode: 'native', scoreLast: r, window: W, stride: r, windowBos: true, focus: opts.focus, keepNlls: true, signal: opts.signal });
        score = { from: end - r, scored: r, meanNll: res.meanNll, inputTokens: Math.min(L - 1, W), nlls: res.nlls! };
      }
      seconds.set(mode, seconds.get(mode)! + (performance.now() - ta) / 1000);
      const acc = sums.get(mode)!.get(doc) ?? { nll: 0, n: 0, windows: 0 };
      acc.nll += score.nlls!.reduce((a, b) => a + b, 0);
      acc.n += score.scored;
      acc.windows++;
      sums.get(mode)!.set(doc, acc);
      if (!opts.keepNlls) delete score.nlls;
      rec[mode] = score;
    }
    windows.push(rec);
  }
  opts.onProgress?.({ done: plan.length, total: plan.length, doc: plan.length ? plan[plan.length - 1].doc : 0, mode: modes[modes.length - 1], phase: 'score' });

  const method = (mode: PplOfficialMode): string =>
    `windows of BOS + up to ${maxLength - 1} document tokens every ${stride} tokens` +
    (maxWindows !== null ? ` (the last ${maxWindows} windows kept)` : '') +
    (mode === 'focus'
      ? `; FocusLLM scores the last ${R} tokens of each window (README: The method: ingest the rest, teacher-force these)`
      : `; the native baseline scores the last ${RN} tokens of each window with one plain causal forward` +
        (P !== null ? ` of at most ${P} tokens (a longer window is cut from the left, BOS kept first)` : '')) +
    '; perplexity = exp(mean over documents of each document\'s token-mean NLL)';
  const results: PplOfficialScore[] = modes.map((mode) => {
    const docScores: PplOfficialDocScore[] = [...sums.get(mode)!.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([doc, s]) => ({ doc, name: documents[doc].name, windows: s.windows, scored: s.n, meanNll: s.nll / s.n, ppl: Math.exp(s.nll / s.n) }));
    const meanNll = mean(docScores.map((d) => d.meanNll));
    return {
      mode,
      ppl: Math.exp(meanNll),
      meanNll,
      scored: docScores.reduce((a, d) => a + d.scored, 0),
      documents: docScores,
      seconds: seconds.get(mode)!,
      method: method(mode),
    };
  });
  return {
    task: 'ppl',
    protocol: 'official',
    maxLength,
    stride,
    maxWindows,
    scoreLast: R,
    nativeScoreLast: RN,
    nativeWindow: P,
    documents: perDoc,
    windows,
    focus,
    results,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** Reads documents from a .jsonl file: one {"text": ...} object a line (an optional "name"); blank lines skipped. */
export function readTextJsonl(file: string): PplDocument[] {
  const out: PplDocument[] = [];
  fs.readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (!line.trim()) return;
      const where = `${file}:${i + 1}`;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch (e) {
        throw new Error(`${where}: ${(e as Error).message}`);
      }
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${where}: a record must be a JSON object`);
      const r = v as Record<string, unknown>;
      if (typeof r.text !== 'string') throw new Error(`${where}: field "text" must be a string`);
      if (r.text.length === 0) throw new Error(`${where}: field "text" is empty`);
      out.push({ name: typeof r.name === 'string' ? r.name : `${path.basename(file)}:${i + 1}`, text: r.text });
    });
  if (out.length === 0) throw new Error(`${file}: no records`);
  return out;
}
