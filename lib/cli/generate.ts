// focusllm generate: answer a prompt about a (long) document, streaming text.
import fs from 'node:fs';

import { parseFlags, usage, UsageError, type FlagSpec } from './args';
import type { Command } from './command';
import { FOCUS_FLAGS, focusFromFlags, MODEL_FLAGS, modelFromFlags } from './common';
import type { GenerateProgress } from '../generate';
import { readIdList } from './logits';

const SPEC: Record<string, FlagSpec> = {
  ...MODEL_FLAGS,
  'context-file': { type: 'string', help: 'text file with the long document' },
  prompt: { type: 'string', help: 'question or instruction (after the document)' },
  ids: {
    type: 'string',
    help: 'JSON file of input token ids (instead of / before the text); alone on a model without tokenizer.json, the new token ids are printed',
  },
  chat: { type: 'bool', help: "use the checkpoint's chat template" },
  system: { type: 'string', help: 'system message (with --chat)' },
  'max-new-tokens': { type: 'int', help: 'at most this many new tokens', default: 256 },
  temperature: { type: 'number', help: '0 = greedy', default: 0 },
  'top-k': { type: 'int', help: 'sample from the k most likely tokens (0 = all)', default: 0 },
  'top-p': { type: 'number', help: 'nucleus sampling threshold', default: 1 },
  seed: { type: 'int', help: 'random seed (sampling)' },
  stop: { type: 'list', help: 'comma-separated stop strings' },
  progress: { type: 'bool', help: 'progress bar on stderr (default: when stderr is a terminal)' },
  ...FOCUS_FLAGS,
};

/** One-line progress bar: chunks ingested / total, then decode tokens/s. */
export function progressLine(p: GenerateProgress, width = 30): string {
  if (p.phase === 'tokenize') return 'tokenizing...';
  if (p.phase === 'ingest') {
    if (p.chunksTotal === 0) return `ingesting ${p.inputTokens} tokens (native)...`;
    const frac = p.chunksDone / p.chunksTotal;
    const fill = Math.round(frac * width);
    return `ingest [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${p.chunksDone}/${p.chunksTotal} chunks, ${p.inputTokens} tokens, ${p.elapsed.toFixed(1)} s`;
  }
  return `decode ${p.generatedTokens} tokens, ${p.tokensPerSecond.toFixed(2)} tokens/s (${p.chunksTotal} chunks, ${p.elapsed.toFixed(1)} s)`;
}

export const command: Command = {
  usage: () => usage('generate', 'Stream an answer to --prompt about --context-file.', SPEC),
  async run(argv) {
    const f = parseFlags(argv, SPEC);
    if (f['context-file'] === undefined && f.prompt === undefined && f.ids === undefined)
      throw new UsageError('give --context-file, --prompt or --ids');
    let context: string | undefined;
    if (f['context-file'] !== undefined) {
      try {
        context = fs.readFileSync(String(f['context-file']), 'utf8');
      } catch (e) {
        throw new UsageError(`--context-file: ${(e as Error).message}`);
      }
    }
    const ids = f.ids !== undefined ? readIdList(String(f.ids), 'ids', 'ids') : undefined;
    const focus = focusFromFlags(f);
    const showProgress = f.progress !== undefined ? Boolean(f.progress) : Boolean(process.stderr.isTTY);
    const model = await modelFromFlags(f);
    const ac = new AbortController();
    const onSigint = () => ac.abort();
    process.once('SIGINT', onSigint);
    let lastDraw = 0;
    let drawn: GenerateProgress | null = null;
    // Once the answer streams to the same terminal the bar gives way (a redraw
    // would erase the line being written); with stdout redirected it goes on
    // with the decode speed.
    const textOnTerminal = Boolean(process.stdout.isTTY);
    let streaming = false;
    const draw = (p: GenerateProgress) => {
      if (!showProgress || (streaming && textOnTerminal)) return;
      const now = Date.now();
      // Throttled to 10 redraws a second, except a new phase or chunk count:
      // those are few, and the bar has to show each step, the last one included.
      const step = !drawn || p.phase !== drawn.phase || p.chunksDone !== drawn.chunksDone;
      if (!step && now - lastDraw < 100) return;
      lastDraw = now;
      drawn = p;
      if (p.phase === 'done') process.stderr.write('\r\x1b[K');
      else process.stderr.write('\r\x1b[K' + progressLine(p));
    };
    try {
      if (!model.tokenizer) {
        if (context !== undefined || f.prompt !== undefined || f.chat || f.stop !== undefined)
          throw new Error(
            `${model.dir} has no tokenizer.json: --context-file, --prompt, --chat and --stop need one (with --ids alone, generate prints the new token ids)`,
          );
        // Token ids in, token ids out (space-separated, as they come).
        let n = 0;
        for await (const id of model.generateTokens(ids!, {
          maxNewTokens: f['max-new-tokens'] as number,
          temperature: f.temperature as number,
          topK: f['top-k'] as number,
          topP: f['top-p'] as number,
          seed: f.seed as number | undefined,
          focus,
          signal: ac.signal,
        }))
          process.stdout.write((n++ ? ' ' : '') + id);
        process.stdout.write('\n');
        return 0;
      }
      const it = model.generate({
        context,
        prompt: f.prompt as string | undefined,
        ids,
        chat: f.chat ? (f.system ? { system: String(f.system) } : true) : false,
        maxNewTokens: f['max-new-tokens'] as number,
        temperature: f.temperature as number,
        topK: f['top-k'] as number,
        topP: f['top-p'] as number,
        seed: f.seed as number | undefined,
        stop: f.stop as string[] | undefined,
        focus,
        signal: ac.signal,
        onProgress: draw,
      });
      for await (const piece of it) {
        if (!streaming && showProgress && textOnTerminal) process.stderr.write('\r\x1b[K');
        streaming = true;
        process.stdout.write(piece);
      }
      process.stdout.write('\n');
      return 0;
    } finally {
      process.removeListener('SIGINT', onSigint);
      model.dispose();
    }
  },
};
