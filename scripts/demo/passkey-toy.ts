// A pass-key toy: how the distance between key and question decides whether
// a small LLaMA learns to retrieve at all (scripts/demo/passkey-toy.sh runs
// it). Vocabulary 64: BOS 1, digits 3..12, filler 13..58, the marker
// "key is" 59 60, the question mark 61. A document is
//
//   BOS, filler, 59 60, five digits, filler, 61 59 60, the same five digits
//
// with F filler tokens in all (F uniform in [lo, hi], split at random). Only
// the last five digits can be predicted, and only by finding the key.
//
//   npx tsx scripts/demo/passkey-toy.ts data OUT.jsonl LO HI [SEED]
//   npx tsx scripts/demo/passkey-toy.ts eval DIR LO HI
//   npx tsx scripts/demo/passkey-toy.ts focus-data OUT.jsonl
//   npx tsx scripts/demo/passkey-toy.ts focus-eval DIR [FILLER=600]
//   npx tsx scripts/demo/passkey-toy.ts chunk-eval DIR
//   npx tsx scripts/demo/passkey-toy.ts focus-answer-data OUT.jsonl MINFILL MAXFILL DIGITS
//
// eval: 60 documents, the answer teacher-forced; prints the fraction of
// answer digits that are the argmax and of documents whose every digit is.
// focus-data: 8,000 documents of 192..512 tokens (filler 176..496) whose
// answer ends a 64-token block, for stage-2 training with --window 64.
// focus-eval: 40 documents with 600 (or FILLER) filler tokens under FocusLLM (local
// window 48, chunks of 64, prompt cap 16), the answer teacher-forced.
// focus-answer-data: 8,000 documents that end on an answer digit: BOS,
// filler, the key, filler (MINFILL..MAXFILL tokens in all, the key at least
// 70 tokens before the end), the question and the first j digits of the
// answer (j uniform in 1..DIGITS), for stage-2 training with --target last:
// every scored token is a digit that only the memory holds.
// chunk-eval: 40 `chunk ++ P` sequences run natively (a 64-token chunk with
// the key, BOS, 10 filler tokens and the question): does the base answer
// from the chunk across the BOS, as a candidate's forward pass must?
import fs from 'node:fs';

import { loadModel } from '../../lib/model';

function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 16807) % 2147483647) / 2147483647;
}

function toyDocument(r: () => number, lo: number, hi: number): { ids: number[]; key: number[] } {
  const int = (a: number, b: number) => a + Math.floor(r() * (b - a + 1));
  const fill = (k: number) => Array.from({ length: k }, () => int(13, 58));
  const key = Array.from({ length: 5 }, () => int(3, 12));
  const f = int(lo, hi);
  const before = int(0, f);
  return { ids: [1, ...fill(before), 59, 60, ...key, ...fill(f - before), 61, 59, 60], key };
}

async function main(argv: string[]): Promise<void> {
  const [mode, target, loS, hiS, seedS] = argv;
  if (mode === 'focus-data' || mode === 'focus-eval' || mode === 'chunk-eval') return focusToy(mode, target, Number(loS ?? 600));
  if (mode === 'focus-answer-data') return focusAnswerData(target, argv.slice(2).map(Number));
  const lo = Number(loS);
  const hi = Number(hiS);
  if (!(mode === 'data' || mode === 'eval') || !target || !(Number.isInteger(lo) && Number.isInteger(hi) && 0 <= lo && lo <= hi))
    throw new Error('usage: passkey-toy.ts data OUT.jsonl LO HI [SEED] | eval DIR LO HI');
  if (mode === 'data') {
    const r = lcg(Number(seedS ?? 7));
    const lines: string[] = [];
    for (let i = 0; i < 40000; i++) {
      const d = toyDocument(r, lo, hi);
      lines.push(JSON.stringify({ ids: [...d.ids, ...d.key] }));
    }
    fs.writeFileSync(target, lines.join('\n') + '\n');
    return;
  }
  const m = await loadModel(target, { threads: 1 });
  try {
    const r = lcg(999);
    let hits = 0;
    let whole = 0;
    for (let t = 0; t < 60; t++) {
      const d = toyDocument(r, lo, hi);
      const rows = await m.logits(d.ids, {
        continuation: d.key.slice(0, 4),
        focus: { minChunkedLength: Math.max(d.ids.length + 6, m.focusDefaults.localWindow) + 1 },
      });
      let all = true;
      rows.forEach((row, i) => {
        let best = 0;
        for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
        if (best === d.key[i]) hits++;
        else all = false;
      });
      if (all) whole++;
    }
    process.stdout.write(JSON.stringify({ model: target, filler: `${lo}-${hi}`, digitAccuracy: hits / 300, documentAccuracy: whole / 60 }) + '\n');
  } finally {
    m.dispose();
  }
}

