// focusllm train: FocusLLM candidate training (or full-parameter LM training)
// into a new checkpoint folder. A thin layer over lib/train: flags become
// TrainOptions; progress goes to stderr; Ctrl-C saves a resumable checkpoint.
import path from 'node:path';

import { parseFlags, usage, UsageError, type FlagSpec } from './args';
import type { Command } from './command';
import { withSigint } from '../eval/cli';
import { checkBeaconParam, loadModel } from '../model';
import { native } from '../native';
import { loadTokenizer } from '../tokenizer/index';
import { readState } from '../train/checkpoint';
import type { DataStats } from '../train/data';
import { runTraining, type TrainProgress, type TrainSummary } from '../train/loop';
import { NO_CUT, type TrainOptions } from '../train/options';
import { prepareTraining, type TrainPlan } from '../train/plan';

// No defaults in the spec: a resumed run must see which options were given.
const SPEC: Record<string, FlagSpec> = {
  model: { type: 'string', help: 'base checkpoint folder (config.json + *.safetensors [+ tokenizer.json]); required unless --resume' },
  data: { type: 'list', help: 'data files, .jsonl ({"text"} / {"input","output"} / {"ids"} records) or .txt (several: --data a b, a,b, or --data repeated)' },
  out: { type: 'string', help: 'output folder: new or empty, not inside --model' },
  resume: { type: 'string', help: 'continue the run saved in this folder (its trainer_state.json)' },
  params: { type: 'string', help: 'candidate (the candidate projections) or all (every tensor, with --loss lm) (default candidate)' },
  loss: { type: 'string', help: 'focus (FocusLLM examples) or lm (causal LM, with --params all) (default focus)' },
  losses: { type: 'string', help: 'focus: random (50/50 per example), both (summed, same geometry), continuation or repetition (default random)' },
  window: { type: 'int', help: 'W: training window in tokens (default 3072)' },
  'local-min': { type: 'int', help: 'smallest local window l (default min(30, floor(W/8)), at least 1)' },
  target: { type: 'string', help: 'focus: the scored token: block (official: inside the last full W-block, or a random one for repetition) or last (the document\'s last token) (default block)' },
  'local-max': { type: 'int', help: 'largest local window l (default W - 2)' },
  strides: { type: 'list', help: 'chunk lengths C to draw from (default 64,128,256,512,1024,2048)' },
  'prompt-cap': { type: 'int', help: 'cap on the dynamic prompt (default 512)' },
  'seq-len': { type: 'int', help: 'lm: tokens per sequence (default min(W, max_position_embeddings))' },
  'lm-score': { type: 'string', help: 'lm: all (every next token) or output ({"input","output"} records one sequence each, scored on the output only) (default all)' },
  'min-length': { type: 'int', help: 'skip documents with fewer tokens (default W for focus, 2 for lm)' },
  'max-length': { type: 'int', help: 'cut documents to this many tokens (default max(8192, W) for focus; lm: no cut)' },
  steps: { type: 'int', help: 'optimizer steps (default one pass over the data)' },
  batch: { type: 'int', help: 'examples per native call (default 8)' },
  accum: { type: 'int', help: 'native calls per optimizer step (gradient accumulation) (default 1)' },
  lr: { type: 'number', help: 'peak learning rate (default 5e-5)' },
  warmup: { type: 'int', help: 'warmup steps (default 0)' },
  schedule: { type: 'string', help: 'linear, cosine or constant decay after warmup (default linear)' },
  clip: { type: 'number', help: 'global gradient-norm clip, 0 = none (default 1)' },
  'weight-decay': { type: 'number', help: 'AdamW weight decay (default 0)' },
  beta1: { type: 'number', help: 'AdamW beta1 (default 0.9)' },
  beta2: { type: 'number', help: 'AdamW beta2 (default 0.999)' },
  eps: { type: 'number', help: 'AdamW epsilon (default 1e-8)' },
  seed: { type: 'int', help: 'seed of the data order and geometry (default random, saved with the run)' },
  'save-every': { type: 'int', help: 'also save a resumable checkpoint every N steps (default 0: at the end)' },
  'stop-at': { type: 'int', help: 'stop after this step with a resumable checkpoint, the schedule still spanning --steps (a time-boxed run; --resume continues it)' },
  recompute: { type: 'bool', help: 'recompute layers in the backward (less memory, more compute)' },
  threads: { type: 'int', help: 'CPU threads (default: all cores)' },
  'max-batch-tokens': { type: 'int', help: 'rows per native micro-batch (default: backend-specific)' },
  'beacon-param': { type: 'list', help: 'candidate: which candidate projections to train, of q,k,v,o,mlp (mlp: the candidate row\'s own up and down projections, started as the base\'s) (default: the base config.json\'s beacon_param, else q,k,v,o)' },
  progress: { type: 'bool', help: 'progress bar on stderr (default: when stderr is a terminal; else a plain line per step or so)' },
  json: { type: 'bool', help: 'print the summary as one JSON object on stdout' },
};

