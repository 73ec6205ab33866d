// The README's tables and pictures for the shipped model: pass-key accuracy
// (the official protocol) and held-out perplexity (the official protocol) at
// multiples of the window N0, for the base model natively, zero-shot FocusLLM
// (candidates = the base projections), and the FocusLLM-trained variants;
// ingest and per-token step times from the same runs.
//
//   npx tsx scripts/demo/evaluate.ts --variant native=DIR --variant zero-shot=DIR \
//       --variant trained=models/focus-tiny [--variant continuation=DIR ...] \
//       [--parts passkey,ppl] [--trials 10] [--out results.json] [--svg-dir docs]
//
// A variant named "native" runs the official pass-key prompts natively, cut
// from the left to the model's window (what falls outside is lost), and the
// native sliding-window perplexity; every other variant runs FocusLLM with the
// checkpoint's defaults. Results are merged into --out (so parts can run
// separately), and markdown tables are printed.
import fs from 'node:fs';
import path from 'node:path';

import { loadModel } from '../../lib/model';
import { runPasskeyOfficial } from '../../lib/eval/passkey-official';
import { runPplOfficial } from '../../lib/eval/ppl-official';
import { lineChartSvg } from '../../lib/train/svg';
import { heldoutSources } from './corpus';

const PASSKEY_MULTIPLES = [1, 4, 16, 64, 128];
const PPL_MULTIPLES = [1, 4, 16, 64];

interface PasskeyRow {
  variant: string;
  multiple: number;
  length: number;
  accuracy: number;
  trials: number;
  meanTokens: number;
  meanIngestSeconds: number;
  /** mean seconds per generated answer token */
  stepSeconds: number;
}
interface PplRow {
  variant: string;
  mode: 'focus' | 'native';
  multiple: number;
  maxLength: number;
  ppl: number;
  scored: number;
  windows: number;
  seconds: number;
}
interface Results {
  date: string;
  commit: string;
  machine: string;
  window: number;
  passkey: PasskeyRow[];
  ppl: PplRow[];
}

function args(argv: string[]) {
  const variants: { name: string; dir: string }[] = [];
  const o = { parts: ['passkey', 'ppl'], trials: 10, out: 'bench/results/focus-tiny-eval.json', svgDir: '', threads: 0, pplWindows: 4, multiples: '' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[++i];
    if (v === undefined) throw new Error(`evaluate: ${a} needs a value`);
    if (a === '--variant') {
      const m = /^([\w-]+)=(.+)$/.exec(v);
      if (!m) throw new Error(`evaluate: --variant NAME=DIR, got ${v}`);
      variants.push({ name: m[1], dir: m[2] });
    } else if (a === '--parts') o.parts = v.split(',');
    else if (a === '--trials') o.trials = Number(v);
    else if (a === '--out') o.out = v;
    else if (a === '--svg-dir') o.svgDir = v;
    else if (a === '--threads') o.threads = Number(v);
    else if (a === '--ppl-windows') o.pplWindows = Number(v);
    else if (a === '--multiples') o.multiples = v;
    else throw new Error(`evaluate: unknown argument ${a}`);
  }
  if (!variants.length) throw new Error('evaluate: give at least one --variant NAME=DIR');
  return { variants, ...o };
}

function readResults(file: string, window: number): Results {
  const blank: Results = { date: '', commit: '', machine: '', window, passkey: [], ppl: [] };
  try {
    return { ...blank, ...(JSON.parse(fs.readFileSync(file, 'utf8')) as Results) };
  } catch {
    return blank;
  }
}

const log = (s: string) => process.stderr.write(s + '\n');

