// Native-mode engine throughput on the peer harness's model shape (156M
// parameters: hidden 1024, 8 layers, 16 heads / 4 KV heads, intermediate 2816,
// vocab 32000): 512-token prefill and per-token decode, ours and llama.cpp's
// (node-llama-cpp) in the same run, at 1 and 2 threads. With the peer, the
// records also carry how far our logits are from llama.cpp's on the same
// weights (exact peer settings: F32 KV cache, no flash attention).
//
// Decode is memory-bound: each record also gives the step as a fraction of
// its floor, (weight bytes + KV bytes read per token) / read bandwidth, the
// bandwidth measured by bench_cpu_matmul over more bytes than the last-level
// cache, right before each measurement (it drifts on a shared VM). An
// engine_profile record splits the step of `step` (logits to JS) and of
// `stepToken` (greedy sampling in native code) into matmul, lm_head, attention and the rest (from bench_cpu_e2e --profile: the
// same model and KV dtype in a C++ loop, each op timed) and the JS side: each
// step's wall time less the time its run spent in the native runner
// (Model.lastRunMs), the median over the steps: the N-API crossing, the
// worker-thread hop, the logits copy and the session's bookkeeping.
import fs from 'node:fs';
import path from 'node:path';

import { loadModel } from '../lib/model';
import { argmax, makeNativeSampler } from '../lib/sampling';
import { buildBenchTargets, runBenchProgram } from './kernels';
import { compareLogits, findPeer, runPeer, runPeerLogits, toGguf, type LogitsComparison } from './peer';
import { writeRandomModel } from './random-model';
import { median, type BenchRecord, type Reporter } from './report';

export const SHAPE_156M = { vocab: 32000, hidden: 1024, intermediate: 2816, layers: 8, heads: 16, kvHeads: 4 };
export type EngineShape = typeof SHAPE_156M;

/** Above this, our F32 logits and llama.cpp's (F32 GGUF, exact settings) disagree: a failure (the fixtures' bar). */
export const LOGITS_F32_TOLERANCE = 1e-4;

export async function ensureModel(cacheDir: string, name: string, spec: Parameters<typeof writeRandomModel>[1]): Promise<string> {
  const dir = path.join(cacheDir, name);
  const stamp = path.join(dir, '.complete');
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === JSON.stringify(spec)) return dir;
  await writeRandomModel(dir, spec);
  fs.writeFileSync(stamp, JSON.stringify(spec));
  return dir;
}

/**
 * Prefill and decode times (median of `repeat` runs after a warm-up). The
 * warm-up run's logits after the ids and after each of its first
 * `keepLogits` greedy tokens are returned for the comparison with the peer.
 */
async function measureOurs(dir: string, threads: number, ids: number[], decodeTokens: number, repeat: number, keepLogits = 0) {
  const model = await loadModel(dir, { backend: 'cpu', threads, tokenizer: false });
  try {
    const native = { minChunkedLength: 1 << 30, localWindow: 1, maxSteps: decodeTokens };
    const prefill: number[] = [];
    const decode: number[] = [];
    const decodeToken: number[] = [];
    const steps: number[] = []; // every single step's time, Session.step then Session.stepToken
    const tokenSteps: number[] = [];
    // Each step's wall time less the time its run spent in the native runner
    // (Model.lastRunMs): the N-API crossing, the worker-thread hop, the logits
    // copy (step) and the session's JavaScript, measured in the same step.
    const jsSide: number[] = [];
    const jsSideToken: number[] = [];
    const greedy = makeNativeSampler({ temperature: 0 });
    const rows: Float64Array[] = [];
    const continuation: number[] = [];
    for (let r = 0; r <= repeat; r++) {
      const s = model.createSession(native);
      const t0 = performance.now();
      let logits = await s.ingest(ids);
      const t1 = performance.now();
      for (let i = 0; i < decodeTokens; i++) {
        if (r === 0 && i < keepLogits) {
          rows.push(Float64Array.from(logits));
          continuation.push(argmax(logits));
        }
        const ts = performance.now();
        logits = await s.step(argmax(logits));
        const wall = performance.now() - ts;
        if (r > 0) {
          steps.push(wall);
          jsSide.push(wall - model.native.lastRunMs);
        }
      }
      const t2 = performance.now();
      s.dispose();
      // The same steps through stepToken: the next id is sampled in native
      // code, no logits cross to JS.
      const st = model.createSession(native);
      let id = await st.ingestToken(ids, greedy);
      const t3 = performance.now();
      for (let i = 0; i < decodeTokens; i++) {
        const ts = performance.now();
        id = await st.stepToken(id, greedy);
        const wall = performance.now() - ts;
        if (r > 0) {
          tokenSteps.push(wall);
          jsSideToken.push(wall - model.native.lastRunMs);
        }
      }
      const t4 = performance.now();
      st.dispose();
      if (r === 0) continue; // warm-up
      prefill.push(t1 - t0);
      decode.push((t2 - t1) / decodeTokens);
      decodeToken.push((t4 - t3) / decodeTokens);
    }
    return {
      prefill_ms: median(prefill),
      decode_ms_per_token: median(decode),
      decode_token_ms_per_token: median(decodeToken),
      step_median_ms: median(steps),
      step_token_median_ms: median(tokenSteps),
      js_median_ms: median(jsSide),
      js_token_median_ms: median(jsSideToken),
      rows,
      continuation,
    };
  } finally {
    model.dispose();
  }
}

