// The training loop (DESIGN.md 2: TypeScript samples the examples and runs
// the loop; the native trainer runs forward + backward and AdamW). Each step
// accumulates `accum` native calls of `batch` examples, each example's
// gradient weighted 1 / (batch * accum) so the buffers hold the mean
// gradient; clips its global norm; applies AdamW at the scheduled rate.
import fs from 'node:fs';
import path from 'node:path';

import type { Model as NativeModel, NativeTrainExample, RunControl, Trainer } from '../../typings/native';
import { native } from '../native';
import { CURVE_FILE, initOutDir, OPTIMIZER_FILE, RunLog, saveCheckpoint, type TrainerState } from './checkpoint';
import type { DataStats } from './data';
import { focusExamples, focusTokens, sampleGeometry, type FocusLossKind } from './geometry';
import type { TrainPlan } from './plan';
import { deriveSeed, Rng } from './rng';
import { learningRate } from './schedule';
import { lossCurveSvg } from './svg';

/** Reported after every optimizer step ("step") and every checkpoint saved ("checkpoint"). */
export interface TrainProgress {
  phase: 'step' | 'checkpoint';
  /** optimizer steps taken */
  step: number;
  steps: number;
  /** mean loss of the step's examples (a "both" example counts its two losses summed) */
  loss: number;
  /** mean of each FocusLLM loss kind among the step's examples (when it had any) */
  lossByKind: Partial<Record<FocusLossKind, number>>;
  lr: number;
  /** global gradient norm before clipping */
  gradNorm: number;
  /** tokens the step's forwards ran */
  tokens: number;
  /** tokens per second, this session's average */
  tokensPerSecond: number;
  /** seconds since this session started */
  elapsed: number;
  /** estimated seconds left */
  eta: number;
  /** passes over the data begun (0-based) */
  epoch: number;
}

export interface TrainRunOptions {
  onProgress?: (p: TrainProgress) => void;
  /** aborting saves a resumable checkpoint at the last completed step and resolves (interrupted: true) */
  signal?: AbortSignal;
}

export interface TrainSummary {
  out: string;
  /** optimizer steps taken, all sessions of the run */
  steps: number;
  /** of the options (the run's target) */
  totalSteps: number;
  /** steps taken by this call */
  stepsThisRun: number;
  /** loss of the last step, null when none was taken */
  loss: number | null;
  /** every step's loss so far */
  losses: number[];
  /** stopped by the signal before all steps were taken (a resumable checkpoint was saved) */
  interrupted: boolean;
  seed: number;
  /** tokens and seconds of this call */
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  data: DataStats;
  /** trainable tensors and their parameters */
  tensors: number;
  parameters: number;
  log: string;
  curve: string;
}

/** The order documents are drawn in: a fresh seeded permutation per pass over the data. */
export class DataOrder {
  private perm: number[] = [];
  private permEpoch = -1;
  constructor(
    readonly n: number,
    readonly seed: number,
    public epoch = 0,
    public position = 0,
  ) {}
  next(): number {
    if (this.position >= this.n) {
      this.epoch++;
      this.position = 0;
    }
    if (this.permEpoch !== this.epoch) {
      const rng = new Rng(deriveSeed(this.seed, this.epoch + 1));
      this.perm = rng.shuffle(Array.from({ length: this.n }, (_, i) => i));
      this.permEpoch = this.epoch;
    }
    return this.perm[this.position++];
  }
}

function abortError(): Error {
  const e = new Error('the operation was aborted');
  e.name = 'AbortError';
  return e;
}

/** The examples of one native call: `count` draws, each weighted `weight`. */
function drawExamples(plan: TrainPlan, rng: Rng, order: DataOrder, count: number, weight: number) {
  const o = plan.options;
  const examples: NativeTrainExample[] = [];
  /** native examples per drawn example, and their loss kinds */
  const groups: (FocusLossKind | 'lm')[][] = [];
  let tokens = 0;
  for (let i = 0; i < count; i++) {
    const u = order.next();
    const ids = plan.units[u];
    if (o.loss === 'lm') {
      const s0 = plan.unitStarts?.[u] ?? 1;
      examples.push(s0 > 1 ? { kind: 'lm', ids, weight, lossStart: s0 } : { kind: 'lm', ids, weight });
      groups.push(['lm']);
      tokens += ids.length;
      continue;
    }
    const g = sampleGeometry(rng, ids.length, o);
    examples.push(...focusExamples(ids, g, o.promptCap, weight));
    groups.push(g.kinds);
    tokens += focusTokens(ids.length, g, o.promptCap);
  }
  return { examples, groups, tokens };
}

