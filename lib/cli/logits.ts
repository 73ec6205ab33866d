// focusllm logits: the machine-checkable contract command.
//   {"logits": [[...], ...]}: row 0 after all of IDS, row i after also feeding
//   CONT[0..i-1] one token at a time (KV cache / FocusLLM steps).
import fs from 'node:fs';

import { parseFlags, usage, UsageError, type FlagSpec } from './args';
import type { Command } from './command';
import { FOCUS_FLAGS, focusFromFlags, MODEL_FLAGS, modelFromFlags } from './common';

const SPEC: Record<string, FlagSpec> = {
  ...MODEL_FLAGS,
  ids: { type: 'string', help: 'JSON file: an array of token ids, or an object with "ids"', required: true },
  continuation: { type: 'string', help: 'JSON file: token ids fed one at a time after IDS (array, or "continuation")' },
  ...FOCUS_FLAGS,
  // The exactness contract: float32 chunk caches unless asked otherwise.
  'cache-type': { type: 'string', help: 'chunk cache storage: auto, f32, f16, bf16', default: 'f32' },
};

export function readIdList(file: string, key: string, flag: string): number[] {
  let v: unknown;
  try {
    v = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`--${flag} ${file}: ${(e as Error).message}`);
  }
  const arr = Array.isArray(v) ? v : (v as Record<string, unknown> | null)?.[key];
  if (!Array.isArray(arr) || !arr.every((x) => Number.isInteger(x) && x >= 0))
    throw new UsageError(`--${flag} ${file}: expected a JSON array of token ids (or an object with "${key}")`);
  return arr as number[];
}

export const command: Command = {
  usage: () =>
    usage('logits', 'Print next-token logits as JSON: row 0 after IDS, row i after CONT[0..i-1].', SPEC),
  async run(argv) {
    const f = parseFlags(argv, SPEC);
    const ids = readIdList(String(f.ids), 'ids', 'ids');
    const cont = f.continuation ? readIdList(String(f.continuation), 'continuation', 'continuation') : [];
    const focus = focusFromFlags(f);
    const model = await modelFromFlags(f, { tokenizer: false });
    try {
      const rows = await model.logits(ids, { continuation: cont, focus });
      // Shortest round-trip float32 text keeps the file small and exact.
      const out = rows.map((r) => '[' + Array.from(r, (x) => Number.isFinite(x) ? String(x) : 'null').join(',') + ']');
      process.stdout.write('{"logits": [' + out.join(',\n') + ']}\n');
      return 0;
    } finally {
      model.dispose();
    }
  },
};
