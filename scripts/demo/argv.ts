// Command-line flags of the demo scripts: --name value, with a fallback.

export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

/** A comma-separated list of integers of at least `min`; an Error names the flag. */
export function ints(name: string, fallback: string, min: number): number[] {
  const v = arg(name, fallback).split(',').map(Number);
  if (!v.every((x) => Number.isInteger(x) && x >= min)) throw new Error(`${name}: integers of at least ${min}, comma-separated, got ${arg(name, '')}`);
  return v;
}
