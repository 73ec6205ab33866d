// The tokenizer contract the rest of the package relies on (lib/tokenizer/index.ts implements it).

export interface ChatMessage {
  role: string;
  content: string;
}

/** Turns token ids into text pieces that never split a UTF-8 character. */
export interface StreamDecoder {
  /** Feeds one token; returns the text it completes (possibly ''). */
  push(id: number): string;
  /** Returns what is left (an incomplete character becomes U+FFFD). */
  flush(): string;
}

export interface Tokenizer {
  readonly vocabSize: number;
  /** BOS id, or null when the tokenizer has none */
  readonly bosId: number | null;
  readonly eosIds: number[];
  /** tokenizer_config.json's add_bos_token (encode adds BOS when true) */
  readonly addBos: boolean;
  /** Ids of `text`; BOS is added when addSpecial (default true) and the config asks for it. */
  encode(text: string, opts?: { addSpecial?: boolean }): number[];
  decode(ids: ArrayLike<number>, opts?: { skipSpecial?: boolean }): string;
  streamDecoder(opts?: { skipSpecial?: boolean }): StreamDecoder;
  /** The id of a token string (added tokens included), or null. */
  tokenToId(token: string): number | null;
  /** The token string of an id, or null when the id is not in the vocabulary. */
  idToToken(id: number): string | null;
  /** True when the checkpoint has a chat template (its "default" one, when it has several). */
  readonly hasChatTemplate: boolean;
  /**
   * Renders messages with the checkpoint's chat template ("default", or the named
   * one); throws when it has none. The text already holds the template's special
   * tokens (BOS...): encode it with { addSpecial: false }. A render that runs
   * past its limits (5 s; strings or lists far larger than the messages) throws
   * an Error naming the template's file (lib/tokenizer/chat.ts RenderLimits).
   */
  applyChatTemplate(messages: ChatMessage[], opts?: { addGenerationPrompt?: boolean; template?: string }): string;
}
