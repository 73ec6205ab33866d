// Retrieval data for the shipped demo model, shaped like what FocusLLM asks of
// its base model. At inference every memory chunk runs as `chunk ++ P`: a
// slice of the input that does not start with BOS, then BOS and the dynamic
// prompt P (the input's last tokens: the question). The candidate (P's last
// token) can only carry the answer to the local context if the base model
// answers the question from the chunk *across that BOS*. A model trained on
// documents concatenated with BOS between them learns the opposite (text
// before a BOS belongs to another document), which is one reason the first
// base model never retrieved. So:
//
//   base.jsonl   stage 1b, causal LM, records of exactly SEQ tokens ({"ids"},
//                BOS first, so that no record straddles two sequences):
//                  chunk ++ P pass-key examples (the official information
//                  line in official or corpus filler, then BOS, the prompt's
//                  tail and the answer),
//                  chunk ++ P lookups (a table of "The pass key of the W is
//                  N." lines, then BOS and questions about some of them),
//                  whole official pass-key prompts with their answers,
//                  and natural text.
//   focus.jsonl  stage 2 documents (the official loss scores one token per
//                example, drawn in the last full window-block): lookup
//                documents (the table in the first block, the questions in
//                the last, so that most scored tokens are digits that only
//                memory holds), official pass-key documents, natural text.
//
//   pool.jsonl   the copy-first start (before any natural text): 20 tokens
//                drawn from the 6,600 most frequent word pieces of the
//                training text, then the same 20 again (41 tokens with BOS),
//                20,000 records. Copying is all there is to learn in them,
//                and a model that starts on them keeps an induction circuit
//                that later retrieval training builds on.
//   repeat3.jsonl  BOS, 16..24 random word pieces (of the 300 most frequent),
//                the same again twice: 40,000 records. Solved first by heads
//                that attend a fixed distance back (copy-check's spans show
//                it: repeats at other distances are not predicted), it
//                rewards copying strongly enough to start the next stage.
//   short.jsonl  60,000 documents (packed by the trainer): the information
//                line and the question a few filler sentences apart, official
//                pass-key prompts with 0..150 filler characters, chunk ++ P pass keys
//                with 12..40-token chunks, lookups in tables of 2..5 lines,
//                natural text; the first retrieval stage (shortDoc).
//   short-v1.jsonl  the same without the micro documents (its first version).
//   focus-dense.jsonl  6,000 stage-2 official pass-key documents of 256..2048
//                tokens whose answer ends a 64-token block (denseDoc).
//   spans.jsonl  60,000 records of 128 tokens of the same word pieces in
//                which spans of 3..12 tokens come back from random earlier
//                places, so the distance varies: only an induction head
//                (find the earlier occurrence of the current token, predict
//                what followed it) predicts the repeats.
//
//   npx tsx scripts/demo/retrieval.ts --out DIR [--seed 11] [--records 24000] [--docs 12000] [--legacy-answers]
//   npx tsx scripts/demo/retrieval.ts --out DIR --focus-answer W [--blocks 2,40] [--answer-prefix J] [--docs N] [--seed S]
//                (only focus-answer.jsonl: answerDoc, documents of 2..40 W-blocks)
//   npx tsx scripts/demo/retrieval.ts --out DIR --focus-answer W --text [--blocks 2,40] [--docs N] [--seed S]
//                (only focus-text.jsonl: BOS and natural training text, documents of
//                blocks[0] * W .. blocks[1] * W tokens, scored at their last token like
//                the answer documents: they make the candidates keep ordinary text
//                predictable, which the answer documents alone do not ask)
import fs from 'node:fs';
import path from 'node:path';

import { PASSKEY_QUESTION, PASSKEY_TASK, passkeyInfoLine, passkeyText } from '../../lib/eval/passkey';
import { passkeyOfficialGarbage, passkeyOfficialText } from '../../lib/eval/passkey-official';
import { makeRng } from '../../lib/sampling';
import { loadTokenizer } from '../../lib/tokenizer';
import type { Tokenizer } from '../../lib/tokenizer/types';
import { trainingSources } from './corpus';

const SEQ = 512;
const WINDOW = 384; // the stage-2 training window
const BOS = 1;

