// The bench's own logic, without running a benchmark: bench/peer.ts
// compareLogits (our logits against llama.cpp's log-probs, as
// ../shared/peer/compare.py measures them) on synthetic rows, the Reporter's
// failures (bench/report.ts, bench/kernels.ts runBenchProgram), and how
// bench/long-context.ts reads the CLI's progress lines.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import t from 'tap';

import { runBenchProgram } from '../bench/kernels';
import { longContextMain, parseProbe } from '../bench/long-context';
import { compareLogits } from '../bench/peer';
import { Reporter } from '../bench/report';
import { makeRng } from '../lib/sampling';
import { captureStdout } from './helpers/cli';

function randomRow(r: () => number, n: number, scale = 8): Float64Array {
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = (r() - 0.5) * scale;
  return x;
}

function logSoftmax(x: ArrayLike<number>): number[] {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) m = Math.max(m, x[i]);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.exp(x[i] - m);
  const lse = m + Math.log(s);
  return Array.from(x, (v) => v - lse);
}

t.test('log-probs of the same logits agree to rounding; centring removes the per-row constant', async (t) => {
  const r = makeRng(3);
  const ours = [randomRow(r, 1000), randomRow(r, 1000), randomRow(r, 1000)];
  const peer = ours.map(logSoftmax);
  const c = compareLogits(ours, peer, 'logprobs');
  t.equal(c.rows.length, 3);
  t.ok(c.max_rel_err < 1e-13, `rel err ${c.max_rel_err}`);
  t.equal(c.argmax_agree, 3);
  for (const row of c.rows) t.equal(row.underflowed, 0);
  // the same rows read as raw logits are off by the log-sum-exp
  t.ok(compareLogits(ours, peer, 'logits').max_rel_err > 0.1);
});

t.test('a known perturbation gives its relative error (max over rows)', async (t) => {
  const r = makeRng(5);
  const n = 500;
  const e = randomRow(r, n);
  const e2 = randomRow(r, n);
  // centred scale of row 1
  const mean = e.reduce((a, b) => a + b, 0) / n;
  const maxC = Math.max(...Array.from(e, (v) => Math.abs(v - mean)));
  const p = logSoftmax(e);
  // +d on one entry and -d on another keeps the mean: the centred difference is exactly d there
  const d = 1e-3;
  p[10] += d;
  p[20] -= d;
  const c = compareLogits([e, e2], [p, logSoftmax(e2)], 'logprobs');
  t.ok(Math.abs(c.rows[0].rel_err - d / maxC) < 1e-9, `${c.rows[0].rel_err} vs ${d / maxC}`);
  t.ok(Math.abs(c.rows[0].max_abs - d) < 1e-9);
  t.ok(c.rows[1].rel_err < 1e-13);
  t.equal(c.max_rel_err, c.rows[0].rel_err);
});

t.test('underflowed peer entries (-1e30) are masked, and argmax disagreement is counted', async (t) => {
  const e = Float64Array.from([0, 1, 2, 3, -200]);
  const p = logSoftmax(e);
  p[4] = -1e30;
  let c = compareLogits([e], [p], 'logprobs');
  t.equal(c.rows[0].underflowed, 1);
  // without the masked entry, the other four agree
  t.ok(c.max_rel_err < 1e-13, `rel err ${c.max_rel_err}`);
  const q = logSoftmax(Float64Array.from([0, 1, 3.5, 3, -200]));
  c = compareLogits([e], [q], 'logprobs');
  t.equal(c.argmax_agree, 0);
  t.equal(c.rows[0].argmax_ours, 3);
  t.equal(c.rows[0].argmax_peer, 2);
});

t.test('mismatched shapes throw', async (t) => {
  t.throws(() => compareLogits([[1, 2]], [], 'logprobs'), /rows/);
  t.throws(() => compareLogits([[1, 2]], [[1, 2, 3]], 'logprobs'), /row 0/);
  t.throws(() => compareLogits([], [], 'logits'), /no rows/);
});

t.test('Reporter: failures make the exit code 1; notes do not', async (t) => {
  const rep = new Reporter(true);
  const err = process.stderr.write;
  const lines: string[] = [];
  process.stderr.write = ((s: string | Uint8Array) => (lines.push(String(s)), true)) as typeof process.stderr.write;
  try {
    rep.note('peer not installed');
    t.equal(rep.finish(), 0);
    rep.fail('bench_x failed');
    t.equal(rep.finish(), 1);
  } finally {
    process.stderr.write = err;
  }
  t.same(rep.failures, ['bench_x failed']);
  t.match(lines.join(''), /1 failure\(s\):\n {2}- bench_x failed/);
});

t.test('runBenchProgram: a missing program, a failing one and a silent one are failures', { skip: process.platform === 'win32' && 'shell scripts' }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'focusllm-benchprog-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const script = (name: string, body: string) => fs.writeFileSync(path.join(dir, `bench_${name}`), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  script('ok', 'echo \'{"bench":"ok","x":1}\'');
  script('bad', 'echo boom >&2; exit 3');
  script('silent', 'echo not json');
  // table mode: records are kept, not printed (stdout is tap's)
  const rep = new Reporter(false);
  const err = process.stderr.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    t.equal(runBenchProgram(rep, dir, 'ok').length, 1);
    t.equal(rep.failures.length, 0);
    runBenchProgram(rep, dir, 'bad');
    runBenchProgram(rep, dir, 'silent');
    runBenchProgram(rep, dir, 'missing');
    t.equal(rep.finish(), 1);
  } finally {
    process.stderr.write = err;
  }
  t.equal(rep.failures.length, 3);
  t.match(rep.failures[0], /bench_bad failed \(exit 3\): boom/);
  t.match(rep.failures[1], /bench_silent printed no JSON records/);
  t.match(rep.failures[2], /bench_missing: not built/);
});

t.test('long-context: the probe line among the CLI progress output', async (t) => {
  const probe = { tokenize_ms: 400, ingest_ms: 4000, input_tokens: 449965, chunks: 219, steps: 63, step_ms: 1969, peak_rss_bytes: 5 };
  const stderr = `\r\x1b[Kingest [###...] 3/219 chunks, 449965 tokens, 0.5 s\r\x1b[K\n${JSON.stringify({ cli_probe: probe })}\n`;
  t.same(parseProbe(stderr), probe);
  t.equal(parseProbe('no probe here\n'), null);
});

t.test('long-context: focusllm generate on a short text, timed from inside the CLI', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'focusllm-long-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const { code, stdout, stderr } = await captureStdout(() =>
    longContextMain(['--chars', '15000', '--max-new-tokens', '3', '--threads', '1', '--cache-dir', dir]),
  );
  t.equal(code, 0, stderr.slice(-2000));
  const r = JSON.parse(stdout.trim().split('\n').pop()!);
  t.equal(r.bench, 'long_context');
  t.equal(r.text.chars, 15000);
  t.match(r.text.sha256, /^[0-9a-f]{64}$/);
  t.ok(r.input_tokens > 4096, `${r.input_tokens} tokens: chunked`);
  t.ok(r.chunks >= 1);
  t.ok(r.ingest_s > 0 && r.tokenize_s >= 0);
  t.equal(r.generated_tokens, 3);
  t.ok(r.decode_tokens_per_s > 0);
  t.ok(r.peak_rss_bytes > 10 * 2 ** 20);
  t.notOk(fs.existsSync(path.join(dir, 'long-context-15000.txt')), 'the text file is removed');
});
