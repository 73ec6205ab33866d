// focusllm longbench: one LongBench task from its .jsonl file.
import fs from 'node:fs';

import { parseFlags, usage, UsageError, type FlagSpec } from './args';
import type { Command } from './command';
import { FOCUS_FLAGS, MODEL_FLAGS, modelFromFlags, table } from './common';
import { cell, checkedFocus, ingestText, progressWanted, protocolFromFlags, StatusLine, withSigint } from '../eval/cli';
import { LONGBENCH_OFFICIAL, LONGBENCH_TASKS, longbenchTask, readLongbenchJsonl, runLongbench, type LongbenchResult } from '../eval/longbench';

const SPEC: Record<string, FlagSpec> = {
  ...MODEL_FLAGS,
  protocol: {
    type: 'string',
    help:
      `default (LongBench pred.py) or official (FocusLLM eval_longbench.py: --local-window ${LONGBENCH_OFFICIAL.localWindow}, ` +
      `--chunk-size ${LONGBENCH_OFFICIAL.chunkSize}, --prompt-cap ${LONGBENCH_OFFICIAL.promptCap}, --min-chunked-length ${LONGBENCH_OFFICIAL.minChunkedLength}, ` +
      `--max-length ${LONGBENCH_OFFICIAL.maxLength} unless given; its templates; newline stops for QA and samsum)`,
    default: 'default',
  },
  data: { type: 'string', help: 'LongBench .jsonl file (context, input, answers, all_classes, length)', required: true },
  task: { type: 'string', help: `task: ${Object.keys(LONGBENCH_TASKS).join(', ')}`, required: true },
  limit: { type: 'int', help: 'the first N records only' },
  'max-new-tokens': { type: 'int', help: "new tokens at most (default: the task's dataset2maxlen)" },
  'max-length': { type: 'int', help: 'cut longer prompts in the middle to this many tokens, as LongBench pred.py (default: no cut; official: 15500)' },
  chat: { type: 'bool', help: "use the checkpoint's chat template (for the tasks LongBench does)" },
  json: { type: 'bool', help: 'print one JSON object with every prediction' },
  progress: { type: 'bool', help: 'progress line on stderr (default: when stderr is a terminal)' },
  ...FOCUS_FLAGS,
};

export function longbenchTable(r: LongbenchResult): string {
  const rows = r.details.map((d) => [d.index, d.inputTokens, d.mode === 'focus' ? d.chunks : '-', d.newTokens, (100 * d.score).toFixed(1), cell(d.prediction), cell(d.answers[0], 30)]);
  const lines = [table(['#', 'tokens', 'chunks', 'new', 'score', 'prediction', 'answer'], rows), ''];
  if (r.byLength)
    lines.push(
      Object.entries(r.byLength)
        .map(([k, v]) => `${k}: ${v.score === null ? '-' : v.score} (${v.records})`)
        .join('   '),
    );
  lines.push(`${r.dataset} (${r.metric}): ${r.score} over ${r.records} record${r.records === 1 ? '' : 's'}, ${r.seconds.toFixed(1)} s`);
  if (r.protocol === 'official')
    lines.push(
      `protocol official: local window ${r.focus.localWindow}, chunk ${r.focus.chunkSize}, prompts cut to ${r.maxLength} tokens` +
        `${r.stopAtNewline ? ', stop at newline' : ''}`,
    );
  return lines.join('\n');
}

export const command: Command = {
  usage: () => usage('longbench', 'Score one LongBench task: its prompt template, greedy answers, its metric (100 = perfect).', SPEC),
  async run(argv) {
    const f = parseFlags(argv, SPEC);
    try {
      longbenchTask(String(f.task));
    } catch (e) {
      throw new UsageError(`--task: ${(e as Error).message}`);
    }
    for (const k of ['limit', 'max-new-tokens'])
      if (f[k] !== undefined && (f[k] as number) < 1) throw new UsageError(`--${k} must be at least 1, got ${String(f[k])}`);
    if (f['max-length'] !== undefined && (f['max-length'] as number) < 2)
      throw new UsageError(`--max-length must be at least 2, got ${String(f['max-length'])}`);
    const protocol = protocolFromFlags(f);
    const { localWindow, chunkSize, promptCap, minChunkedLength } = LONGBENCH_OFFICIAL;
    const focus = checkedFocus(
      f,
      protocol === 'official'
        ? {
            values: { localWindow, chunkSize, promptCap, minChunkedLength },
            note: `--protocol official sets --local-window ${localWindow}, --chunk-size ${chunkSize}, --prompt-cap ${promptCap} and --min-chunked-length ${minChunkedLength} unless given`,
          }
        : undefined,
    );
    const file = String(f.data);
    if (!fs.existsSync(file)) throw new UsageError(`--data: no such file ${file}`);
    const records = readLongbenchJsonl(file);
    const status = new StatusLine(progressWanted(f));
    const model = await modelFromFlags(f);
    try {
      if (!model.tokenizer) throw new Error(`--model ${String(f.model)} has no tokenizer.json: LongBench prompts are text`);
      const result = await withSigint((signal) =>
        runLongbench(model, {
          task: String(f.task),
          protocol,
          records,
          limit: f.limit as number | undefined,
          maxNewTokens: f['max-new-tokens'] as number | undefined,
          maxLength: f['max-length'] as number | undefined,
          chat: Boolean(f.chat),
          focus,
          signal,
          onProgress: (p) =>
            status.show(
              `longbench ${p.done}/${p.total} (score ${p.score.toFixed(1)}): ${p.phase === 'ingest' ? ingestText(p.ingest) : p.phase}`,
            ),
        }),
      );
      status.done();
      process.stdout.write((f.json ? JSON.stringify(result) : longbenchTable(result)) + '\n');
      return 0;
    } finally {
      status.done();
      model.dispose();
    }
  },
};
