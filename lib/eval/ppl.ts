// Perplexity of the last R tokens of a text, two ways:
// - "focus": FocusLLM as DESIGN.md section 1 defines it. Ingest all but the
//   last R tokens; the ingest logits score the first of them, and each further
//   one is scored by the logits of the step that fed its predecessor
//   (teacher forcing).
// - "native": the plain sliding-window baseline. The same R tokens, each
//   scored by an ordinary causal forward over at most W tokens ending just
//   before it.
import type { Model } from '../model';
import { type FocusParams, resolveFocusParams } from '../plan';
import { definedOnly, type IngestProgress } from '../session';
import { type FocusOptions, tokenNll } from './decode';

export interface PplOptions {
  /** tokens of the text to use, from its start (default: all) */
  length?: number;
  /** R: tokens scored at the end (default 128) */
  scoreLast?: number;
  /** default "focus" */
  mode?: 'focus' | 'native';
  /** native: context window W in tokens (default 4096) */
  window?: number;
  /** native: tokens scored per window (default min(R, W / 2)) */
  stride?: number;
  /** native: a window that does not start at the text's start begins with BOS (default true) */
  windowBos?: boolean;
  /** FocusLLM parameters (focus mode) and the start token (both modes) */
  focus?: FocusOptions;
  /** keep each scored token's NLL in the result (default false) */
  keepNlls?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: PplProgress) => void;
}

export interface PplProgress {
  phase: 'ingest' | 'score' | 'window';
  /** scored tokens (focus) or windows (native) done, and their total */
  done: number;
  total: number;
  ingest?: IngestProgress;
}

export interface PplResult {
  task: 'ppl';
  mode: 'focus' | 'native';
  /** how the tokens were scored, in words */
  method: string;
  /** tokens used, and tokens scored (the last `scored` of them) */
  length: number;
  scored: number;
  ppl: number;
  meanNll: number;
  /** length / seconds: tokens of text evaluated per second */
  tokensPerSecond: number;
  seconds: number;
  /** focus: ingest and step time; native: forward time in `scoreSeconds` */
  ingestSeconds: number;
  scoreSeconds: number;
  /** focus mode */
  focus?: FocusParams & { sessionMode: 'native' | 'focus'; chunks: number };
  /** native mode */
  window?: number;
  stride?: number;
  windowBos?: boolean;
  windows?: number;
  /** the NLL of each scored token (keepNlls) */
  nlls?: number[];
}

function checkPositiveInt(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new Error(`option ${name} must be a positive integer, got ${String(v)}`);
  return v;
}

