// Pass-key retrieval as FocusLLM's eval_passkey.py runs it (the generator of
// Landmark attention / LongLoRA): filler cut by characters, the information
// line at a random character offset, then the task description and the
// question; greedy generation of exactly as many tokens as the answer has, and
// an exact match. passkey.ts keeps focusllm's default protocol (task first,
// filler in whole sentences, first number of a free answer).
//
// The prompt, with n = n_garbage filler characters in all:
//   garbage_inf   = the five filler sentences repeated, joined with " "
//   n_prefix      = a uniform integer in [0, n) (numpy randint(0, n), high
//                   excluded; 0 when n is 0), n_suffix = n - n_prefix
//   lines         = [garbage_inf[:n_prefix], information line,
//                    garbage_inf[:n_suffix], task description, question]
//   prompt        = lines joined with "\n"
// Both filler pieces are cut from the start of garbage_inf, so they can end in
// the middle of a word. The key is uniform in 1..49999 (numpy randint(1,
// 50000)); it is drawn after n_prefix, as in the script. The draws come from
// focusllm's seeded generator (makeRng), not numpy's, so the keys differ from
// the script's while following the same distribution.
import type { Model } from '../model';
import { type FocusParams, resolveFocusParams } from '../plan';
import { makeRng } from '../sampling';
import { definedOnly, type IngestProgress } from '../session';
import type { Tokenizer } from '../tokenizer/types';
import { type FocusOptions, greedyDecode } from './decode';
import {
  cachedPromptIds,
  PASSKEY_QUESTION,
  PASSKEY_TASK,
  passkeyByDepthFifths,
  passkeyGroup,
  passkeyInfoLine,
  passkeyTrialSeed,
  type PasskeyGroup,
  type PasskeyLengthResult,
  type PasskeyProgress,
  type PasskeyTrial,
} from './passkey';

/** The official filler: the five sentences as one string. */
export const PASSKEY_OFFICIAL_GARBAGE = 'The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.';

/**
 * garbage_inf[:n]: the filler repeated and joined with single spaces, cut at
 * n characters. The script builds garbage_inf from 50,000 copies (4,499,999
 * characters) and asserts n fits; here the repetition has no end.
 */
export function passkeyOfficialGarbage(n: number): string {
  if (!Number.isInteger(n) || n < 0) throw new Error(`filler length must be a non-negative integer, got ${String(n)}`);
  const unit = PASSKEY_OFFICIAL_GARBAGE + ' ';
  return unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
}

/** The official prompt text for n filler characters, nPrefix of them before the information line. */
export function passkeyOfficialText(n: number, nPrefix: number, passkey: number): string {
  if (!Number.isInteger(nPrefix) || nPrefix < 0 || nPrefix > n) throw new Error(`filler prefix ${String(nPrefix)} is not in [0, ${n}]`);
  return [passkeyOfficialGarbage(nPrefix), passkeyInfoLine(passkey), passkeyOfficialGarbage(n - nPrefix), PASSKEY_TASK, PASSKEY_QUESTION].join('\n');
}

export interface PasskeyOfficialPrompt {
  text: string;
  /** token ids, BOS first */
  ids: number[];
  passkey: number;
  /** String(passkey): what the decoded answer must equal */
  answer: string;
  /** tokens of the answer without BOS (LLaMA-2: "▁" and one per digit): the tokens generated */
  answerTokens: number;
  /** n_garbage: filler characters in all, and before the information line */
  garbageChars: number;
  prefixChars: number;
  /** prefixChars / garbageChars (0 without filler) */
  depth: number;
  /** the length asked for, and its unit */
  length: number;
  unit: 'tokens' | 'chars';
}

/**
 * An official pass-key prompt. rng draws the information line's offset as a
 * fraction u of the filler (n_prefix = floor(u * n)), then the key.
 *
 * unit "chars": `length` is n_garbage itself.
 *
 * unit "tokens": the scripts convert with about 3.75 characters a token;
 * here n_garbage is searched instead (u and the key fixed): the prompt with n
 * filler characters has at most `length` tokens (BOS included) and the one
 * with n + 1 has more. Token counts are not quite monotone in n (a word cut in
 * the middle can take fewer pieces than a shorter cut), so a somewhat larger
 * n may also fit; the prompt is within a couple of tokens of `length`.
 */
