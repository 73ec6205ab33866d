// Fast text -> ids with exactly the library's results.
//
// The library (@huggingface/tokenizers) encodes a 400K-token document in
// 10-30 s: its BPE merge loop is slow per character and, for SentencePiece-style
// tokenizers (LLaMA-2: no pre-tokenizer, the whole text is one "word"), it runs
// on the whole text at once. This encoder walks the library's own pipeline
// (added-token split, normalizer, pre-tokenizer, BPE, post-processor) and
// changes only how the work is cut up:
//
//  1. The first pre-tokenizer step splits a section into words; every later
//     step and the model work word by word, so a word's tokens are a function
//     of the word alone: each distinct word is encoded once (cache).
//  2. A long word that reaches the BPE model is cut where no merge can ever
//     join the two sides: between code points x|y such that no merge (L, R)
//     has L ending in x and R starting in y. Symbols only grow by merging
//     neighbours, so the symbol left of the cut always ends in x and the one
//     right of it starts with y; the pair is never in the merge table and the
//     library's priority-queue BPE (lowest rank first, ties leftmost) does on
//     each side exactly what it does on the whole word. For LLaMA-2 every
//     "▁" that follows a non-"▁" is such a point: the text becomes words.
//  3. The post-processor adds the same tokens before and after any sequence
//     (checked at load with probe sequences), so they are added once by id.
//
// Anything this does not recognise (WordPiece/Unigram models, BPE with word
// suffixes for the cut, unusual post-processors, a library version with other
// internals) goes to the library's own encode: correct, only slower.
import { fuseUnk, hf, internals, type HfInternals, type HfModel, type HfPreTokenizer, type HfTokenizer } from './hf';

const utf8 = new TextEncoder();

/** Cache entry: a word's ids, and whether any of them is an unknown token (for fuse_unk). */
interface Entry {
  ids: number[];
  unk: boolean;
}

/** Words longer than this are neither cached nor looked up: they rarely repeat. */
const MAX_CACHED_WORD = 256;
/** Words longer than this go through the cut of step 2 (short ones gain nothing from it). */
const MIN_CUT_WORD = 32;
/** Caches are dropped when they reach this many entries (memory bound). */
const MAX_CACHE_ENTRIES = 1 << 19;

/** Ids added around every encoded sequence by the post-processor. */
export interface SpecialFrame {
  prefix: number[];
  suffix: number[];
}

/** Why the fast path is not used for a tokenizer (null when it is). */
export function fastPathBlocker(tok: HfTokenizer): string | null {
  const t = internals(tok);
  if (!t) return 'this version of @huggingface/tokenizers has other internals';
  if (!(t.model instanceof hf.BPE) || typeof t.model.bpe !== 'function') return `model type is not BPE`;
  if (t.remove_space === true || t.do_lowercase_and_remove_accent) return 'remove_space / lowercase options';
  if (postProcessorFrame(t, true) === null || postProcessorFrame(t, false) === null) return 'unrecognised post-processor';
  return null;
}

/**
 * The token strings the post-processor puts before and after a single
 * sequence, or null when it does something else than prefix + A + suffix.
 */
export function postProcessorFrame(t: HfInternals, addSpecial: boolean): { prefix: string[]; suffix: string[] } | null {
  const pp = t.post_processor;
  if (!pp) return { prefix: [], suffix: [] };
  const a = '\u0000focusllm-probe-a\u0000';
  const b = '\u0000focusllm-probe-b\u0000';
  try {
    const one = pp([a], null, addSpecial).tokens;
    const at = one.indexOf(a);
    if (at < 0 || one.lastIndexOf(a) !== at) return null;
    const prefix = one.slice(0, at);
    const suffix = one.slice(at + 1);
    const same = (got: string[], want: string[]) => got.length === want.length && got.every((x, i) => x === want[i]);
    if (!same(pp([a, b], null, addSpecial).tokens, [...prefix, a, b, ...suffix])) return null;
    if (!same(pp([], null, addSpecial).tokens, [...prefix, ...suffix])) return null;
    if ([...prefix, ...suffix].some((s) => typeof s !== 'string')) return null;
    return { prefix, suffix };
  } catch {
    return null;
  }
}