/** Perplexity of the last `scoreLast` of the first `length` ids. */
export async function runPpl(model: Model, ids: ArrayLike<number>, opts: PplOptions = {}): Promise<PplResult> {
  if (!ids || typeof ids.length !== 'number' || ids.length === 0) throw new Error('ppl: ids must be a non-empty array of token ids');
  const vocab = model.config.vocabSize;
  const all = Array.from(ids);
  all.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 0 || v >= vocab) throw new Error(`ppl: ids[${i}] = ${String(v)} is not a token id (vocabulary size ${vocab})`);
  });
  const N = opts.length === undefined ? all.length : checkPositiveInt('length', opts.length);
  if (N > all.length) throw new Error(`ppl: option length is ${N} but the text has only ${all.length} tokens`);
  const R = checkPositiveInt('scoreLast', opts.scoreLast ?? 128);
  if (R >= N) throw new Error(`ppl: option scoreLast (${R}) must be smaller than length (${N}): the first token is never scored`);
  const mode = opts.mode ?? 'focus';
  if (mode !== 'focus' && mode !== 'native') throw new Error(`ppl: option mode must be "focus" or "native", got ${JSON.stringify(mode)}`);
  const x = all.slice(0, N);
  const targets = x.slice(N - R);
  const t0 = performance.now();
  const nlls: number[] = [];
  let ingestSeconds = 0;
  let scoreSeconds = 0;
  const base = (): Omit<PplResult, 'method'> => {
    const seconds = (performance.now() - t0) / 1000;
    const meanNll = nlls.reduce((a, b) => a + b, 0) / nlls.length;
    return {
      task: 'ppl',
      mode,
      length: N,
      scored: R,
      ppl: Math.exp(meanNll),
      meanNll,
      tokensPerSecond: N / seconds,
      seconds,
      ingestSeconds,
      scoreSeconds,
      ...(opts.keepNlls ? { nlls } : {}),
    };
  };

  if (mode === 'focus') {
    const { cacheType: _c, bosId: _b, keepChunkCaches: _k, ...params } = opts.focus ?? {};
    const focus = resolveFocusParams({ ...model.focusDefaults, ...definedOnly(params) });
    const s = model.createSession({ ...opts.focus, maxSteps: R - 1 });
    try {
      const ta = performance.now();
      let logits = await s.ingest(x.slice(0, N - R), {
        signal: opts.signal,
        onProgress: (p) => opts.onProgress?.({ phase: 'ingest', done: 0, total: R, ingest: p }),
      });
      const tb = performance.now();
      ingestSeconds = (tb - ta) / 1000;
      for (let i = 0; i < R; i++) {
        nlls.push(tokenNll(logits, targets[i]));
        opts.onProgress?.({ phase: 'score', done: i + 1, total: R });
        if (i + 1 < R) logits = await s.step(targets[i], { signal: opts.signal });
      }
      scoreSeconds = (performance.now() - tb) / 1000;
      return {
        ...base(),
        method:
          `FocusLLM (README: The method): ingest the first ${N - R} tokens; their next-token logits score token ${N - R}, ` +
          `and each of the following ${R - 1} tokens is scored by the logits of the step that fed its predecessor (teacher forcing)`,
        focus: { ...focus, sessionMode: s.mode ?? 'native', chunks: s.chunks },
      };
    } finally {
      s.dispose();
    }
  }

  const W = checkPositiveInt('window', opts.window ?? 4096);
  if (W < 2) throw new Error('ppl: option window must be at least 2 tokens');
  const S = checkPositiveInt('stride', opts.stride ?? Math.min(R, Math.floor(W / 2)));
  if (S > W - 1) throw new Error(`ppl: option stride (${S}) must be below window (${W})`);
  const windowBos = opts.windowBos ?? true;
  const bos = opts.focus?.bosId ?? model.config.bosTokenId;
  let windows = 0;
  const nWindows = Math.ceil(R / S);
  // Blocks of S target positions [p0, p1); the window ends just before p1 - 1
  // (its last row predicts x[p1 - 1]) and holds at most W tokens, BOS included.
  for (let p0 = N - R; p0 < N; p0 += S) {
    opts.signal?.throwIfAborted();
    const p1 = Math.min(p0 + S, N);
    const end = p1 - 1; // input is x[b, end)
    let b = Math.max(0, end - W);
    let input: number[];
    let off = 0;
    if (b > 0 && windowBos) {
      b = end - (W - 1);
      input = [bos, ...x.slice(b, end)];
      off = 1;
    } else input = x.slice(b, end);
    const ta = performance.now();
    // Only the rows that score targets: those of positions p0 - 1 .. p1 - 2.
    const from = p0 - 1 - b + off;
    const rows = await model.forward(input, { all: true, from, signal: opts.signal });
    scoreSeconds += (performance.now() - ta) / 1000;
    for (let p = p0; p < p1; p++) nlls.push(tokenNll(rows, x[p], (p - 1 - b + off - from) * vocab, vocab));
    windows++;
    opts.onProgress?.({ phase: 'window', done: windows, total: nWindows });
  }
  return {
    ...base(),
    method:
      `sliding window: each of the last ${R} tokens is scored by a plain causal forward over at most ${W} tokens ending just before it` +
      `${windowBos ? ' (a window that starts after the text start begins with BOS, counted in the ' + W + ')' : ''}; ` +
      `windows advance ${S} tokens, so a scored token sees ${W - S + 1 - (windowBos ? 1 : 0)} to ${W - (windowBos ? 1 : 0)} tokens of text before it, fewer only near the text start`,
    window: W,
    stride: S,
    windowBos,
    windows,
  };
}
