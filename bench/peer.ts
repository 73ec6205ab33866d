// The llama.cpp peer (node-llama-cpp, set up by the project's shared peer
// harness outside this repository): found, not installed, by this package.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface PeerResult {
  prefill_tokens_per_s: number;
  decode_tokens_per_s: number;
  prefill_ms: number;
  decode_ms_per_token: number;
  settings?: unknown;
}

/** The peer harness folder (run-peer.mjs, hf2gguf.py) and an installed node-llama-cpp, or why not. */
export function findPeer(repoRoot: string): { dir: string } | { missing: string } {
  const dir = process.env.FOCUSLLM_PEER_DIR ?? path.resolve(repoRoot, '..', 'shared', 'peer');
  if (!fs.existsSync(path.join(dir, 'run-peer.mjs')))
    return { missing: `no peer harness at ${dir} (set FOCUSLLM_PEER_DIR to the folder with run-peer.mjs)` };
  const nlc = process.env.PEER_NLC_DIR ?? path.join(os.homedir(), '.cache', 'peer-node-llama-cpp');
  if (!fs.existsSync(path.join(nlc, 'node_modules', 'node-llama-cpp')))
    return { missing: `node-llama-cpp is not installed in ${nlc} (run the peer harness's setup.sh)` };
  return { dir };
}

/** HF folder -> GGUF (cached next to the model) with the harness's converter. */
export function toGguf(peerDir: string, hfDir: string, outtype: 'f16' | 'f32'): string {
  const out = path.join(hfDir, `peer.${outtype}.gguf`);
  if (fs.existsSync(out)) return out;
  const r = spawnSync('python3', [path.join(peerDir, 'hf2gguf.py'), hfDir, out, '--outtype', outtype], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`hf2gguf.py failed: ${r.stderr || r.stdout}`);
  return out;
}

export function runPeer(
  peerDir: string,
  gguf: string,
  idsFile: string,
  opts: { threads: number; decodeTokens: number; kvType: 'f16' | 'f32'; flashAttn: 'on' | 'off' | 'auto'; repeat: number },
): PeerResult {
  const args = [
    path.join(peerDir, 'run-peer.mjs'),
    '--gguf', gguf, '--ids', idsFile, '--decode-tokens', String(opts.decodeTokens), '--threads', String(opts.threads),
    '--kv-type', opts.kvType, '--flash-attn', opts.flashAttn, '--no-logits', '--repeat', String(opts.repeat),
  ];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`run-peer.mjs failed: ${r.stderr || r.error?.message}`);
  return JSON.parse(r.stdout) as PeerResult;
}

/** One step of a logits comparison (the row after the ids, then after each continuation token). */
export interface LogitsRowError {
  /** max|P - E| / max|E| after centring both rows */
  rel_err: number;
  /** max|P - E| after centring, in logit units */
  max_abs: number;
  argmax_ours: number;
  argmax_peer: number;
  /** peer entries that underflowed to 0 probability (printed as -1e30), left out */
  underflowed: number;
}

export interface LogitsComparison {
  max_rel_err: number;
  max_abs: number;
  argmax_agree: number;
  rows: LogitsRowError[];
}

const argmaxOf = (x: ArrayLike<number>): number => {
  let bi = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[bi]) bi = i;
  return bi;
};

/**
 * Our logits (E) against the peer's rows (P), as ../shared/peer/compare.py
 * measures them. node-llama-cpp gives log-probabilities (logits minus their
 * log-sum-exp: one constant per row), so for kind "logprobs" both rows are
 * centred (the mean over the vocabulary subtracted), which removes exactly
 * that constant; entries the peer printed as -1e30 (a probability that
 * underflowed in float32) are masked. Kind "logits" compares the rows as they
 * are.
 */
export function compareLogits(ours: ArrayLike<number>[], peer: ArrayLike<number>[], kind: 'logits' | 'logprobs'): LogitsComparison {
  if (ours.length !== peer.length) throw new Error(`compareLogits: ${ours.length} rows of ours, ${peer.length} of the peer`);
  if (!ours.length) throw new Error('compareLogits: no rows');
  const rows = ours.map((e, r): LogitsRowError => {
    const p = peer[r];
    if (p.length !== e.length) throw new Error(`compareLogits: row ${r} has ${e.length} logits, the peer's ${p.length}`);
    const keep: number[] = [];
    for (let i = 0; i < p.length; i++) if (kind === 'logits' || p[i] > -1e29) keep.push(i);
    if (!keep.length) throw new Error(`compareLogits: row ${r}: every peer entry underflowed`);
    let pm = 0;
    let em = 0;
    if (kind === 'logprobs') {
      for (const i of keep) {
        pm += p[i];
        em += e[i];
      }
      pm /= keep.length;
      em /= keep.length;
    }
    let maxAbs = 0;
    let maxE = 0;
    for (const i of keep) {
      maxAbs = Math.max(maxAbs, Math.abs(p[i] - pm - (e[i] - em)));
      maxE = Math.max(maxE, Math.abs(e[i] - em));
    }
    return { rel_err: maxAbs / maxE, max_abs: maxAbs, argmax_ours: argmaxOf(e), argmax_peer: argmaxOf(p), underflowed: p.length - keep.length };
  });
  return {
    max_rel_err: Math.max(...rows.map((r) => r.rel_err)),
    max_abs: Math.max(...rows.map((r) => r.max_abs)),
    argmax_agree: rows.filter((r) => r.argmax_ours === r.argmax_peer).length,
    rows,
  };
}

/**
 * The peer's next-token scores after `ids`, then after each token of the
 * continuation file (no timing pass), with the exact settings by default
 * (F32 KV cache, no flash attention).
 */
export function runPeerLogits(
  peerDir: string,
  gguf: string,
  idsFile: string,
  continuationFile: string,
  opts: { threads: number; kvType?: 'f16' | 'f32'; flashAttn?: 'on' | 'off' | 'auto' },
): { kind: 'logits' | 'logprobs'; logits: number[][]; settings?: unknown } {
  const args = [
    path.join(peerDir, 'run-peer.mjs'),
    '--gguf', gguf, '--ids', idsFile, '--continuation', continuationFile, '--threads', String(opts.threads),
    '--kv-type', opts.kvType ?? 'f32', '--flash-attn', opts.flashAttn ?? 'off', '--no-bench',
  ];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`run-peer.mjs (logits) failed: ${r.stderr || r.error?.message}`);
  const out = JSON.parse(r.stdout) as { kind?: 'logits' | 'logprobs'; logits?: number[][]; settings?: unknown };
  if (!Array.isArray(out.logits)) throw new Error('run-peer.mjs printed no logits');
  return { kind: out.kind ?? 'logits', logits: out.logits, settings: out.settings };
}
