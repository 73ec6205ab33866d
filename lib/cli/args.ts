// A small command-line parser: --flag value, --flag=value, boolean switches.

export interface FlagSpec {
  /** 'string' | 'int' | 'number' | 'bool' | 'list' (comma-separated) */
  type: 'string' | 'int' | 'number' | 'bool' | 'list';
  help: string;
  default?: string | number | boolean;
  required?: boolean;
}

export type Flags = Record<string, string | number | boolean | string[] | undefined>;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Parses argv (without the command name) against `spec`; throws UsageError naming the flag. */
export function parseFlags(argv: string[], spec: Record<string, FlagSpec>): Flags {
  const out: Flags = {};
  for (const [k, s] of Object.entries(spec)) if (s.default !== undefined) out[k] = s.default;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument '${a}'`);
    let name = a.slice(2);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const s = spec[name];
    if (!s) throw new UsageError(`unknown option --${name}`);
    if (s.type === 'bool') {
      out[name] = value === undefined ? true : !/^(0|false|no|off)$/i.test(value);
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value`);
      value = argv[++i];
    }
    if (s.type === 'int' || s.type === 'number') {
      const v = parseNumber(value);
      if (!Number.isFinite(v) || (s.type === 'int' && !Number.isInteger(v)))
        throw new UsageError(`--${name} must be ${s.type === 'int' ? 'an integer' : 'a number'}, got '${value}'`);
      out[name] = v;
    } else if (s.type === 'list') {
      out[name] = value.split(',').map((x) => x.trim()).filter(Boolean);
    } else {
      out[name] = value;
    }
  }
  for (const [k, s] of Object.entries(spec))
    if (s.required && out[k] === undefined) throw new UsageError(`--${k} is required`);
  return out;
}

/** "4k" -> 4096, "1.5m" -> 1572864, "128" -> 128. */
export function parseNumber(v: string): number {
  const m = /^\s*(-?[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kKmM]?)\s*$/.exec(v);
  if (!m) return NaN;
  const base = Number(m[1]);
  const mult = m[2] === '' ? 1 : m[2].toLowerCase() === 'k' ? 1024 : 1024 * 1024;
  return base * mult;
}

export function usage(command: string, summary: string, spec: Record<string, FlagSpec>): string {
  const lines = [`usage: focusllm ${command} [options]`, '', summary, '', 'options:'];
  for (const [k, s] of Object.entries(spec)) {
    const arg = s.type === 'bool' ? '' : ` <${s.type}>`;
    const dflt = s.default !== undefined ? ` (default ${String(s.default)})` : s.required ? ' (required)' : '';
    lines.push(`  --${k}${arg}`.padEnd(32) + s.help + dflt);
  }
  return lines.join('\n');
}
