// FocusLLM step modes (README, "Step modes"): how far each departs from the
// exact method, and what it costs per token, on any model, in one run.
//
//   npx tsx bench/step-modes.ts --model DIR [--modes exact,incremental,tail:16,tail:64,refresh:16,refresh:4]
//       [--fidelity-lengths 16x,100x] [--tokens 64] [--passkey-trials 5]
//       [--lengths 8k,32k,64k] [--steps 32] [--native | --native=false]
//       [--threads N] [--backend cpu|cuda|auto] [--local-window N ...] [--text FILE]
//       [--skip fidelity|speed] [--json] [--out FILE]
//
// Fidelity, per input length (a multiple of the local window, "16x", or a
// token count): every mode against `exact` on the same input.
// - Teacher forcing on the text's own continuation (`--tokens` rows: the
//   ingest's and those of `--tokens - 1` steps): per token, KL(exact || mode)
//   of the next-token distributions, the NLL of the true next token under
//   each, and whether both pick the same top-1 token.
// - Free-running greedy generation of `--tokens` tokens: the fraction of
//   positions where the mode's token is exact's, and the first that differs.
// - Pass-key retrieval (the prompt of lib/eval/passkey.ts, at the same
//   length; needs a tokenizer): accuracy, and agreement with exact's answers.
// Speed, per input length: the mean per-token time of each mode's steps
// (refreshes included), beside a native KV-cached decode step at the same
// length and exact's step, measured in the same run. The native reference
// needs a native prefill of the whole input first (quadratic: minutes at
// 64K on a CPU); --native=false leaves it out.
//
// The text is --text FILE, else the deterministic document of
// test/fixtures-text/document.ts; a model without tokenizer.json gets
// pseudo-random ids (BOS first). Markdown tables on stdout (with --json, one
// JSON object per measurement instead); --out FILE writes the JSON lines too.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { parseFlags, parseNumber, usage, UsageError } from '../lib/cli/args';
import { FOCUS_FLAGS, focusFromFlags } from '../lib/cli/common';
import { firstNumber, makePasskeyPrompt } from '../lib/eval/passkey';
import { loadModel, type Model } from '../lib/model';
import { argmax, makeRng } from '../lib/sampling';
import { parseStepMode, type SessionOptions, type StepMode } from '../lib/session';
import { buildDocument } from '../test/fixtures-text/document';
import { machine, median } from './report';

export const DEFAULT_MODES: StepMode[] = ['exact', 'incremental', 'tail:16', 'tail:64', 'refresh:16', 'refresh:4'];

type Focus = Omit<SessionOptions, 'maxSteps' | 'stepMode'>;

// ---- fidelity ------------------------------------------------------------------

function logSoftmax(row: ArrayLike<number>): Float64Array {
  let mx = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > mx) mx = row[i];
  let z = 0;
  for (let i = 0; i < row.length; i++) z += Math.exp(row[i] - mx);
  const lz = mx + Math.log(z);
  const out = new Float64Array(row.length);
  for (let i = 0; i < row.length; i++) out[i] = row[i] - lz;
  return out;
}

export interface RowComparison {
  /** KL(p_ref || p_mode), nats */
  kl: number;
  /** -log p(target) under the reference and under the mode */
  nllRef: number;
  nllMode: number;
  /** both pick the same top-1 token */
  top1: boolean;
}

/** One next-token distribution of a mode against the reference's (both logits rows). */
export function compareRow(ref: ArrayLike<number>, mode: ArrayLike<number>, target: number): RowComparison {
  const lr = logSoftmax(ref);
  const lm = logSoftmax(mode);
  let kl = 0;
  for (let i = 0; i < lr.length; i++) {
    const p = Math.exp(lr[i]);
    if (p > 0) kl += p * (lr[i] - lm[i]);
  }
  return { kl: Math.max(0, kl), nllRef: -lr[target], nllMode: -lm[target], top1: argmax(ref) === argmax(mode) };
}

