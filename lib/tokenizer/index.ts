// Tokenizers from a checkpoint's tokenizer.json (+ tokenizer_config.json,
// generation_config.json, chat_template.jinja), through @huggingface/tokenizers:
// its results, with a fast encoder for long documents (encode.ts) and an
// incremental detokenizer (stream.ts).
import fs from 'node:fs';
import path from 'node:path';

import { ChatRenderer, parseChatTemplates, type ChatTemplates, type TemplateTokens } from './chat';
import { FastEncoder, fastPathBlocker, postProcessorFrame, type SpecialFrame } from './encode';
import { hf, internals, type HfTokenizer } from './hf';
import { makeStreamDecoder, streamPlan, type StreamSource } from './stream';
import type { ChatMessage, StreamDecoder, Tokenizer } from './types';

export type { ChatMessage, StreamDecoder, Tokenizer } from './types';

type Json = Record<string, unknown>;

/** Largest tokenizer file read (the native loader's limit for JSON files); real ones weigh at most tens of MB. */
const MAX_TOKENIZER_FILE_BYTES = 100_000_000;

/**
 * A regular file's text. A FIFO would block the thread forever (O_NONBLOCK
 * opens it at once, then it is refused), a device such as /dev/zero never
 * ends, and an oversized file is refused from its size before it is read.
 */
function readText(file: string): string {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw new Error(`${file}: cannot read (${(e as Error).message})`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new Error(`${file}: not a regular file (a FIFO, device or socket cannot be read as a model file)`);
    if (st.size > MAX_TOKENIZER_FILE_BYTES)
      throw new Error(`${file}: file of ${st.size} bytes is larger than the limit for JSON files (${MAX_TOKENIZER_FILE_BYTES} bytes)`);
    // Read to the end, but never past the limit (the file may grow meanwhile).
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(Math.max(st.size - total, 0) + 65536, MAX_TOKENIZER_FILE_BYTES + 1 - total));
      const n = buf.length > 0 ? fs.readSync(fd, buf, 0, buf.length, null) : 0;
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
      if (total > MAX_TOKENIZER_FILE_BYTES)
        throw new Error(`${file}: file is larger than the limit for JSON files (${MAX_TOKENIZER_FILE_BYTES} bytes)`);
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

function readJson(file: string): Json {
  const text = readText(file);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: invalid JSON (${(e as Error).message})`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${file}: expected a JSON object`);
  return v as Json;
}

/** A special token field: "text", { "content": "text" }, or absent/null. */
function tokenText(cfg: Json, field: string, file: string): string | null {
  const v = cfg[field];
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  throw new Error(`${file}: ${field} must be a string or { "content": string }`);
}