class Gen {
  readonly r: () => number;
  constructor(
    readonly tok: Tokenizer,
    readonly natural: number[],
    readonly words: string[],
    seed: number,
  ) {
    this.r = makeRng(seed);
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.r() * (hi - lo + 1));
  }
  pick<T>(a: readonly T[]): T {
    return a[Math.floor(this.r() * a.length)];
  }
  enc(s: string): number[] {
    return this.tok.encode(s, { addSpecial: false });
  }
  key(): number {
    return this.int(1, 49999);
  }
  /**
   * The answer after "... The pass key is": `${k}.` encodes as "▁" and the
   * digits, as the number does inside running text and as the evaluation
   * counts the answer's tokens. (` ${k}.` would start with "▁▁", a token
   * the evaluation never accepts: the data before this fix taught it.)
   */
  answer(k: number): number[] {
    return this.enc(this.legacyAnswers ? ` ${k}.` : `${k}.`);
  }
  /** --legacy-answers: the encoding before the fix, to reproduce runs made on that data */
  legacyAnswers = false;
  /** n tokens of natural text from a random place */
  text(n: number): number[] {
    const at = this.int(0, this.natural.length - n - 1);
    return this.natural.slice(at, at + n);
  }
  /** filler tokens: the official sentences from a random one, or natural text */
  filler(n: number, official: boolean): number[] {
    if (!official) return this.text(n);
    const ids = this.enc(passkeyOfficialGarbage(n * 5 + 200).slice(this.int(0, 88)));
    return ids.slice(0, n);
  }
  /**
   * chunk ++ P for one pass key: up to `chunk` tokens of filler with the
   * information line inside (not starting with BOS), BOS, the prompt's tail
   * (filler, the task, the question) and the answer.
   */
  passkeyChunk(chunk: number): number[] {
    const official = this.r() < 0.6;
    const k = this.key();
    const line = this.enc(passkeyInfoLine(k));
    const room = Math.max(0, chunk - line.length);
    const before = this.int(0, room);
    const c = [...this.filler(before, official), ...line, ...this.filler(room - before, official)];
    const tailFill = this.int(0, 24);
    const p = [BOS, ...this.filler(tailFill, official), ...this.enc('\n' + PASSKEY_TASK + '\n' + PASSKEY_QUESTION)];
    return [...c, ...p, ...this.answer(k)];
  }
  /** a lookup table of n lines, and its entries */
  table(n: number): { lines: number[]; entries: { w: string; k: number }[] } {
    const ws = new Set<string>();
    while (ws.size < n) ws.add(this.pick(this.words));
    const entries = [...ws].map((w) => ({ w, k: this.key() }));
    const lines = entries.flatMap((e) => this.enc(`The pass key of the ${e.w} is ${e.k}.\n`));
    return { lines, entries };
  }
  question(e: { w: string; k: number }): number[] {
    return this.enc(`The pass key of the ${e.w} is ${e.k}.\n`);
  }
  /** chunk ++ P for a lookup table: the table (some lines), BOS, questions about its entries */
  lookupChunk(): number[] {
    const t = this.table(this.int(3, 16));
    const pre = this.r() < 0.5 ? this.text(this.int(0, 40)) : [];
    const asked = [...t.entries].sort(() => this.r() - 0.5).slice(0, this.int(1, Math.min(5, t.entries.length)));
    return [...pre, ...t.lines, BOS, ...asked.flatMap((e) => this.question(e))];
  }
  /** a whole official pass-key prompt of about n tokens (BOS first) and its answer */
  officialPrompt(n: number): number[] {
    const k = this.key();
    const chars = Math.max(0, Math.floor((n - 70) * 3.6));
    const text = this.r() < 0.7 ? passkeyOfficialText(chars, Math.floor(this.r() * chars), k) : passkeyText(Math.floor(chars / 18), 0, k);
    return [BOS, ...this.enc(text), ...this.answer(k)];
  }
  /**
   * A short retrieval document for the first retrieval stage (short.jsonl):
   * the same three shapes at a tenth of the distances. A model learns to
   * retrieve at short distances first (few tokens compete for the
   * attention, so the gradient toward the right one is large) and then
   * extends to long ones quickly; trained at long distances from the start
   * it does not begin at all (README, "Why it does not copy").
   */
  shortDoc(micro = true): number[] {
    // the shares of micro, official, chunk ++ P, lookup (the rest natural);
    // micro = false gives the first version (no micro documents)
    const [a, b, c, d] = micro ? [0.4, 0.6, 0.75, 0.9] : [0, 0.4, 0.7, 0.85];
    const u = this.r();
    if (u < a) {
      // the information line and the question with at most a few filler
      // sentences between (no task text): distances of 15..40 tokens
      const k = this.key();
      const pre = passkeyOfficialGarbage(this.int(0, 60));
      const mid = passkeyOfficialGarbage(this.int(0, 90));
      return [BOS, ...this.enc([pre, passkeyInfoLine(k), mid, PASSKEY_QUESTION].join('\n')), ...this.answer(k)];
    }
    if (u < b) {
      const k = this.key();
      const chars = this.int(0, 150);
      return [BOS, ...this.enc(passkeyOfficialText(chars, Math.floor(this.r() * chars), k)), ...this.answer(k)];
    }
    if (u < c) return [BOS, ...this.passkeyChunk(this.int(12, 40))];
    if (u < d) {
      const t = this.table(this.int(2, 5));
      const asked = [...t.entries].sort(() => this.r() - 0.5).slice(0, this.int(1, t.entries.length));
      return [BOS, ...t.lines, BOS, ...asked.flatMap((e) => this.question(e))];
    }
    return [BOS, ...this.text(this.int(64, 128))];
  }
  /**
   * A stage-2 document whose answer ends a W-block: an official pass-key
   * prompt of about n tokens with its answer, the filler before the
   * information line cut from the front so that the length is a multiple of
   * `block`. The focus loss scores targets inside the last full block only
   * (lib/train/geometry.ts), so with a window W = block and local windows
   * near W the scored token is often a digit of the answer, which only the
   * memory holds (focus-dense.jsonl).
   */
  denseDoc(n: number, block: number): number[] {
    const k = this.key();
    const chars = Math.max(0, Math.floor((n - 70) * 3.6));
    const prefix = Math.floor(this.r() * chars);
    const ids = [...this.enc(passkeyOfficialText(chars, prefix, k)), ...this.answer(k)];
    const line = this.enc(passkeyInfoLine(k));
    let at = -1;
    for (let i = 0; at < 0 && i + line.length <= ids.length; i++) if (line.every((x, j) => ids[i + j] === x)) at = i;
    const cut = Math.min((ids.length + 1) % block, Math.max(0, at)); // BOS comes back below
    const out = [BOS, ...ids.slice(cut)];
    return out.length % block === 0 ? out : [];
  }
  /**
   * A stage-2 document that ends on an answer token: an official pass-key
   * prompt of about n tokens followed by the first j tokens of its answer (j
   * uniform over the answer's tokens), the filler before the information
   * line cut from the front so that the length is a multiple of `block`,
   * and the information line before the last block (in memory, never in the
   * local window). With a window W = block and local windows of exactly
   * W - 2 tokens, the official continuation sampling scores the document's
   * last token: every example's target is a token of the answer, which only
   * the memory holds (focus-answer.jsonl). `answerTokens` > 0: exactly that many
 * answer tokens (2: "▁" and the first digit). Empty when the draw does not fit.
   */
  answerDoc(n: number, block: number, answerTokens = 0): number[] {
    const k = this.key();
    const chars = Math.max(0, Math.floor((n - 70) * 3.6));
    const prefix = Math.floor(this.r() * chars);
    const answer = this.answer(k);
    const ids = [...this.enc(passkeyOfficialText(chars, prefix, k)), ...answer.slice(0, answerTokens || this.int(1, answer.length))];
    // after "\n" the line's first word has no "▁": match from its second token
    const line = this.enc(passkeyInfoLine(k)).slice(1);
    let at = -1;
    for (let i = 0; at < 0 && i + line.length <= ids.length; i++) if (line.every((x, j) => ids[i + j] === x)) at = i - 1;
    if (at < 0) throw new Error(`answerDoc: the information line of ${k} is not in its document's tokens`);
    const cut = (ids.length + 1) % block; // BOS comes back below
    if (at < cut) return [];
    const out = [BOS, ...ids.slice(cut)];
    return out.length >= 2 * block && at - cut + 2 + line.length <= out.length - block + 1 ? out : [];
  }
  /** a record of exactly SEQ tokens (BOS first): pieces of one kind, then natural text */
  record(kind: number): number[] {
    const out = [BOS];
    if (kind === 0) while (out.length < SEQ - 200) out.push(...this.passkeyChunk(this.int(30, 250)), BOS);
    else if (kind === 1) while (out.length < SEQ - 250) out.push(...this.lookupChunk(), BOS);
    else if (kind === 2) out.push(...this.officialPrompt(this.int(90, 500)).slice(1), BOS);
    if (out.length > SEQ) out.length = SEQ;
    out.push(...this.text(SEQ - out.length));
    return out;
  }
  /** a stage-2 lookup document: the table in [0, WINDOW), questions in the last full block */
  lookupDoc(): number[] {
    const t = this.table(40);
    const head = [BOS, ...t.lines].slice(0, WINDOW);
    const known = t.entries.filter((e) => {
      const line = this.enc(`The pass key of the ${e.w} is ${e.k}.\n`);
      for (let i = 0; i + line.length <= head.length; i++) if (line.every((x, j) => head[i + j] === x)) return true;
      return false;
    });
    const qs: number[] = [];
    for (const e of [...known].sort(() => this.r() - 0.5)) qs.push(...this.question(e));
    while (qs.length < WINDOW) qs.push(...this.text(8));
    return [...head, ...this.filler(WINDOW - head.length, false), ...qs.slice(0, WINDOW)];
  }
}

