// What the candidates add to FocusLLM's perplexity: the same scored tokens
// three ways, on windows of the held-out text (scripts/demo/corpus.ts):
//   focus  - FocusLLM as the official protocol runs it: a window of L tokens
//            (BOS + text), the first L - 128 ingested (chunks + local window),
//            the last 128 teacher-forced (runPpl, focus mode);
//   local  - the same tokens with no memory at all: BOS + the window's last
//            localWindow + 128 tokens, one plain forward (native mode), so each
//            scored token sees what FocusLLM's local sequence holds, without
//            the candidates in front;
//   native - BOS + the window's last 511 tokens, plain forward (the model's
//            whole window).
// If focus is above local, the candidates make the next token harder to
// predict than no memory at all does.
//
//   npx tsx scripts/demo/ppl-split.ts [--model DIR] [--multiples 4,16,64]
//       [--windows 6] [--threads N] [--json]
//
// Windows: the first --windows full windows of L = multiple * N0 tokens of
// each held-out document (consecutive, not overlapping). Prints the
// perplexity of each way over all scored tokens, and by quarter of the 128
// scored positions (the local sequence grows by one token per position).
import { loadModel } from '../../lib/model';
import { runPpl } from '../../lib/eval/ppl';
import { arg } from './argv';
import { heldoutSources } from './corpus';

const R = 128;

interface Row {
  multiple: number;
  length: number;
  scored: number;
  ppl: Record<string, number>;
  quarters: Record<string, number[]>;
}

async function main(): Promise<void> {
  const dir = arg('--model', 'models/focus-tiny');
  const multiples = arg('--multiples', '4,16,64').split(',').map(Number);
  const nWindows = Number(arg('--windows', '6'));
  const threads = process.argv.includes('--threads') ? Number(arg('--threads', '1')) : undefined;
  if (!multiples.every((m) => Number.isInteger(m) && m >= 1)) throw new Error(`--multiples: positive integers, got ${arg('--multiples', '')}`);
  if (!(Number.isInteger(nWindows) && nWindows >= 1)) throw new Error(`--windows: a positive integer, got ${arg('--windows', '')}`);
  const model = await loadModel(dir, threads === undefined ? {} : { threads });
  try {
    const tok = model.tokenizer;
    if (!tok) throw new Error(`${dir}: no tokenizer`);
    const N0 = model.config.maxPositionEmbeddings;
    const local = model.focusDefaults.localWindow;
    const plain = { minChunkedLength: Number.MAX_SAFE_INTEGER };
    const docs = heldoutSources().map((d) => tok.encode(d.text, { addSpecial: false }));
    const rows: Row[] = [];
    for (const m of multiples) {
      const L = m * N0;
      const nll: Record<string, number[]> = { focus: [], local: [], native: [] };
      for (const ids of docs) {
        for (let w = 0; w < nWindows && (w + 1) * (L - 1) <= ids.length; w++) {
          const x = [model.config.bosTokenId, ...ids.slice(w * (L - 1), (w + 1) * (L - 1))];
          nll.focus.push(...(await runPpl(model, x, { scoreLast: R, keepNlls: true })).nlls!);
          nll.local.push(...(await runPpl(model, [x[0], ...x.slice(L - local - R)], { scoreLast: R, keepNlls: true, focus: plain })).nlls!);
          nll.native.push(...(await runPpl(model, [x[0], ...x.slice(L - (N0 - 1))], { scoreLast: R, keepNlls: true, focus: plain })).nlls!);
        }
      }
      const ppl = (v: number[]) => Math.exp(v.reduce((a, b) => a + b, 0) / v.length);
      const row: Row = { multiple: m, length: L, scored: nll.focus.length, ppl: {}, quarters: {} };
      for (const k of Object.keys(nll)) {
        row.ppl[k] = ppl(nll[k]);
        row.quarters[k] = [0, 1, 2, 3].map((q) => ppl(nll[k].filter((_, i) => Math.floor((i % R) / (R / 4)) === q)));
      }
      rows.push(row);
      if (!process.argv.includes('--json')) {
        const f = (v: number) => v.toFixed(1);
        console.log(`${m}x (${L} tokens), ${row.scored} scored tokens:`);
        for (const k of Object.keys(nll)) console.log(`  ${k.padEnd(6)} ${f(row.ppl[k]).padStart(8)}   by quarter ${row.quarters[k].map(f).join(' / ')}`);
      }
    }
    if (process.argv.includes('--json')) console.log(JSON.stringify({ model: dir, localWindow: local, rows }));
  } finally {
    model.dispose();
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