export interface Fidelity {
  /** teacher-forced rows compared */
  rows: number;
  klMean: number;
  klMax: number;
  /** mean NLL of the true next tokens, under exact and under the mode */
  nllExact: number;
  nllMode: number;
  /** mean and largest |.| of the per-token difference NLL(mode) - NLL(exact) */
  nllDiffMean: number;
  nllDiffMaxAbs: number;
  /** fraction of rows whose top-1 token is exact's */
  top1Agree: number;
  /** max |mode - exact| over the ingest logits row (0: the ingest is the same in every mode) */
  ingestMaxAbsDiff: number;
  /** KL per row, in step order (how the departure grows with the steps) */
  klRows: number[];
}

/** Teacher-forced rows of a mode against exact's: rows[i] predicts targets[i]. */
export function summarizeFidelity(exact: Float32Array[], mode: Float32Array[], targets: readonly number[]): Fidelity {
  if (exact.length !== mode.length || exact.length !== targets.length || exact.length === 0)
    throw new Error(`fidelity: ${exact.length} exact rows, ${mode.length} mode rows, ${targets.length} targets`);
  const cs = exact.map((r, i) => compareRow(r, mode[i], targets[i]));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const diffs = cs.map((c) => c.nllMode - c.nllRef);
  let ingest = 0;
  for (let i = 0; i < exact[0].length; i++) ingest = Math.max(ingest, Math.abs(exact[0][i] - mode[0][i]));
  return {
    rows: cs.length,
    klMean: mean(cs.map((c) => c.kl)),
    klMax: Math.max(...cs.map((c) => c.kl)),
    nllExact: mean(cs.map((c) => c.nllRef)),
    nllMode: mean(cs.map((c) => c.nllMode)),
    nllDiffMean: mean(diffs),
    nllDiffMaxAbs: Math.max(...diffs.map(Math.abs)),
    top1Agree: cs.filter((c) => c.top1).length / cs.length,
    ingestMaxAbsDiff: ingest,
    klRows: cs.map((c) => c.kl),
  };
}

/** Logits rows under teacher forcing: row 0 after ingesting ids, row i after stepping cont[i-1]; cont.length rows. */
export async function teacherForced(model: Model, ids: readonly number[], cont: readonly number[], focus: SessionOptions): Promise<Float32Array[]> {
  const s = model.createSession({ ...focus, maxSteps: Math.max(0, cont.length - 1) });
  try {
    const rows = [await s.ingest(ids)];
    for (let i = 0; i + 1 < cont.length; i++) rows.push(await s.step(cont[i]));
    return rows;
  } finally {
    s.dispose();
  }
}

/** `n` greedy tokens after ids (no stop token). */
export async function greedyTokens(model: Model, ids: readonly number[], n: number, focus: SessionOptions): Promise<number[]> {
  const s = model.createSession({ ...focus, maxSteps: Math.max(0, n - 1) });
  try {
    const out = [argmax(await s.ingest(ids))];
    while (out.length < n) out.push(argmax(await s.step(out[out.length - 1])));
    return out;
  } finally {
    s.dispose();
  }
}

/** Position-wise agreement of two greedy sequences, and the first position that differs (null: none). */
export function greedyAgreement(ref: readonly number[], got: readonly number[]): { agree: number; firstDiff: number | null } {
  const n = Math.min(ref.length, got.length);
  let same = 0;
  let first: number | null = null;
  for (let i = 0; i < n; i++) {
    if (ref[i] === got[i]) same++;
    else if (first === null) first = i;
  }
  return { agree: n ? same / n : 1, firstDiff: first };
}

/** The answer to one pass-key prompt: greedy, until EOS, a line after some text, or maxNew tokens. */
async function passkeyAnswer(model: Model, ids: readonly number[], maxNew: number, focus: SessionOptions): Promise<string> {
  const tok = model.tokenizer!;
  const stop = new Set([...tok.eosIds, ...model.config.eosTokenIds]);
  const s = model.createSession({ ...focus, maxSteps: maxNew });
  try {
    const out: number[] = [];
    let id = argmax(await s.ingest(ids));
    while (!stop.has(id)) {
      out.push(id);
      if (out.length >= maxNew || /\S[^\n]*\n/.test(tok.decode(out, { skipSpecial: true }))) break;
      id = argmax(await s.step(id));
    }
    return tok.decode(out, { skipSpecial: true });
  } finally {
    s.dispose();
  }
}

