// The output folder of a training run: a normal Hugging Face checkpoint
// (config.json, model.safetensors, tokenizer files) that loadModel() runs
// as is, plus what --resume needs (optimizer.safetensors, trainer_state.json).
// Every file is written to a temporary name and renamed into place, and
// trainer_state.json last: a crash mid-save leaves the previous checkpoint.
import fs from 'node:fs';
import path from 'node:path';

import type { Trainer } from '../../typings/native';
import type { ResolvedTrainOptions } from './options';

export const WEIGHTS_FILE = 'model.safetensors';
/** lists model.safetensors' tensors, so the loader ignores optimizer.safetensors in the same folder */
export const INDEX_FILE = 'model.safetensors.index.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const STATE_FILE = 'trainer_state.json';
export const LOG_FILE = 'train-log.jsonl';
export const CURVE_FILE = 'loss-curve.svg';
/** copied from the base checkpoint when present */
export const TOKENIZER_FILES: readonly string[] = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'tokenizer.model',
  'added_tokens.json',
  'chat_template.jinja',
  'generation_config.json',
];

/** Where the data iterator stands (lib/train/loop.ts DataOrder). */
export interface DataPosition {
  epoch: number;
  position: number;
  /** documents (focus) or sequences (lm) */
  units: number;
  /** lib/train/data.ts fingerprint of the documents */
  fingerprint: string;
}

/** trainer_state.json */
export interface TrainerState {
  format: 'focusllm-trainer-state';
  version: 1;
  /** the base checkpoint folder the run started from */
  base: string;
  /** optimizer steps taken */
  step: number;
  /** options.steps is settled (a number) */
  options: ResolvedTrainOptions;
  /** the geometry RNG's state (lib/train/rng.ts) */
  rng: number;
  data: DataPosition;
  /** loss of every step so far */
  losses: number[];
  /** tokens run and seconds spent, all sessions of the run together */
  tokens: number;
  seconds: number;
  /** all steps taken */
  done: boolean;
}

/** `p` with symbolic links resolved, also when its last components do not exist yet. */
export function realPath(p: string): string {
  const abs = path.resolve(p);
  const rest: string[] = [];
  let cur = abs;
  for (;;) {
    try {
      return path.join(fs.realpathSync(cur), ...rest.reverse());
    } catch {
      const up = path.dirname(cur);
      if (up === cur) return abs;
      rest.push(path.basename(cur));
      cur = up;
    }
  }
}

