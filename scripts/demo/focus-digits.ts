// The answer of official pass-key prompts under FocusLLM, teacher-forced:
// how many prompts have each answer token ("▁", then the digits) as the
// argmax. A finer measure than whole pass keys while the candidates learn
// (README, "The real base: not yet").
//
//   npx tsx scripts/demo/focus-digits.ts DIR LEN [PROMPTS=20] [LOCAL=192]
//
// FocusLLM with chunks of 256 and a prompt cap of 64 (the demo's), the local
// window LOCAL; prompts of LEN tokens drawn with seed 17.
import { makePasskeyOfficialPrompt } from '../../lib/eval/passkey-official';
import { loadModel } from '../../lib/model';
import { makeRng } from '../../lib/sampling';

async function main(argv: string[]): Promise<void> {
  const [dir, lenS, nS, localS] = argv;
  const len = Number(lenS);
  const n = Number(nS ?? 20);
  const local = Number(localS ?? 192);
  if (!dir || !(Number.isInteger(len) && len > 0) || !(Number.isInteger(n) && n > 0) || !(Number.isInteger(local) && local > 0))
    throw new Error('usage: focus-digits.ts DIR LEN [PROMPTS=20] [LOCAL=192]');
  const m = await loadModel(dir, { threads: 1 });
  try {
    const tok = m.tokenizer;
    if (!tok) throw new Error(`${dir}: no tokenizer`);
    const r = makeRng(17);
    const hits: number[] = [];
    const seen: number[] = [];
    for (let t = 0; t < n; t++) {
      const p = makePasskeyOfficialPrompt(tok, len, 'tokens', r);
      const ans = tok.encode(p.answer, { addSpecial: false });
      const rows = await m.logits(p.ids, {
        continuation: ans.slice(0, -1),
        focus: { localWindow: local, chunkSize: 256, promptCap: 64, minChunkedLength: Math.min(512, local + 1) },
      });
      rows.forEach((row, i) => {
        let best = 0;
        for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
        seen[i] = (seen[i] ?? 0) + 1;
        hits[i] = (hits[i] ?? 0) + (best === ans[i] ? 1 : 0);
      });
    }
    const byToken = seen.map((s, i) => `${hits[i]}/${s}`);
    process.stdout.write(JSON.stringify({ model: dir, length: len, localWindow: local, byAnswerToken: byToken }) + '\n');
  } finally {
    m.dispose();
  }
}

main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`focus-digits: ${(e as Error).message}\n`);
  process.exit(1);
});