// ---- speed -------------------------------------------------------------------

interface StepTiming {
  ingestMs: number;
  /** per step, in order */
  stepMs: number[];
  mode: 'native' | 'focus';
  chunks: number;
  memory: { chunkCaches: number; candidates: number; localCache: number };
}

async function timeSteps(model: Model, ids: readonly number[], steps: number, focus: SessionOptions): Promise<StepTiming> {
  const s = model.createSession({ ...focus, maxSteps: steps });
  try {
    const t0 = performance.now();
    let logits = await s.ingest(ids);
    const ingestMs = performance.now() - t0;
    const stepMs: number[] = [];
    for (let i = 0; i < steps; i++) {
      const t = performance.now();
      logits = await s.step(argmax(logits));
      stepMs.push(performance.now() - t);
    }
    return { ingestMs, stepMs, mode: s.mode!, chunks: s.chunks, memory: s.memory };
  } finally {
    s.dispose();
  }
}

// ---- the command ---------------------------------------------------------------

const { 'step-mode': _stepModeFlag, ...FOCUS_ONLY } = FOCUS_FLAGS;

const SPEC = {
  model: { type: 'string' as const, help: 'checkpoint folder', required: true },
  modes: { type: 'list' as const, help: `step modes to compare with exact (default ${DEFAULT_MODES.join(',')})` },
  'fidelity-lengths': { type: 'list' as const, help: 'input lengths of the fidelity runs: Nx (N local windows) or tokens (default 16x,100x)' },
  tokens: { type: 'int' as const, help: 'teacher-forced rows and greedy tokens per fidelity run', default: 64 },
  'passkey-trials': { type: 'int' as const, help: 'pass-key prompts per fidelity length (0: none; needs a tokenizer)', default: 5 },
  seed: { type: 'int' as const, help: 'pass-key seed', default: 42 },
  lengths: { type: 'list' as const, help: 'input lengths of the speed runs (default 8k,32k,64k)' },
  steps: { type: 'int' as const, help: 'timed steps per mode and length', default: 32 },
  native: { type: 'bool' as const, help: 'time a native decode step at each speed length (a quadratic native prefill first)', default: true },
  skip: { type: 'list' as const, help: 'parts to leave out: fidelity, speed' },
  text: { type: 'string' as const, help: 'text file to take the inputs from (default: the deterministic test document)' },
  backend: { type: 'string' as const, help: 'cpu, cuda or auto', default: 'auto' },
  threads: { type: 'int' as const, help: 'CPU threads (default: all cores)' },
  'max-batch-tokens': { type: 'int' as const, help: 'rows per native micro-batch (default: backend-specific)' },
  json: { type: 'bool' as const, help: 'JSON lines instead of tables' },
  out: { type: 'string' as const, help: 'also write the JSON lines to this file' },
  ...FOCUS_ONLY,
};

type Rec = Record<string, unknown> & { bench: string };

const fmt = (v: unknown, digits = 3): string =>
  v === null || v === undefined
    ? '-'
    : typeof v === 'number'
      ? Number.isInteger(v)
        ? String(v)
        : Math.abs(v) >= 100
          ? v.toFixed(1)
          : Math.abs(v) >= 0.01
            ? v.toFixed(digits)
            : v === 0
              ? '0'
              : v.toExponential(2)
      : String(v);

function markdown(headers: string[], rows: unknown[][]): string {
  return [
    `| ${headers.join(' | ')} |`,
    `|${headers.map(() => ' --- ').join('|')}|`,
    ...rows.map((r) => `| ${r.map((c) => fmt(c)).join(' | ')} |`),
  ].join('\n');
}