export function makePasskeyOfficialPrompt(
  tokenizer: Tokenizer,
  length: number,
  unit: 'tokens' | 'chars',
  rng: () => number,
  opts: { bosId?: number | null } = {},
): PasskeyOfficialPrompt {
  if (unit !== 'tokens' && unit !== 'chars') throw new Error(`passkey unit must be "tokens" or "chars", got ${JSON.stringify(unit)}`);
  if (!Number.isInteger(length) || length < (unit === 'chars' ? 0 : 1))
    throw new Error(`passkey length must be a ${unit === 'chars' ? 'non-negative' : 'positive'} integer, got ${String(length)}`);
  const u = rng();
  const passkey = 1 + Math.floor(rng() * 49999);
  const bos = opts.bosId !== undefined ? opts.bosId : tokenizer.bosId;
  // floor(u * n) is below n for u in [0, 1); the min guards a generator that returns 1.
  const prefixOf = (n: number) => (n === 0 ? 0 : Math.min(n - 1, Math.floor(u * n)));
  const encode = cachedPromptIds(tokenizer, bos, (n) => passkeyOfficialText(n, prefixOf(n), passkey));
  let n = length;
  if (unit === 'tokens') {
    const base = encode(0).length;
    if (base > length) throw new Error(`passkey length ${length} is shorter than the prompt without filler (${base} tokens)`);
    // Bracket n with count(lo) <= length < count(hi). Guesses aim between
    // `length` and `length + 1` tokens at the measured characters per token,
    // and stay strictly inside (lo, hi) so every probe narrows the bracket.
    let rate = 3.75;
    let lo = 0;
    let hi = Infinity;
    let guess = Math.round((length - base + 0.5) * rate);
    while (hi - lo > 1) {
      let m = guess;
      if (!(m > lo && m < hi)) m = hi === Infinity ? 2 * lo + 1 : Math.floor((lo + hi) / 2);
      const c = encode(m).length;
      if (c > base) rate = m / (c - base);
      if (c <= length) lo = m;
      else hi = m;
      guess = m + Math.round((length + 0.5 - c) * rate);
    }
    n = lo;
  }
  const ids = encode(n);
  const prefix = prefixOf(n);
  const answer = String(passkey);
  return {
    text: passkeyOfficialText(n, prefix, passkey),
    ids,
    passkey,
    answer,
    answerTokens: tokenizer.encode(answer, { addSpecial: false }).length,
    garbageChars: n,
    prefixChars: prefix,
    depth: n ? prefix / n : 0,
    length,
    unit,
  };
}

export interface PasskeyOfficialTrial extends PasskeyTrial {
  unit: 'tokens' | 'chars';
  /** the answer the trial needs (String(passkey)) and its tokens (the tokens generated at most) */
  expected: string;
  answerTokens: number;
  /** n_garbage and n_prefix */
  garbageChars: number;
  prefixChars: number;
  /** the tokens the model was given: `tokens`, or fewer when nativeWindow cut the prompt */
  inputTokens: number;
}

export interface PasskeyOfficialLengthResult extends PasskeyLengthResult {
  unit: 'tokens' | 'chars';
  meanGarbageChars: number;
}

export interface PasskeyOfficialResult extends PasskeyGroup {
  task: 'passkey';
  protocol: 'official';
  unit: 'tokens' | 'chars';
  /** true: every prompt ran as one plain causal sequence (no chunks) */
  native: boolean;
  seed: number;
  /** the FocusLLM parameters in force (unused with native) */
  focus: FocusParams;
  lengths: PasskeyOfficialLengthResult[];
  records: PasskeyOfficialTrial[];
  seconds: number;
}

export interface PasskeyOfficialOptions {
  /** prompt lengths: tokens (BOS included) or filler characters (n_garbage), after `unit` */
  lengths: number[];
  /** default "tokens" */
  unit?: 'tokens' | 'chars';
  /** trials per length (default 10, the script's num_tests) */
  trials?: number;
  /** default 42 */
  seed?: number;
  focus?: FocusOptions;
  /** the baseline: run each prompt natively, as one causal sequence whatever its length (default false) */
  native?: boolean;
  /**
   * native only: the model's window; a prompt that would not fit with its
   * answer is cut from the left to BOS + its last (window - 1 - answer tokens)
   * tokens, as a plain model sees a long input (default: no cut)
   */
  nativeWindow?: number;
  signal?: AbortSignal;
  onProgress?: (p: PasskeyProgress) => void;
  onTrial?: (t: PasskeyOfficialTrial) => void;
}