/** API option name -> flag, where they differ beyond camelCase -> kebab-case. */
const FLAG_OF: Record<string, string> = { chunkSizes: '--strides' };

export function flagOf(option: string): string {
  return FLAG_OF[option] ?? '--' + option.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

/** "option lr must ..." -> "--lr must ..." */
export function flagMessage(message: string): string {
  return message.replace(/\boption (\w+)/g, (_, k: string) => flagOf(k));
}

/** `--data a b --data c,d` -> `--data a,b,c,d`: several files after one --data, --data repeated. */
export function gatherData(argv: string[]): string[] {
  const files: string[] = [];
  const rest: string[] = [];
  let seen = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--data' || a.startsWith('--data=')) {
      seen = true;
      if (a.startsWith('--data=')) files.push(a.slice(7));
      else if (i + 1 >= argv.length || argv[i + 1].startsWith('--')) throw new UsageError('--data needs a value');
      while (i + 1 < argv.length && !argv[i + 1].startsWith('--')) files.push(argv[++i]);
    } else rest.push(a);
  }
  return seen ? [...rest, '--data', files.join(',')] : rest;
}

/** "1:02:03", "4:05" */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

function fmt(x: number): string {
  return Math.abs(x) >= 1000 ? x.toFixed(0) : x.toPrecision(4);
}

/** The one-line progress bar: step, loss, tokens/s, ETA. */
export function progressBar(p: TrainProgress, width = 24): string {
  const fill = Math.round((p.step / p.steps) * width);
  return `step ${p.step}/${p.steps} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] loss ${fmt(p.loss)}  ${p.tokensPerSecond.toFixed(0)} tok/s  ETA ${formatDuration(p.eta)}`;
}

/** One plain log line per reported step (no terminal). */
export function progressLine(p: TrainProgress): string {
  const kinds = Object.entries(p.lossByKind)
    .map(([k, v]) => `${k} ${fmt(v)}`)
    .join(', ');
  return `step ${p.step}/${p.steps} loss ${fmt(p.loss)}${kinds ? ` (${kinds})` : ''} lr ${p.lr.toExponential(2)} grad-norm ${fmt(p.gradNorm)} ${p.tokensPerSecond.toFixed(0)} tok/s elapsed ${formatDuration(p.elapsed)} ETA ${formatDuration(p.eta)}`;
}

