// Native-mode engine throughput on the peer harness's model shape (156M
// parameters: hidden 1024, 8 layers, 16 heads / 4 KV heads, intermediate 2816,
// vocab 32000): 512-token prefill and per-token decode, ours and llama.cpp's
// (node-llama-cpp) in the same run, at 1 and 2 threads.
import fs from 'node:fs';
import path from 'node:path';

import { loadModel } from '../lib/model';
import { argmax } from '../lib/sampling';
import { findPeer, runPeer, toGguf } from './peer';
import { writeRandomModel } from './random-model';
import { median, type Reporter } from './report';

export const SHAPE_156M = { vocab: 32000, hidden: 1024, intermediate: 2816, layers: 8, heads: 16, kvHeads: 4 };

export async function ensureModel(cacheDir: string, name: string, spec: Parameters<typeof writeRandomModel>[1]): Promise<string> {
  const dir = path.join(cacheDir, name);
  const stamp = path.join(dir, '.complete');
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === JSON.stringify(spec)) return dir;
  await writeRandomModel(dir, spec);
  fs.writeFileSync(stamp, JSON.stringify(spec));
  return dir;
}

async function measureOurs(dir: string, threads: number, ids: number[], decodeTokens: number, repeat: number) {
  const model = await loadModel(dir, { backend: 'cpu', threads, tokenizer: false });
  try {
    const native = { minChunkedLength: 1 << 30, localWindow: 1, maxSteps: decodeTokens };
    const prefill: number[] = [];
    const decode: number[] = [];
    for (let r = 0; r <= repeat; r++) {
      const s = model.createSession(native);
      const t0 = performance.now();
      let logits = await s.ingest(ids);
      const t1 = performance.now();
      for (let i = 0; i < decodeTokens; i++) logits = await s.step(argmax(logits));
      const t2 = performance.now();
      s.dispose();
      if (r === 0) continue; // warm-up
      prefill.push(t1 - t0);
      decode.push((t2 - t1) / decodeTokens);
    }
    return { prefill_ms: median(prefill), decode_ms_per_token: median(decode) };
  } finally {
    model.dispose();
  }
}

export async function benchEngine(
  rep: Reporter,
  opts: { repoRoot: string; cacheDir: string; threads: number[]; quick: boolean; dtypes: ('F16' | 'F32')[] },
): Promise<void> {
  const peer = findPeer(opts.repoRoot);
  if ('missing' in peer) rep.note(`llama.cpp peer not measured: ${peer.missing}`);
  const nIds = 512;
  const decodeTokens = opts.quick ? 16 : 64;
  const repeat = opts.quick ? 1 : 3;
  const ids = [1];
  let s = 7;
  while (ids.length < nIds) {
    s = (s * 1103515245 + 12345) >>> 0;
    ids.push(3 + (s % 31990));
  }
  const idsFile = path.join(opts.cacheDir, 'ids512.json');
  fs.mkdirSync(opts.cacheDir, { recursive: true });
  fs.writeFileSync(idsFile, JSON.stringify(ids));
  for (const dtype of opts.dtypes) {
    const dir = await ensureModel(opts.cacheDir, `rand156m-${dtype.toLowerCase()}`, { ...SHAPE_156M, dtype, seed: 1 });
    for (const threads of opts.threads) {
      const ours = await measureOurs(dir, threads, ids, decodeTokens, repeat);
      let theirs: { prefill_ms: number; decode_ms_per_token: number; settings: string } | null = null;
      if (!('missing' in peer)) {
        try {
          const gguf = toGguf(peer.dir, dir, dtype === 'F16' ? 'f16' : 'f32');
          // F16: node-llama-cpp's own defaults (F16 KV cache, flash attention auto) are its fastest;
          // F32: the exact settings (F32 KV, no flash attention).
          const settings = dtype === 'F16' ? { kvType: 'f16' as const, flashAttn: 'auto' as const } : { kvType: 'f32' as const, flashAttn: 'off' as const };
          const p = runPeer(peer.dir, gguf, idsFile, { threads, decodeTokens, repeat, ...settings });
          theirs = { prefill_ms: p.prefill_ms, decode_ms_per_token: p.decode_ms_per_token, settings: `KV ${settings.kvType}, flash-attn ${settings.flashAttn}` };
        } catch (e) {
          rep.note(`llama.cpp peer failed: ${(e as Error).message}`);
        }
      }
      for (const phase of ['prefill', 'decode'] as const) {
        const ourTps = phase === 'prefill' ? (nIds / ours.prefill_ms) * 1000 : 1000 / ours.decode_ms_per_token;
        const peerTps = theirs ? (phase === 'prefill' ? (nIds / theirs.prefill_ms) * 1000 : 1000 / theirs.decode_ms_per_token) : null;
        rep.add({
          bench: 'engine',
          model: '156M LLaMA (1024x8, GQA 16/4, vocab 32000)',
          weights: dtype,
          threads,
          phase,
          tokens: phase === 'prefill' ? nIds : decodeTokens,
          median_ms: phase === 'prefill' ? ours.prefill_ms : ours.decode_ms_per_token,
          tokens_per_s: ourTps,
          peer_tokens_per_s: peerTps,
          ratio_vs_llama_cpp: peerTps ? ourTps / peerTps : null,
          peer_settings: theirs?.settings ?? null,
        });
      }
    }
  }
  rep.table('Engine, native mode (ours vs llama.cpp via node-llama-cpp, same run)', 'engine', [
    ['weights', 'weights'], ['threads', 'threads'], ['phase', 'phase'], ['tokens_per_s', 'ours tok/s'],
    ['peer_tokens_per_s', 'llama.cpp tok/s'], ['ratio_vs_llama_cpp', 'ratio'],
  ]);
}