/** Pairs (last code point of L, first code point of R) over all merges (L, R). */
function mergeBoundaries(model: HfModel): Map<number, Set<number>> {
  const pairs = new Map<number, Set<number>>();
  for (const m of model.merges ?? []) {
    const [l, r] = m;
    if (!l || !r) continue; // an empty side never matches a symbol
    let last = l.codePointAt(l.length - 1)!;
    // a surrogate pair at the end of L: its code point starts one unit earlier
    if (last >= 0xdc00 && last <= 0xdfff && l.length >= 2) {
      const hi = l.charCodeAt(l.length - 2);
      if (hi >= 0xd800 && hi <= 0xdbff) last = l.codePointAt(l.length - 2)!;
    }
    const first = r.codePointAt(0)!;
    let set = pairs.get(last);
    if (!set) pairs.set(last, (set = new Set()));
    set.add(first);
  }
  return pairs;
}

export class FastEncoder {
  private readonly t: HfInternals;
  private readonly model: HfModel;
  private readonly bpe: (word: string) => string[];
  /** pre-tokenizer as a flat list of word-local steps */
  private readonly steps: HfPreTokenizer[];
  /** null when words must not be cut (BPE word suffixes) */
  private readonly boundaries: Map<number, Set<number>> | null;
  private readonly byteTokens: (string | undefined)[] = [];
  /** words of the first pre-tokenizer step -> ids; [0] for section 0, [1] for the others (Metaspace "first") */
  private readonly wordCache = [new Map<string, Entry>(), new Map<string, Entry>()];
  /** pieces of cut words -> ids */
  private readonly pieceCache = new Map<string, Entry>();
  private readonly unkId: number | undefined;

  constructor(tok: HfTokenizer) {
    const t = internals(tok);
    if (!t || fastPathBlocker(tok) !== null) throw new Error('FastEncoder: unsupported tokenizer');
    this.t = t;
    this.model = t.model;
    this.bpe = t.model.bpe!.bind(t.model);
    this.unkId = t.model.unk_token_id;
    this.steps = flattenPreTokenizer(t.pre_tokenizer);
    const suffixes = t.model.end_of_word_suffix || t.model.continuing_subword_suffix;
    this.boundaries = suffixes ? null : mergeBoundaries(t.model);
    for (let b = 0; b < 256; b++) {
      const s = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
      this.byteTokens.push(t.model.tokens_to_ids.has(s) ? s : undefined);
    }
  }

  /** Ids of `text` without the post-processor's special tokens. */
  encodeBody(text: string): number[] {
    const t = this.t;
    const out: number[] = [];
    // From here to the end of the method: the library's encode_text, step by step.
    const sections = t.splitter_unnormalized.split(text);
    stripAround(sections, t.added_tokens_map);
    for (let si = 0; si < sections.length; si++) {
      let s = sections[si];
      if (s.length === 0) continue;
      const added = t.added_tokens_map.get(s);
      if (added) {
        out.push(added.id);
        continue;
      }
      if (t.normalizer !== null) s = t.normalizer(s);
      if (s.length === 0) continue;
      const subs = t.splitter_normalized.split(s);
      stripAround(subs, t.added_tokens_map);
      for (const sub of subs) {
        if (sub.length === 0) continue;
        const a = t.added_tokens_map.get(sub);
        if (a) out.push(a.id);
        else this.encodeSection(sub, si, out);
      }
    }
    return out;
  }

  /** The library's `this.model(this.pre_tokenizer(sub, { section_index }))`, appended to `out`. */
  private encodeSection(sub: string, sectionIndex: number, out: number[]): void {
    const opts = { section_index: sectionIndex };
    const words = this.steps.length ? this.steps[0].pre_tokenize(sub, opts) : [sub];
    const cache = this.wordCache[sectionIndex === 0 ? 0 : 1];
    const start = out.length;
    let unk = false;
    for (const w of words) {
      let e = w.length <= MAX_CACHED_WORD ? cache.get(w) : undefined;
      if (!e) {
        e = this.encodeWord(w, opts);
        if (w.length <= MAX_CACHED_WORD) {
          if (cache.size >= MAX_CACHE_ENTRIES) cache.clear();
          cache.set(w, e);
        }
      }
      unk ||= e.unk;
      for (const id of e.ids) out.push(id);
    }
    if (unk && this.model.fuse_unk) {
      // Rare: unknown tokens with fuse_unk. Redo the section with token strings, as the library does.
      out.length = start;
      const strs: string[] = [];
      for (const w of words) for (const fw of this.restSteps(w, opts)) this.bpeWord(fw, strs);
      for (const s of fuseUnk(strs, this.model.tokens_to_ids, this.unkId)) out.push(this.idOf(s));
    }
  }

