// Kernel microbenchmarks: the standalone C++ programs (bench/cpp), built on
// demand into the addon's build folder and run; their JSON lines are passed on.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { BenchRecord, Reporter } from './report';

export function buildBenchTargets(repoRoot: string, targets: string[], log: (s: string) => void): string {
  const buildDir = fs.existsSync(path.join(repoRoot, 'build', 'CMakeCache.txt'))
    ? path.join(repoRoot, 'build')
    : path.join(repoRoot, 'build-tests');
  const jobs = String(os.availableParallelism?.() ?? os.cpus().length);
  const run = (args: string[]) => {
    const r = spawnSync('cmake', args, { cwd: repoRoot, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cmake ${args.join(' ')} failed:\n${(r.stdout + r.stderr).slice(-4000)}`);
  };
  log(`building ${targets.join(', ')} in ${path.relative(repoRoot, buildDir)} ...`);
  const cfg = ['-S', repoRoot, '-B', buildDir, '-DFOCUSLLM_BUILD_TESTS=ON'];
  if (!fs.existsSync(path.join(buildDir, 'CMakeCache.txt'))) cfg.push('-DCMAKE_BUILD_TYPE=Release');
  run(cfg);
  run(['--build', buildDir, '--parallel', jobs, '--target', ...targets]);
  return buildDir;
}

/** Runs bench_<name> (in `cwd`, default this process's) and forwards its JSON lines; returns them. */
export function runBenchProgram(
  rep: Reporter,
  buildDir: string,
  name: string,
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
  cwd?: string,
): BenchRecord[] {
  const exe = path.join(buildDir, `bench_${name}`);
  if (!fs.existsSync(exe)) {
    rep.fail(`bench_${name}: not built (${exe} missing)`);
    return [];
  }
  const r = spawnSync(exe, args, { encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, ...env }, cwd });
  if (r.status !== 0) {
    rep.fail(`bench_${name} failed (${r.error ? r.error.message : `exit ${r.status}`}): ${(r.stderr || '').trim().split('\n').slice(-3).join(' | ')}`);
    return [];
  }
  const out: BenchRecord[] = [];
  for (const line of r.stdout.split('\n')) {
    const s = line.trim();
    if (!s.startsWith('{')) continue;
    try {
      const rec = JSON.parse(s) as BenchRecord;
      if (!rec.bench) rec.bench = name;
      rep.add(rec);
      out.push(rec);
    } catch {
      // not a JSON line: ignore
    }
  }
  // A program that exits 0 but prints no record measured nothing: a failure too.
  if (!out.length) rep.fail(`bench_${name} printed no JSON records`);
  return out;
}
