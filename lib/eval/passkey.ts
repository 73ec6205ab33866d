// Pass-key retrieval, the prompt of the Landmark-attention evaluation that
// FocusLLM and Activation Beacon also report: a task description, filler text
// repeated to the target length, one line with a 5-digit pass key at a random
// depth, and the question. The model answers greedily; a trial passes when
// the first number in the answer is the pass key.
import type { Model } from '../model';
import { type FocusParams, resolveFocusParams } from '../plan';
import { makeRng } from '../sampling';
import { definedOnly, type IngestProgress } from '../session';
import type { Tokenizer } from '../tokenizer/types';
import { type FocusOptions, greedyDecode } from './decode';

export const PASSKEY_TASK =
  'There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will quiz you about the important information there.';
/** The filler, one sentence at a time (the prompt is sized to a sentence). */
export const PASSKEY_FILLER = [
  'The grass is green.',
  'The sky is blue.',
  'The sun is yellow.',
  'Here we go.',
  'There and back again.',
] as const;
export const PASSKEY_QUESTION = 'What is the pass key? The pass key is';

export function passkeyInfoLine(passkey: number): string {
  return `The pass key is ${passkey}. Remember it. ${passkey} is the pass key.`;
}

/**
 * The prompt text with `sentences` filler sentences, `before` of them ahead of
 * the information line; the filler cycles through its five sentences without
 * restarting after the line. Lines are joined with "\n" as in Landmark.
 */
export function passkeyText(sentences: number, before: number, passkey: number): string {
  const filler = (from: number, n: number) =>
    Array.from({ length: n }, (_, i) => PASSKEY_FILLER[(from + i) % PASSKEY_FILLER.length]).join(' ');
  return [PASSKEY_TASK, filler(0, before), passkeyInfoLine(passkey), filler(before, sentences - before), PASSKEY_QUESTION].join(
    '\n',
  );
}

/**
 * The ids of prompt(n), BOS first when `bos` is set and the tokenizer did not
 * put it there, memoised: the prompt-size searches encode the same sizes again.
 */
export function cachedPromptIds(tokenizer: Tokenizer, bos: number | null | undefined, prompt: (n: number) => string): (n: number) => number[] {
  const cache = new Map<number, number[]>();
  return (n) => {
    let ids = cache.get(n);
    if (!ids) {
      ids = tokenizer.encode(prompt(n));
      if (bos !== null && bos !== undefined && ids[0] !== bos) ids.unshift(bos);
      cache.set(n, ids);
    }
    return ids;
  };
}

export interface PasskeyPrompt {
  text: string;
  /** token ids, BOS first */
  ids: number[];
  passkey: number;
  /** the depth asked for, in [0, 1] */
  depth: number;
  /** filler sentences in all, and before the information line */
  fillerSentences: number;
  sentencesBefore: number;
  /** the requested token count (ids.length <= length < the count with one more sentence) */
  length: number;
}

export interface PasskeyPromptOptions {
  /** fraction of the filler before the information line; default: drawn from rng */
  depth?: number;
  /** start token to put first when the tokenizer does not (default the tokenizer's BOS) */
  bosId?: number | null;
}

/**
 * A pass-key prompt of `length` tokens: the most filler sentences whose
 * prompt still fits, so the count is at most `length` and within one
 * sentence of it. rng draws the pass key (10000..99999), then the depth.
 */
export function makePasskeyPrompt(
  tokenizer: Tokenizer,
  length: number,
  rng: () => number,
  opts: PasskeyPromptOptions = {},
): PasskeyPrompt {
  if (!Number.isInteger(length) || length < 1) throw new Error(`passkey length must be a positive integer, got ${String(length)}`);
  const passkey = 10000 + Math.floor(rng() * 90000);
  const depth = opts.depth ?? rng();
  if (typeof depth !== 'number' || !(depth >= 0 && depth <= 1)) throw new Error(`passkey depth must be a number in [0, 1], got ${String(depth)}`);
  const bos = opts.bosId !== undefined ? opts.bosId : tokenizer.bosId;
  const before = (s: number) => Math.round(depth * s);
  const encode = cachedPromptIds(tokenizer, bos, (s) => passkeyText(s, before(s), passkey));
  const base = encode(0).length;
  if (base > length) throw new Error(`passkey length ${length} is shorter than the prompt without filler (${base} tokens)`);
  // Tokens per sentence, measured on one full filler cycle: the first guess.
  const per = Math.max(1, (encode(PASSKEY_FILLER.length).length - base) / PASSKEY_FILLER.length);
  // Search S with count(S) <= length < count(S + 1); lo satisfies the left
  // side, hi the right one. Guesses come from the per-sentence rate and are
  // kept strictly inside (lo, hi), so every probe narrows the bracket.
  let lo = 0;
  let hi = Infinity;
  let guess = Math.floor((length - base) / per);
  while (hi - lo > 1) {
    let s = guess;
    if (!(s > lo && s < hi)) s = hi === Infinity ? 2 * lo + 1 : Math.floor((lo + hi) / 2);
    const c = encode(s).length;
    if (c <= length) {
      lo = s;
      guess = s + Math.max(1, Math.floor((length - c) / per));
    } else {
      hi = s;
      guess = s - Math.max(1, Math.ceil((c - length) / per));
    }
    if (guess <= lo) guess = lo + 1;
  }
  return {
    text: passkeyText(lo, before(lo), passkey),
    ids: encode(lo),
    passkey,
    depth,
    fillerSentences: lo,
    sentencesBefore: before(lo),
    length,
  };
}

