// Streaming detokenization: text pieces whose concatenation (all pushes, then
// flush) equals the library's decode of all the ids, at O(1) amortised cost per
// token (nothing is ever decoded twice).
//
// The library's decode is: ids -> token strings -> (skip special) -> decoder
// steps -> optional clean_up_tokenization. The decoders of LLaMA-family
// checkpoints are of two shapes, streamed here step by step:
//
//  - SentencePiece shape: per-token steps (Replace "▁"->" ", Strip, Metaspace),
//    then ByteFallback (a run of <0xNN> tokens is one UTF-8 decode), Fuse, and
//    a Strip of leading spaces of the whole text. A byte run goes through a
//    streaming TextDecoder, which by the WHATWG encoding spec produces the same
//    characters as one decode of the whole run, and never half a character.
//  - ByteLevel: tokens map to bytes, UTF-8-decoded in groups separated by
//    added tokens (which are copied verbatim); streamed the same way.
//
// clean_up_tokenization (" ." -> ".", " n't" -> "n't", ...) is a chain of
// global replaces that only delete spaces. Cutting the text after a character
// c that is not " " or "'" (and, when c is n, v or r, not right after " " or
// "'") splits it into parts that clean up independently: every pattern that
// could straddle the cut needs c at a non-final position, which those are not,
// and c is never deleted. The stream holds back text only up to such a cut.
//
// Any other decoder (WordPiece, BPE suffixes, CTC, ...) gets a stream that
// keeps the ids and emits the decoded text at flush(): correct, not incremental.
import { cleanUpTokenization, hf, type HfDecoderStep } from './hf';
import type { StreamDecoder } from './types';

/** What a stream needs from its tokenizer. */
export interface StreamSource {
  /** id -> token string (the library's model.vocab) */
  vocab: string[];
  /** ids whose token string is special (skipped with skipSpecial) */
  isSkipped(token: string): boolean;
  /** added tokens' contents (ByteLevel copies them verbatim) */
  addedContents: Set<string>;
  decoder: HfDecoderStep | null;
  cleanup: boolean;
  /** BPE end-of-word suffix (the library replaces it after decoding) */
  endOfWordSuffix: string | null | undefined;
  checkId(id: number): void;
  decode(ids: number[], skipSpecial: boolean): string;
}

type Plan =
  | { kind: 'pieces'; perToken: HfDecoderStep[]; byteFallback: boolean; strip: { content: string; start: number } | null }
  | { kind: 'bytelevel' }
  | { kind: 'whole' };

/** How a decoder is streamed (computed once per tokenizer). */
export function streamPlan(decoder: HfDecoderStep | null, endOfWordSuffix: string | null | undefined): Plan {
  if (!decoder || endOfWordSuffix) return { kind: 'whole' };
  if (decoder instanceof hf.ByteLevelDecoder) return { kind: 'bytelevel' };
  const steps = decoder instanceof hf.SequenceDecoder ? (decoder.decoders ?? []) : [decoder];
  const perToken: HfDecoderStep[] = [];
  let i = 0;
  // 1. steps that map each token on its own (Metaspace also looks at "is this the first token")
  for (; i < steps.length; i++) {
    const s = steps[i];
    if (s instanceof hf.ReplaceDecoder || s instanceof hf.MetaspaceDecoder || s instanceof hf.StripDecoder) perToken.push(s);
    else break;
  }
  let byteFallback = false;
  if (i < steps.length && steps[i] instanceof hf.ByteFallbackDecoder) {
    byteFallback = true;
    i++;
  }
  // 2. after Fuse there is one string: only a Strip of its start is streamed
  let strip: { content: string; start: number } | null = null;
  if (i < steps.length) {
    if (!(steps[i] instanceof hf.FuseDecoder)) return { kind: 'whole' };
    for (i++; i < steps.length; i++) {
      const s = steps[i];
      if (s instanceof hf.FuseDecoder) continue;
      if (s instanceof hf.StripDecoder && !strip && (s.stop ?? 0) === 0) {
        strip = { content: s.content ?? '', start: s.start ?? 0 };
        continue;
      }
      return { kind: 'whole' };
    }
  }
  return { kind: 'pieces', perToken, byteFallback, strip };
}

/** The library's ByteLevel byte table (GPT-2's bytes_to_unicode), as code point -> byte. */
const UNICODE_TO_BYTE: Map<string, number> = (() => {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return new Map(bs.map((b, i) => [String.fromCharCode(cs[i]), b]));
})();

/** A token string of ByteFallback's form <0xNN>, as the library recognises it; else null. */
function byteOf(s: string): number | null {
  if (s.length !== 6 || !s.startsWith('<0x') || !s.endsWith('>')) return null;
  const b = parseInt(s.slice(3, 5), 16);
  return isNaN(b) ? null : b;
}

/**
 * clean_up_tokenization applied piecewise: text goes in, cleaned text comes out
 * up to the last cut where the parts clean up independently (see the header).
 */
