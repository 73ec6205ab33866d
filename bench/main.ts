// npm run bench -- [--json] [--suite kernels,engine,focus,tokenizer,train] [--backend cpu|cuda]
//                  [--quick | --smoke] [--threads 1,2] [--lengths 4k,16k,64k]
//
// --smoke runs every CPU suite on tiny shapes (seconds each; CI runs it): it
// checks that the bench works, its figures mean nothing. Any failure (a bench
// program missing or failing, a child process failing, wrong results) is
// listed at the end and the run exits 1; a peer that is not installed is only
// a note.
//
// Kernel and engine microbenchmarks that need no model (random weights are
// generated and cached). A readable table per suite on a terminal; with
// --json, one JSON object per measurement (machine, backend, shapes, median
// time, derived throughput, and ratios to the peer or roofline measured in the
// same run).
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

import { parseFlags, parseNumber, usage, UsageError } from '../lib/cli/args';
import { benchEngine, type EngineShape } from './engine';
import { benchFocus } from './focus';
import { buildBenchTargets, runBenchProgram } from './kernels';
import { Reporter } from './report';
import { benchTrain } from './train';

const SPEC = {
  json: { type: 'bool' as const, help: 'JSON lines instead of tables' },
  suite: { type: 'list' as const, help: 'suites to run: kernels, engine, focus, tokenizer, train (cpu); kernels, e2e (cuda)' },
  backend: { type: 'string' as const, help: 'cpu or cuda', default: 'cpu' },
  quick: { type: 'bool' as const, help: 'fewer repeats and lengths' },
  smoke: { type: 'bool' as const, help: 'tiny shapes of every CPU suite, seconds each (CI: does the bench work?)' },
  threads: { type: 'list' as const, help: 'thread counts for the engine suite', default: undefined },
  lengths: { type: 'list' as const, help: 'context lengths of the focus suite', default: undefined },
  'cache-dir': { type: 'string' as const, help: 'where random models are generated', default: path.join(os.tmpdir(), 'focusllm-bench') },
};

/** --smoke's engine model: small enough that generating it and both dtypes' runs take about a second. */
const SHAPE_SMOKE: EngineShape = { vocab: 512, hidden: 64, intermediate: 160, layers: 2, heads: 4, kvHeads: 2 };

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage('bench', 'kernel, engine, FocusLLM, tokenizer and training benchmarks (see README, Performance)', SPEC) + '\n');
    return 0;
  }
  let f;
  try {
    f = parseFlags(argv, SPEC);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`bench: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const rep = new Reporter(Boolean(f.json));
  const repoRoot = path.resolve(__dirname, '..', path.basename(path.dirname(__dirname)) === 'dist' ? '..' : '.');
  const backend = String(f.backend);
  const smoke = Boolean(f.smoke);
  const quick = Boolean(f.quick) || smoke;
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  const cacheDir = String(f['cache-dir']);
  const suites = (f.suite as string[] | undefined) ?? (backend === 'cuda' ? ['kernels', 'e2e'] : ['kernels', 'engine', 'focus', 'tokenizer', 'train']);
  if (backend !== 'cpu' && backend !== 'cuda') {
    process.stderr.write(`bench: --backend must be cpu or cuda, got ${backend}\n`);
    return 2;
  }
  const known = backend === 'cuda' ? ['kernels', 'e2e'] : ['kernels', 'engine', 'focus', 'tokenizer', 'train'];
  const unknown = suites.filter((x) => !known.includes(x));
  if (unknown.length) {
    process.stderr.write(`bench: unknown suite ${unknown.join(', ')} for --backend ${backend} (suites: ${known.join(', ')})\n`);
    return 2;
  }
  const log = (s: string) => process.stderr.write(s + '\n');
  const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' });
  rep.add({
    bench: 'run',
    date: new Date().toISOString(),
    command: ['npm run bench --', ...argv].join(' '),
    commit: commit.status === 0 ? commit.stdout.trim() : null,
    backend,
  });

  if (backend === 'cuda') {
    const buildDir = buildBenchTargets(repoRoot, ['bench_roofline', 'bench_cuda_gemm', 'bench_cuda_attention', 'bench_cuda_e2e'], log);
    if (suites.includes('kernels')) for (const b of ['roofline', 'cuda_gemm', 'cuda_attention']) runBenchProgram(rep, buildDir, b);
    if (suites.includes('e2e')) runBenchProgram(rep, buildDir, 'cuda_e2e', [], { FOCUSLLM_BENCH_DIR: path.join(cacheDir, 'cuda-e2e') });
    return rep.finish();
  }
  if (suites.includes('kernels')) {
    const buildDir = buildBenchTargets(repoRoot, ['bench_cpu_matmul'], log);
    runBenchProgram(rep, buildDir, 'cpu_matmul', smoke ? ['--threads', '1', '--m', '1'] : quick ? ['--quick'] : []);
    rep.table('CPU roofline (measured in this run)', 'cpu_fma_peak', [['isa', 'isa'], ['threads', 'threads'], ['gflops', 'FMA peak GFLOP/s']]);
    rep.table('', 'cpu_read_bw', [['threads', 'threads'], ['gbps', 'read bandwidth GB/s']]);
    rep.table('CPU matmul (m = 1: decode GEMV, bandwidth-bound, weights from cache and from DRAM; m = 512: prefill GEMM, compute-bound)', 'cpu_matmul', [
      ['isa', 'isa'], ['threads', 'threads'], ['dtype', 'dtype'], ['what', 'shape'], ['m', 'm'], ['n', 'n'], ['k', 'k'], ['weights', 'weights from'],
      ['median_ms', 'ms'], ['gflops', 'GFLOP/s'], ['frac_peak', 'of FMA peak'], ['weight_gbps', 'weights GB/s'],
      ['frac_bw', 'of read bw'],
    ]);
  }
  if (suites.includes('engine')) {
    const threads = ((f.threads as string[] | undefined) ?? (smoke ? ['1'] : ['1', String(Math.min(2, cores))])).map(Number);
    const tiny = smoke
      ? { shape: SHAPE_SMOKE, label: 'smoke LLaMA (64x2, GQA 4/2, vocab 512)', promptTokens: 64, decodeTokens: 4, repeat: 1 }
      : {};
    await benchEngine(rep, { repoRoot, cacheDir, threads: [...new Set(threads)], quick, dtypes: ['F16', 'BF16', 'F32'], ...tiny });
  }
  if (suites.includes('focus')) {
    const lengths = ((f.lengths as string[] | undefined) ?? (smoke ? ['4k', '8k'] : quick ? ['4k', '16k'] : ['4k', '16k', '64k'])).map(parseNumber);
    await benchFocus(rep, { cacheDir, lengths, threads: cores, steps: quick ? 2 : 4, backend: 'cpu' });
  }
  if (suites.includes('train')) await benchTrain(rep, { repoRoot, cacheDir, threads: cores, quick });
  if (suites.includes('tokenizer')) {
    try {
      // loaded only when asked for (it loads @huggingface/tokenizers)
      const mod = (await import('./tokenizer.js')) as Partial<typeof import('./tokenizer')>;
      if (!mod.benchTokenizer) throw new Error('bench/tokenizer exports no benchTokenizer');
      await mod.benchTokenizer(rep, quick, smoke ? 30_000 : undefined);
    } catch (e) {
      rep.fail(`tokenizer bench: ${(e as Error).message}`);
    }
  }
  return rep.finish();
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