async function main(argv: string[]): Promise<void> {
  const o = args(argv);
  const first = await loadModel(o.variants[0].dir, { threads: o.threads || undefined });
  const N0 = first.config.maxPositionEmbeddings;
  first.dispose();
  const res = readResults(o.out, N0);
  res.window = N0;
  res.date = new Date().toISOString().slice(0, 10);
  try {
    res.commit = require('node:child_process').execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim();
  } catch {
    res.commit = 'unknown';
  }
  const os = require('node:os') as typeof import('node:os');
  res.machine = `${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism()} threads used: ${o.threads || os.availableParallelism()}`;
  const pkMultiples = o.multiples ? o.multiples.split(',').map(Number) : PASSKEY_MULTIPLES;

  for (const v of o.variants) {
    const model = await loadModel(v.dir, { threads: o.threads || undefined });
    const native = v.name === 'native';
    try {
      if (o.parts.includes('passkey')) {
        for (const m of pkMultiples) {
          const r = await runPasskeyOfficial(model, {
            lengths: [m * N0],
            trials: o.trials,
            seed: 42,
            native,
            nativeWindow: native ? N0 : undefined,
          });
          const L = r.lengths[0];
          const steps = r.records.reduce((s, t) => s + t.answerTokens, 0);
          const row: PasskeyRow = {
            variant: v.name,
            multiple: m,
            length: m * N0,
            accuracy: L.accuracy,
            trials: L.trials,
            meanTokens: L.meanTokens,
            meanIngestSeconds: L.meanIngestSeconds,
            stepSeconds: r.records.reduce((s, t) => s + t.decodeSeconds, 0) / steps,
          };
          res.passkey = res.passkey.filter((p) => !(p.variant === v.name && p.multiple === m));
          res.passkey.push(row);
          log(`passkey ${v.name} ${m}x (${m * N0} tokens): ${(L.accuracy * 100).toFixed(0)}% of ${L.trials}, ingest ${L.meanIngestSeconds.toFixed(2)} s`);
          fs.writeFileSync(o.out, JSON.stringify(res, null, 1) + '\n');
        }
      }
      if (o.parts.includes('ppl')) {
        const tok = model.tokenizer;
        if (!tok) throw new Error(`${v.dir}: no tokenizer`);
        const docs = heldoutSources().map((d) => ({ name: d.name, ids: tok.encode(d.text, { addSpecial: false }) }));
        for (const m of PPL_MULTIPLES) {
          const L = m * N0;
          // Every window full: each document cut to the windows it fills; the
          // last --ppl-windows of each (the official script keeps the last N).
          let nll = 0;
          let scored = 0;
          let windows = 0;
          let seconds = 0;
          let ppl = 0;
          const mode = native ? 'native' : 'focus';
          const perDoc: number[] = [];
          for (const d of docs) {
            const full = Math.floor(d.ids.length / (L - 1)) * (L - 1);
            if (full === 0) continue;
            const r = await runPplOfficial(model, [{ name: d.name, ids: d.ids.slice(0, full) }], {
              maxLength: L,
              stride: L - 1,
              maxWindows: o.pplWindows,
              mode,
            });
            const s = r.results[0];
            perDoc.push(s.meanNll);
            scored += s.scored;
            windows += r.windows.length;
            seconds += s.seconds;
          }
          nll = perDoc.reduce((a, b) => a + b, 0) / perDoc.length;
          ppl = Math.exp(nll);
          res.ppl = res.ppl.filter((p) => !(p.variant === v.name && p.multiple === m));
          res.ppl.push({ variant: v.name, mode, multiple: m, maxLength: L, ppl, scored, windows, seconds });
          log(`ppl ${v.name} ${m}x (${L}): ${ppl.toFixed(2)} over ${scored} tokens, ${windows} windows, ${seconds.toFixed(1)} s`);
          fs.writeFileSync(o.out, JSON.stringify(res, null, 1) + '\n');
        }
      }
    } finally {
      model.dispose();
    }
  }
  fs.writeFileSync(o.out, JSON.stringify(res, null, 1) + '\n');
  process.stdout.write(tables(res) + '\n');
  if (o.svgDir) {
    fs.mkdirSync(o.svgDir, { recursive: true });
    const names = [...new Set(res.passkey.map((p) => p.variant))];
    const xTick = (x: number) => `${x / N0}x`;
    fs.writeFileSync(
      path.join(o.svgDir, 'focus-tiny-passkey.svg'),
      lineChartSvg(
        names.map((n) => ({ name: n, points: res.passkey.filter((p) => p.variant === n).sort((a, b) => a.length - b.length).map((p) => [p.length, 100 * p.accuracy] as const) })),
        { title: `pass-key accuracy (official protocol), window N0 = ${N0}`, xLabel: 'prompt length (multiples of N0)', yLabel: 'accuracy %', logX: true, yMin: 0, yMax: 100, xTick },
      ),
    );
    const pn = [...new Set(res.ppl.map((p) => p.variant))];
    fs.writeFileSync(
      path.join(o.svgDir, 'focus-tiny-ppl.svg'),
      lineChartSvg(
        pn.map((n) => ({ name: n, points: res.ppl.filter((p) => p.variant === n).sort((a, b) => a.maxLength - b.maxLength).map((p) => [p.maxLength, p.ppl] as const) })),
        { title: 'held-out perplexity (official protocol)', xLabel: 'window max_length (multiples of N0)', yLabel: 'perplexity', logX: true, xTick },
      ),
    );
  }
}

export function tables(r: Results): string {
  const N0 = r.window;
  const pk = [...new Set(r.passkey.map((p) => p.multiple))].sort((a, b) => a - b);
  const names = [...new Set(r.passkey.map((p) => p.variant))];
  const out: string[] = [];
  if (names.length) {
    out.push(`| pass key (official) | ${pk.map((m) => `${m}x (${m * N0})`).join(' | ')} |`);
    out.push(`| --- | ${pk.map(() => '---').join(' | ')} |`);
    for (const n of names)
      out.push(`| ${n} | ${pk.map((m) => {
        const p = r.passkey.find((q) => q.variant === n && q.multiple === m);
        return p ? `${Math.round(p.accuracy * 100)}% (${p.trials})` : '';
      }).join(' | ')} |`);
    out.push('');
    out.push(`| time per trial | ${pk.map((m) => `${m}x`).join(' | ')} |`);
    out.push(`| --- | ${pk.map(() => '---').join(' | ')} |`);
    for (const n of names)
      out.push(`| ${n}: ingest s / step ms | ${pk.map((m) => {
        const p = r.passkey.find((q) => q.variant === n && q.multiple === m);
        return p ? `${p.meanIngestSeconds.toFixed(2)} / ${(p.stepSeconds * 1000).toFixed(0)}` : '';
      }).join(' | ')} |`);
  }
  const pm = [...new Set(r.ppl.map((p) => p.multiple))].sort((a, b) => a - b);
  const pn = [...new Set(r.ppl.map((p) => p.variant))];
  if (pn.length) {
    out.push('');
    out.push(`| perplexity (official) | ${pm.map((m) => `${m}x (${m * N0})`).join(' | ')} |`);
    out.push(`| --- | ${pm.map(() => '---').join(' | ')} |`);
    for (const n of pn)
      out.push(`| ${n} | ${pm.map((m) => {
        const p = r.ppl.find((q) => q.variant === n && q.multiple === m);
        return p ? p.ppl.toFixed(2) : '';
      }).join(' | ')} |`);
  }
  return out.join('\n');
}

if (require.main === module)
  main(process.argv.slice(2)).catch((e) => {
    process.stderr.write(`evaluate: ${(e as Error).message}\n`);
    process.exit(1);
  });
