// focusllm ppl: perplexity of the last R tokens of a text, FocusLLM or
// native sliding window; or, with --protocol official, FocusLLM's
// eval_lm.py protocol over one or more documents.
import fs from 'node:fs';

import { parseFlags, usage, UsageError, type FlagSpec, type Flags } from './args';
import type { Command } from './command';
import { FOCUS_FLAGS, MODEL_FLAGS, modelFromFlags, table } from './common';
import { readIdList } from './logits';
import { checkedFocus, flagGiven, ingestText, progressWanted, protocolFromFlags, StatusLine, withSigint } from '../eval/cli';
import { runPpl, type PplResult } from '../eval/ppl';
import { readTextJsonl, runPplOfficial, type PplDocument, type PplOfficialResult } from '../eval/ppl-official';

const SPEC: Record<string, FlagSpec> = {
  ...MODEL_FLAGS,
  protocol: {
    type: 'string',
    help: 'default (the last --score-last tokens of one text) or official (FocusLLM eval_lm.py: windows of --max-length every --stride tokens over each document, mean over documents)',
    default: 'default',
  },
  file: { type: 'string', help: 'text file (tokenized with the checkpoint tokenizer, BOS first)' },
  ids: { type: 'string', help: 'JSON file of token ids instead of --file (an array, or an object with "ids")' },
  data: { type: 'string', help: 'official: .jsonl of documents, one {"text": ...} a line (instead of --file / --ids)' },
  length: { type: 'int', help: 'use the first N tokens (e.g. 32k; default: all)' },
  'score-last': { type: 'int', help: 'R: tokens scored at the end (official: of each window, FocusLLM)', default: 128 },
  mode: { type: 'string', help: 'focus (FocusLLM) or native (sliding-window baseline); official also both', default: 'focus' },
  window: { type: 'int', help: 'native: context window in tokens (official: default max_position_embeddings)', default: 4096 },
  stride: { type: 'int', help: 'native: tokens scored per window (default min(R, window/2)); official: tokens between window starts (default 2048)' },
  'window-bos': { type: 'bool', help: 'native: windows after the text start begin with BOS (--window-bos=false: no)', default: true },
  'max-length': { type: 'int', help: 'official: window length in tokens, BOS included (required)' },
  'max-windows': { type: 'int', help: "official: keep only the last N windows of all documents (the script's max_sample_num)" },
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

export function pplOfficialTable(r: PplOfficialResult): string {
  const rows = r.results.map((m) => [m.mode, m.documents.length, r.windows.length, m.scored, m.ppl, m.meanNll, m.seconds]);
  const lines = [table(['mode', 'documents', 'windows', 'scored', 'ppl', 'mean NLL', 'seconds'], rows), ''];
  if (r.results.some((m) => m.documents.length > 1)) {
    const docRows = r.results.flatMap((m) => m.documents.map((d) => [m.mode, d.name, d.windows, d.scored, d.ppl]));
    lines.push(table(['mode', 'document', 'windows', 'scored', 'ppl'], docRows), '');
  }
  lines.push(
    `protocol official: max length ${r.maxLength}, stride ${r.stride}, ${r.windows.length} window${r.windows.length === 1 ? '' : 's'}` +
      (r.maxWindows !== null ? ` (--max-windows ${r.maxWindows})` : '') +
      `, ${r.seconds.toFixed(1)} s`,
  );
  for (const m of r.results) lines.push(`${m.mode}: ${m.method}`);
  return lines.join('\n');
}

/** focusllm ppl --protocol official */
async function runOfficial(argv: string[], f: Flags): Promise<number> {
  const sources = ['file', 'ids', 'data'].filter((k) => f[k] !== undefined);
  if (sources.length !== 1) throw new UsageError('give exactly one of --file, --ids and --data');
  for (const k of ['length', 'window-bos'])
    if (flagGiven(argv, k)) throw new UsageError(`--${k} does not apply to --protocol official (windows of --max-length every --stride tokens)`);
  const mode = String(f.mode);
  if (!['focus', 'native', 'both'].includes(mode)) throw new UsageError(`--mode must be focus, native or both, got '${mode}'`);
  const maxLength = f['max-length'] as number | undefined;
  if (maxLength === undefined) throw new UsageError('--max-length is required with --protocol official');
  if (maxLength < 2) throw new UsageError(`--max-length must be at least 2 (BOS and one token), got ${maxLength}`);
  const stride = (f.stride as number | undefined) ?? 2048;
  if (stride < 1) throw new UsageError(`--stride must be at least 1, got ${stride}`);
  const maxWindows = f['max-windows'] as number | undefined;
  if (maxWindows !== undefined && maxWindows < 1) throw new UsageError(`--max-windows must be at least 1, got ${maxWindows}`);
  const R = f['score-last'] as number;
  if (R < 1) throw new UsageError(`--score-last must be at least 1, got ${R}`);
  const nativeWindow = flagGiven(argv, 'window') ? (f.window as number) : undefined;
  if (nativeWindow !== undefined && nativeWindow < 2) throw new UsageError(`--window must be at least 2, got ${nativeWindow}`);
  const focus = checkedFocus(f);
  let docs: PplDocument[];
  if (f.data !== undefined) {
    const file = String(f.data);
    if (!fs.existsSync(file)) throw new UsageError(`--data: no such file ${file}`);
    docs = readTextJsonl(file);
  } else if (f.file !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(String(f.file), 'utf8');
    } catch (e) {
      throw new UsageError(`--file: ${(e as Error).message}`);
    }
    if (text.length === 0) throw new UsageError(`--file ${String(f.file)} is empty`);
    docs = [{ name: String(f.file), text }];
  } else docs = [{ name: String(f.ids), ids: readIdList(String(f.ids), 'ids', 'ids') }];
  const status = new StatusLine(progressWanted(f));
  const model = await modelFromFlags(f, { tokenizer: f.ids === undefined });
  try {
    if (f.ids === undefined && !model.tokenizer) throw new Error(`--model ${String(f.model)} has no tokenizer.json: give token ids with --ids`);
    const result = await withSigint((signal) =>
      runPplOfficial(model, docs, {
        maxLength,
        stride,
        maxWindows,
        mode: mode as 'focus' | 'native' | 'both',
        scoreLast: R,
        nativeWindow,
        focus,
        keepNlls: Boolean(f['keep-nlls']),
        signal,
        onProgress: (p) => status.show(`window ${p.done + 1}/${p.total} (document ${p.doc}) ${p.mode}: ${p.phase === 'ingest' ? ingestText(p.ingest) : p.phase}`),
      }),
    );
    status.done();
    process.stdout.write((f.json ? JSON.stringify(result) : pplOfficialTable(result)) + '\n');
    return 0;
  } finally {
    status.done();
    model.dispose();
  }
}

export const command: Command = {
  usage: () =>
    usage(
      'ppl',
      'Perplexity of the last --score-last tokens of the first --length tokens of --file (or --ids); with --protocol official, FocusLLM\'s sliding windows over --file, --ids or --data.',
      SPEC,
    ),
  async run(argv) {
    const f = parseFlags(argv, SPEC);
    if (protocolFromFlags(f) === 'official') return runOfficial(argv, f);
    for (const k of ['data', 'max-length', 'max-windows']) if (f[k] !== undefined) throw new UsageError(`--${k} needs --protocol official`);
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
