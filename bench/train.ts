// Training-step speed: one FocusLLM example (candidate projections trainable)
// and one causal-LM step (every tensor trainable), ours against the PyTorch
// peer (../shared/peer/torch_train_peer.py, CPU float32) on the same weights,
// the same example and the same thread count, in one run.
//
// Each side runs in its own child process, so each reports its own peak RSS.
// Throughput is in model FLOPs: matmuls and attention products of the
// forward, plus the backward's (2x the forward's for the tensors that get
// weight gradients, 1x for input gradients only); the backward's
// recomputation of attention probabilities is not counted. The fraction is of
// the FMA peak measured in the same run (bench_cpu_matmul --peak-only).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { ensureModel, SHAPE_156M } from './engine';
import { buildBenchTargets, runBenchProgram } from './kernels';
import { median, type Reporter } from './report';

interface Shape {
  vocab: number;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
}

/** One measured case; the example is the same for both sides. */
export interface TrainCase {
  name: string;
  model: string;
  loss: 'continuation' | 'repetition' | 'lm';
  ids: number[];
  s?: number;
  l?: number;
  chunk?: number;
  promptCap?: number;
}

const SMALL = { vocab: 8000, hidden: 256, intermediate: 704, layers: 4, heads: 8, kvHeads: 2 };

function randomIds(n: number, vocab: number, seed: number): number[] {
  const ids = [1];
  let s = seed >>> 0;
  for (let i = 1; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    ids.push(3 + (s % (vocab - 3)));
  }
  return ids;
}

/** Model FLOPs of one example (see the header). */
export function trainFlops(sh: Shape, c: TrainCase): number {
  const hd = sh.hidden / sh.heads, qd = sh.hidden, kvd = sh.kvHeads * hd;
  const perTok = 2 * (sh.hidden * qd * 2 + 2 * sh.hidden * kvd + 3 * sh.hidden * sh.intermediate); // one layer's matmuls
  // n query rows over `keys(i)` keys: QKᵀ and PV, 2 * 2 * keys * qd each
  const att = (n: number, before: number) => 4 * qd * (n * before + (n * (n + 1)) / 2);
  if (c.loss === 'lm') {
    const T = c.ids.length;
    const fwd = sh.layers * (T * perTok + att(T, 0)) + 2 * (T - 1) * sh.hidden * sh.vocab;
    return 3 * fwd;
  }
  const bos = 1;
  const t = Math.min(c.promptCap!, c.chunk!, c.l!);
  const prompt = c.ids[c.s! + c.l! - t] === bos ? t : t + 1;
  const mem = c.loss === 'repetition' ? c.ids.length : c.s!;
  const k = Math.ceil(mem / c.chunk!);
  const local = c.ids[c.s!] === bos ? c.l! : c.l! + 1;
  let chunks = 0;
  for (let i = 0; i < k; i++) {
    const n = Math.min(mem, (i + 1) * c.chunk!) - i * c.chunk! + prompt;
    chunks += sh.layers * (n * perTok + att(n, 0)); // forward only: constants
  }
  const localFwd = sh.layers * (local * perTok + att(local, k)) + 2 * sh.hidden * sh.vocab;
  // local: forward + input-gradient backward; candidate rows: tiny, counted 3x
  const candFwd = sh.layers * k * perTok;
  return chunks + 2 * localFwd + 3 * candFwd;
}

