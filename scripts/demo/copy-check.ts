// Does a model copy from its own window, and how? Two measures, each the mean
// next-token NLL of first occurrences against that of repeats, from the
// logits of native passes:
//
//   list   a list of numbers and words, then the same list again (one text);
//   spans  40 sequences of 128 tokens of random word pieces in which spans of
//          3..12 tokens come back from random earlier places, so that the
//          distance to the earlier occurrence varies from span to span.
//
// A model with an induction head (find the earlier occurrence of the
// current token, predict what followed it) predicts repeats far better than
// first occurrences on both. A model that copies only at distances it was
// trained on (a head attending a fixed offset back: what a training set of
// "A A" with |A| fixed teaches) does so on neither; one that does not copy,
// no better on either.
//
//   passkey (with --passkey LEN) 40 official pass-key prompts of LEN tokens
//          (native: the whole prompt in the window), the answer fed after
//          the prompt: its mean NLL per token, the fraction of its tokens
//          that are the argmax (teacher-forced), and the fraction of
//          prompts whose every answer token is. Chance for a digit is ln 10.
//
//   lookup (with --lookup N) 30 tables of N lines "The pass key of the W is
//          K." (distinct words W), then BOS and "The pass key of the W is"
//          for one of them, the answer teacher-forced: the fraction of its
//          digits after the first that are the argmax, and of first digits.
//
//   triple (with --triple LO-HI) 40 sequences: BOS, LO..HI word pieces, the
//          same twice more; what the fixed-distance shortcut passes only for
//          the lengths it was trained on.
//
// The word pieces are those of a fixed list of common words, or --pool FILE
// (a JSON array of token ids: the pool a model was trained on).
//
//   npx tsx scripts/demo/copy-check.ts [--pool FILE] [--triple LO-HI] [--passkey LEN] [--lookup N] DIR [DIR...]
import fs from 'node:fs';

import { loadModel, type Model } from '../../lib/model';
import { makePasskeyOfficialPrompt } from '../../lib/eval/passkey-official';
import { makeRng } from '../../lib/sampling';

const WORDS =
  'the people government states congress country public year great nation war power law peace time world upon made work united ' +
  'whale ship captain sea boat man old men white head water deck crew long little good first last must said would could ' +
  'again every still never always through between against under before after during without within toward across behind';

/** One row of logits: the first argmax and the NLL of `target`. */
function rowScore(row: ArrayLike<number>, target: number): { argmax: number; nll: number } {
  let mx = -Infinity;
  let argmax = 0;
  for (let j = 0; j < row.length; j++) if (row[j] > mx) ((mx = row[j]), (argmax = j));
  let s = 0;
  for (let j = 0; j < row.length; j++) s += Math.exp(row[j] - mx);
  return { argmax, nll: -(row[target] - mx - Math.log(s)) };
}

function nlls(rows: Float32Array[] | ArrayLike<number>[], ids: number[]): number[] {
  return rows.map((row, i) => rowScore(row, ids[i + 2]).nll);
}

async function score(m: Model, ids: number[]): Promise<number[]> {
  const rows = await m.logits(ids.slice(0, 2), { continuation: ids.slice(2, -1), focus: { minChunkedLength: Math.max(ids.length, m.focusDefaults.localWindow) + 1 } });
  return nlls(rows, ids);
}

const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;

type CheckOptions = { pool?: number[]; triple?: [number, number]; passkey?: number; lookup?: number };

const LOOKUP_WORDS = 'whale ship captain sea boat harbor anchor lantern market tower canal river forest castle garden bridge island valley mountain desert'.split(' ');

async function lookupCheck(m: Model, n: number) {
  const tok = m.tokenizer!;
  const r = makeRng(9);
  let hits = 0;
  let total = 0;
  let first = 0;
  for (let t = 0; t < 30; t++) {
    const ws = [...LOOKUP_WORDS].sort(() => r() - 0.5).slice(0, n);
    const keys = ws.map(() => 1 + Math.floor(r() * 49999));
    const table = ws.map((w, i) => `The pass key of the ${w} is ${keys[i]}.\n`).join('');
    const q = Math.floor(r() * n);
    const bos = m.config.bosTokenId;
    const ids = [bos, ...tok.encode(table, { addSpecial: false }), bos, ...tok.encode(`The pass key of the ${ws[q]} is`, { addSpecial: false })];
    const ans = tok.encode(`${keys[q]}`, { addSpecial: false });
    const rows = await m.logits(ids, { continuation: ans.slice(0, -1), focus: { minChunkedLength: Math.max(ids.length + 8, m.focusDefaults.localWindow) + 1 } });
    rows.forEach((row, i) => {
      const b = rowScore(row, ans[i]).argmax;
      if (i > 0 && b === ans[i]) hits++;
      if (i > 0) total++;
      if (i === 1 && b === ans[i]) first++;
    });
  }
  return { entries: n, digitAccuracy: hits / total, firstDigitAccuracy: first / 30 };
}

