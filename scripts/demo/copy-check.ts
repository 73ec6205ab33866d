// Does a model copy from its own window? A list of numbers and words, then
// the same list again: a model that copies (an induction head) predicts the
// second half far better than the first; a model that does not, no better.
// The mean next-token NLL of each half, from the logits of one native pass.
//
//   npx tsx scripts/demo/copy-check.ts DIR [DIR...]
import { loadModel } from '../../lib/model';

export async function copyCheck(dir: string): Promise<{ tokens: number; firstHalfNll: number; secondHalfNll: number }> {
  const m = await loadModel(dir, { threads: 1 });
  try {
    const tok = m.tokenizer;
    if (!tok) throw new Error(`${dir}: no tokenizer.json`);
    const list = '4821 whale 9913 anchor 77 ship 302 harbor 5120 lantern 88 market 6041 tower 13 canal';
    const ids = [m.config.bosTokenId, ...tok.encode(`List: ${list}\nAgain: ${list}`, { addSpecial: false })];
    const rows = await m.logits(ids.slice(0, 2), { continuation: ids.slice(2, -1), focus: { minChunkedLength: Math.max(ids.length, m.focusDefaults.localWindow) + 1 } });
    const nll = rows.map((row, i) => {
      let mx = -Infinity;
      for (const v of row) mx = Math.max(mx, v);
      let s = 0;
      for (const v of row) s += Math.exp(v - mx);
      return -(row[ids[i + 2]] - mx - Math.log(s));
    });
    const half = Math.floor(nll.length / 2);
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    // the second half from after "Again:" (3 tokens in)
    return { tokens: ids.length, firstHalfNll: mean(nll.slice(0, half)), secondHalfNll: mean(nll.slice(half + 3)) };
  } finally {
    m.dispose();
  }
}

if (require.main === module)
  (async () => {
    for (const d of process.argv.slice(2)) process.stdout.write(JSON.stringify({ model: d, ...(await copyCheck(d)) }) + '\n');
  })().catch((e) => {
    process.stderr.write(`copy-check: ${(e as Error).message}\n`);
    process.exit(1);
  });
