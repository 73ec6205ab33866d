// Flags and helpers shared by the CLI commands.
import { type FlagSpec, type Flags, UsageError } from './args';
import { loadModel, type Model } from '../model';
import { resolveModelDir, SHIPPED_MODEL } from '../shipped';
import { parseStepMode, type SessionOptions, type StepMode } from '../session';

/** --model, --backend, --threads, --max-batch-tokens */
export const MODEL_FLAGS: Record<string, FlagSpec> = {
  model: { type: 'string', help: 'checkpoint folder (config.json + *.safetensors [+ tokenizer.json]); default: the shipped model focus-tiny' },
  backend: { type: 'string', help: 'cpu, cuda or auto', default: 'auto' },
  threads: { type: 'int', help: 'CPU threads (default: all cores)' },
  'max-batch-tokens': { type: 'int', help: 'rows per native micro-batch (default: backend-specific)' },
};

/** The FocusLLM parameters (DESIGN defaults when absent). */
export const FOCUS_FLAGS: Record<string, FlagSpec> = {
  'local-window': { type: 'int', help: 'tokens of local context (default 2048)' },
  'chunk-size': { type: 'int', help: 'memory chunk length (default 2048)' },
  'prompt-cap': { type: 'int', help: 'cap on the dynamic prompt (default 512)' },
  'min-chunked-length': { type: 'int', help: 'inputs shorter than this run natively (default 4096)' },
  'cache-type': { type: 'string', help: 'chunk cache storage: auto, f32, f16, bf16', default: 'auto' },
  'step-mode': {
    type: 'string',
    help: 'how a step recomputes the local window: exact (default, as published), incremental, refresh:N, tail:N (README, Step modes)',
  },
};

export async function modelFromFlags(f: Flags, opts: { tokenizer?: boolean } = {}): Promise<Model> {
  const backend = String(f.backend ?? 'auto');
  if (!['cpu', 'cuda', 'auto'].includes(backend)) throw new UsageError(`--backend must be cpu, cuda or auto, got '${backend}'`);
  const { dir, shipped } = resolveModelDir(f.model === undefined ? undefined : String(f.model));
  if (shipped) process.stderr.write(`focusllm: using the shipped model ${SHIPPED_MODEL} (${dir}); --model DIR picks another\n`);
  return loadModel(dir, {
    backend: backend as 'cpu' | 'cuda' | 'auto',
    threads: f.threads as number | undefined,
    maxBatchTokens: f['max-batch-tokens'] as number | undefined,
    tokenizer: opts.tokenizer,
  });
}

export function focusFromFlags(f: Flags): SessionOptions {
  const o: SessionOptions = {};
  if (f['local-window'] !== undefined) o.localWindow = f['local-window'] as number;
  if (f['chunk-size'] !== undefined) o.chunkSize = f['chunk-size'] as number;
  if (f['prompt-cap'] !== undefined) o.promptCap = f['prompt-cap'] as number;
  if (f['min-chunked-length'] !== undefined) o.minChunkedLength = f['min-chunked-length'] as number;
  const ct = String(f['cache-type'] ?? 'auto');
  if (!['auto', 'f32', 'f16', 'bf16'].includes(ct)) throw new UsageError(`--cache-type must be auto, f32, f16 or bf16, got '${ct}'`);
  o.cacheType = ct as SessionOptions['cacheType'];
  if (f['step-mode'] !== undefined) {
    try {
      parseStepMode(f['step-mode'], '--step-mode');
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    o.stepMode = f['step-mode'] as StepMode;
  }
  return o;
}

/** A fixed-width text table for terminals. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  const line = (r: (string | number)[]) => r.map((c, i) => String(c ?? '').padEnd(widths[i])).join('  ').trimEnd();
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export function formatNumber(x: number): string {
  if (Number.isInteger(x)) return String(x);
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(1) : a >= 1 ? x.toFixed(3) : x.toPrecision(3);
}
