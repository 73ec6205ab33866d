// focusllm: long-context LLaMA inference with FocusLLM, from Node.js.
export { loadModel, Model, type LoadOptions, type TokenGenerateOptions, type BackendName } from './model';
export { Session, parseStepMode, type StepMode, type SessionOptions, type IngestProgress, type RunOptions, type SessionMemory, type CacheType } from './session';
export { DEFAULT_FOCUS, planIngest, resolveFocusParams, chunkCount, withBos, type FocusParams, type Plan } from './plan';
export { makeSampler, makeNativeSampler, sampleLogits, argmax, makeRng, type SamplingOptions, type NativeSampler } from './sampling';
export { buildInput, StopMatcher, type GenerateRequest, type GenerateProgress } from './generate';
export {
  Document,
  type DocumentFocusOptions,
  type DocumentGenerateRequest,
  type DocumentMemory,
  type DocumentReuse,
  type DocumentSessionOptions,
  type DocumentTokenOptions,
  type IngestDocumentOptions,
  type LoadDocumentOptions,
} from './document';
export { estimateMemory, formatBytes, type MemoryEstimate } from './memory';
export { loadTokenizer } from './tokenizer/index';
export type { Tokenizer, StreamDecoder, ChatMessage } from './tokenizer/types';
export { native, buildInfo } from './native';
export { createServer, FocusServer, ApiError, type ServerOptions, type ServerStats, type RequestRecord, type DocumentObject } from './server/index';
export * from './eval/index';
export {
  prepareTraining,
  runTraining,
  resolveTrainOptions,
  sampleGeometry,
  resolveGeometry,
  defaultLocalMin,
  loadDocuments,
  lmSequences,
  learningRate,
  lossCurveSvg,
  readState as readTrainerState,
  type TrainOptions,
  type ResolvedTrainOptions,
  type TrainRunOptions,
  type TrainProgress,
  type TrainSummary,
  type TrainPlan,
  type TrainerState,
  type Geometry,
  type GeometryOptions,
  type LossMix,
  type Dataset,
  type DataStats,
  type ScheduleKind,
} from './train/index';