function main(argv: string[]): void {
  let out = '';
  let seed = 11;
  let records = 24000;
  let docs = 12000;
  let legacy = false;
  let answerBlock = 0;
  let blocks = [2, 40];
  let answerPrefix = 0;
  let textDocs = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') out = argv[++i];
    else if (argv[i] === '--seed') seed = Number(argv[++i]);
    else if (argv[i] === '--records') records = Number(argv[++i]);
    else if (argv[i] === '--docs') docs = Number(argv[++i]);
    else if (argv[i] === '--legacy-answers') legacy = true;
    else if (argv[i] === '--focus-answer') answerBlock = Number(argv[++i]);
    else if (argv[i] === '--blocks') blocks = argv[++i].split(',').map(Number);
    else if (argv[i] === '--answer-prefix') answerPrefix = Number(argv[++i]);
    else if (argv[i] === '--text') textDocs = true;
    else throw new Error(`retrieval: unknown argument ${argv[i]}`);
  }
  if (!out) throw new Error('retrieval: --out DIR is required');
  if (textDocs && !answerBlock) throw new Error('retrieval: --text needs --focus-answer W (the block its lengths count in)');
  void (async () => {
    const tok = await loadTokenizer(path.join(__dirname, '../../models/focus-tiny'));
    if (!tok) throw new Error('retrieval: no tokenizer in models/focus-tiny');
    const src = trainingSources();
    const natural = tok.encode(src.map((s) => s.text).join('\n\n'), { addSpecial: false });
    const words = [...new Set(src.flatMap((s) => s.text.split(/\s+/)).filter((w) => /^[a-z]{3,10}$/.test(w)))];
    const g = new Gen(tok, natural, words, seed);
    g.legacyAnswers = legacy;
    fs.mkdirSync(out, { recursive: true });
    if (answerBlock) {
      // only focus-answer.jsonl: `docs` documents of blocks[0]..blocks[1] blocks
      if (!(Number.isInteger(answerBlock) && answerBlock >= 64)) throw new Error('retrieval: --focus-answer needs a block of >= 64 tokens');
      const ga = new Gen(tok, natural, words, seed + 4000);
      const lines: string[] = [];
      if (textDocs) {
        while (lines.length < docs) lines.push(JSON.stringify({ ids: [BOS, ...ga.text(ga.int(blocks[0] * answerBlock, blocks[1] * answerBlock) - 1)] }));
        fs.writeFileSync(path.join(out, 'focus-text.jsonl'), lines.join('\n') + '\n');
        return;
      }
      while (lines.length < docs) {
        const ids = ga.answerDoc(ga.int(blocks[0] * answerBlock, blocks[1] * answerBlock), answerBlock, answerPrefix);
        if (ids.length) lines.push(JSON.stringify({ ids }));
      }
      fs.writeFileSync(path.join(out, 'focus-answer.jsonl'), lines.join('\n') + '\n');
      return;
    }
    const freq = new Map<number, number>();
    for (const id of natural) if (id >= 259) freq.set(id, (freq.get(id) ?? 0) + 1);
    const pool = [...freq.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, 6600).map((e) => e[0]);
    const gp = new Gen(tok, natural, words, seed + 1000); // its own draws: base.jsonl does not depend on it
    const poolLines: string[] = [];
    for (let i = 0; i < 20000; i++) {
      const xs = Array.from({ length: 20 }, () => gp.pick(pool));
      poolLines.push(JSON.stringify({ ids: [BOS, ...xs, ...xs] }));
    }
    fs.writeFileSync(path.join(out, 'pool.jsonl'), poolLines.join('\n') + '\n');
    // The two induction curricula draw from the 300 most frequent word pieces
    // with their own generator (a Park-Miller LCG, as first written).
    const p300 = pool.slice(0, 300);
    const lcg = (seed0: number) => {
      let st = seed0;
      return () => (st = (st * 16807) % 2147483647) / 2147483647;
    };
    {
      const r = lcg(12345);
      const lines: string[] = [];
      for (let i = 0; i < 40000; i++) {
        const n = 16 + Math.floor(r() * 9);
        const a = Array.from({ length: n }, () => p300[Math.floor(r() * p300.length)]);
        lines.push(JSON.stringify({ ids: [BOS, ...a, ...a, ...a] }));
      }
      fs.writeFileSync(path.join(out, 'repeat3.jsonl'), lines.join('\n') + '\n');
    }
    {
      const r = lcg(4242);
      const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
      const lines: string[] = [];
      for (let i = 0; i < 60000; i++) {
        const x = [BOS];
        while (x.length < 128) {
          if (x.length > 12 && r() < 0.5) {
            const n = int(3, 12);
            const from = int(1, x.length - n);
            x.push(...x.slice(from, from + n));
          } else x.push(...Array.from({ length: int(2, 10) }, () => p300[Math.floor(r() * p300.length)]));
        }
        lines.push(JSON.stringify({ ids: x.slice(0, 128) }));
      }
      fs.writeFileSync(path.join(out, 'spans.jsonl'), lines.join('\n') + '\n');
    }
    const mix = [0.3, 0.25, 0.15]; // passkey chunks, lookup chunks, whole prompts; the rest natural text
    const kinds = [0, 0, 0, 0];
    const lines: string[] = [];
    for (let i = 0; i < records; i++) {
      const u = g.r();
      const kind = u < mix[0] ? 0 : u < mix[0] + mix[1] ? 1 : u < mix[0] + mix[1] + mix[2] ? 2 : 3;
      kinds[kind]++;
      const ids = g.record(kind);
      if (ids.length !== SEQ) throw new Error(`record ${i}: ${ids.length} tokens`);
      lines.push(JSON.stringify({ ids }));
    }
    fs.writeFileSync(path.join(out, 'base.jsonl'), lines.join('\n') + '\n');
    const focus: string[] = [];
    const dk = [0, 0, 0];
    for (let i = 0; i < docs; i++) {
      const u = g.r();
      let ids: number[];
      if (u < 0.5) {
        ids = g.lookupDoc();
        dk[0]++;
      } else if (u < 0.8) {
        ids = g.officialPrompt(g.int(500, 1020));
        dk[1]++;
      } else {
        ids = [BOS, ...g.text(g.int(400, 1023))];
        dk[2]++;
      }
      focus.push(JSON.stringify({ ids }));
    }
    fs.writeFileSync(path.join(out, 'focus.jsonl'), focus.join('\n') + '\n');
    {
      const gs = new Gen(tok, natural, words, seed + 2000); // its own draws
      const lines: string[] = [];
      for (let i = 0; i < 60000; i++) lines.push(JSON.stringify({ ids: gs.shortDoc() }));
      fs.writeFileSync(path.join(out, 'short.jsonl'), lines.join('\n') + '\n');
      // short-v1.jsonl: the first version, without the micro documents (the
      // shipped lineage's first 200 steps of this stage ran on it)
      const g1 = new Gen(tok, natural, words, seed + 2000);
      const v1: string[] = [];
      for (let i = 0; i < 60000; i++) v1.push(JSON.stringify({ ids: g1.shortDoc(false) }));
      fs.writeFileSync(path.join(out, 'short-v1.jsonl'), v1.join('\n') + '\n');
    }
    {
      const gd = new Gen(tok, natural, words, seed + 3000); // its own draws
      const lines: string[] = [];
      while (lines.length < 6000) {
        const ids = gd.denseDoc(gd.int(256, 2048), 64);
        if (ids.length) lines.push(JSON.stringify({ ids }));
      }
      fs.writeFileSync(path.join(out, 'focus-dense.jsonl'), lines.join('\n') + '\n');
    }
    const stats = { seed, records, kinds: { passkeyChunks: kinds[0], lookupChunks: kinds[1], prompts: kinds[2], natural: kinds[3] }, docs, docKinds: { lookup: dk[0], passkey: dk[1], natural: dk[2] } };
    fs.writeFileSync(path.join(out, 'retrieval.json'), JSON.stringify(stats, null, 2) + '\n');
    process.stdout.write(JSON.stringify(stats) + '\n');
  })().catch((e) => {
    process.stderr.write(`retrieval: ${(e as Error).message}\n`);
    process.exit(1);
  });
}

if (require.main === module) main(process.argv.slice(2));