export interface EngineOptions {
  repoRoot: string;
  cacheDir: string;
  threads: number[];
  quick: boolean;
  dtypes: ('F16' | 'BF16' | 'F32')[];
  /** model shape (default the peer harness's 156M) and its label in the records */
  shape?: EngineShape;
  label?: string;
  /** prompt tokens (default 512), decode tokens and runs (default 64 / 3; quick 16 / 1) */
  promptTokens?: number;
  decodeTokens?: number;
  repeat?: number;
  /** rows of logits compared with the peer: after the prompt and after each of the next tokens (default 4) */
  compareSteps?: number;
}

const DTYPE_BYTES = { F32: 4, F16: 2, BF16: 2 } as const;

/**
 * Bytes a decode step reads from memory, averaged over the decode steps: every
 * matmul weight and lm_head once (norms and the one embedding row are under
 * 0.1% and left out), and the K and V rows of every cached token in every
 * layer (the session's KV cache has the weights' dtype on the CPU).
 */
export function decodeBytes(shape: EngineShape, dtype: keyof typeof DTYPE_BYTES, promptTokens: number, decodeTokens: number) {
  const es = DTYPE_BYTES[dtype];
  const headDim = shape.hidden / shape.heads;
  const kvDim = shape.kvHeads * headDim;
  const perLayer = 2 * shape.hidden * shape.hidden + 2 * kvDim * shape.hidden + 3 * shape.hidden * shape.intermediate;
  const weights = (shape.layers * perLayer + shape.vocab * shape.hidden) * es;
  const meanCached = promptTokens + (decodeTokens + 1) / 2; // keys a step attends to, on average
  const kv = shape.layers * 2 * kvDim * meanCached * es;
  return { weights, kv };
}

/** The read bandwidth (GB/s) bench_cpu_matmul measures over a DRAM-sized buffer, per thread count. */
function readBandwidth(rep: Reporter, buildDir: string, threads: number[]): Map<number, number> {
  const bw = new Map<number, number>();
  const recs = runBenchProgram(rep, buildDir, 'cpu_matmul', ['--peak-only', '1', '--threads', threads.join(',')]);
  for (const r of recs) if (r.bench === 'cpu_read_bw') bw.set(Number(r.threads), Number(r.gbps));
  return bw;
}

/** bench_cpu_e2e --profile on the same model: the C++ loop's decode step and its time per op, per token. */
function nativeProfile(rep: Reporter, buildDir: string, dir: string, threads: number, kv: string, prompt: number, decode: number, repeat: number) {
  // Run from the cache folder with a relative --model: the records carry no absolute path.
  const recs = runBenchProgram(rep, buildDir, 'cpu_e2e', [
    '--model', path.basename(dir), '--threads', String(threads), '--prompt', String(prompt), '--decode', String(decode),
    '--repeat', String(repeat), '--kv', kv, '--profile',
  ], {}, path.dirname(dir));
  const e2e = recs.find((r) => r.bench === 'cpu_e2e');
  if (!e2e) return null;
  const op = (name: string) =>
    recs.filter((r) => r.bench === 'cpu_e2e_profile' && r.phase === 'decode' && r.op === name).reduce((a, r) => a + Number(r.ms), 0);
  return {
    step_ms: op('step'), // the profiled run's mean step (the ops below are from that run)
    step_median_ms: Number(e2e.decode_step_median_ms),
    matmul: op('matmul'), lm_head: op('matmul lm_head'), attention: op('attention') };
}