export function dataLine(s: DataStats, plan: TrainPlan): string {
  const o = plan.options;
  const parts = [`data: ${s.documents} documents, ${s.tokens} tokens from ${s.files} file${s.files === 1 ? '' : 's'}`];
  if (s.tooShort) parts.push(`${s.tooShort} shorter than ${o.minLength} tokens skipped`);
  if (plan.emptyOutputs) parts.push(`${plan.emptyOutputs} input/output record${plan.emptyOutputs === 1 ? '' : 's'} with an empty output skipped`);
  if (s.cut) {
    const records = o.loss === 'lm' && o.lmScore === 'output';
    const docs = o.maxLength < NO_CUT ? `documents to ${o.maxLength} tokens` : '';
    parts.push(records ? `${s.cut} cut (${[`input/output records to ${o.seqLen} tokens`, docs].filter(Boolean).join(', ')})` : `${s.cut} cut to ${o.maxLength} tokens`);
  }
  if (o.loss === 'lm') {
    const own = plan.unitStarts ? plan.unitStarts.filter((v) => v > 1).length : 0;
    parts.push(
      own
        ? `${own} input/output record${own === 1 ? '' : 's'} scored on ${own === 1 ? 'its' : 'their'} output, ${plan.units.length - own} sequences of ${o.seqLen} tokens`
        : `${plan.units.length} sequences of ${o.seqLen} tokens`,
    );
  }
  return parts.join('; ');
}

function options(f: Record<string, unknown>): TrainOptions {
  const o: TrainOptions = {};
  const set = <K extends keyof TrainOptions>(k: K, flag: string) => {
    if (f[flag] !== undefined) o[k] = f[flag] as TrainOptions[K];
  };
  set('data', 'data');
  set('out', 'out');
  set('params', 'params');
  set('loss', 'loss');
  set('losses', 'losses');
  set('window', 'window');
  set('localMin', 'local-min');
  set('localMax', 'local-max');
  set('target', 'target');
  set('promptCap', 'prompt-cap');
  set('seqLen', 'seq-len');
  set('lmScore', 'lm-score');
  set('minLength', 'min-length');
  set('maxLength', 'max-length');
  set('steps', 'steps');
  set('batch', 'batch');
  set('accum', 'accum');
  set('lr', 'lr');
  set('warmup', 'warmup');
  set('schedule', 'schedule');
  set('clip', 'clip');
  set('weightDecay', 'weight-decay');
  set('beta1', 'beta1');
  set('beta2', 'beta2');
  set('eps', 'eps');
  set('seed', 'seed');
  set('saveEvery', 'save-every');
  set('recompute', 'recompute');
  if (f.strides !== undefined)
    o.chunkSizes = (f.strides as string[]).map((v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new UsageError(`--strides: '${v}' is not a positive integer`);
      return n;
    });
  if (f.resume !== undefined) o.resume = String(f.resume);
  return o;
}