function optionalBool(cfg: Json, field: string, file: string): boolean | undefined {
  const v = cfg[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new Error(`${file}: ${field} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/** Everything loadTokenizer reads besides tokenizer.json. */
interface Settings {
  /** tokenizer.json */
  file: string;
  config: Json;
  configFile: string;
  generation: Json;
  generationFile: string;
  chat: ChatTemplates | null;
}

class FocusTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosIds: number[];
  readonly addBos: boolean;
  /** why encode goes through the library's (slow) encode, or null when it does not */
  readonly slowEncodeReason: string | null;
  private readonly fast: FastEncoder | null;
  /** ids around the body, with and without special tokens; null: use the library's encode as is */
  private readonly frames: { on: SpecialFrame; off: SpecialFrame } | null;
  private readonly chat: ChatRenderer;
  private readonly stream: { src: StreamSource; plan: ReturnType<typeof streamPlan> };

  constructor(
    private readonly tok: HfTokenizer,
    s: Settings,
  ) {
    const t = internals(tok);
    const vocab: string[] = t ? t.model.vocab : [];
    if (!t) for (const [k, id] of tok.get_vocab(true)) vocab[id] = k;
    this.vocabSize = vocab.length;
    const cfgFile = s.configFile;
    const file = s.file;
    const idOf = (text: string | null, field: string): number | null => {
      if (text === null) return null;
      const id = tok.token_to_id(text);
      if (id === undefined) throw new Error(`${cfgFile}: ${field} ${JSON.stringify(text)} is not a token of tokenizer.json`);
      return id;
    };
    const genId = (v: unknown, field: string): number => {
      if (!Number.isInteger(v) || (v as number) < 0 || (v as number) >= this.vocabSize)
        throw new Error(`${s.generationFile}: ${field} ${JSON.stringify(v)} is not a token id (vocabulary size ${this.vocabSize})`);
      return v as number;
    };

    // Post-processor frames (what the library's encode adds around a sequence).
    const ppOn = t ? postProcessorFrame(t, true) : null;
    const ppOff = t ? postProcessorFrame(t, false) : null;
    // the library's token -> id mapping (encode's last step)
    const ids = (strs: string[]) =>
      strs.map((x) => {
        const id = t!.added_tokens_map.get(x)?.id ?? t!.model.tokens_to_ids.get(x) ?? t!.model.unk_token_id;
        if (id === undefined) throw new Error(`${file}: the post-processor's token ${JSON.stringify(x)} is not in the vocabulary`);
        return id;
      });

    // BOS: tokenizer_config.json, else generation_config.json, else the post-processor's one prefix token.
    let bos = idOf(tokenText(s.config, 'bos_token', cfgFile), 'bos_token');
    if (bos === null && s.generation.bos_token_id !== undefined && s.generation.bos_token_id !== null)
      bos = genId(s.generation.bos_token_id, 'bos_token_id');
    if (bos === null && ppOn && ppOn.prefix.length === 1) bos = ids(ppOn.prefix)[0];
    this.bosId = bos;

    // EOS: tokenizer_config.json's eos_token, then generation_config.json's eos_token_id (a number or a list).
    const eos: number[] = [];
    const eosCfg = idOf(tokenText(s.config, 'eos_token', cfgFile), 'eos_token');
    if (eosCfg !== null) eos.push(eosCfg);
    const g = s.generation.eos_token_id;
    for (const v of Array.isArray(g) ? g : g === undefined || g === null ? [] : [g]) {
      const id = genId(v, 'eos_token_id');
      if (!eos.includes(id)) eos.push(id);
    }
    this.eosIds = eos;

    // add_bos_token / add_eos_token, when the config has them, decide what encode adds (as
    // transformers' LLaMA tokenizers do); otherwise the post-processor does.
    const addBos = optionalBool(s.config, 'add_bos_token', cfgFile);
    const addEos = optionalBool(s.config, 'add_eos_token', cfgFile);
    if (addBos === true && this.bosId === null) throw new Error(`${cfgFile}: add_bos_token is true but there is no bos_token`);
    if (addEos === true && eosCfg === null) throw new Error(`${cfgFile}: add_eos_token is true but there is no eos_token`);
    if (ppOn && ppOff) {
      const on: SpecialFrame = {
        prefix: addBos === undefined ? ids(ppOn.prefix) : addBos ? [this.bosId!] : [],
        suffix: addEos === undefined ? ids(ppOn.suffix) : addEos ? [eosCfg!] : [],
      };
      this.frames = { on, off: { prefix: ids(ppOff.prefix), suffix: ids(ppOff.suffix) } };
      this.addBos = this.bosId !== null && on.prefix[0] === this.bosId;
    } else {
      this.frames = null;
      const probe = tok.encode('', { add_special_tokens: true }).ids;
      this.addBos = this.bosId !== null && probe[0] === this.bosId;
    }

    const blocker = fastPathBlocker(tok);
    this.fast = blocker === null ? new FastEncoder(tok) : null;
    this.slowEncodeReason = blocker;

    const templateTokens: TemplateTokens = {};
    for (const k of ['bos_token', 'eos_token', 'unk_token', 'pad_token'] as const) {
      const v = tokenText(s.config, k, cfgFile);
      if (v !== null) templateTokens[k] = v;
    }
    this.chat = new ChatRenderer(s.chat, templateTokens);

    const special = new Set(t ? t.special_tokens : []);
    const added = new Set(t ? t.added_tokens.map((a) => a.content) : []);
    const eow = t?.model.end_of_word_suffix;
    this.stream = {
      plan: t ? streamPlan(t.decoder, eow) : { kind: 'whole' },
      src: {
        vocab,
        isSkipped: (token) => special.has(token),
        addedContents: added,
        decoder: t?.decoder ?? null,
        cleanup: t ? t.clean_up_tokenization_spaces : ((s.config.clean_up_tokenization_spaces as boolean | undefined) ?? true),
        endOfWordSuffix: eow,
        checkId: (id) => this.checkId(id),
        decode: (ids, skip) => this.decode(ids, { skipSpecial: skip }),
      },
    };
  }

  get hasChatTemplate(): boolean {
    return this.chat.hasDefault;
  }

  /** Names of the checkpoint's chat templates ("default" for a single one). */
  get chatTemplateNames(): string[] {
    return this.chat.names;
  }

  encode(text: string, opts: { addSpecial?: boolean } = {}): number[] {
    if (typeof text !== 'string') throw new Error(`encode: text must be a string, got ${typeof text}`);
    const addSpecial = opts.addSpecial ?? true;
    if (!this.frames) return this.tok.encode(text, { add_special_tokens: addSpecial }).ids;
    const body = this.fast ? this.fast.encodeBody(text) : this.tok.encode(text, { add_special_tokens: false }).ids;
    const { prefix, suffix } = addSpecial ? this.frames.on : this.frames.off;
    if (prefix.length === 0 && suffix.length === 0) return body;
    const out = prefix.slice();
    for (const id of body) out.push(id);
    for (const id of suffix) out.push(id);
    return out;
  }

  decode(ids: ArrayLike<number>, opts: { skipSpecial?: boolean } = {}): string {
    if (!ids || typeof ids.length !== 'number') throw new Error('decode: ids must be an array of token ids');
    const arr = Array.from(ids);
    arr.forEach((id) => this.checkId(id));
    if (arr.length === 0) return '';
    return this.tok.decode(arr, { skip_special_tokens: opts.skipSpecial ?? false });
  }

  streamDecoder(opts: { skipSpecial?: boolean } = {}): StreamDecoder {
    return makeStreamDecoder(this.stream.src, this.stream.plan, opts.skipSpecial ?? false);
  }

  /** The id of a token string (added tokens included), or null. */
  tokenToId(token: string): number | null {
    return this.tok.token_to_id(token) ?? null;
  }

  /** The token string of an id, or null when the id is not in the vocabulary. */
  idToToken(id: number): string | null {
    return Number.isInteger(id) && id >= 0 ? (this.tok.id_to_token(id) ?? null) : null;
  }

  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean; template?: string } = {}): string {
    return this.chat.render(messages, opts);
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.tok.id_to_token(id) === undefined)
      throw new Error(`token id ${String(id)} is not in the tokenizer's vocabulary (size ${this.vocabSize})`);
  }
}

