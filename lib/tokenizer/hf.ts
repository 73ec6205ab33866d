// The one door to @huggingface/tokenizers. The package is ESM with a CommonJS
// build: types come from the ESM side, code from its require() entry.
//
// The fast encoder and the streaming decoder reuse the library's own parts
// (normalizer, pre-tokenizer steps, BPE merge loop, decoder steps) and only
// change how the work is split. They reach a few fields that the library's
// typings mark private; `internals()` checks that they are there, and the
// callers fall back to the library's public encode/decode when they are not.
import type { Tokenizer as HfTokenizerClass } from '@huggingface/tokenizers' with { 'resolution-mode': 'import' };

/** A library class, for instanceof checks. */
type Class = abstract new (...args: never[]) => unknown;

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const hf = require('@huggingface/tokenizers') as {
  Tokenizer: typeof HfTokenizerClass;
  BPE: Class;
  SequencePreTokenizer: Class;
  SequenceDecoder: Class;
  ReplaceDecoder: Class;
  MetaspaceDecoder: Class;
  StripDecoder: Class;
  ByteFallbackDecoder: Class;
  FuseDecoder: Class;
  ByteLevelDecoder: Class;
};

export type HfTokenizer = HfTokenizerClass;

/** A library object that is also callable (the library's `Callable`). */
type Callable<A extends unknown[], R> = ((...args: A) => R) & { config?: Record<string, unknown> };

export interface PreTokenizerOptions {
  section_index?: number;
}

export interface HfPreTokenizer extends Callable<[string, PreTokenizerOptions?], string[]> {
  pre_tokenize(text: string | string[], options?: PreTokenizerOptions): string[];
  /** set on Sequence pre-tokenizers */
  tokenizers?: (HfPreTokenizer | null)[];
}

export interface HfModel {
  vocab: string[];
  tokens_to_ids: Map<string, number>;
  unk_token_id?: number;
  unk_token?: string | null;
  fuse_unk: boolean;
  end_of_word_suffix?: string | null;
  // BPE only:
  merges?: [string, string][];
  bpe?(word: string): string[];
  ignore_merges?: boolean;
  byte_fallback?: boolean;
  continuing_subword_suffix?: string | null;
}

export interface HfAddedToken {
  content: string;
  id: number;
  lstrip: boolean;
  rstrip: boolean;
  special: boolean;
}

export interface HfDecoderStep {
  config: { type?: string; [k: string]: unknown };
  decode_chain(tokens: string[]): string[];
  /** Sequence decoders */
  decoders?: HfDecoderStep[];
  /** Strip decoders */
  content?: string;
  start?: number;
  stop?: number;
}

/** The parts of a library Tokenizer the fast paths use. */
export interface HfInternals {
  normalizer: Callable<[string], string> | null;
  pre_tokenizer: HfPreTokenizer | null;
  model: HfModel;
  post_processor: Callable<[string[], string[] | null, boolean], { tokens: string[] }> | null;
  decoder: HfDecoderStep | null;
  splitter_unnormalized: { split(text: string): string[] };
  splitter_normalized: { split(text: string): string[] };
  added_tokens: HfAddedToken[];
  added_tokens_map: Map<string, HfAddedToken>;
  special_tokens: unknown[];
  remove_space: unknown;
  do_lowercase_and_remove_accent: boolean;
  clean_up_tokenization_spaces: boolean;
}

/** The library tokenizer's internals, or null when this version lays them out differently. */
export function internals(tok: HfTokenizer): HfInternals | null {
  const t = tok as unknown as Partial<HfInternals>;
  const ok =
    t.model !== undefined &&
    Array.isArray(t.model.vocab) &&
    t.model.tokens_to_ids instanceof Map &&
    typeof t.splitter_unnormalized?.split === 'function' &&
    typeof t.splitter_normalized?.split === 'function' &&
    Array.isArray(t.added_tokens) &&
    t.added_tokens_map instanceof Map &&
    Array.isArray(t.special_tokens) &&
    'normalizer' in t &&
    'pre_tokenizer' in t &&
    'post_processor' in t &&
    'decoder' in t;
  return ok ? (t as HfInternals) : null;
}

/** The library's own fuse_unk (merges runs of unknown tokens), repeated here word for word. */
export function fuseUnk(arr: string[], tokensToIds: Map<string, number>, unkId: number | undefined): string[] {
  const fused: string[] = [];
  let i = 0;
  while (i < arr.length) {
    fused.push(arr[i]);
    const id = tokensToIds.get(arr[i]) ?? unkId;
    if (id !== unkId) {
      ++i;
      continue;
    }
    while (++i < arr.length && (tokensToIds.get(arr[i]) ?? unkId) === unkId) {
      if (tokensToIds.get(fused[fused.length - 1]) !== unkId) fused[fused.length - 1] += arr[i];
    }
  }
  return fused;
}

/** The library's clean_up_tokenization (decode's clean_up_tokenization_spaces), repeated here. */
export function cleanUpTokenization(text: string): string {
  return text
    .replace(/ \./g, '.')
    .replace(/ \?/g, '?')
    .replace(/ !/g, '!')
    .replace(/ ,/g, ',')
    .replace(/ ' /g, "'")
    .replace(/ n't/g, "n't")
    .replace(/ 'm/g, "'m")
    .replace(/ 's/g, "'s")
    .replace(/ 've/g, "'ve")
    .replace(/ 're/g, "'re");
}
