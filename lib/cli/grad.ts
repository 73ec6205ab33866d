// focusllm grad: the exactness contract of training (DESIGN 1b).
//   {"loss": x, "grads": {"<tensor>": [...row-major], ...}}: the loss of one
//   example and the gradient of every trainable tensor (the candidate
//   projections for the FocusLLM losses, every tensor for lm).
import path from 'node:path';

import { native } from '../native';
import type { NativeTrainExample } from '../../typings/native';
import { parseFlags, usage, UsageError, type FlagSpec, type Flags } from './args';
import type { Command } from './command';
import { modelFromFlags } from './common';
import { readIdList } from './logits';

const SPEC: Record<string, FlagSpec> = {
  model: { type: 'string', help: 'checkpoint folder (config.json + *.safetensors)', required: true },
  ids: { type: 'string', help: 'JSON file: the example x (BOS first), an array of token ids or an object with "ids"', required: true },
  loss: { type: 'string', help: 'continuation, repetition (FocusLLM, one target token) or lm (every next token)', required: true },
  'local-start': { type: 'int', help: 's: first token of the local window (focus losses)' },
  'local-size': { type: 'int', help: 'l: local window length; the target is x[s+l] (focus losses)' },
  'chunk-size': { type: 'int', help: 'C: memory chunk length (focus losses)' },
  'prompt-cap': { type: 'int', help: 'cap on the dynamic prompt, t = min(cap, C, l)', default: 512 },
  'loss-start': { type: 'int', help: 'lm: the first scored token, x[loss-start..] (default 1: every next token)' },
  threads: { type: 'int', help: 'CPU threads (default: all cores)' },
};

const FOCUS_ONLY = ['local-start', 'local-size', 'chunk-size'];

/** The example the flags describe, checked against ids (vocabulary checked later, against the model). */
export function exampleFromFlags(f: Flags, ids: number[]): NativeTrainExample {
  const loss = String(f.loss);
  if (loss === 'lm') {
    const extra = FOCUS_ONLY.find((k) => f[k] !== undefined);
    if (extra) throw new UsageError(`--${extra} is for the focus losses (continuation, repetition), not --loss lm`);
    if (ids.length < 2) throw new UsageError(`--ids: the lm loss needs at least 2 tokens, got ${ids.length}`);
    const s0 = f['loss-start'] as number | undefined;
    if (s0 !== undefined && (s0 < 1 || s0 >= ids.length))
      throw new UsageError(`--loss-start must be in 1..${ids.length - 1} (the first scored token of the ${ids.length} ids), got ${s0}`);
    return { kind: 'lm', ids: Int32Array.from(ids), ...(s0 === undefined ? {} : { lossStart: s0 }) };
  }
  if (f['loss-start'] !== undefined) throw new UsageError(`--loss-start is for --loss lm, not --loss ${loss}`);
  if (loss !== 'continuation' && loss !== 'repetition')
    throw new UsageError(`--loss must be continuation, repetition or lm, got '${loss}'`);
  for (const k of FOCUS_ONLY) if (f[k] === undefined) throw new UsageError(`--${k} is required with --loss ${loss}`);
  const s = f['local-start'] as number, l = f['local-size'] as number, C = f['chunk-size'] as number;
  const cap = f['prompt-cap'] as number, N = ids.length;
  const minS = loss === 'continuation' ? 1 : 0;
  if (s < minS)
    throw new UsageError(`--local-start must be at least ${minS} with --loss ${loss} (the memory is x[0:s]), got ${s}`);
  if (l < 1) throw new UsageError(`--local-size must be at least 1, got ${l}`);
  if (s + l >= N)
    throw new UsageError(`--local-start + --local-size must be less than the ${N} ids (the target is x[s+l]), got ${s} + ${l}`);
  if (C < 1) throw new UsageError(`--chunk-size must be at least 1, got ${C}`);
  if (cap < 1) throw new UsageError(`--prompt-cap must be at least 1, got ${cap}`);
  return { kind: 'focus', ids: Int32Array.from(ids), loss, localStart: s, localSize: l, chunkSize: C, promptCap: cap };
}

export const command: Command = {
  usage: () =>
    usage(
      'grad',
      'Print the loss of one training example and the gradient of every trainable tensor as JSON (CPU).',
      SPEC,
    ),
  async run(argv) {
    const f = parseFlags(argv, SPEC);
    const ids = readIdList(String(f.ids), 'ids', 'ids');
    const ex = exampleFromFlags(f, ids);
    if (f.threads !== undefined && ((f.threads as number) < 1 || (f.threads as number) > 1024))
      throw new UsageError(`--threads must be from 1 to 1024, got ${String(f.threads)}`);
    // The vocabulary from config.json, before the weights are loaded.
    const vocab = native().readConfig(path.resolve(String(f.model))).vocabSize;
    const bad = ids.findIndex((x) => x >= vocab);
    if (bad >= 0) throw new UsageError(`--ids: ids[${bad}] = ${ids[bad]} is not a token id (vocabulary size ${vocab})`);
    if (typeof native().Trainer !== 'function')
      throw new Error('this build of the native addon has no training support; rebuild it (npm run build:addon)');
    const model = await modelFromFlags({ ...f, backend: 'cpu' }, { tokenizer: false });
    try {
      const trainer = model.native.createTrainer({ params: ex.kind === 'lm' ? 'all' : 'candidate' });
      try {
        const [loss] = await trainer.accumulate([ex]);
        // Shortest round-trip float32 text: exact and small.
        const grads = trainer.tensors.map(
          (t) => JSON.stringify(t.name) + ': [' + Array.from(trainer.getGradient(t.name), (x) => (Number.isFinite(x) ? String(x) : 'null')).join(',') + ']',
        );
        process.stdout.write(`{"loss": ${Number.isFinite(loss) ? String(loss) : 'null'}, "grads": {` + grads.join(',\n') + '}}\n');
        return 0;
      } finally {
        trainer.dispose();
      }
    } finally {
      model.dispose();
    }
  },
};