export async function benchEngine(rep: Reporter, opts: EngineOptions): Promise<void> {
  const peer = findPeer(opts.repoRoot);
  if ('missing' in peer) rep.note(`llama.cpp peer not measured: ${peer.missing}`);
  const peerDir = 'missing' in peer ? null : peer.dir;
  const shape = opts.shape ?? SHAPE_156M;
  const label = opts.label ?? '156M LLaMA (1024x8, GQA 16/4, vocab 32000)';
  const nIds = opts.promptTokens ?? 512;
  const decodeTokens = opts.decodeTokens ?? (opts.quick ? 16 : 64);
  const repeat = opts.repeat ?? (opts.quick ? 1 : 3);
  const compareSteps = Math.min(opts.compareSteps ?? 4, decodeTokens);
  const ids = [1];
  let s = 7;
  while (ids.length < nIds) {
    s = (s * 1103515245 + 12345) >>> 0;
    ids.push(3 + (s % (Math.min(shape.vocab, 31993) - 3)));
  }
  let buildDir: string | null = null;
  let bandwidth = new Map<number, number>();
  try {
    buildDir = buildBenchTargets(opts.repoRoot, ['bench_cpu_matmul', 'bench_cpu_e2e'], (t) => process.stderr.write(t + '\n'));
    bandwidth = readBandwidth(rep, buildDir, opts.threads);
  } catch (e) {
    rep.fail(`engine: bandwidth and profile programs: ${(e as Error).message}`);
  }
  const idsFile = path.join(opts.cacheDir, `ids${nIds}-v${shape.vocab}.json`);
  fs.mkdirSync(opts.cacheDir, { recursive: true });
  fs.writeFileSync(idsFile, JSON.stringify(ids));
  const modelName = shape === SHAPE_156M ? 'rand156m' : `rand-engine-${shape.hidden}x${shape.layers}-v${shape.vocab}`;
  for (const dtype of opts.dtypes) {
    const dir = await ensureModel(opts.cacheDir, `${modelName}-${dtype.toLowerCase()}`, { ...shape, dtype, seed: 1 });
    let agreement: (LogitsComparison & { settings: string }) | null = null;
    let gguf: string | null = null;
    if (peerDir && dtype !== 'BF16') {
      try {
        gguf = toGguf(peerDir, dir, dtype === 'F16' ? 'f16' : 'f32');
      } catch (e) {
        rep.fail(`llama.cpp peer: ${(e as Error).message}`);
      }
    }
    for (const [ti, threads] of opts.threads.entries()) {
      const wantLogits = peerDir !== null && gguf !== null && ti === 0 && compareSteps > 0;
      // The read bandwidth again right before this measurement: on a shared VM
      // it drifts by 10-20% over the minutes the suite takes.
      let bwNow: number | undefined;
      if (buildDir) {
        try {
          bwNow = readBandwidth(rep, buildDir, [threads]).get(threads);
        } catch (e) {
          rep.fail(`engine: bandwidth program: ${(e as Error).message}`);
        }
      }
      const ours = await measureOurs(dir, threads, ids, decodeTokens, repeat, wantLogits ? compareSteps : 0);
      if (wantLogits && peerDir && gguf) {
        // Our rows after the prompt and after each of our greedy tokens; the
        // peer is fed the same tokens (its own greedy choice could differ on a near tie).
        try {
          const contFile = path.join(opts.cacheDir, `cont-${process.pid}.json`);
          fs.writeFileSync(contFile, JSON.stringify(ours.continuation.slice(0, -1)));
          const p = runPeerLogits(peerDir, gguf, idsFile, contFile, { threads });
          fs.rmSync(contFile, { force: true });
          agreement = { ...compareLogits(ours.rows, p.logits, p.kind), settings: 'KV f32, flash-attn off' };
          if (dtype === 'F32' && !(agreement.max_rel_err <= LOGITS_F32_TOLERANCE))
            rep.fail(`F32 logits differ from llama.cpp's by ${agreement.max_rel_err.toExponential(2)} relative (bar ${LOGITS_F32_TOLERANCE})`);
        } catch (e) {
          rep.fail(`llama.cpp peer logits: ${(e as Error).message}`);
        }
      }
      let theirs: { prefill_ms: number; decode_ms_per_token: number; settings: string } | null = null;
      if (peerDir && gguf) {
        try {
          // F16: node-llama-cpp's own defaults (F16 KV cache, flash attention auto) are its fastest;
          // F32: the exact settings (F32 KV, no flash attention).
          const settings = dtype === 'F16' ? { kvType: 'f16' as const, flashAttn: 'auto' as const } : { kvType: 'f32' as const, flashAttn: 'off' as const };
          const p = runPeer(peerDir, gguf, idsFile, { threads, decodeTokens, repeat, ...settings });
          theirs = { prefill_ms: p.prefill_ms, decode_ms_per_token: p.decode_ms_per_token, settings: `KV ${settings.kvType}, flash-attn ${settings.flashAttn}` };
        } catch (e) {
          rep.fail(`llama.cpp peer: ${(e as Error).message}`);
        }
      }
      const bytes = decodeBytes(shape, dtype, nIds, decodeTokens);
      const bw = bwNow ?? bandwidth.get(threads) ?? null;
      // The floor of a decode step: its bytes at the measured read bandwidth.
      const floorMs = bw ? ((bytes.weights + bytes.kv) / (bw * 1e9)) * 1e3 : null;
      const kvName = dtype.toLowerCase();
      const prof = buildDir ? nativeProfile(rep, buildDir, dir, threads, kvName, nIds, decodeTokens, repeat) : null;
      // Per-step medians on both sides: a step delayed by another process moves them little.
      for (const [api, stepMs, jsMs] of [
        ['step', ours.step_median_ms, ours.js_median_ms],
        ['stepToken', ours.step_token_median_ms, ours.js_token_median_ms],
      ] as const) {
        const rec: BenchRecord = {
          bench: 'engine_profile', model: label, weights: dtype, threads, api, kv: kvName, step_ms: stepMs,
          weight_bytes: bytes.weights, kv_bytes: bytes.kv, read_gbps: bw, floor_ms: floorMs, frac_bw: floorMs ? floorMs / stepMs : null,
          // the JS side within the same steps (median of wall - native run time), and its share of the step
          js_step_ms: jsMs,
          js_step_frac: jsMs / stepMs,
        };
        if (prof) {
          Object.assign(rec, {
            native_step_ms: prof.step_median_ms,
            native_frac_bw: floorMs ? floorMs / prof.step_median_ms : null,
            // per op: the mean over the profiled run's steps; rest: that run's mean step less those
            matmul_ms: prof.matmul,
            lm_head_ms: prof.lm_head,
            attention_ms: prof.attention,
            rest_ms: prof.step_ms - prof.matmul - prof.lm_head - prof.attention,
            // the session's step minus the C++ loop's (medians of two processes run at different
            // moments: bandwidth drift shows up here; js_step_ms above is the same-step measure)
            js_ms: stepMs - prof.step_median_ms,
            js_frac: (stepMs - prof.step_median_ms) / stepMs,
          });
        }
        rep.add(rec);
      }
      for (const phase of ['prefill', 'decode', 'decode-token'] as const) {
        const ourMs = phase === 'prefill' ? ours.prefill_ms : phase === 'decode' ? ours.decode_ms_per_token : ours.decode_token_ms_per_token;
        const ourTps = phase === 'prefill' ? (nIds / ourMs) * 1000 : 1000 / ourMs;
        const peerTps = theirs ? (phase === 'prefill' ? (nIds / theirs.prefill_ms) * 1000 : 1000 / theirs.decode_ms_per_token) : null;
        rep.add({
          bench: 'engine',
          model: label,
          weights: dtype,
          threads,
          phase,
          // decode: Session.step (logits to JS); decode-token: Session.stepToken (sampled in native code)
          api: phase === 'prefill' ? 'ingest' : phase === 'decode' ? 'step' : 'stepToken',
          tokens: phase === 'prefill' ? nIds : decodeTokens,
          median_ms: ourMs,
          tokens_per_s: ourTps,
          // decode: the step's floor (its bytes at the read bandwidth measured in this run) / the step
          frac_bw: phase !== 'prefill' && floorMs ? floorMs / ourMs : null,
          peer_tokens_per_s: peerTps,
          ratio_vs_llama_cpp: peerTps ? ourTps / peerTps : null,
          peer_settings: theirs?.settings ?? null,
          // max |ours - llama.cpp| / max |ours| over the compared rows, both centred (see bench/peer.ts compareLogits)
          logits_rel_err_vs_llama_cpp: agreement?.max_rel_err ?? null,
          logits_compare: agreement
            ? { rows: agreement.rows.length, argmax_agree: agreement.argmax_agree, max_abs: agreement.max_abs, peer_settings: agreement.settings }
            : null,
        });
      }
    }
  }
  rep.table('Engine, native mode (ours vs llama.cpp via node-llama-cpp, same run)', 'engine', [
    ['weights', 'weights'], ['threads', 'threads'], ['phase', 'phase'], ['tokens_per_s', 'ours tok/s'],
    ['peer_tokens_per_s', 'llama.cpp tok/s'], ['ratio_vs_llama_cpp', 'ratio'], ['frac_bw', 'of bw floor'],
    ['logits_rel_err_vs_llama_cpp', 'logits rel err'],
  ]);
  rep.table('Decode step profile, ms per token (native ops from bench_cpu_e2e --profile; JS side = step wall time - its native run, same steps)', 'engine_profile', [
    ['weights', 'weights'], ['threads', 'threads'], ['api', 'api'], ['step_ms', 'step'], ['floor_ms', 'bw floor'],
    ['frac_bw', 'of floor'], ['native_step_ms', 'C++ step'], ['matmul_ms', 'matmul'], ['lm_head_ms', 'lm_head'],
    ['attention_ms', 'attention'], ['rest_ms', 'rest'], ['js_step_ms', 'JS side'], ['js_step_frac', 'JS share'],
    ['js_ms', 'step - C++ loop'],
  ]);
}