  /** A first-step word through the remaining pre-tokenizer steps and the model. */
  private encodeWord(w: string, opts: { section_index: number }): Entry {
    const ids: number[] = [];
    let unk = false;
    for (const fw of this.restSteps(w, opts)) {
      const m = this.model;
      if (m.ignore_merges && m.tokens_to_ids.has(fw)) {
        // the library's encode: a word that is a token is that token (no merges)
        const e = this.entryOf([fw]);
        ids.push(...e.ids);
        unk ||= e.unk;
        continue;
      }
      if (this.boundaries === null || fw.length < MIN_CUT_WORD) {
        const e = this.entryOf(this.mapTokens(this.bpe(fw)));
        ids.push(...e.ids);
        unk ||= e.unk;
        continue;
      }
      this.forEachPiece(fw, (piece) => {
        let e = piece.length <= MAX_CACHED_WORD ? this.pieceCache.get(piece) : undefined;
        if (!e) {
          e = this.entryOf(this.mapTokens(this.bpe(piece)));
          if (piece.length <= MAX_CACHED_WORD) {
            if (this.pieceCache.size >= MAX_CACHE_ENTRIES) this.pieceCache.clear();
            this.pieceCache.set(piece, e);
          }
        }
        for (const id of e.ids) ids.push(id);
        unk ||= e.unk;
      });
    }
    return { ids, unk };
  }

  private restSteps(w: string, opts: { section_index: number }): string[] {
    let words = [w];
    for (let i = 1; i < this.steps.length; i++) words = this.steps[i].pre_tokenize(words, opts);
    return words;
  }

  /** Token strings of one final word (library's model.encode for one word), appended to `out`. */
  private bpeWord(fw: string, out: string[]): void {
    if (this.model.ignore_merges && this.model.tokens_to_ids.has(fw)) out.push(fw);
    else out.push(...this.mapTokens(this.bpe(fw)));
  }

  /** The library's model.encode loop body: vocabulary tokens, byte fallback, unknown. */
  private mapTokens(bpeTokens: string[]): string[] {
    const m = this.model;
    const out: string[] = [];
    for (const tk of bpeTokens) {
      if (m.tokens_to_ids.has(tk)) out.push(tk);
      else if (m.byte_fallback) {
        const bytes = Array.from(utf8.encode(tk), (b) => this.byteTokens[b]);
        if (bytes.every((x) => x !== undefined)) out.push(...(bytes as string[]));
        else if (m.unk_token != null) out.push(m.unk_token);
      } else if (m.unk_token != null) out.push(m.unk_token);
    }
    return out;
  }

  /** The library's token -> id mapping (encode's last step). */
  idOf(s: string): number {
    return this.t.added_tokens_map.get(s)?.id ?? this.model.tokens_to_ids.get(s) ?? (this.unkId as number);
  }

  private entryOf(tokens: string[]): Entry {
    const m = this.model;
    let unk = false;
    const ids = tokens.map((s) => {
      if ((m.tokens_to_ids.get(s) ?? this.unkId) === this.unkId) unk = true;
      return this.idOf(s);
    });
    return { ids, unk };
  }

  /** Calls `fn` on the pieces of `w` between safe cut points (see the header, step 2). */
  private forEachPiece(w: string, fn: (piece: string) => void): void {
    const pairs = this.boundaries!;
    let start = 0;
    let prev = w.codePointAt(0)!;
    let i = prev > 0xffff ? 2 : 1;
    while (i < w.length) {
      const cp = w.codePointAt(i)!;
      const after = pairs.get(prev);
      if (after === undefined || !after.has(cp)) {
        fn(w.slice(start, i));
        start = i;
      }
      prev = cp;
      i += cp > 0xffff ? 2 : 1;
    }
    fn(w.slice(start));
  }
}

/** The library's lstrip/rstrip handling around added tokens (in place). */
function stripAround(parts: string[], added: Map<string, { lstrip: boolean; rstrip: boolean }>): void {
  parts.forEach((p, i) => {
    const a = added.get(p);
    if (!a) return;
    if (a.lstrip && i > 0) parts[i - 1] = parts[i - 1].trimEnd();
    if (a.rstrip && i < parts.length - 1) parts[i + 1] = parts[i + 1].trimStart();
  });
}

/** A pre-tokenizer as its list of word-local steps (nested Sequences flattened, as they compose). */
function flattenPreTokenizer(p: HfPreTokenizer | null): HfPreTokenizer[] {
  if (p === null) return [];
  if (p instanceof hf.SequencePreTokenizer && Array.isArray(p.tokenizers))
    return p.tokenizers.flatMap((x) => flattenPreTokenizer(x));
  return [p];
}
