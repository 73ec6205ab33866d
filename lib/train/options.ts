// Training options: defaults (the official recipe where it has one), checks
// that name the option, and the rules for what a resumed run may change.
import path from 'node:path';

import { DEFAULT_WINDOW, resolveGeometry, type LossMix, type TargetMode } from './geometry';
import { SCHEDULES, type ScheduleKind } from './schedule';

export type TrainParams = 'candidate' | 'all';
export type TrainLoss = 'focus' | 'lm';
export type LmScore = 'all' | 'output';

/** What model.train() and `focusllm train` take (every field optional but data / out). */
export interface TrainOptions {
  /** data files: .jsonl / .ndjson records ({"text"}, {"input","output"} or {"ids"}) or .txt / .text / .md */
  data?: string[];
  /** output folder (a new or empty folder outside the base checkpoint) */
  out?: string;
  /**
   * Continue the run saved in this folder (trainer_state.json + optimizer.safetensors).
   * The model must be loaded from it; `out` is the same folder.
   */
  resume?: string;
  /** candidate (default): the candidate projections; all: every tensor (needs loss "lm") */
  params?: TrainParams;
  /** focus (default with params candidate): FocusLLM examples; lm: causal LM (default with params all) */
  loss?: TrainLoss;
  /** focus: which loss per example (default random: continuation or repetition, 50/50) */
  losses?: LossMix;
  /** W: the training window (default 3072) */
  window?: number;
  /** smallest local window l (default min(30, floor(W / 8)), at least 1) */
  localMin?: number;
  /** focus: where the scored token lies: block (official, default) or last (the document's last token) */
  target?: TargetMode;
  /** largest local window l (default W - 2) */
  localMax?: number;
  /** chunk lengths C to draw from (default 64, 128, ..., 2048) */
  chunkSizes?: number[];
  /** cap on the dynamic prompt (default 512) */
  promptCap?: number;
  /** lm: tokens per sequence (default min(W, max_position_embeddings)) */
  seqLen?: number;
  /**
   * lm: which tokens are scored. all (default): every next token of sequences
   * cut from the stream of documents; output: each {"input","output"} record
   * is a sequence of its own (the input truncated in its middle to seqLen)
   * scored on its output only, other records as with all.
   */
  lmScore?: LmScore;
  /** documents with fewer tokens are skipped (default: W for focus, 2 for lm) */
  minLength?: number;
  /** documents are cut to this many tokens (default: max(8192, W) for focus, no cut for lm) */
  maxLength?: number;
  /** optimizer steps (default: one pass over the data) */
  steps?: number;
  /** examples per native call (default 8) */
  batch?: number;
  /** native calls accumulated per optimizer step (default 1): batch * accum examples per step */
  accum?: number;
  /** peak learning rate (default 5e-5) */
  lr?: number;
  /** warmup steps (default 0) */
  warmup?: number;
  /** decay after warmup: linear (default), cosine or constant */
  schedule?: ScheduleKind;
  /** global gradient-norm clip, 0 = none (default 1) */
  clip?: number;
  /** AdamW decoupled weight decay (default 0) */
  weightDecay?: number;
  /** AdamW betas and epsilon (default 0.9, 0.999, 1e-8) */
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** seed of the data order and geometry draws (default: random, recorded in trainer_state.json) */
  seed?: number;
  /** also save a resumable checkpoint every N steps (default 0: at the end only) */
  saveEvery?: number;
  /** recompute each layer in the backward instead of keeping its activations (less memory) */
  recompute?: boolean;
}

/** Every option settled; stored in trainer_state.json. */
export interface ResolvedTrainOptions {
  data: string[];
  out: string;
  params: TrainParams;
  loss: TrainLoss;
  losses: LossMix;
  window: number;
  localMin: number;
  localMax: number;
  target: TargetMode;
  chunkSizes: number[];
  promptCap: number;
  seqLen: number;
  /** lm: absent in runs saved before the option (read as 'all') */
  lmScore?: LmScore;
  minLength: number;
  maxLength: number;
  /** null: one pass over the data, settled once the data is read */
  steps: number | null;
  batch: number;
  accum: number;
  lr: number;
  warmup: number;
  schedule: ScheduleKind;
  clip: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  seed: number;
  saveEvery: number;
  recompute: boolean;
}

/** Options a resumed run may change; the others must stay as the run began. */
export const RESUMABLE_OPTIONS: readonly string[] = ['data', 'out', 'resume', 'steps', 'saveEvery', 'recompute'];

/** maxLength when nothing is cut (lm's default) */
export const NO_CUT = 2 ** 30;

function int(name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new Error(`option ${name} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}, got ${String(v)}`);
  return v;
}

function num(name: string, v: unknown, ok: (x: number) => boolean, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new Error(`option ${name} must be ${what}, got ${String(v)}`);
  return v;
}

