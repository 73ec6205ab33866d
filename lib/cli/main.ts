#!/usr/bin/env node
// The focusllm command line. Each command lives in lib/cli/<name>.ts and
// exports `command: Command`.
import { UsageError } from './args';
import type { Command } from './command';

const COMMANDS: Record<string, () => Promise<Command>> = {
  info: async () => (require('./info') as { command: Command }).command,
  doctor: async () => (require('./doctor') as { command: Command }).command,
  logits: async () => (require('./logits') as { command: Command }).command,
  grad: async () => (require('./grad') as { command: Command }).command,
  generate: async () => (require('./generate') as { command: Command }).command,
  passkey: async () => (require('./passkey') as { command: Command }).command,
  ppl: async () => (require('./ppl') as { command: Command }).command,
  longbench: async () => (require('./longbench') as { command: Command }).command,
  train: async () => (require('./train') as { command: Command }).command,
  serve: async () => (require('./serve') as { command: Command }).command,
  'random-model': async () => (require('./random-model') as { command: Command }).command,
};

function help(): string {
  return [
    'usage: focusllm <command> [options]',
    '',
    'commands:',
    '  info       architecture, parameters, dtype, candidate projections, memory for a context',
    '  doctor     which backends this build has and whether they are usable',
    '  logits     next-token logits after ids (and after each continuation token), as JSON',
    '  grad       loss and gradients of one training example (FocusLLM or lm), as JSON',
    '  generate   answer a prompt about a (long) context file, streaming text',
    '  passkey    pass-key retrieval accuracy at several context lengths',
    '  ppl        perplexity of a text file, FocusLLM or native sliding-window',
    '  longbench  LongBench-format evaluation of one task',
    '  train      train the candidate projections (FocusLLM) or all tensors (lm) into a new checkpoint',
    '  serve      an HTTP server with the OpenAI API (chat/completions, completions, models) and documents',
    '  random-model  write a small random-weight checkpoint (with --tokenizer llama2|llama3: a real tokenizer)',
    '',
    'Run `focusllm <command> --help` for its options.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help() + '\n');
    return name ? 0 : 2;
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!load) {
    process.stderr.write(`focusllm: unknown command '${name}'\n\n${help()}\n`);
    return 2;
  }
  const cmd = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(cmd.usage() + '\n');
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`focusllm ${name}: ${e.message}\n\n${cmd.usage()}\n`);
      return 2;
    }
    process.stderr.write(`focusllm ${name}: ${(e as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`focusllm: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
