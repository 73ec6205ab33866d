// Training (DESIGN.md 1b): FocusLLM candidate training and full-parameter LM
// training over the native Trainer. model.train() and `focusllm train` use
// prepareTraining (options, output folder, data: before the model is touched)
// then runTraining (the loop, checkpoints, log, loss curve).
export { prepareTraining, type TrainPlan, type ModelSource } from './plan';
export { runTraining, DataOrder, type TrainProgress, type TrainRunOptions, type TrainSummary } from './loop';
export { resolveTrainOptions, resumeOptions, RESUMABLE_OPTIONS, type TrainOptions, type ResolvedTrainOptions, type TrainParams, type TrainLoss } from './options';
export {
  sampleGeometry,
  resolveGeometry,
  defaultLocalMin,
  focusExamples,
  focusTokens,
  DEFAULT_WINDOW,
  DEFAULT_CHUNK_SIZES,
  LOSS_MIXES,
  type Geometry,
  type GeometryOptions,
  type LossMix,
  type FocusLossKind,
} from './geometry';
export { loadDocuments, lmSequences, checkDataFiles, truncateMiddle, fingerprint, type Dataset, type DataStats, type DataOptions } from './data';
export { learningRate, SCHEDULES, type ScheduleKind, type ScheduleOptions } from './schedule';
export { Rng, deriveSeed } from './rng';
export { lossCurveSvg, movingAverage } from './svg';
export {
  readState,
  checkOutDir,
  trainedProjections,
  STATE_FILE,
  OPTIMIZER_FILE,
  WEIGHTS_FILE,
  INDEX_FILE,
  LOG_FILE,
  CURVE_FILE,
  TOKENIZER_FILES,
  type TrainerState,
} from './checkpoint';
