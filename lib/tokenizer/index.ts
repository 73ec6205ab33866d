// Tokenizers from a checkpoint's tokenizer.json + tokenizer_config.json,
// through @huggingface/tokenizers.
import fs from 'node:fs';
import path from 'node:path';

// The package is ESM with a CommonJS build: types from the ESM side, code
// from its require() entry.
import type { Tokenizer as HfTokenizer } from '@huggingface/tokenizers' with { 'resolution-mode': 'import' };

// eslint-disable-next-line @typescript-eslint/no-require-imports
const hf = require('@huggingface/tokenizers') as { Tokenizer: typeof HfTokenizer };

import type { ChatMessage, StreamDecoder, Tokenizer } from './types';

export type { ChatMessage, StreamDecoder, Tokenizer } from './types';

function readJson(file: string): Record<string, unknown> {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
}

class HfBackedTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosIds: number[];
  readonly addBos: boolean;
  readonly hasChatTemplate = false;

  constructor(
    private readonly tok: HfTokenizer,
    config: Record<string, unknown>,
  ) {
    this.vocabSize = tok.get_vocab(true).size;
    const tokenOf = (v: unknown): string | null =>
      typeof v === 'string' ? v : v && typeof v === 'object' && 'content' in v ? String((v as { content: unknown }).content) : null;
    const bos = tokenOf(config.bos_token);
    const eos = tokenOf(config.eos_token);
    this.bosId = bos !== null ? (tok.token_to_id(bos) ?? null) : null;
    const eosId = eos !== null ? tok.token_to_id(eos) : undefined;
    this.eosIds = eosId !== undefined ? [eosId] : [];
    this.addBos = config.add_bos_token === true;
  }

  encode(text: string, opts: { addSpecial?: boolean } = {}): number[] {
    return this.tok.encode(text, { add_special_tokens: opts.addSpecial ?? true }).ids;
  }

  decode(ids: ArrayLike<number>, opts: { skipSpecial?: boolean } = {}): string {
    return this.tok.decode(Array.from(ids), { skip_special_tokens: opts.skipSpecial ?? false });
  }

  streamDecoder(opts: { skipSpecial?: boolean } = {}): StreamDecoder {
    const ids: number[] = [];
    let emitted = '';
    return {
      push: (id: number) => {
        ids.push(id);
        const text = this.decode(ids, opts);
        // Hold back a trailing replacement character: it may be half a UTF-8 sequence.
        const stable = text.endsWith('\uFFFD') ? text.slice(0, -1) : text;
        if (!stable.startsWith(emitted)) return '';
        const out = stable.slice(emitted.length);
        emitted = stable;
        return out;
      },
      flush: () => {
        const text = this.decode(ids, opts);
        const out = text.startsWith(emitted) ? text.slice(emitted.length) : '';
        emitted = text;
        return out;
      },
    };
  }

  applyChatTemplate(_messages: ChatMessage[]): string {
    throw new Error('this tokenizer has no chat template');
  }
}

/** Loads DIR/tokenizer.json (+ tokenizer_config.json); null when there is none. */
export async function loadTokenizer(dir: string): Promise<Tokenizer | null> {
  const file = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(file)) return null;
  const json = readJson(file);
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  const config = fs.existsSync(cfgFile) ? readJson(cfgFile) : {};
  return new HfBackedTokenizer(new hf.Tokenizer(json, config), config);
}