function focusAnswerData(target: string | undefined, [lo, hi, digits]: number[]): void {
  if (!target || !(Number.isInteger(lo) && Number.isInteger(hi) && Number.isInteger(digits) && 70 <= lo && lo <= hi && digits >= 1 && digits <= 5))
    throw new Error('usage: passkey-toy.ts focus-answer-data OUT.jsonl MINFILL MAXFILL DIGITS (70 <= MINFILL <= MAXFILL, DIGITS 1..5)');
  const r = lcg(91);
  const int = (a: number, b: number) => a + Math.floor(r() * (b - a + 1));
  const fill = (k: number) => Array.from({ length: k }, () => int(13, 58));
  const lines: string[] = [];
  for (let i = 0; i < 8000; i++) {
    const f = int(lo, hi);
    const before = int(0, f - 70);
    const key = Array.from({ length: 5 }, () => int(3, 12));
    const ids = [1, ...fill(before), 59, 60, ...key, ...fill(f - before), 61, 59, 60, ...key.slice(0, int(1, digits))];
    lines.push(JSON.stringify({ ids }));
  }
  fs.writeFileSync(target, lines.join('\n') + '\n');
}

async function focusToy(mode: string, target: string | undefined, filler = 600): Promise<void> {
  if (!(Number.isInteger(filler) && filler >= 100)) throw new Error(`passkey-toy: FILLER must be an integer >= 100, got ${filler}`);
  if (!target) throw new Error(`usage: passkey-toy.ts ${mode} ${mode === 'focus-data' ? 'OUT.jsonl' : 'DIR'}`);
  const fillOf = (r: () => number) => (k: number) => Array.from({ length: k }, () => 13 + Math.floor(r() * 46));
  const intOf = (r: () => number) => (a: number, b: number) => a + Math.floor(r() * (b - a + 1));
  if (mode === 'focus-data') {
    const r = lcg(77);
    const int = intOf(r);
    const fill = fillOf(r);
    const lines: string[] = [];
    for (let i = 0; i < 8000; i++) {
      const f = 64 * int(3, 8) - 16;
      const before = int(0, f - 70);
      const key = Array.from({ length: 5 }, () => int(3, 12));
      lines.push(JSON.stringify({ ids: [1, ...fill(before), 59, 60, ...key, ...fill(f - before), 61, 59, 60, ...key] }));
    }
    fs.writeFileSync(target, lines.join('\n') + '\n');
    return;
  }
  const m = await loadModel(target, { threads: 1 });
  try {
    const r = lcg(mode === 'focus-eval' ? 999 : 5);
    const int = intOf(r);
    const fill = fillOf(r);
    let hits = 0;
    let whole = 0;
    for (let t = 0; t < 40; t++) {
      const key = Array.from({ length: 5 }, () => int(3, 12));
      let ids: number[];
      let focus;
      if (mode === 'focus-eval') {
        const before = int(0, filler - 100);
        ids = [1, ...fill(before), 59, 60, ...key, ...fill(filler - before), 61, 59, 60];
        focus = { localWindow: 48, chunkSize: 64, promptCap: 16, minChunkedLength: 128 };
      } else {
        const before = int(0, 57);
        ids = [1, ...fill(before), 59, 60, ...key, ...fill(57 - before), 1, ...fill(10), 61, 59, 60];
        focus = { minChunkedLength: Math.max(ids.length + 6, m.focusDefaults.localWindow) + 1 };
      }
      const rows = await m.logits(ids, { continuation: key.slice(0, 4), focus });
      let all = true;
      rows.forEach((row, i) => {
        let best = 0;
        for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
        if (best === key[i]) hits++;
        else all = false;
      });
      if (all) whole++;
    }
    process.stdout.write(JSON.stringify({ model: target, measure: mode, ...(mode === 'focus-eval' ? { filler } : {}), digitAccuracy: hits / 200, documentAccuracy: whole / 40 }) + '\n');
  } finally {
    m.dispose();
  }
}

main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`passkey-toy: ${(e as Error).message}\n`);
  process.exit(1);
});
