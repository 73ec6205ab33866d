// Everything a training run settles before the model is touched: options,
// the output folder, the data (read and tokenized), the number of steps, and
// on resume the saved state. Errors here name the option or file.
import path from 'node:path';

import type { Tokenizer } from '../tokenizer/types';
import { checkOutDir, readState, realPath, type TrainerState } from './checkpoint';
import { checkDataFiles, lmSequences, loadDocuments, type Dataset } from './data';
import { resolveTrainOptions, resumeOptions, type ResolvedTrainOptions, type TrainOptions } from './options';

/** What prepareTraining needs to know of the model, before (or without) loading it. */
export interface ModelSource {
  /** the checkpoint folder the model is (to be) loaded from */
  dir: string;
  config: { vocabSize: number; bosTokenId: number; maxPositionEmbeddings: number };
  tokenizer: Tokenizer | null;
}

export interface TrainPlan {
  /** options.steps settled */
  options: ResolvedTrainOptions & { steps: number };
  /** the folder the model is loaded from (config.json and tokenizer files are copied from it) */
  modelDir: string;
  /** the base checkpoint of the run (on resume: the one the run started from) */
  base: string;
  resume: TrainerState | null;
  dataset: Dataset;
  /** documents (focus) or LM sequences (lm) the examples are drawn from */
  units: Int32Array[];
  /** lm with lmScore 'output': each unit's first scored token (1: every next token); absent otherwise */
  unitStarts?: number[];
  /** lm with lmScore 'output': {"input","output"} records skipped because their output has no token */
  emptyOutputs?: number;
}

/** Reads the resume state, checks options and the output folder, reads the data. */
export function prepareTraining(src: ModelSource, o: TrainOptions): TrainPlan {
  if (!o || typeof o !== 'object') throw new Error('train options must be an object');
  const modelDir = path.resolve(src.dir);
  let options: ResolvedTrainOptions;
  let resume: TrainerState | null = null;
  let base = modelDir;
  if (o.resume !== undefined) {
    if (typeof o.resume !== 'string' || !o.resume) throw new Error('option resume must be the folder of the run to continue');
    const dir = path.resolve(o.resume);
    resume = readState(dir);
    if (realPath(dir) !== realPath(modelDir))
      throw new Error(`option resume: load the model from the checkpoint being resumed (${dir}), not from ${modelDir}`);
    options = resumeOptions(resume.options, o, dir);
    base = resume.base;
    checkOutDir(options.out, base, true);
  } else {
    options = resolveTrainOptions(o, src.config.maxPositionEmbeddings);
    checkOutDir(options.out, modelDir, false);
  }
  checkDataFiles(options.data);
  const dataset = loadDocuments({
    files: options.data,
    bosId: src.config.bosTokenId,
    vocabSize: src.config.vocabSize,
    tokenizer: src.tokenizer,
    minLength: options.minLength,
    maxLength: options.maxLength,
    ...(options.loss === 'lm' && options.lmScore === 'output' ? { recordMaxLength: options.seqLen } : {}),
  });
  const files = options.data.length === 1 ? options.data[0] : `the ${options.data.length} data files`;
  const st = dataset.stats;
  let units: Int32Array[];
  let unitStarts: number[] | undefined;
  let emptyOutputs: number | undefined;
  if (options.loss === 'focus') {
    units = dataset.docs;
    if (units.length === 0)
      throw new Error(
        `nothing to train on: none of the ${st.records} documents in ${files} has at least ${options.minLength} tokens ` +
          `(a FocusLLM example needs a full training window of ${options.window}; lower window or give longer documents)`,
      );
  } else if (options.lmScore === 'output') {
    // Input/output records one sequence each, scored from their output on
    // (those whose output has no token are skipped and counted); the other
    // documents streamed into sequences of seqLen as with lmScore 'all'.
    const own: Int32Array[] = [], starts: number[] = [], rest: Int32Array[] = [];
    emptyOutputs = 0;
    dataset.docs.forEach((d, i) => {
      const s0 = dataset.outputStart[i];
      if (s0 === 0) rest.push(d);
      else if (s0 < d.length) {
        own.push(d);
        starts.push(s0);
      } else emptyOutputs!++;
    });
    const packed = rest.length ? lmSequences(rest, options.seqLen) : [];
    units = [...own, ...packed];
    unitStarts = [...starts, ...packed.map(() => 1)];
    if (units.length === 0)
      throw new Error(
        `nothing to train on: ${files} hold no {"input","output"} record with an output${emptyOutputs ? ` (${emptyOutputs} with an empty one)` : ''} and ${st.tokens} tokens in usable documents, ` +
          `fewer than one sequence of seqLen ${options.seqLen}`,
      );
  } else {
    units = lmSequences(dataset.docs, options.seqLen);
    if (units.length === 0)
      throw new Error(`nothing to train on: ${files} hold ${st.tokens} tokens in usable documents, fewer than one sequence of seqLen ${options.seqLen}`);
  }
  if (resume && (resume.data.fingerprint !== dataset.fingerprint || resume.data.units !== units.length))
    throw new Error(
      `option resume: the data differs from the run's (${resume.data.units} ${options.loss === 'focus' ? 'documents' : 'sequences'}, fingerprint ${resume.data.fingerprint}; ` +
        `now ${units.length}, ${dataset.fingerprint}): give the same data files`,
    );
  const steps = options.steps ?? Math.ceil(units.length / (options.batch * options.accum));
  return { options: { ...options, steps }, modelDir, base, resume, dataset, units, ...(unitStarts ? { unitStarts, emptyOutputs } : {}) };
}