/** The first run of digits in `text`, or null. */
export function firstNumber(text: string): string | null {
  const m = /\d+/.exec(text);
  return m ? m[0] : null;
}

export interface PasskeyTrial {
  length: number;
  trial: number;
  /** prompt tokens (<= length) */
  tokens: number;
  depth: number;
  passkey: number;
  answer: string;
  correct: boolean;
  mode: 'native' | 'focus';
  chunks: number;
  ingestSeconds: number;
  decodeSeconds: number;
}

export interface PasskeyGroup {
  trials: number;
  correct: number;
  accuracy: number;
}

export interface PasskeyLengthResult extends PasskeyGroup {
  length: number;
  meanTokens: number;
  meanIngestSeconds: number;
  /** by depth asked for (with `depths`) or by fifths of the depth range */
  byDepth: (PasskeyGroup & { depth: string })[];
}

export interface PasskeyResult extends PasskeyGroup {
  task: 'passkey';
  seed: number;
  /** the FocusLLM parameters in force */
  focus: FocusParams;
  maxNewTokens: number;
  lengths: PasskeyLengthResult[];
  records: PasskeyTrial[];
  seconds: number;
}

export interface PasskeyProgress {
  length: number;
  trial: number;
  trialsTotal: number;
  /** trials finished over all lengths, and the total */
  done: number;
  total: number;
  correct: number;
  phase: 'prompt' | 'ingest' | 'decode' | 'done';
  ingest?: IngestProgress;
}

export interface PasskeyOptions {
  /** prompt lengths in tokens */
  lengths: number[];
  /** trials per length (per depth with `depths`), default 10 */
  trials?: number;
  /** default 42 */
  seed?: number;
  /** fixed depths in [0, 1]: each length runs `trials` trials at each; default one random depth per trial */
  depths?: number[];
  /** tokens generated at most (default: the pass key's tokens + 3, at least 8) */
  maxNewTokens?: number;
  focus?: FocusOptions;
  signal?: AbortSignal;
  onProgress?: (p: PasskeyProgress) => void;
  onTrial?: (t: PasskeyTrial) => void;
}

/** Trials, correct ones and their fraction. */
export function passkeyGroup<T>(items: T[], ok: (t: T) => boolean): PasskeyGroup {
  const correct = items.filter(ok).length;
  return { trials: items.length, correct, accuracy: items.length ? correct / items.length : 0 };
}

/** Trials grouped by fifths of the depth range ("0.0-0.2", ...), empty groups left out. */
export function passkeyByDepthFifths(trials: readonly Pick<PasskeyTrial, 'depth' | 'correct'>[]): PasskeyLengthResult['byDepth'] {
  const out: PasskeyLengthResult['byDepth'] = [];
  for (let b = 0; b < 5; b++) {
    const sel = trials.filter((t) => Math.min(4, Math.floor(t.depth * 5)) === b);
    if (sel.length) out.push({ depth: `${(b / 5).toFixed(1)}-${((b + 1) / 5).toFixed(1)}`, ...passkeyGroup(sel, (t) => t.correct) });
  }
  return out;
}

/** Seed of one (length, trial) pair: trials do not depend on which other lengths run. */
export function passkeyTrialSeed(seed: number, length: number, trial: number): number {
  return (seed ^ Math.imul(length, 0x9e3779b1) ^ Math.imul(trial + 1, 0x85ebca6b)) >>> 0;
}