export const command: Command = {
  usage: () =>
    usage(
      'train',
      'Train the candidate projections with FocusLLM examples (or every tensor with --loss lm) and write a checkpoint folder to --out.\n' +
        'Resume an interrupted run with: focusllm train --resume DIR',
      SPEC,
    ),
  async run(argv) {
    const f = parseFlags(gatherData(argv), SPEC);
    const opts = options(f);
    if (f.threads !== undefined && ((f.threads as number) < 1 || (f.threads as number) > 1024))
      throw new UsageError(`--threads must be from 1 to 1024, got ${String(f.threads)}`);
    let beaconParam: string[] | undefined;
    if (f['beacon-param'] !== undefined) {
      if (opts.resume !== undefined)
        throw new UsageError(`--beacon-param: a resumed run trains what it started with (beacon_param in ${path.join(opts.resume, 'config.json')}); leave it out`);
      if (opts.params === 'all' || opts.loss === 'lm') throw new UsageError('--beacon-param chooses candidate projections: it goes with --params candidate');
      try {
        beaconParam = checkBeaconParam(f['beacon-param'], '--beacon-param');
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
    }
    let modelDir: string;
    let plan: TrainPlan;
    try {
      if (opts.resume !== undefined) {
        modelDir = opts.resume;
        const st = readState(path.resolve(opts.resume));
        if (f.model !== undefined && ![st.base, path.resolve(opts.resume)].includes(path.resolve(String(f.model))))
          throw new UsageError(`--model ${String(f.model)} is not the base of the run in ${opts.resume} (${st.base}): leave --model out when resuming`);
      } else {
        if (f.model === undefined) throw new UsageError('--model is required (or --resume DIR to continue a run)');
        if (opts.data === undefined) throw new UsageError('--data is required: give at least one data file (.jsonl or .txt)');
        if (opts.out === undefined) throw new UsageError('--out is required: the folder to write the trained checkpoint to');
        modelDir = String(f.model);
      }
      const config = native().readConfig(path.resolve(modelDir));
      const tokenizer = await loadTokenizer(path.resolve(modelDir));
      plan = prepareTraining({ dir: modelDir, config, tokenizer }, opts);
    } catch (e) {
      if (e instanceof UsageError) throw e;
      const msg = flagMessage((e as Error).message);
      throw /^--[a-z]/.test(msg) ? new UsageError(msg) : new Error(msg);
    }
    const o = plan.options;
    const stopAt = f['stop-at'] as number | undefined;
    if (stopAt !== undefined && (stopAt < 1 || stopAt > o.steps || stopAt <= (plan.resume?.step ?? 0)))
      throw new UsageError(`--stop-at must be a step after ${plan.resume?.step ?? 0} and at most --steps (${o.steps}), got ${stopAt}`);
    process.stderr.write(dataLine(plan.dataset.stats, plan) + '\n');
    if (plan.resume) process.stderr.write(`resuming ${o.out} at step ${plan.resume.step}/${o.steps}\n`);
    const bar = f.progress !== undefined ? Boolean(f.progress) : Boolean(process.stderr.isTTY);
    // Without a terminal: about a hundred lines per run at most, and the last step.
    const every = Math.max(1, Math.ceil(o.steps / 100));
    const model = await loadModel(modelDir, {
      backend: 'cpu',
      threads: f.threads as number | undefined,
      maxBatchTokens: f['max-batch-tokens'] as number | undefined,
      tokenizer: false,
      beaconParam,
    });
    let summary: TrainSummary;
    let drawn = false;
    let lastDraw = 0;
    const stop = new AbortController();
    try {
      // The plan made above (data read once), run as model.train() runs it.
      summary = await withSigint((signal) =>
        runTraining(model, plan, {
          signal: AbortSignal.any([signal, stop.signal]),
          onProgress: (p) => {
            if (p.phase !== 'step') return;
            if (stopAt !== undefined && p.step >= stopAt) stop.abort(new Error(`--stop-at ${stopAt}`));
            if (bar) {
              const now = Date.now();
              if (now - lastDraw < 100 && p.step < p.steps) return;
              lastDraw = now;
              drawn = true;
              process.stderr.write('\r\x1b[K' + progressBar(p));
            } else if (p.step % every === 0 || p.step === p.steps || p.step === 1) process.stderr.write(progressLine(p) + '\n');
          },
        }),
      );
    } finally {
      if (drawn) process.stderr.write('\n');
      model.dispose();
    }
    const s = summary;
    if (s.interrupted && stop.signal.aborted && s.steps >= (stopAt ?? Infinity)) {
      process.stderr.write(`stopped at step ${s.steps}/${s.totalSteps} (--stop-at): checkpoint saved in ${s.out}; continue with: focusllm train --resume ${s.out}\n`);
      if (f.json) process.stdout.write(JSON.stringify(s) + '\n');
      return 0;
    }
    if (s.interrupted)
      process.stderr.write(`interrupted at step ${s.steps}/${s.totalSteps}: checkpoint saved in ${s.out}; continue with: focusllm train --resume ${s.out}\n`);
    else
      process.stderr.write(
        `trained ${s.stepsThisRun} step${s.stepsThisRun === 1 ? '' : 's'} (${s.steps}/${s.totalSteps}), final loss ${s.loss === null ? '-' : fmt(s.loss)}, ` +
          `${s.tensors} tensors / ${s.parameters} parameters trained, ${formatDuration(s.seconds)}; wrote ${s.out} (log ${path.basename(s.log)}, curve ${path.basename(s.curve)})\n`,
      );
    if (f.json) process.stdout.write(JSON.stringify(s) + '\n');
    return s.interrupted ? 130 : 0;
  },
};
