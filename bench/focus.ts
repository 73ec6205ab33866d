// FocusLLM ingest and per-token step on a small random-weight model at growing
// context lengths: ingest time per 1K tokens must stay flat (linear cost).
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

import { ensureModel } from './engine';
import type { Reporter } from './report';

export const FOCUS_BENCH_MODEL = {
  vocab: 32000, hidden: 256, intermediate: 688, layers: 4, heads: 8, kvHeads: 2,
  dtype: 'F16' as const, candidates: ['q', 'k', 'v', 'o'] as ('q' | 'k' | 'v' | 'o')[], seed: 2,
};

export async function benchFocus(
  rep: Reporter,
  opts: { cacheDir: string; lengths: number[]; threads: number; steps: number; backend: 'cpu' | 'cuda' },
): Promise<{ linearity: number | null }> {
  const dir = await ensureModel(opts.cacheDir, 'rand-focus-256x4-f16', FOCUS_BENCH_MODEL);
  const child = path.join(__dirname, 'focus-child' + path.extname(__filename));
  const perK: number[] = [];
  for (const length of opts.lengths) {
    // Skip lengths whose chunk caches would not fit comfortably in memory.
    const r = spawnSync(
      process.execPath,
      [...process.execArgv, child, dir, String(length), String(opts.threads), String(opts.steps), opts.backend],
      { encoding: 'utf8', maxBuffer: 16 << 20 },
    );
    if (r.status !== 0) {
      rep.fail(`focus bench at ${length} tokens failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      continue;
    }
    const m = JSON.parse(r.stdout.trim().split('\n').pop()!);
    perK.push(m.ms_per_1k_tokens);
    rep.add({
      bench: 'focus',
      model: 'random LLaMA 256x4 (GQA 8/2, vocab 32000, F16, candidates q/k/v/o)',
      backend: opts.backend,
      threads: opts.threads,
      context: length,
      ...m,
      peak_rss_mib: m.peak_rss_bytes / 2 ** 20,
      chunk_cache_mib: m.chunk_cache_bytes / 2 ** 20,
    });
  }
  const linearity = perK.length >= 2 ? Math.max(...perK) / Math.min(...perK) : null;
  if (linearity !== null)
    rep.add({ bench: 'focus_linearity', lengths: opts.lengths, max_over_min_ms_per_1k: linearity, target: '< 1.3', ok: linearity < 1.3 });
  rep.table('FocusLLM ingest and step (defaults: local 2048, chunk 2048, prompt cap 512)', 'focus', [
    ['context', 'context'], ['chunks', 'chunks'], ['ingest_ms', 'ingest ms'], ['ms_per_1k_tokens', 'ms / 1K tokens'],
    ['step_ms', 'step ms'], ['chunk_cache_mib', 'chunk caches MiB'], ['peak_rss_mib', 'peak RSS MiB'],
  ]);
  if (linearity !== null) rep.note(`ingest time per 1K tokens, largest / smallest: ${linearity.toFixed(3)} (target < 1.3)`);
  void os;
  return { linearity };
}
