// focusllm ppl: perplexity of the last R tokens of a text, FocusLLM or
// native sliding window.
import fs from 'node:fs';

import { parseFlags, usage, UsageError, type FlagSpec } from './args';
import type { Command } from './command';
import { FOCUS_FLAGS, MODEL_FLAGS, modelFromFlags, table } from './common';
import { readIdList } from './logits';
import { checkedFocus, ingestText, progressWanted, StatusLine, withSigint } from '../eval/cli';
import { runPpl, type PplResult } from '../eval/ppl';

const SPEC: Record<string, FlagSpec> = {
  ...MODEL_FLAGS,
  file: { type: 'string', help: 'text file (tokenized with the checkpoint tokenizer, BOS first)' },
  ids: { type: 'string', help: 'JSON file of token ids instead of --file (an array, or an object with "ids")' },
  length: { type: 'int', help: 'use the first N tokens (e.g. 32k; default: all)' },
  'score-last': { type: 'int', help: 'R: tokens scored at the end', default: 128 },
  mode: { type: 'string', help: 'focus (FocusLLM) or native (sliding-window baseline)', default: 'focus' },
  window: { type: 'int', help: 'native: context window in tokens', default: 4096 },
  stride: { type: 'int', help: 'native: tokens scored per window (default min(R, window/2))' },
  'window-bos': { type: 'bool', help: 'native: windows after the text start begin with BOS (--window-bos=false: no)', default: true },
  'keep-nlls': { type: 'bool', help: 'include every scored token NLL in the JSON' },
  json: { type: 'bool', help: 'print one JSON object' },
  progress: { type: 'bool', help: 'progress line on stderr (default: when stderr is a terminal)' },
  ...FOCUS_FLAGS,
};

export function pplTable(r: PplResult): string {
  const setup =
    r.mode === 'focus'
      ? `${r.focus!.sessionMode === 'focus' ? `${r.focus!.chunks} chunks` : 'native (short input)'}, local ${r.focus!.localWindow}, chunk ${r.focus!.chunkSize}`
      : `window ${r.window}, stride ${r.stride}, ${r.windows} forward${r.windows === 1 ? '' : 's'}`;
  return [
    table(
      ['mode', 'tokens', 'scored', 'ppl', 'mean NLL', 'tokens/s', 'seconds', 'setup'],
      [[r.mode, r.length, r.scored, r.ppl, r.meanNll, r.tokensPerSecond, r.seconds, setup]],
    ),
    '',
    r.method,
  ].join('\n');
}

export const command: Command = {
  usage: () => usage('ppl', 'Perplexity of the last --score-last tokens of the first --length tokens of --file (or --ids).', SPEC),
  async run(argv) {
    const f = parseFlags(argv, SPEC);
    if ((f.file === undefined) === (f.ids === undefined)) throw new UsageError('give exactly one of --file and --ids');
    const mode = String(f.mode);
    if (mode !== 'focus' && mode !== 'native') throw new UsageError(`--mode must be focus or native, got '${mode}'`);
    const length = f.length as number | undefined;
    if (length !== undefined && length < 2) throw new UsageError(`--length must be at least 2, got ${length}`);
    const R = f['score-last'] as number;
    if (R < 1) throw new UsageError(`--score-last must be at least 1, got ${R}`);
    if (length !== undefined && R >= length) throw new UsageError(`--score-last (${R}) must be smaller than --length (${length})`);
    const W = f.window as number;
    if (W < 2) throw new UsageError(`--window must be at least 2, got ${W}`);
    const stride = f.stride as number | undefined;
    if (stride !== undefined && (stride < 1 || stride >= W)) throw new UsageError(`--stride must be from 1 to --window - 1 (${W - 1}), got ${stride}`);
    const focus = checkedFocus(f);
    let text: string | undefined;
    let ids: number[] | undefined;
    if (f.file !== undefined) {
      try {
        text = fs.readFileSync(String(f.file), 'utf8');
      } catch (e) {
        throw new UsageError(`--file: ${(e as Error).message}`);
      }
      if (text.length === 0) throw new UsageError(`--file ${String(f.file)} is empty`);
    } else ids = readIdList(String(f.ids), 'ids', 'ids');
    const status = new StatusLine(progressWanted(f));
    const model = await modelFromFlags(f, { tokenizer: text !== undefined });
    try {
      if (text !== undefined) {
        const tok = model.tokenizer;
        if (!tok) throw new Error(`--model ${String(f.model)} has no tokenizer.json: give token ids with --ids`);
        status.show('tokenizing...', true);
        ids = tok.encode(text);
        const bos = model.config.bosTokenId;
        if (ids[0] !== bos) ids.unshift(bos);
      }
      const have = ids!.length;
      if (length !== undefined && length > have)
        throw new Error(`--length ${length}: ${f.file !== undefined ? `--file ${String(f.file)}` : `--ids ${String(f.ids)}`} has only ${have} tokens`);
      if (R >= (length ?? have)) throw new Error(`--score-last ${R} leaves no context: the text has ${length ?? have} tokens`);
      const result = await withSigint((signal) =>
        runPpl(model, ids!, {
          length,
          scoreLast: R,
          mode,
          window: W,
          stride,
          windowBos: Boolean(f['window-bos']),
          focus,
          keepNlls: Boolean(f['keep-nlls']),
          signal,
          onProgress: (p) =>
            status.show(p.phase === 'ingest' ? ingestText(p.ingest) : `${p.phase === 'score' ? 'scored' : 'windows'} ${p.done}/${p.total}`),
        }),
      );
      status.done();
      process.stdout.write((f.json ? JSON.stringify(result) : pplTable(result)) + '\n');
      return 0;
    } finally {
      status.done();
      model.dispose();
    }
  },
};
