// The evaluations: pass-key retrieval, perplexity (FocusLLM and sliding
// window), LongBench tasks and their metrics; for pass key and perplexity
// also the official FocusLLM protocols (LongBench's is an option of
// runLongbench).
export * from './passkey';
export * from './passkey-official';
export * from './ppl';
export * from './ppl-official';
export * from './longbench';
export * from './metrics';
export { greedyDecode, tokenNll, type FocusOptions, type GreedyOptions, type GreedyResult } from './decode';