async function passkeyCheck(m: Model, len: number) {
  const tok = m.tokenizer!;
  const r = makeRng(5);
  let nll = 0;
  let hits = 0;
  let tokens = 0;
  let whole = 0;
  for (let k = 0; k < 40; k++) {
    const p = makePasskeyOfficialPrompt(tok, len, 'tokens', r);
    const ans = tok.encode(p.answer, { addSpecial: false });
    const rows = await m.logits(p.ids, { continuation: ans.slice(0, -1), focus: { minChunkedLength: Math.max(p.ids.length + ans.length, m.focusDefaults.localWindow) + 1 } });
    let all = true;
    rows.forEach((row, i) => {
      const { argmax, nll: n } = rowScore(row, ans[i]);
      nll += n;
      if (argmax === ans[i]) hits++;
      else all = false;
      tokens++;
    });
    if (all) whole++;
  }
  return { length: len, answerNll: nll / tokens, tokenAccuracy: hits / tokens, promptAccuracy: whole / 40 };
}

export async function copyCheck(dir: string, opts: CheckOptions = {}) {
  const m = await loadModel(dir, { threads: 1 });
  try {
    const tok = m.tokenizer;
    if (!tok) throw new Error(`${dir}: no tokenizer.json`);
    const bos = m.config.bosTokenId;
    const list = '4821 whale 9913 anchor 77 ship 302 harbor 5120 lantern 88 market 6041 tower 13 canal';
    const ids = [bos, ...tok.encode(`List: ${list}\nAgain: ${list}`, { addSpecial: false })];
    const nll = await score(m, ids);
    const half = Math.floor(nll.length / 2);
    // the second half from after "Again:" (3 tokens in)
    const listResult = { firstHalfNll: mean(nll.slice(0, half)), secondHalfNll: mean(nll.slice(half + 3)) };

    const pool = opts.pool ?? [...new Set(tok.encode(WORDS, { addSpecial: false }).filter((x) => x >= 259))];
    const r = makeRng(5);
    const int = (a: number, b: number) => a + Math.floor(r() * (b - a + 1));
    const first: number[] = [];
    const repeat: number[] = [];
    for (let k = 0; k < 40; k++) {
      const x = [bos];
      const isRepeat = [false];
      while (x.length < 128) {
        if (x.length > 12 && r() < 0.5) {
          const n = int(3, 12);
          const from = int(1, x.length - n);
          x.push(...x.slice(from, from + n));
          // the span's first token cannot be told from a fresh one
          isRepeat.push(false, ...Array<boolean>(n - 1).fill(true));
        } else {
          const n = int(2, 10);
          for (let i = 0; i < n; i++) x.push(pool[Math.floor(r() * pool.length)]);
          isRepeat.push(...Array<boolean>(n).fill(false));
        }
      }
      const s = await score(m, x.slice(0, 128));
      s.forEach((v, i) => (isRepeat[i + 2] ? repeat : first).push(v));
    }
    const spans = { firstNll: mean(first), repeatNll: mean(repeat), repeats: repeat.length, firsts: first.length };
    const passkey = opts.passkey ? await passkeyCheck(m, opts.passkey) : undefined;
    const lookup = opts.lookup ? await lookupCheck(m, opts.lookup) : undefined;
    if (!opts.triple) return { tokens: ids.length, list: listResult, spans, passkey, lookup };
    const [lo, hi] = opts.triple;
    const f3: number[] = [];
    const r3: number[] = [];
    for (let k = 0; k < 40; k++) {
      const n = int(lo, hi);
      const a = Array.from({ length: n }, () => pool[Math.floor(r() * pool.length)]);
      const s = await score(m, [bos, ...a, ...a, ...a]);
      // s[i] predicts token i + 2: the first copy starts at token n + 1
      s.forEach((v, i) => (i + 2 <= n ? f3 : i + 2 > n + 1 ? r3 : []).push(v));
    }
    return { tokens: ids.length, list: listResult, spans, passkey, lookup, triple: { lengths: `${lo}-${hi}`, firstNll: mean(f3), repeatNll: mean(r3) } };
  } finally {
    m.dispose();
  }
}

if (require.main === module)
  (async () => {
    const argv = process.argv.slice(2);
    const opts: CheckOptions = {};
    const dirs: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      if (argv[i] === '--pool') opts.pool = JSON.parse(fs.readFileSync(argv[++i], 'utf8')) as number[];
      else if (argv[i] === '--triple') {
        const m = /^(\d+)-(\d+)$/.exec(argv[++i] ?? '');
        if (!m || Number(m[1]) < 1 || Number(m[2]) < Number(m[1])) throw new Error('--triple LO-HI, e.g. 16-24');
        opts.triple = [Number(m[1]), Number(m[2])];
      } else if (argv[i] === '--passkey') {
        opts.passkey = Number(argv[++i]);
        if (!Number.isInteger(opts.passkey) || opts.passkey < 64) throw new Error('--passkey LEN: a prompt length in tokens, at least 64');
      } else if (argv[i] === '--lookup') {
        opts.lookup = Number(argv[++i]);
        if (!Number.isInteger(opts.lookup) || opts.lookup < 1 || opts.lookup > LOOKUP_WORDS.length) throw new Error(`--lookup N: table lines, 1..${LOOKUP_WORDS.length}`);
      } else dirs.push(argv[i]);
    }
    if (!dirs.length) throw new Error('usage: copy-check.ts [--pool FILE] [--triple LO-HI] [--passkey LEN] [--lookup N] DIR [DIR...]');
    for (const d of dirs) process.stdout.write(JSON.stringify({ model: d, ...(await copyCheck(d, opts)) }) + '\n');
  })().catch((e) => {
    process.stderr.write(`copy-check: ${(e as Error).message}\n`);
    process.exit(1);
  });
