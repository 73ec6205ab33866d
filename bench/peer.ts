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
  if (r.status !== 0) throw new Error(`run-peer.mjs failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as PeerResult;
}