function childOurs(repoRoot: string, dir: string, c: TrainCase, threads: number, repeat: number) {
  const script = path.join(__dirname, 'train-child.js');
  const r = spawnSync(process.execPath, ['--expose-gc', script, dir, JSON.stringify(c), String(threads), String(repeat)], {
    encoding: 'utf8',
    maxBuffer: 16 << 20,
    cwd: repoRoot,
  });
  if (r.status !== 0) throw new Error(`train bench child failed: ${(r.stderr || '').slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { times: number[]; loss: number; maxRssMiB: number };
}

function childPeer(peerDir: string, dir: string, idsFile: string, c: TrainCase, threads: number, repeat: number) {
  const args = ['--model', dir, '--ids', idsFile, '--loss', c.loss, '--threads', String(threads), '--repeat', String(repeat)];
  if (c.loss !== 'lm')
    args.push('--local-start', String(c.s), '--local-size', String(c.l), '--chunk-size', String(c.chunk), '--prompt-cap', String(c.promptCap));
  // The peer script runs unchanged; the wrapper only adds its peak RSS.
  const wrap =
    'import runpy, resource, sys; sys.argv = sys.argv[1:]\n' +
    'try:\n    runpy.run_path(sys.argv[0], run_name="__main__")\n' +
    'finally:\n    sys.stderr.write("MAXRSS_KB %d\\n" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n';
  const r = spawnSync('/usr/bin/python3', ['-c', wrap, path.join(peerDir, 'torch_train_peer.py'), ...args], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) return { error: `torch peer failed: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-2).join(' | ')}` };
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { step_ms: number; loss: number; peer: string };
  const m = /MAXRSS_KB (\d+)/.exec(r.stderr);
  return { ...out, maxRssMiB: m ? Number(m[1]) / 1024 : undefined };
}

export async function benchTrain(
  rep: Reporter,
  opts: { repoRoot: string; cacheDir: string; threads: number; quick: boolean },
): Promise<void> {
  const log = (s: string) => process.stderr.write(s + '\n');
  const buildDir = buildBenchTargets(opts.repoRoot, ['bench_cpu_matmul'], log);
  const roof = runBenchProgram(rep, buildDir, 'cpu_matmul', ['--threads', String(opts.threads), '--peak-only', '1']);
  const peak = Number(roof.find((r) => r.bench === 'cpu_fma_peak')?.gflops ?? NaN);
  const peerDir = process.env.FOCUSLLM_PEER_DIR ?? path.resolve(opts.repoRoot, '..', 'shared', 'peer');
  const torchOk = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
  const havePeer = torchOk && fs.existsSync(path.join(peerDir, 'torch_train_peer.py'));
  if (!havePeer)
    rep.note(`train: no PyTorch peer (needs ${path.join(peerDir, 'torch_train_peer.py')} or FOCUSLLM_PEER_DIR, ` +
      'and /usr/bin/python3 with torch: apt-get install -y python3-torch)');

  const models: { label: string; shape: Shape; spec: object; W: number }[] = [
    { label: 'small (256x4, vocab 8000)', shape: SMALL, spec: { ...SMALL, dtype: 'F16', seed: 3 }, W: 512 },
  ];
  if (!opts.quick)
    models.push({ label: '156M (1024x8, GQA 16/4, vocab 32000)', shape: SHAPE_156M, spec: { ...SHAPE_156M, dtype: 'F16', seed: 1 }, W: 2048 });
  const repeat = opts.quick ? 1 : 3;
  // Ours first for every case, then the peer's (minutes a step on the 156M
  // shape), so that our rows are not measured beside a long peer run's tail.
  const rows: { c: TrainCase; dir: string; shape: Shape; W: number; rec: Record<string, unknown> }[] = [];
  for (const m of models) {
    const dir = await ensureModel(opts.cacheDir, m.W === 2048 ? 'rand156m-f16' : 'train-small-f16', m.spec);
    const W = m.W;
    // FocusLLM: 2W tokens, the local window (l = W/2, the mean of the
    // official l range) ending near the end, chunks of W/4.
    const ids = randomIds(2 * W, m.shape.vocab, 7);
    const l = W / 2, s = 2 * W - l - 1 - W / 16;
    const cases: TrainCase[] = [
      { name: `focus W=${W}`, model: m.label, loss: 'continuation', ids, s, l, chunk: W / 4, promptCap: Math.min(512, W / 4) },
      { name: `lm T=${W}`, model: m.label, loss: 'lm', ids: ids.slice(0, W) },
    ];
    for (const c of cases) {
      log(`train bench: ${m.label}, ${c.name} (focusllm) ...`);
      const ours = childOurs(opts.repoRoot, dir, c, opts.threads, repeat);
      const flops = trainFlops(m.shape, c);
      const oursMs = median(ours.times);
      rows.push({ c, dir, shape: m.shape, W, rec: {
        bench: 'train_step', model: m.label, case: c.name, params: c.loss === 'lm' ? 'all' : 'candidate',
        threads: opts.threads, tokens: c.ids.length, ours_ms: oursMs, gflops: flops / oursMs / 1e6,
        frac_peak: flops / oursMs / 1e6 / peak, ours_rss_mib: ours.maxRssMiB, loss: ours.loss,
      } });
    }
  }
  for (const { c, dir, W, rec } of rows) {
    if (havePeer) {
      log(`train bench: ${rec.model}, ${c.name} (PyTorch peer) ...`);
      const idsFile = path.join(opts.cacheDir, `train-ids-${process.pid}.json`);
      fs.writeFileSync(idsFile, JSON.stringify(c.ids));
      // The peer's step on the 156M shape takes minutes: one timed run, no warm-up.
      const p = childPeer(peerDir, dir, idsFile, c, opts.threads, W === 2048 ? 0 : repeat);
      fs.rmSync(idsFile, { force: true });
      if ('error' in p) rep.fail(String(p.error));
      else {
        rec.torch_ms = p.step_ms;
        rec.speedup_vs_torch = p.step_ms / (rec.ours_ms as number);
        rec.torch_rss_mib = p.maxRssMiB;
        rec.torch_loss = p.loss;
        rec.peer = p.peer;
      }
    }
    rep.add(rec as { bench: string });
  }
  rep.table(`Training step (forward + backward of one example), ${opts.threads} threads; FMA peak ${peak.toFixed(0)} GFLOP/s`, 'train_step', [
    ['model', 'model'], ['case', 'case'], ['params', 'trainable'], ['ours_ms', 'ours ms'], ['gflops', 'GFLOP/s'],
    ['frac_peak', 'of FMA peak'], ['torch_ms', 'torch ms'], ['speedup_vs_torch', 'speed vs torch'],
    ['ours_rss_mib', 'ours peak MiB'], ['torch_rss_mib', 'torch peak MiB'],
  ]);
}
