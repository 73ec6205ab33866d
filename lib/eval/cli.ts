// What the evaluation commands (lib/cli/passkey.ts, ppl.ts, longbench.ts)
// share: checked FocusLLM flags, a progress line on stderr, output.
import { type Flags, UsageError } from '../cli/args';
import { focusFromFlags } from '../cli/common';
import { type FocusParams, resolveFocusParams } from '../plan';
import type { IngestProgress } from '../session';
import type { FocusOptions } from './decode';

const FLAG_OF: Record<string, string> = {
  localWindow: '--local-window',
  chunkSize: '--chunk-size',
  promptCap: '--prompt-cap',
  minChunkedLength: '--min-chunked-length',
};

/**
 * The focus flags as session options, checked up front: a bad value is a
 * UsageError naming the flag. A preset (a protocol's parameters) fills what
 * the flags leave unset; `note` says where it came from in errors.
 */
export function checkedFocus(f: Flags, preset?: { values: Partial<FocusParams>; note: string }): FocusOptions {
  const o: FocusOptions = { ...preset?.values, ...focusFromFlags(f) };
  const { cacheType: _c, bosId: _b, keepChunkCaches: _k, ...params } = o;
  try {
    resolveFocusParams(params);
  } catch (e) {
    const msg = (e as Error).message.replace(/focus option (\w+)/g, (_, k: string) => FLAG_OF[k] ?? k).replace(/\((\d+)\) must be larger than (\w+)/, (_, n, k: string) => `(${n}) must be larger than ${FLAG_OF[k] ?? k}`);
    throw new UsageError(preset ? `${msg} (${preset.note})` : msg);
  }
  return o;
}

/** The --protocol flag: "default" or "official". */
export function protocolFromFlags(f: Flags): 'default' | 'official' {
  const p = String(f.protocol ?? 'default');
  if (p !== 'default' && p !== 'official') throw new UsageError(`--protocol must be default or official, got '${p}'`);
  return p;
}

/** Whether argv sets --name (as "--name", "--name=v" or "--name v"), for flags whose default cannot tell. */
export function flagGiven(argv: readonly string[], name: string): boolean {
  return argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`));
}

/** One rewritable status line on stderr (only when enabled; cleared by done()). */
export class StatusLine {
  private last = 0;
  private shown = false;
  constructor(private readonly enabled: boolean) {}
  show(text: string, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    this.shown = true;
    process.stderr.write('\r\x1b[K' + text);
  }
  done(): void {
    if (this.enabled && this.shown) process.stderr.write('\r\x1b[K');
    this.shown = false;
  }
}

/** "ingest 3/8 chunks" / "ingest (native)" for an ingest progress report. */
export function ingestText(p: IngestProgress | undefined): string {
  if (!p) return 'ingest';
  if (p.phase === 'chunks') return `ingest ${p.chunksDone}/${p.chunksTotal} chunks`;
  return p.chunksTotal ? `ingest local window (${p.chunksTotal} chunks)` : 'ingest (native)';
}

/** Whether to draw progress: --progress when given, else when stderr is a terminal. */
export function progressWanted(f: Flags): boolean {
  return f.progress !== undefined ? Boolean(f.progress) : Boolean(process.stderr.isTTY);
}

/** Runs `fn` with an AbortSignal that SIGINT (Ctrl-C) trips. */
export async function withSigint<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  try {
    return await fn(ac.signal);
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

/** Shortens text for a table cell: one line, at most n characters. */
export function cell(text: string, n = 40): string {
  const one = JSON.stringify(text).slice(1, -1);
  return one.length > n ? one.slice(0, n - 1) + '…' : one;
}