class CleanupStage {
  private buf = '';
  /** the raw character before `buf` ('' at the start) */
  private before = '';

  push(text: string): string {
    if (!text) return '';
    const from = this.buf.length;
    this.buf += text;
    let cut = -1;
    for (let k = this.buf.length; k > from; k--) {
      if (this.safeAfter(k)) {
        cut = k;
        break;
      }
    }
    if (cut < 0) return '';
    const out = cleanUpTokenization(this.buf.slice(0, cut));
    this.before = this.buf[cut - 1];
    this.buf = this.buf.slice(cut);
    return out;
  }

  flush(): string {
    const out = cleanUpTokenization(this.buf);
    this.buf = '';
    this.before = '';
    return out;
  }

  /** Can the text be cut after buf[k-1]? */
  private safeAfter(k: number): boolean {
    const c = this.buf[k - 1];
    if (c === ' ' || c === "'") return false;
    if (c === 'n' || c === 'v' || c === 'r') {
      const p = k >= 2 ? this.buf[k - 2] : this.before;
      if (p === ' ' || p === "'") return false;
    }
    return true;
  }
}

/** A stream decoder over `src`, per `plan`. */
export function makeStreamDecoder(src: StreamSource, plan: Plan, skipSpecial: boolean): StreamDecoder {
  if (plan.kind === 'whole') return wholeStream(src, skipSpecial);
  const cleanup = src.cleanup ? new CleanupStage() : null;
  const out = (raw: string) => (cleanup ? cleanup.push(raw) : raw);
  let index = 0; // tokens kept so far (after skipping special ones)
  let utf8 = plan.kind === 'bytelevel' ? new TextDecoder('utf-8', { ignoreBOM: true }) : new TextDecoder();
  let open = false; // a UTF-8 run / byte group is in the TextDecoder

  // The token string of `id`, or null when it is skipped.
  const tokenOf = (id: number): string | null => {
    src.checkId(id);
    const tok = src.vocab[id];
    return skipSpecial && src.isSkipped(tok) ? null : tok;
  };
  const closeRun = (): string => {
    if (!open) return '';
    open = false;
    return utf8.decode(); // end of stream: a pending partial character becomes U+FFFD
  };

  if (plan.kind === 'bytelevel') {
    return {
      push(id: number): string {
        const tok = tokenOf(id);
        if (tok === null) return '';
        if (src.addedContents.has(tok)) return out(closeRun() + tok);
        const bytes = new Uint8Array(tok.length); // one byte per code point, at most one per UTF-16 unit
        let n = 0;
        for (const ch of tok) bytes[n++] = UNICODE_TO_BYTE.get(ch) ?? 0; // the library's Uint8Array makes an unknown char 0
        open = true;
        return out(utf8.decode(bytes.subarray(0, n), { stream: true }));
      },
      flush(): string {
        const rest = out(closeRun());
        const tail = cleanup ? cleanup.flush() : '';
        utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
        return rest + tail;
      },
    };
  }

  const { perToken, byteFallback, strip } = plan;
  let stripped = 0;
  let stripDone = strip === null || strip.start <= 0;
  // Strip (after Fuse): drop up to `start` leading `content` characters of the whole text.
  const stripStart = (text: string): string => {
    if (stripDone || !text) return text;
    let k = 0;
    while (k < text.length && stripped < strip!.start && text[k] === strip!.content) {
      k++;
      stripped++;
    }
    if (k < text.length || stripped >= strip!.start) stripDone = true;
    return text.slice(k);
  };
  return {
    push(id: number): string {
      let tok = tokenOf(id);
      if (tok === null) return '';
      // per-token steps see the token's position: run them on [token] or ['', token]
      for (const step of perToken) tok = index === 0 ? step.decode_chain([tok])[0] : step.decode_chain(['', tok])[1];
      index++;
      const b = byteFallback ? byteOf(tok) : null;
      let raw: string;
      if (b !== null) {
        open = true;
        raw = utf8.decode(Uint8Array.of(b), { stream: true });
      } else raw = closeRun() + tok;
      return out(stripStart(raw));
    },
    flush(): string {
      const rest = out(stripStart(closeRun()));
      const tail = cleanup ? cleanup.flush() : '';
      index = 0;
      stripped = 0;
      stripDone = strip === null || strip.start <= 0;
      utf8 = new TextDecoder();
      return rest + tail;
    },
  };
}

/** The fallback: keep the ids, decode them all at flush. */
function wholeStream(src: StreamSource, skipSpecial: boolean): StreamDecoder {
  let ids: number[] = [];
  return {
    push(id: number): string {
      src.checkId(id);
      ids.push(id);
      return '';
    },
    flush(): string {
      const text = ids.length ? src.decode(ids, skipSpecial) : '';
      ids = [];
      return text;
    },
  };
}