export async function runPasskey(model: Model, opts: PasskeyOptions): Promise<PasskeyResult> {
  const tok = model.tokenizer;
  if (!tok) throw new Error(`${model.dir} has no tokenizer.json: the pass-key prompt is text`);
  const t0 = performance.now();
  const lengths = opts.lengths;
  if (!Array.isArray(lengths) || lengths.length === 0) throw new Error('option lengths must be a non-empty array of token counts');
  for (const l of lengths) if (!Number.isInteger(l) || l < 1) throw new Error(`option lengths: ${String(l)} is not a positive integer`);
  const trials = opts.trials ?? 10;
  if (!Number.isInteger(trials) || trials < 1) throw new Error(`option trials must be a positive integer, got ${String(opts.trials)}`);
  const seed = opts.seed ?? 42;
  if (!Number.isInteger(seed)) throw new Error(`option seed must be an integer, got ${String(opts.seed)}`);
  const depths = opts.depths;
  if (depths !== undefined) {
    if (!Array.isArray(depths) || depths.length === 0) throw new Error('option depths must be a non-empty array');
    for (const d of depths) if (typeof d !== 'number' || !(d >= 0 && d <= 1)) throw new Error(`option depths: ${String(d)} is not in [0, 1]`);
  }
  if (opts.maxNewTokens !== undefined && (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 1))
    throw new Error(`option maxNewTokens must be a positive integer, got ${String(opts.maxNewTokens)}`);
  const { cacheType: _c, bosId: _b, keepChunkCaches: _k, ...params } = opts.focus ?? {};
  const focus = resolveFocusParams({ ...model.focusDefaults, ...definedOnly(params) });
  const bosId = opts.focus?.bosId ?? model.config.bosTokenId;
  const stopIds = new Set([...tok.eosIds, ...model.config.eosTokenIds]);
  // Room for " 12345." as the tokenizer writes it, and a little more.
  const maxNew = opts.maxNewTokens ?? Math.max(8, tok.encode(' 12345.', { addSpecial: false }).length + 3);

  const plan = depths ? depths.flatMap((d) => Array.from({ length: trials }, () => d)) : Array.from({ length: trials }, () => undefined);
  const total = plan.length * lengths.length;
  const records: PasskeyTrial[] = [];
  const out: PasskeyLengthResult[] = [];
  let correct = 0;
  for (const length of lengths) {
    const mine: PasskeyTrial[] = [];
    for (let trial = 0; trial < plan.length; trial++) {
      opts.signal?.throwIfAborted();
      const progress = (phase: PasskeyProgress['phase'], ingest?: IngestProgress) =>
        opts.onProgress?.({ length, trial, trialsTotal: plan.length, done: records.length, total, correct, phase, ingest });
      progress('prompt');
      const prompt = makePasskeyPrompt(tok, length, makeRng(passkeyTrialSeed(seed, length, trial)), { depth: plan[trial], bosId });
      progress('ingest');
      let decoding = false;
      const r = await greedyDecode(model, prompt.ids, {
        maxNewTokens: maxNew,
        stopIds,
        // A newline after some text ends the answer.
        stopWhen: (ids) => {
          if (!decoding) {
            decoding = true;
            progress('decode');
          }
          return /\S[^\n]*\n/.test(tok.decode(ids, { skipSpecial: true }));
        },
        focus: opts.focus,
        signal: opts.signal,
        onIngestProgress: (p) => progress('ingest', p),
      });
      const answer = tok.decode(r.ids, { skipSpecial: true });
      const ok = firstNumber(answer) === String(prompt.passkey);
      if (ok) correct++;
      const rec: PasskeyTrial = {
        length,
        trial,
        tokens: prompt.ids.length,
        depth: prompt.fillerSentences ? prompt.sentencesBefore / prompt.fillerSentences : prompt.depth,
        passkey: prompt.passkey,
        answer,
        correct: ok,
        mode: r.mode,
        chunks: r.chunks,
        ingestSeconds: r.ingestSeconds,
        decodeSeconds: r.decodeSeconds,
      };
      records.push(rec);
      mine.push(rec);
      opts.onTrial?.(rec);
    }
    const byDepth: PasskeyLengthResult['byDepth'] = [];
    if (depths) {
      for (const d of [...new Set(depths)]) {
        const sel = mine.filter((_, i) => plan[i] === d);
        byDepth.push({ depth: String(d), ...passkeyGroup(sel, (t) => t.correct) });
      }
    } else byDepth.push(...passkeyByDepthFifths(mine));
    out.push({
      length,
      ...passkeyGroup(mine, (t) => t.correct),
      meanTokens: mine.reduce((s, t) => s + t.tokens, 0) / mine.length,
      meanIngestSeconds: mine.reduce((s, t) => s + t.ingestSeconds, 0) / mine.length,
      byDepth,
    });
  }
  opts.onProgress?.({
    length: lengths[lengths.length - 1],
    trial: plan.length,
    trialsTotal: plan.length,
    done: total,
    total,
    correct,
    phase: 'done',
  });
  return {
    task: 'passkey',
    seed,
    focus,
    maxNewTokens: maxNew,
    ...passkeyGroup(records, (t) => t.correct),
    lengths: out,
    records,
    seconds: (performance.now() - t0) / 1000,
  };
}