function bool(name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new Error(`option ${name} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function oneOf<T extends string>(name: string, v: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(v as T)) throw new Error(`option ${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}

/** params and loss go together: candidate with focus, all with lm; one given implies the other. */
function paramsAndLoss(o: TrainOptions): { params: TrainParams; loss: TrainLoss } {
  const params = o.params === undefined ? undefined : oneOf('params', o.params, ['candidate', 'all'] as const);
  const loss = o.loss === undefined ? undefined : oneOf('loss', o.loss, ['focus', 'lm'] as const);
  if (params === 'all' && loss === 'focus')
    throw new Error('option params "all" needs option loss "lm": the FocusLLM losses train the candidate projections only');
  if (params === 'candidate' && loss === 'lm')
    throw new Error('option loss "lm" needs option params "all": the causal LM loss never reaches the candidate projections');
  if (params === 'all' || loss === 'lm') return { params: 'all', loss: 'lm' };
  return { params: 'candidate', loss: 'focus' };
}

/**
 * Defaults and checks, before any file is read; an Error names the option.
 * `maxPositions` (config.json's max_position_embeddings) bounds the default seqLen.
 */
export function resolveTrainOptions(o: TrainOptions, maxPositions: number): ResolvedTrainOptions {
  if (!o || typeof o !== 'object') throw new Error('train options must be an object');
  if (!Array.isArray(o.data) || o.data.length === 0) throw new Error('option data: give at least one data file (.jsonl or .txt)');
  o.data.forEach((f, i) => {
    if (typeof f !== 'string' || !f) throw new Error(`option data[${i}] must be a file path, got ${JSON.stringify(f)}`);
  });
  if (typeof o.out !== 'string' || !o.out) throw new Error('option out: give the output folder');
  const { params, loss } = paramsAndLoss(o);
  const g = resolveGeometry({ window: o.window, localMin: o.localMin, localMax: o.localMax, chunkSizes: o.chunkSizes, losses: o.losses, target: o.target });
  const W = g.window;
  const promptCap = int('promptCap', o.promptCap ?? 512, 1);
  const seqLen = int('seqLen', o.seqLen ?? Math.max(2, Math.min(W, maxPositions > 0 ? maxPositions : W)), 2);
  const lmScore = oneOf('lmScore', o.lmScore ?? 'all', ['all', 'output'] as const);
  if (loss === 'focus' && o.lmScore !== undefined)
    throw new Error('option lmScore is for loss "lm" (the FocusLLM losses score one token per example: see option target)');
  const minLength =
    loss === 'focus'
      ? int('minLength', o.minLength ?? W, W) // a focus example needs at least one full window
      : int('minLength', o.minLength ?? 2, 1);
  const maxLength = int('maxLength', o.maxLength ?? (loss === 'focus' ? Math.max(8192, W) : NO_CUT), minLength);
  const steps = o.steps === undefined ? null : int('steps', o.steps, 1);
  const seed = o.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : int('seed', o.seed, 0, 2 ** 32 - 1);
  return {
    data: o.data.map((f) => path.resolve(f)),
    out: path.resolve(o.out),
    params,
    loss,
    losses: g.losses,
    window: W,
    localMin: g.localMin,
    localMax: g.localMax,
    target: g.target,
    chunkSizes: [...g.chunkSizes],
    promptCap,
    seqLen,
    lmScore,
    minLength,
    maxLength,
    steps,
    batch: int('batch', o.batch ?? 8, 1),
    accum: int('accum', o.accum ?? 1, 1),
    lr: num('lr', o.lr ?? 5e-5, (x) => x > 0, 'a number > 0'),
    warmup: int('warmup', o.warmup ?? 0, 0),
    schedule: oneOf('schedule', o.schedule ?? 'linear', SCHEDULES),
    clip: num('clip', o.clip ?? 1, (x) => x >= 0, 'a number >= 0 (0: no clipping)'),
    weightDecay: num('weightDecay', o.weightDecay ?? 0, (x) => x >= 0, 'a number >= 0'),
    beta1: num('beta1', o.beta1 ?? 0.9, (x) => x >= 0 && x < 1, 'a number in [0, 1)'),
    beta2: num('beta2', o.beta2 ?? 0.999, (x) => x >= 0 && x < 1, 'a number in [0, 1)'),
    eps: num('eps', o.eps ?? 1e-8, (x) => x > 0, 'a number > 0'),
    seed,
    saveEvery: int('saveEvery', o.saveEvery ?? 0, 0),
    recompute: bool('recompute', o.recompute ?? false),
  };
}

/**
 * The options of a resumed run: those saved, with the resumable ones the
 * caller gave (steps, saveEvery, recompute, data paths). Any other option
 * given with a different value is an Error naming it.
 */
export function resumeOptions(saved: ResolvedTrainOptions, given: TrainOptions, dir: string): ResolvedTrainOptions {
  // Options added after a run was saved take the value such runs had.
  const was0: ResolvedTrainOptions = { ...saved, target: saved.target ?? 'block', lmScore: saved.lmScore ?? 'all' };
  const out: ResolvedTrainOptions = { ...was0, out: path.resolve(dir) };
  if (given.out !== undefined && path.resolve(given.out) !== out.out)
    throw new Error(`option out (${given.out}) must be the resumed folder ${dir} (or left out)`);
  for (const [k, v] of Object.entries(given)) {
    if (v === undefined || RESUMABLE_OPTIONS.includes(k) || !(k in was0)) continue;
    const was = (was0 as unknown as Record<string, unknown>)[k];
    if (JSON.stringify(v) !== JSON.stringify(was))
      throw new Error(`option ${k} cannot change on resume: the run in ${dir} used ${JSON.stringify(was)}, got ${JSON.stringify(v)}`);
  }
  if (given.data !== undefined) {
    if (!Array.isArray(given.data) || given.data.length === 0) throw new Error('option data: give at least one data file (.jsonl or .txt)');
    out.data = given.data.map((f) => path.resolve(f));
  }
  if (given.steps !== undefined) out.steps = int('steps', given.steps, 1);
  if (given.saveEvery !== undefined) out.saveEvery = int('saveEvery', given.saveEvery, 0);
  if (given.recompute !== undefined) out.recompute = bool('recompute', given.recompute);
  return out;
}

export { DEFAULT_WINDOW };