/** true when `child` is `parent` or inside it (symbolic links resolved) */
export function isInside(child: string, parent: string): boolean {
  const rel = path.relative(realPath(parent), realPath(child));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Checks, before anything is written, that `out` is a folder this run may
 * write: not the base checkpoint or inside it (unless the run resumes there),
 * new or empty (unless resuming), and writable.
 */
export function checkOutDir(out: string, base: string, resuming: boolean): void {
  if (!resuming && isInside(out, base))
    throw new Error(
      `option out: ${out} is ${realPath(out) === realPath(base) ? 'the' : 'inside the'} base checkpoint folder ${base}; ` +
        'training never writes into the checkpoint it starts from: choose another folder',
    );
  let st: fs.Stats | null = null;
  try {
    st = fs.statSync(out);
  } catch {
    st = null;
  }
  if (st) {
    if (!st.isDirectory()) throw new Error(`option out: ${out} exists and is not a folder`);
    if (!resuming) {
      const entries = fs.readdirSync(out);
      if (entries.length > 0)
        throw new Error(
          `option out: ${out} is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}); ` +
            (entries.includes(STATE_FILE) ? 'it holds a run: continue it with resume (--resume), or ' : '') +
            'choose a new or empty folder',
        );
    }
  }
  // The nearest existing folder must be writable (the rest is created).
  let dir = path.resolve(out);
  while (!fs.existsSync(dir)) dir = path.dirname(dir);
  if (!fs.statSync(dir).isDirectory()) throw new Error(`option out: ${dir} is not a folder`);
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch {
    throw new Error(`option out: cannot write to ${out} (${dir} is not writable)`);
  }
}

/** Reads and checks dir/trainer_state.json; an Error names the file and field. */
export function readState(dir: string): TrainerState {
  const file = path.join(dir, STATE_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(
      (e as NodeJS.ErrnoException).code === 'ENOENT'
        ? `option resume: ${dir} has no ${STATE_FILE}: it is not the output folder of a focusllm training run`
        : `${file}: cannot read (${(e as Error).message})`,
    );
  }
  let s: TrainerState;
  try {
    s = JSON.parse(text) as TrainerState;
  } catch (e) {
    throw new Error(`${file}: invalid JSON (${(e as Error).message})`);
  }
  const bad = (field: string) => new Error(`${file}: missing or invalid ${field}`);
  if (!s || s.format !== 'focusllm-trainer-state') throw bad('format (expected "focusllm-trainer-state")');
  if (s.version !== 1) throw new Error(`${file}: version ${String(s.version)} is not supported (expected 1)`);
  if (!Number.isInteger(s.step) || s.step < 0) throw bad('step');
  if (!s.options || typeof s.options !== 'object' || !Number.isInteger(s.options.steps)) throw bad('options');
  if (!Number.isInteger(s.rng) || s.rng < 0 || s.rng > 0xffffffff) throw bad('rng');
  const d = s.data;
  if (!d || !Number.isInteger(d.epoch) || !Number.isInteger(d.position) || !Number.isInteger(d.units) || typeof d.fingerprint !== 'string') throw bad('data');
  if (!Array.isArray(s.losses) || s.losses.length !== s.step) throw bad('losses (one per step)');
  if (typeof s.base !== 'string') throw bad('base');
  for (const f of [WEIGHTS_FILE, OPTIMIZER_FILE, 'config.json'])
    if (!fs.existsSync(path.join(dir, f))) throw new Error(`option resume: ${dir} has ${STATE_FILE} but no ${f}`);
  return s;
}

function writeAtomic(file: string, data: string | Buffer): void {
  const tmp = file + '.partial';
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/** Tensor names in a safetensors file's header. */
export function safetensorsNames(file: string): string[] {
  const fd = fs.openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    if (fs.readSync(fd, len, 0, 8, 0) !== 8) throw new Error(`${file}: truncated safetensors header`);
    const n = Number(len.readBigUInt64LE(0));
    if (n > 100 * 1024 * 1024) throw new Error(`${file}: safetensors header of ${n} bytes is too large`);
    const head = Buffer.alloc(n);
    if (fs.readSync(fd, head, 0, n, 8) !== n) throw new Error(`${file}: truncated safetensors header`);
    return Object.keys(JSON.parse(head.toString('utf8')) as object).filter((k) => k !== '__metadata__');
  } finally {
    fs.closeSync(fd);
  }
}

/** beacon_param for the trained candidate tensors: of q, k, v, o, mlp, in that order. */
export function trainedProjections(names: readonly string[]): string[] {
  const has = (re: RegExp) => names.some((n) => re.test(n));
  const out = ['q', 'k', 'v', 'o'].filter((p) => has(new RegExp(`\\.beacon_${p}_proj\\.`)));
  if (has(/\.mlp\.beacon_(up|down)_proj\./)) out.push('mlp');
  return out;
}

/**
 * Creates `out` with the base's config.json (beacon_param set to what is
 * trained, for candidate training; with every tensor trained, to what the
 * loaded model ran, `beaconParam`, which loadModel's option may have set in
 * place of the file's) and its tokenizer files.
 */
export function initOutDir(
  out: string,
  baseDir: string,
  params: 'candidate' | 'all',
  trained: readonly string[],
  beaconParam: readonly string[] | null = null,
): void {
  fs.mkdirSync(out, { recursive: true });
  const cfgFile = path.join(baseDir, 'config.json');
  const config = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  if (params === 'candidate') config.beacon_param = trainedProjections(trained);
  else {
    if (beaconParam) config.beacon_param = [...beaconParam];
    config.torch_dtype = 'float32'; // every base tensor is saved as its float32 trained copy (candidate tensors, untouched by the lm loss, as they were)
  }
  if (path.resolve(baseDir) !== path.resolve(out)) {
    for (const f of TOKENIZER_FILES) {
      const src = path.join(baseDir, f);
      if (fs.existsSync(src)) fs.copyFileSync(src, path.join(out, f));
    }
  }
  writeAtomic(path.join(out, 'config.json'), JSON.stringify(config, null, 2) + '\n');
}

/** Writes the weights, the optimizer state and trainer_state.json (last). */
export async function saveCheckpoint(trainer: Trainer, out: string, state: TrainerState): Promise<void> {
  const weights = path.join(out, WEIGHTS_FILE);
  // A new file renamed over the old one: a model loaded from this folder (a
  // resumed run) keeps reading the old file it has mapped.
  await trainer.saveWeights(weights + '.partial');
  fs.renameSync(weights + '.partial', weights);
  const map: Record<string, string> = {};
  for (const n of safetensorsNames(weights)) map[n] = WEIGHTS_FILE;
  writeAtomic(path.join(out, INDEX_FILE), JSON.stringify({ metadata: { format: 'pt' }, weight_map: map }, null, 2) + '\n');
  const opt = path.join(out, OPTIMIZER_FILE);
  await trainer.saveState(opt + '.partial');
  fs.renameSync(opt + '.partial', opt);
  writeAtomic(path.join(out, STATE_FILE), JSON.stringify(state, null, 1) + '\n');
}

/** Appends JSON lines to the run's log; on resume, drops the lines past the resumed step first. */
export class RunLog {
  readonly file: string;
  constructor(out: string, resumedStep: number | null) {
    this.file = path.join(out, LOG_FILE);
    if (resumedStep === null) {
      fs.writeFileSync(this.file, '');
      return;
    }
    let lines: string[] = [];
    try {
      lines = fs.readFileSync(this.file, 'utf8').split('\n').filter(Boolean);
    } catch {
      lines = [];
    }
    // Steps logged after the checkpoint was saved are run again.
    const keep = lines.filter((l) => {
      try {
        const r = JSON.parse(l) as { event?: string; step?: number };
        return !(typeof r.step === 'number' && r.step > resumedStep);
      } catch {
        return false;
      }
    });
    writeAtomic(this.file, keep.map((l) => l + '\n').join(''));
  }
  write(record: Record<string, unknown>): void {
    fs.appendFileSync(this.file, JSON.stringify({ time: new Date().toISOString(), ...record }) + '\n');
  }
}