/**
 * Runs (or continues) a planned run on a model loaded from plan.modelDir with
 * the CPU backend; writes the checkpoint folder. The model keeps the trained
 * weights afterwards.
 */
export async function runTraining(model: { native: NativeModel; dir: string }, plan: TrainPlan, run: TrainRunOptions = {}): Promise<TrainSummary> {
  const o = plan.options;
  const nm = model.native;
  if (nm.disposed) throw new Error('this model has been disposed');
  if (nm.backend !== 'cpu') throw new Error(`training runs on the CPU backend: load the model with backend "cpu" (it was loaded on "${nm.backend}")`);
  if (path.resolve(model.dir) !== plan.modelDir) throw new Error(`this training plan is for the model in ${plan.modelDir}, not ${model.dir}`);
  run.signal?.throwIfAborted();
  const trainer = nm.createTrainer({ params: o.params, recompute: o.recompute });
  try {
    return await loop(trainer, plan, run, nm.config.beaconParam);
  } finally {
    trainer.dispose();
  }
}

async function loop(trainer: Trainer, plan: TrainPlan, run: TrainRunOptions, beaconParam: string[] | null): Promise<TrainSummary> {
  const o = plan.options;
  const prev = plan.resume;
  if (prev) {
    await trainer.loadState(path.join(o.out, OPTIMIZER_FILE));
    if (trainer.step !== prev.step)
      throw new Error(`option resume: ${path.join(o.out, OPTIMIZER_FILE)} holds ${trainer.step} optimizer steps but trainer_state.json says ${prev.step}`);
  }
  const names = trainer.tensors.map((t) => t.name);
  const parameters = trainer.tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
  initOutDir(o.out, plan.modelDir, o.params, names, beaconParam);
  const log = new RunLog(o.out, prev ? prev.step : null);
  const curveFile = path.join(o.out, CURVE_FILE);
  const rng = prev ? Rng.fromState(prev.rng) : new Rng(o.seed);
  const order = new DataOrder(plan.units.length, o.seed, prev?.data.epoch ?? 0, prev?.data.position ?? 0);
  const losses = prev ? [...prev.losses] : [];
  let step = prev?.step ?? 0;
  const startStep = step;
  log.write({
    event: prev ? 'resume' : 'start',
    step,
    steps: o.steps,
    base: plan.base,
    options: o,
    data: plan.dataset.stats,
    skipped: { tooShort: plan.dataset.stats.tooShort, minLength: o.minLength, ...(plan.emptyOutputs !== undefined ? { emptyOutputs: plan.emptyOutputs } : {}) },
    fingerprint: plan.dataset.fingerprint,
    units: plan.units.length,
    tensors: names.length,
    parameters,
  });

  const E = o.batch * o.accum;
  const t0 = performance.now();
  const elapsed = () => (performance.now() - t0) / 1000;
  let tokens = 0;
  const control: RunControl = new (native().RunControl)();
  const onAbort = () => control.cancel();
  run.signal?.addEventListener('abort', onAbort, { once: true });
  const aborted = () => run.signal?.aborted === true;

  const save = async () => {
    const state: TrainerState = {
      format: 'focusllm-trainer-state',
      version: 1,
      base: plan.base,
      step,
      options: o,
      rng: rng.state,
      data: { epoch: order.epoch, position: order.position, units: plan.units.length, fingerprint: plan.dataset.fingerprint },
      losses,
      tokens: (prev?.tokens ?? 0) + tokens,
      seconds: (prev?.seconds ?? 0) + elapsed(),
      done: step >= o.steps,
    };
    await saveCheckpoint(trainer, o.out, state);
    fs.writeFileSync(curveFile, lossCurveSvg(losses, { title: `training loss (${o.params === 'all' ? 'lm, all parameters' : `FocusLLM ${o.losses}, candidate projections`})` }));
    log.write({ event: 'checkpoint', step });
  };

  let interrupted = false;
  let last: Omit<TrainProgress, 'phase'> | null = null;
  try {
    while (step < o.steps) {
      if (aborted()) {
        interrupted = true;
        break;
      }
      // Where the step starts: an aborted step is taken again on resume.
      const snap = { rng: rng.state, epoch: order.epoch, position: order.position };
      trainer.zeroGrad();
      let lossSum = 0;
      const kindSum: Record<string, [number, number]> = {};
      let stepTokens = 0;
      try {
        for (let a = 0; a < o.accum; a++) {
          if (aborted()) throw abortError();
          const { examples, groups, tokens: tk } = drawExamples(plan, rng, order, o.batch, 1 / E);
          const got = await trainer.accumulate(examples, control);
          let j = 0;
          for (const kinds of groups) {
            let sum = 0;
            for (const k of kinds) {
              const v = got[j++];
              sum += v;
              const ks = (kindSum[k] ??= [0, 0]);
              ks[0] += v;
              ks[1]++;
            }
            lossSum += sum;
          }
          stepTokens += tk;
        }
        if (aborted()) throw abortError();
      } catch (e) {
        if (!aborted()) throw e;
        rng.restore(snap.rng);
        order.epoch = snap.epoch;
        order.position = snap.position;
        interrupted = true;
        break;
      }
      const loss = lossSum / E;
      const norm = trainer.gradNorm();
      if (!Number.isFinite(norm) || !Number.isFinite(loss))
        throw new Error(`step ${step + 1}: the ${Number.isFinite(loss) ? 'gradient norm' : 'loss'} is not finite (loss ${loss}, gradient norm ${norm}); try a lower lr`);
      const lr = learningRate(step, o);
      await trainer.applyAdamW({
        lr,
        beta1: o.beta1,
        beta2: o.beta2,
        eps: o.eps,
        weightDecay: o.weightDecay,
        gradScale: o.clip > 0 && norm > o.clip ? o.clip / norm : 1,
      });
      step++;
      losses.push(loss);
      tokens += stepTokens;
      const lossByKind: Partial<Record<FocusLossKind, number>> = {};
      for (const k of ['continuation', 'repetition'] as const) if (kindSum[k]) lossByKind[k] = kindSum[k][0] / kindSum[k][1];
      const secs = elapsed();
      last = {
        step,
        steps: o.steps,
        loss,
        lossByKind,
        lr,
        gradNorm: norm,
        tokens: stepTokens,
        tokensPerSecond: tokens / Math.max(secs, 1e-9),
        elapsed: secs,
        eta: ((o.steps - step) * secs) / (step - startStep),
        epoch: order.epoch,
      };
      log.write({ event: 'step', step, loss, ...(o.loss === 'focus' ? { lossByKind } : {}), lr, gradNorm: norm, clipped: o.clip > 0 && norm > o.clip, tokens: stepTokens, seconds: secs, tokensPerSecond: last.tokensPerSecond, epoch: order.epoch });
      run.onProgress?.({ phase: 'step', ...last });
      if (o.saveEvery > 0 && step % o.saveEvery === 0 && step < o.steps) {
        await save();
        run.onProgress?.({ phase: 'checkpoint', ...last });
      }
    }
    if (step > startStep || interrupted || !prev) {
      await save();
      if (last) run.onProgress?.({ phase: 'checkpoint', ...last });
    }
  } finally {
    run.signal?.removeEventListener('abort', onAbort);
  }
  const secs = elapsed();
  log.write({ event: interrupted ? 'interrupted' : 'end', step, steps: o.steps, loss: losses.length ? losses[losses.length - 1] : null, seconds: secs, tokens });
  return {
    out: o.out,
    steps: step,
    totalSteps: o.steps,
    stepsThisRun: step - startStep,
    loss: losses.length ? losses[losses.length - 1] : null,
    losses,
    interrupted,
    seed: o.seed,
    tokens,
    seconds: secs,
    tokensPerSecond: tokens / Math.max(secs, 1e-9),
    data: plan.dataset.stats,
    tensors: names.length,
    parameters,
    log: log.file,
    curve: curveFile,
  };
}
