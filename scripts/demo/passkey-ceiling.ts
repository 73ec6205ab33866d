// How far FocusLLM's pass keys are from what the frozen base copies inside
// its own window. Only the candidate rows have trained projections: the
// chunks' own tokens and the local window, which turns the candidates into
// answer digits, run the base weights, so the base's own copying is the
// bar to compare with. This script runs the official pass-key protocol
// (lib/eval/passkey-official.ts) two ways with the same seed and trial
// count:
//   native - prompts short enough for the model's window, one plain forward
//            (--native-lengths, tokens): the base's copying with the key in
//            view;
//   focus  - FocusLLM at --multiples of the window, with the model's defaults;
//   chunk  - (with --chunk-lengths, tokens) what the base predicts inside
//            the chunk that holds the key: one plain forward over that
//            chunk of a prompt of that length, then BOS and the prompt's
//            last promptCap tokens (the dynamic prompt), laid out as DESIGN's
//            ingest cuts them with the model's FocusLLM defaults. The
//            candidate is that sequence's last token; this is the base's
//            own answer there (trials whose key is in the local window are
//            left out of the group);
// and splits each group's accuracy by the key (its digits all different, or
// one repeated) and its misses by kind:
//   order  - the key's digits in another order (32281 -> 32818);
//   one    - one digit wrong, the length right (49930 -> 49937);
//   other  - anything else.
//
//   npx tsx scripts/demo/passkey-ceiling.ts [--model DIR] [--native-lengths 200,320,480]
//       [--multiples 16,64,128 | --native-only] [--chunk-lengths 2048] [--trials 50] [--seed 5] [--threads N] [--json]
import { loadModel } from '../../lib/model';
import { makePasskeyOfficialPrompt, runPasskeyOfficial, type PasskeyOfficialTrial } from '../../lib/eval/passkey-official';
import { passkeyTrialSeed } from '../../lib/eval/passkey';
import { greedyDecode } from '../../lib/eval/decode';
import { makeRng } from '../../lib/sampling';
import type { Model } from '../../lib/model';
import { arg, ints } from './argv';
import { keyChunkSequence } from './key-chunk';

interface Group {
  mode: 'native' | 'focus' | 'chunk';
  tokens: number;
  trials: number;
  correct: number;
  /** keys whose digits are all different / with a repeated digit: [correct, trials] */
  distinct: [number, number];
  repeated: [number, number];
  misses: { order: number; one: number; other: number };
  examples: string[];
}

/** The kind of a wrong answer to `key`. */
function missKind(key: string, answer: string): 'order' | 'one' | 'other' {
  const sorted = (s: string) => [...s].sort().join('');
  if (answer.length === key.length && sorted(answer) === sorted(key)) return 'order';
  if (answer.length === key.length && [...key].filter((c, i) => answer[i] !== c).length === 1) return 'one';
  return 'other';
}

function group(mode: Group['mode'], tokens: number, recs: PasskeyOfficialTrial[]): Group {
  const g: Group = { mode, tokens, trials: 0, correct: 0, distinct: [0, 0], repeated: [0, 0], misses: { order: 0, one: 0, other: 0 }, examples: [] };
  for (const r of recs) {
    const key = r.expected;
    const side = new Set(key).size < key.length ? g.repeated : g.distinct;
    g.trials++;
    side[1]++;
    if (r.correct) {
      g.correct++;
      side[0]++;
    } else {
      g.misses[missKind(key, r.answer)]++;
      if (g.examples.length < 4) g.examples.push(`${key} -> ${JSON.stringify(r.answer)}`);
    }
  }
  return g;
}

/** The base on the chunk that holds the key, as FocusLLM's ingest lays it out (the trials with the key in memory). */
async function inChunk(model: Model, length: number, trials: number, seed: number): Promise<PasskeyOfficialTrial[]> {
  const tok = model.tokenizer!;
  const params = model.focusDefaults;
  const bos = model.config.bosTokenId;
  const out: PasskeyOfficialTrial[] = [];
  for (let trial = 0; trial < trials; trial++) {
    const p = makePasskeyOfficialPrompt(tok, length, 'tokens', makeRng(passkeyTrialSeed(seed, length, trial)), { bosId: bos });
    const input = keyChunkSequence(p.ids, tok.encode(p.answer, { addSpecial: false }).slice(1), params, bos);
    if (!input) continue;
    const r = await greedyDecode(model, input, { maxNewTokens: p.answerTokens, focus: { minChunkedLength: Math.max(input.length, params.localWindow) + 1 } });
    const answer = tok.decode(r.ids, { skipSpecial: true });
    out.push({
      length, trial, tokens: input.length, depth: p.depth, passkey: p.passkey, answer, correct: answer.trim() === p.answer,
      mode: 'native', chunks: 0, ingestSeconds: r.ingestSeconds, decodeSeconds: r.decodeSeconds, unit: 'tokens',
      expected: p.answer, answerTokens: p.answerTokens, garbageChars: p.garbageChars, prefixChars: p.prefixChars, inputTokens: input.length,
    });
  }
  return out;
}

async function main(): Promise<void> {
  const dir = arg('--model', 'models/focus-tiny');
  const nativeLengths = ints('--native-lengths', '200,320,480', 64);
  const multiples = ints('--multiples', '16,64,128', 1);
  const [trials] = ints('--trials', '50', 1);
  const [seed] = ints('--seed', '5', 0);
  const threads = process.argv.includes('--threads') ? ints('--threads', '1', 1)[0] : undefined;
  const model = await loadModel(dir, threads === undefined ? {} : { threads });
  try {
    const N0 = model.config.maxPositionEmbeddings;
    for (const l of nativeLengths) if (l > N0) throw new Error(`--native-lengths: ${l} is beyond the model's window of ${N0} tokens`);
    const groups: Group[] = [];
    const native = await runPasskeyOfficial(model, { lengths: nativeLengths, trials, seed, native: true, nativeWindow: N0 });
    for (const l of nativeLengths) groups.push(group('native', l, native.records.filter((r) => r.length === l)));
    for (const l of process.argv.includes('--chunk-lengths') ? ints('--chunk-lengths', '2048', 2) : [])
      groups.push({ ...group('chunk', l, await inChunk(model, l, trials, seed)), tokens: l });
    const lengths = process.argv.includes('--native-only') ? [] : multiples.map((m) => m * N0);
    const focus = lengths.length ? await runPasskeyOfficial(model, { lengths, trials, seed }) : null;
    for (const l of lengths) groups.push(group('focus', l, focus!.records.filter((r) => r.length === l)));
    if (process.argv.includes('--json')) {
      console.log(JSON.stringify({ model: dir, window: N0, trials, seed, focus: focus?.focus ?? null, groups }));
      return;
    }
    const pct = ([c, n]: [number, number]) => (n ? `${((100 * c) / n).toFixed(0)}% (${c}/${n})` : '-');
    console.log('mode    tokens  found       distinct digits  a repeated digit  misses: order / one digit / other');
    for (const g of groups)
      console.log(
        `${g.mode.padEnd(7)} ${String(g.tokens).padStart(6)}  ${pct([g.correct, g.trials]).padEnd(11)} ${pct(g.distinct).padEnd(16)} ` +
          `${pct(g.repeated).padEnd(17)} ${g.misses.order} / ${g.misses.one} / ${g.misses.other}   ${g.examples.join(', ')}`,
      );
  } finally {
    model.dispose();
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