/**
 * Loads DIR/tokenizer.json (+ tokenizer_config.json, generation_config.json,
 * chat_template.jinja); null when there is no tokenizer.json.
 */
export async function loadTokenizer(dir: string): Promise<Tokenizer | null> {
  const file = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(file)) return null;
  const json = readJson(file);
  if (!json.model || typeof json.model !== 'object') throw new Error(`${file}: no "model" object (not a tokenizers file?)`);
  const configFile = path.join(dir, 'tokenizer_config.json');
  const config = fs.existsSync(configFile) ? readJson(configFile) : {};
  const generationFile = path.join(dir, 'generation_config.json');
  const generation = fs.existsSync(generationFile) ? readJson(generationFile) : {};
  let chat = parseChatTemplates(config.chat_template, configFile);
  const jinjaFile = path.join(dir, 'chat_template.jinja');
  const chatJsonFile = path.join(dir, 'chat_template.json');
  if (!chat && fs.existsSync(jinjaFile)) chat = parseChatTemplates(readText(jinjaFile), jinjaFile);
  if (!chat && fs.existsSync(chatJsonFile)) chat = parseChatTemplates(readJson(chatJsonFile).chat_template, chatJsonFile);
  // the library's constructor wants every pipeline key; a missing one means "none"
  const full = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, added_tokens: [], ...json };
  let tok: HfTokenizer;
  try {
    tok = new hf.Tokenizer(full, config);
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
  return new FocusTokenizer(tok, { file, config, configFile, generation, generationFile, chat });
}