export async function runPasskeyOfficial(model: Model, opts: PasskeyOfficialOptions): Promise<PasskeyOfficialResult> {
  const tok = model.tokenizer;
  if (!tok) throw new Error(`${model.dir} has no tokenizer.json: the pass-key prompt is text`);
  const t0 = performance.now();
  const unit = opts.unit ?? 'tokens';
  if (unit !== 'tokens' && unit !== 'chars') throw new Error(`option unit must be "tokens" or "chars", got ${JSON.stringify(opts.unit)}`);
  const lengths = opts.lengths;
  if (!Array.isArray(lengths) || lengths.length === 0) throw new Error(`option lengths must be a non-empty array of ${unit === 'chars' ? 'character' : 'token'} counts`);
  for (const l of lengths)
    if (!Number.isInteger(l) || l < (unit === 'chars' ? 0 : 1))
      throw new Error(`option lengths: ${String(l)} is not a ${unit === 'chars' ? 'non-negative' : 'positive'} integer`);
  const trials = opts.trials ?? 10;
  if (!Number.isInteger(trials) || trials < 1) throw new Error(`option trials must be a positive integer, got ${String(opts.trials)}`);
  const seed = opts.seed ?? 42;
  if (!Number.isInteger(seed)) throw new Error(`option seed must be an integer, got ${String(opts.seed)}`);
  const native = opts.native ?? false;
  if (typeof native !== 'boolean') throw new Error(`option native must be a boolean, got ${String(opts.native)}`);
  const nativeWindow = opts.nativeWindow;
  if (nativeWindow !== undefined && (!native || !Number.isInteger(nativeWindow) || nativeWindow < 2))
    throw new Error(`option nativeWindow must be an integer >= 2, with native: true; got ${String(nativeWindow)}`);
  const { cacheType: _c, bosId: _b, keepChunkCaches: _k, ...params } = opts.focus ?? {};
  // As the session resolves them: the checkpoint's defaults where nothing is set.
  const focus = resolveFocusParams({ ...model.focusDefaults, ...definedOnly(params) });
  const bosId = opts.focus?.bosId ?? model.config.bosTokenId;
  const stopIds = new Set([...tok.eosIds, ...model.config.eosTokenIds]);

  const total = trials * lengths.length;
  const records: PasskeyOfficialTrial[] = [];
  const out: PasskeyOfficialLengthResult[] = [];
  let correct = 0;
  for (const length of lengths) {
    const mine: PasskeyOfficialTrial[] = [];
    for (let trial = 0; trial < trials; trial++) {
      opts.signal?.throwIfAborted();
      const progress = (phase: PasskeyProgress['phase'], ingest?: IngestProgress) =>
        opts.onProgress?.({ length, trial, trialsTotal: trials, done: records.length, total, correct, phase, ingest });
      progress('prompt');
      const prompt = makePasskeyOfficialPrompt(tok, length, unit, makeRng(passkeyTrialSeed(seed, length, trial)), { bosId });
      progress('ingest');
      // Native: a chunking threshold above the prompt keeps the session in
      // native mode through the answer's steps.
      const sessionFocus = native ? { ...opts.focus, minChunkedLength: Math.max(prompt.ids.length, focus.localWindow) + 1 } : opts.focus;
      let ids = prompt.ids;
      const keep = nativeWindow === undefined ? Infinity : nativeWindow - 1 - prompt.answerTokens;
      if (ids.length - 1 > keep) ids = [ids[0], ...ids.slice(ids.length - Math.max(1, keep))];
      let decoding = false;
      const r = await greedyDecode(model, ids, {
        maxNewTokens: prompt.answerTokens,
        stopIds,
        stopWhen: () => {
          if (!decoding) progress('decode');
          decoding = true;
          return false;
        },
        focus: sessionFocus,
        signal: opts.signal,
        onIngestProgress: (p) => progress('ingest', p),
      });
      const answer = tok.decode(r.ids, { skipSpecial: true });
      const ok = answer.trim() === prompt.answer;
      if (ok) correct++;
      const rec: PasskeyOfficialTrial = {
        length,
        trial,
        tokens: prompt.ids.length,
        depth: prompt.depth,
        passkey: prompt.passkey,
        answer,
        correct: ok,
        mode: r.mode,
        chunks: r.chunks,
        ingestSeconds: r.ingestSeconds,
        decodeSeconds: r.decodeSeconds,
        unit,
        expected: prompt.answer,
        answerTokens: prompt.answerTokens,
        garbageChars: prompt.garbageChars,
        prefixChars: prompt.prefixChars,
        inputTokens: ids.length,
      };
      records.push(rec);
      mine.push(rec);
      opts.onTrial?.(rec);
    }
    const mean = (f: (t: PasskeyOfficialTrial) => number) => mine.reduce((s, t) => s + f(t), 0) / mine.length;
    out.push({
      length,
      unit,
      ...passkeyGroup(mine, (t) => t.correct),
      meanTokens: mean((t) => t.tokens),
      meanGarbageChars: mean((t) => t.garbageChars),
      meanIngestSeconds: mean((t) => t.ingestSeconds),
      byDepth: passkeyByDepthFifths(mine),
    });
  }
  opts.onProgress?.({ length: lengths[lengths.length - 1], trial: trials, trialsTotal: trials, done: total, total, correct, phase: 'done' });
  return {
    task: 'passkey',
    protocol: 'official',
    unit,
    native,
    seed,
    focus,
    ...passkeyGroup(records, (t) => t.correct),
    lengths: out,
    records,
    seconds: (performance.now() - t0) / 1000,
  };
}
