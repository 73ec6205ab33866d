// The evaluations: pass-key retrieval, perplexity (FocusLLM and sliding
// window), LongBench tasks and their metrics.
export * from './passkey';
export * from './ppl';
export * from './longbench';
export * from './metrics';
export { greedyDecode, tokenNll, type FocusOptions, type GreedyOptions, type GreedyResult } from './decode';
