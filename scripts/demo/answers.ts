// Answer-only copying data for the base model (train --loss lm --lm-score
// output): {"input","output"} records whose output, the only tokens scored,
// is copied from the input. Two kinds:
//
//   --official N   N pass-key prompts in the official template
//                  (lib/eval/passkey-official.ts: filler, information line,
//                  filler, task description, question) of 100..499 tokens,
//                  so that the key lies anywhere in the base's 512-token
//                  window; output: the key. The template the pass-key tables
//                  measure, with keys and depths from this seed (the
//                  evaluations draw theirs from their own seeds). What
//                  raised the base's in-window pass keys (README, "The
//                  shipped model").
//   --records N    (the first try, which lowered them) pass-key lines in
//                  other phrasings and training-text filler, key-value
//                  tables and lists of numbers, in the shares of --mix,
//                  with --text natural training-text records ({"text"},
//                  scored in full) mixed in.
//
//   npx tsx scripts/demo/answers.ts --out DIR --official 12000 [--chunk-share F] [--seed 1] [--tokenizer models/focus-tiny]
//                  --chunk-share F: that share of the records in the layout
//                  a FocusLLM chunk sees with the shipped defaults (the
//                  chunk of a 512..4095-token prompt that holds the key,
//                  then BOS and the prompt's last 64 tokens), as token ids
//   npx tsx scripts/demo/answers.ts --out DIR --records 20000 [--text 4000] [--mix 0.6,0.25,0.15] [--seed 1]
//
// writes DIR/answers.jsonl and DIR/answers.json (what went in).
import fs from 'node:fs';
import path from 'node:path';

import { makePasskeyOfficialPrompt } from '../../lib/eval/passkey-official';
import { resolveFocusParams } from '../../lib/plan';
import { makeRng } from '../../lib/sampling';
import { loadTokenizer } from '../../lib/tokenizer';
import { arg } from './argv';
import { sentencesOf, Synth, trainingSources } from './corpus';
import { keyChunkSequence } from './key-chunk';

/** focus-tiny's FocusLLM defaults (its config.json "focusllm") */
const FOCUS_TINY = resolveFocusParams({ localWindow: 192, chunkSize: 256, promptCap: 64, minChunkedLength: 512 });

const count = (name: string, fallback: string) => {
  const v = Number(arg(name, fallback));
  if (!Number.isInteger(v) || v < 0) throw new Error(`answers: ${name} must be a non-negative integer, got ${arg(name, fallback)}`);
  return v;
};

async function official(n: number, seed: number): Promise<{ lines: string[]; stats: object }> {
  const dir = arg('--tokenizer', path.join(__dirname, '..', '..', 'models', 'focus-tiny'));
  const tok = await loadTokenizer(dir);
  if (!tok) throw new Error(`answers: no tokenizer.json in ${dir} (--tokenizer DIR)`);
  const r = makeRng(seed);
  const chunkShare = Number(arg('--chunk-share', '0'));
  if (!(chunkShare >= 0 && chunkShare <= 1)) throw new Error(`answers: --chunk-share must be in [0, 1], got ${arg('--chunk-share', '0')}`);
  const lines: string[] = [];
  let chunked = 0;
  for (let i = 0; i < n; i++) {
    if (r() < chunkShare) {
      // What a FocusLLM chunk sees with the focus-tiny defaults: the chunk of
      // a 512..4095-token prompt that holds the key, then the dynamic prompt
      // (key-chunk.ts). Chunk 0 starts with the prompt's BOS; the loader puts
      // one in front of the others. A key in the local window is drawn again.
      for (;;) {
        const p = makePasskeyOfficialPrompt(tok, 512 + Math.floor(r() * 3584), 'tokens', r);
        const out = tok.encode(p.answer, { addSpecial: false }); // "▁" and the digits
        const input = keyChunkSequence(p.ids, out.slice(1), FOCUS_TINY, p.ids[0]);
        if (!input) continue;
        lines.push(JSON.stringify({ input_ids: input, output_ids: out }));
        break;
      }
      chunked++;
      continue;
    }
    const len = 100 + Math.floor(r() * 400);
    const p = makePasskeyOfficialPrompt(tok, len, 'tokens', r);
    lines.push(JSON.stringify({ input: p.text, output: p.answer }));
  }
  return { lines, stats: { kind: 'official', records: n, tokens: '100..499', chunkLayout: chunked } };
}

function mixed(records: number, seed: number): { lines: string[]; stats: object } {
  const textRecords = count('--text', '4000');
  const [pk, lk] = arg('--mix', '0.6,0.25,0.15').split(',').map(Number);
  const train = trainingSources();
  const syn = new Synth(sentencesOf(train), seed);
  const lines: string[] = [];
  const kinds = { passkey: 0, lookup: 0, numbers: 0, text: 0 };
  for (let i = 0; i < records; i++) {
    const u = syn.r01();
    const rec = u < pk ? syn.passkeyRecord(syn.int(150, 1900)) : u < pk + lk ? syn.lookupRecord() : syn.numberRepeatRecord();
    kinds[u < pk ? 'passkey' : u < pk + lk ? 'lookup' : 'numbers']++;
    lines.push(JSON.stringify(rec));
  }
  const texts = train.map((x) => x.text);
  for (let i = 0; i < textRecords; i++) {
    const src = syn.pick(texts);
    const at = syn.int(0, Math.max(0, src.length - 2400));
    lines.push(JSON.stringify({ text: src.slice(at, at + 2400) }));
    kinds.text++;
  }
  const order = makeRng(seed + 1);
  for (let i = lines.length - 1; i > 0; i--) {
    const j = Math.floor(order() * (i + 1));
    [lines[i], lines[j]] = [lines[j], lines[i]];
  }
  return { lines, stats: { kind: 'mixed', records: lines.length, ...kinds, sources: 'scripts/demo/corpus.ts training text (filler and text records)' } };
}

async function main(): Promise<void> {
  const out = arg('--out', '');
  if (!out) throw new Error('answers: --out DIR is required (usage: --out DIR --official N | --records N [--text N] [--mix P,L,N]; [--seed S])');
  const seed = count('--seed', '1');
  const nOfficial = count('--official', '0');
  const nRecords = count('--records', '0');
  if ((nOfficial > 0) === (nRecords > 0)) throw new Error('answers: give one of --official N or --records N');
  const { lines, stats } = nOfficial ? await official(nOfficial, seed) : mixed(nRecords, seed);
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'answers.jsonl'), lines.join('\n') + '\n');
  const all = { seed, ...stats };
  fs.writeFileSync(path.join(out, 'answers.json'), JSON.stringify(all, null, 2) + '\n');
  process.stdout.write(JSON.stringify(all) + '\n');
}

if (require.main === module)
  main().catch((e: Error) => {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
  });