/** Input ids: the text's tokens (BOS first), at least `need` of them, or pseudo-random ids without a tokenizer. */
function inputTokens(model: Model, need: number, textFile: string | undefined, log: (s: string) => void): number[] {
  const tok = model.tokenizer;
  const bos = model.config.bosTokenId;
  if (!tok) {
    if (textFile) throw new Error(`${model.dir} has no tokenizer.json: --text needs one`);
    log('step-modes: the model has no tokenizer: pseudo-random token ids');
    const ids = [bos];
    let s = 12345;
    const V = model.config.vocabSize;
    while (ids.length < need) {
      s = (s * 1103515245 + 12345) >>> 0;
      ids.push(3 + (s % (V - 3)));
    }
    return ids;
  }
  const withBos = (ids: number[]) => (ids[0] === bos ? ids : [bos, ...ids]);
  if (textFile) {
    const ids = withBos(tok.encode(fs.readFileSync(textFile, 'utf8')));
    if (ids.length < need) throw new Error(`${textFile}: ${ids.length} tokens, the runs need ${need}`);
    return ids;
  }
  for (let chars = need * 6; ; chars *= 2) {
    const ids = withBos(tok.encode(buildDocument(chars)));
    if (ids.length >= need) return ids;
  }
}

export async function stepModesMain(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage('(bench/step-modes.ts)', 'FocusLLM step modes: fidelity against exact, and per-token speed beside native decode', SPEC) + '\n');
    return 0;
  }
  let f;
  let modes: StepMode[];
  let focus: Focus;
  try {
    f = parseFlags(argv, SPEC);
    modes = ((f.modes as string[] | undefined) ?? DEFAULT_MODES) as StepMode[];
    for (const m of modes) parseStepMode(m, '--modes');
    if (!modes.includes('exact')) modes = ['exact', ...modes];
    const { stepMode: _s, ...rest } = focusFromFlags(f);
    focus = rest;
    for (const k of ['tokens', 'steps'] as const)
      if (!((f[k] as number) >= 2)) throw new UsageError(`--${k} must be at least 2, got ${String(f[k])}`);
    if (!((f['passkey-trials'] as number) >= 0)) throw new UsageError('--passkey-trials must be >= 0');
    for (const s of (f.skip as string[] | undefined) ?? [])
      if (s !== 'fidelity' && s !== 'speed') throw new UsageError(`--skip takes fidelity and speed, got '${s}'`);
    if (!['cpu', 'cuda', 'auto'].includes(String(f.backend))) throw new UsageError(`--backend must be cpu, cuda or auto, got '${String(f.backend)}'`);
  } catch (e) {
    if (e instanceof UsageError || (e as Error).message.startsWith('--')) {
      process.stderr.write(`step-modes: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  }
  const json = Boolean(f.json);
  const skip = new Set((f.skip as string[] | undefined) ?? []);
  const log = (s: string) => process.stderr.write(s + '\n');
  const t0 = performance.now();
  const since = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  const outFile = f.out === undefined ? null : String(f.out);
  if (outFile) fs.writeFileSync(outFile, '');
  const add = (r: Rec) => {
    const line = JSON.stringify({ ...r, machine });
    if (json) process.stdout.write(line + '\n');
    if (outFile) fs.appendFileSync(outFile, line + '\n');
  };
  const print = (s: string) => {
    if (!json) process.stdout.write(s + '\n');
  };

  const model = await loadModel(String(f.model), {
    backend: String(f.backend) as 'cpu' | 'cuda' | 'auto',
    threads: f.threads as number | undefined,
    maxBatchTokens: f['max-batch-tokens'] as number | undefined,
  });
  try {
    const params = model.createSession(focus);
    const p = params.params;
    params.dispose();
    const label = `${path.basename(model.dir)} (${(model.info.parameters / 1e6).toFixed(1)}M, ${model.info.dtype}, ${model.backend})`;
    const parseLength = (s: string): number => {
      const m = /^([0-9]*\.?[0-9]+)x$/.exec(s);
      const n = m ? Math.round(Number(m[1]) * p.localWindow) : parseNumber(s);
      if (!Number.isInteger(n) || n < 2) throw new UsageError(`length '${s}' is not a token count or a multiple of the window (Nx)`);
      return n;
    };
    const fidelityLengths = skip.has('fidelity') ? [] : ((f['fidelity-lengths'] as string[] | undefined) ?? ['16x', '100x']).map(parseLength);
    const speedLengths = skip.has('speed') ? [] : ((f.lengths as string[] | undefined) ?? ['8k', '32k', '64k']).map(parseLength);
    const R = f.tokens as number;
    const steps = f.steps as number;
    const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: path.resolve(__dirname, '..'), encoding: 'utf8' });
    add({
      bench: 'step_modes_run',
      date: new Date().toISOString(),
      command: ['npx tsx bench/step-modes.ts', ...argv].join(' '),
      commit: commit.status === 0 ? commit.stdout.trim() : null,
      model: label,
      focus: p,
      modes,
      threads: f.threads ?? null,
    });
    log(`step-modes: ${label}; local window ${p.localWindow}, chunk ${p.chunkSize}, prompt cap ${p.promptCap}, min chunked ${p.minChunkedLength}`);
    const doc = inputTokens(model, Math.max(0, ...fidelityLengths, ...speedLengths) + R + 1, f.text as string | undefined, log);
    print(`# FocusLLM step modes: ${label}\n\nlocal window ${p.localWindow}, chunk size ${p.chunkSize}, prompt cap ${p.promptCap}; ${machine.cpu}, ${f.threads ?? machine.cores} threads\n`);

    // ---- fidelity -------------------------------------------------------------
    for (const L of fidelityLengths) {
      if (L < p.minChunkedLength) {
        log(`step-modes: ${L} tokens run natively (min chunked length ${p.minChunkedLength}): every mode is exact there; skipped`);
        continue;
      }
      const ids = doc.slice(0, L);
      const cont = doc.slice(L, L + R);
      const byMode = new Map<StepMode, Fidelity & { greedyAgree: number; greedyFirstDiff: number | null }>();
      log(`step-modes: fidelity at ${L} tokens: exact (${since()})`);
      const exactRows = await teacherForced(model, ids, cont, { ...focus, stepMode: 'exact' });
      const exactGreedy = await greedyTokens(model, ids, R, { ...focus, stepMode: 'exact' });
      for (const mode of modes) {
        log(`step-modes: fidelity at ${L} tokens: ${mode} (${since()})`);
        const rows = mode === 'exact' ? exactRows : await teacherForced(model, ids, cont, { ...focus, stepMode: mode });
        const g = mode === 'exact' ? exactGreedy : await greedyTokens(model, ids, R, { ...focus, stepMode: mode });
        const ga = greedyAgreement(exactGreedy, g);
        byMode.set(mode, { ...summarizeFidelity(exactRows, rows, cont), greedyAgree: ga.agree, greedyFirstDiff: ga.firstDiff });
      }
      // Pass-key prompts at the same length: each mode's answers, and whether they are exact's.
      const trials = model.tokenizer ? (f['passkey-trials'] as number) : 0;
      const pk = new Map<StepMode, { correct: number; sameAsExact: number }>(modes.map((m) => [m, { correct: 0, sameAsExact: 0 }]));
      for (let trial = 0; trial < trials; trial++) {
        const prompt = makePasskeyPrompt(model.tokenizer!, L, makeRng(((f.seed as number) ^ Math.imul(L, 0x9e3779b1) ^ trial) >>> 0), { bosId: model.config.bosTokenId });
        let exactAnswer = '';
        for (const mode of modes) {
          log(`step-modes: pass key at ${L} tokens, trial ${trial + 1}/${trials}: ${mode} (${since()})`);
          const a = await passkeyAnswer(model, prompt.ids, 8, { ...focus, stepMode: mode });
          if (mode === 'exact') exactAnswer = a;
          const r = pk.get(mode)!;
          if (firstNumber(a) === String(prompt.passkey)) r.correct++;
          if (firstNumber(a) === firstNumber(exactAnswer)) r.sameAsExact++;
        }
      }
      const table: unknown[][] = [];
      for (const mode of modes) {
        const m = byMode.get(mode)!;
        const k = pk.get(mode)!;
        add({
          bench: 'step_modes_fidelity',
          model: label,
          length: L,
          window: p.localWindow,
          window_multiple: L / p.localWindow,
          chunks: Math.ceil((L - p.localWindow) / p.chunkSize),
          mode,
          teacher_forced_rows: m.rows,
          top1_agree: m.top1Agree,
          kl_mean: m.klMean,
          kl_max: m.klMax,
          nll_exact: m.nllExact,
          nll_mode: m.nllMode,
          nll_diff_mean: m.nllDiffMean,
          nll_diff_max_abs: m.nllDiffMaxAbs,
          ingest_max_abs_diff: m.ingestMaxAbsDiff,
          greedy_tokens: R,
          greedy_agree: m.greedyAgree,
          greedy_first_diff: m.greedyFirstDiff,
          passkey_trials: trials,
          passkey_accuracy: trials ? k.correct / trials : null,
          passkey_same_as_exact: trials ? k.sameAsExact / trials : null,
          kl_rows: m.klRows,
        });
        table.push([
          mode, m.top1Agree, m.klMean, m.klMax, m.nllDiffMean, m.nllDiffMaxAbs, m.greedyAgree,
          m.greedyFirstDiff ?? `none of ${R}`, trials ? `${k.correct}/${trials}` : '-', trials ? `${k.sameAsExact}/${trials}` : '-',
        ]);
      }
      print(`## Fidelity against exact: ${L} tokens (${fmt(L / p.localWindow)}x the window), ${R} tokens\n`);
      print(markdown(['mode', 'top-1 agree (TF)', 'KL mean', 'KL max', 'ΔNLL mean', 'max |ΔNLL|', 'greedy agree', 'first greedy diff', 'pass key', 'pass key = exact'], table));
      print(`\nexact's NLL of the text's next ${R} tokens: ${fmt(byMode.get('exact')!.nllExact)} nats/token\n`);
    }

    // ---- speed ----------------------------------------------------------------
    for (const L of speedLengths) {
      const ids = doc.slice(0, L);
      const timings = new Map<string, StepTiming>();
      if (f.native) {
        log(`step-modes: speed at ${L} tokens: native prefill and decode (${since()})`);
        timings.set('native decode', await timeSteps(model, ids, steps, { ...focus, minChunkedLength: L + 1, localWindow: Math.min(p.localWindow, L) }));
      }
      for (const mode of modes) {
        log(`step-modes: speed at ${L} tokens: ${mode} (${since()})`);
        timings.set(mode, await timeSteps(model, ids, steps, { ...focus, stepMode: mode }));
      }
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const nativeMs = timings.has('native decode') ? mean(timings.get('native decode')!.stepMs) : null;
      const exactMs = mean(timings.get('exact')!.stepMs);
      const table: unknown[][] = [];
      for (const [name, tm] of timings) {
        const ms = mean(tm.stepMs);
        add({
          bench: 'step_modes_speed',
          model: label,
          backend: model.backend,
          threads: f.threads ?? machine.cores,
          length: L,
          mode: name,
          run_mode: tm.mode,
          chunks: tm.chunks,
          steps,
          ingest_ms: tm.ingestMs,
          ms_per_token: ms,
          median_step_ms: median(tm.stepMs),
          first_step_ms: tm.stepMs[0],
          vs_native: nativeMs ? ms / nativeMs : null,
          speedup_vs_exact: name === 'native decode' ? null : exactMs / ms,
          chunk_cache_bytes: tm.memory.chunkCaches,
          candidate_bytes: tm.memory.candidates,
          local_cache_bytes: tm.memory.localCache,
        });
        table.push([
          name, ms, median(tm.stepMs), nativeMs ? ms / nativeMs : null, name === 'native decode' ? null : exactMs / ms,
          tm.ingestMs / 1000, (tm.memory.chunkCaches + tm.memory.candidates + tm.memory.localCache) / 2 ** 20,
        ]);
      }
      print(`## Speed: ${L} tokens (${timings.get('exact')!.chunks} chunks), ${steps} steps\n`);
      print(markdown(['mode', 'ms/token (mean)', 'median step ms', 'x native decode', 'speedup vs exact', 'ingest s', 'caches MiB'], table));
      print('');
    }
    log(`step-modes: done (${since()})`);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`step-modes: ${e.message}\n`);
      return 2;
    }
    throw e;
  } finally {
    model.dispose();
  }
}

if (require.main === module)
  stepModesMain(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`step-modes: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
