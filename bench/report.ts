// Benchmark records: JSON lines (--json) or a readable table per suite.
import os from 'node:os';

export type BenchRecord = Record<string, unknown> & { bench: string };

export const machine = {
  cpu: os.cpus()[0]?.model?.trim() ?? 'unknown',
  cores: os.availableParallelism?.() ?? os.cpus().length,
  memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
  node: process.version,
  platform: `${process.platform}-${process.arch}`,
};

export class Reporter {
  readonly records: BenchRecord[] = [];
  /** What went wrong (a bench program that failed or is missing, a wrong result): the run exits 1. */
  readonly failures: string[] = [];
  constructor(private readonly json: boolean) {}

  add(r: BenchRecord): void {
    const rec = { ...r, machine };
    this.records.push(rec);
    if (this.json) process.stdout.write(JSON.stringify(rec) + '\n');
  }

  note(text: string): void {
    if (!this.json) process.stdout.write(text + '\n');
    else process.stderr.write(text + '\n');
  }

  /** A failure: printed now (stderr) and again in the summary; the bench exits non-zero. */
  fail(text: string): void {
    this.failures.push(text);
    process.stderr.write(`FAILED: ${text}\n`);
  }

  /** Prints the failures (if any) on stderr; returns the exit code the run should end with. */
  finish(): number {
    if (!this.failures.length) return 0;
    process.stderr.write(`\nbench: ${this.failures.length} failure(s):\n${this.failures.map((f) => `  - ${f}`).join('\n')}\n`);
    return 1;
  }

  /** Prints a table of the records of `bench` with the given columns. */
  table(title: string, bench: string, columns: [string, string][]): void {
    if (this.json) return;
    const rows = this.records.filter((r) => r.bench === bench);
    if (!rows.length) return;
    const fmt = (v: unknown): string =>
      v === undefined || v === null
        ? '-'
        : typeof v === 'number'
          ? Number.isInteger(v)
            ? String(v)
            : Math.abs(v) >= 100
              ? v.toFixed(1)
              : Math.abs(v) >= 1
                ? v.toFixed(2)
                : v.toPrecision(3)
          : String(v);
    const cells = [columns.map((c) => c[1]), ...rows.map((r) => columns.map(([k]) => fmt(r[k])))];
    const w = columns.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
    const line = (r: string[]) => r.map((c, i) => c.padStart(w[i])).join('  ');
    process.stdout.write(`${title ? `\n${title}` : ''}\n${line(cells[0])}\n${w.map((x) => '-'.repeat(x)).join('  ')}\n`);
    for (const r of cells.slice(1)) process.stdout.write(line(r) + '\n');
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}
