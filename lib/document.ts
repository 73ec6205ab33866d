// Documents: ask many questions of one long input, reusing its chunk caches
// exactly (issue 10).
//
// Why reuse is exact: every FocusLLM chunk runs as `chunk ++ P` with causal
// attention (DESIGN section 1), so the keys and values of the chunk's own
// tokens never see the dynamic prompt P, which holds the question; and under
// causal attention the cache of a chunk's first n tokens is the first n rows
// of the cache of any longer run of the same tokens. A document therefore
// runs every chunk of its tokens once, x[i*C : min((i+1)*C, L_doc)], and
// keeps the caches. A question's input x' = doc ++ question is planned as a
// fresh session would plan it (M = L' - localWindow moves with the question);
// chunk i of that plan is seeded with the document's rows
// [i*C, min(end_i, p)) where p is the length of the common prefix of x' and
// the document's ids, and only the rest of the chunk (question tokens that
// fell into the memory, or tokens the text's re-tokenization changed) plus
// P and the candidate run on top. A chunk the question cuts short (M inside
// it) just takes fewer rows; chunks the question creates past the document
// run from scratch; a question that leaves the input short of
// minChunkedLength runs natively. The seeded rows are copied into the
// question's own caches (the runner's `base`), so the document's caches are
// only read and any number of questions can use it at once.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createHash } from 'node:crypto';

import type { KvPool, NativeConfig, NativeDtype, NativeSeq } from '../typings/native';
import { generateText, type GenerateRequest, sessionTokens } from './generate';
import type { Model, TokenGenerateOptions } from './model';
import { type FocusParams, type Plan, planIngest, resolveFocusParams } from './plan';
import {
  definedOnly,
  type IngestProgress,
  runCancellable,
  Session,
  type ChunkSeed,
  type SessionOptions,
  type StepMode,
} from './session';

/** The options that fix a document's chunk caches (the chunk plan, BOS, cache storage). */
export type DocumentFocusOptions = Omit<SessionOptions, 'maxSteps' | 'keepChunkCaches' | 'stepMode'>;

export interface IngestDocumentOptions {
  /** FocusLLM parameters and cache type; the document's questions all use them */
  focus?: DocumentFocusOptions;
  /**
   * Text documents: questions will be asked with the chat template (the text
   * and the question in one user message, as generate({ chat }) renders
   * them), so the document keeps the rendered prefix. Default false.
   */
  chat?: boolean | { system?: string };
  signal?: AbortSignal;
  onProgress?: (p: IngestProgress) => void;
}

/**
 * A question about a document, as text: what model.generate({ context:
 * document text, prompt, chat, ... }) takes (or, for a document of ids,
 * generate({ ids: document ids, prompt, ... })), less the document and the
 * chunk parameters, which are the document's.
 */
export interface DocumentGenerateRequest extends Omit<GenerateRequest, 'context' | 'ids' | 'focus'> {
  /** how steps recompute the local sequence (default 'exact') */
  stepMode?: StepMode;
}

/** Token generation after the document's ids and `question` ids. */
export interface DocumentTokenOptions extends Omit<TokenGenerateOptions, 'focus'> {
  stepMode?: StepMode;
}

export interface DocumentSessionOptions {
  /** steps the session must be able to take after ingest (default 256) */
  maxSteps?: number;
  stepMode?: StepMode;
}

/** What a document holds in native memory, in bytes. */
export interface DocumentMemory {
  /** the kept chunk caches */
  chunkCaches: number;
  /** chunks kept */
  chunks: number;
  /** tokens of the document */
  tokens: number;
}

/** How much of an input the document's caches cover (see Document.reuseFor). */
export interface DocumentReuse {
  mode: 'native' | 'focus';
  /** tokens the input shares with the document from its start */
  commonPrefix: number;
  /** chunk tokens the question copies from the document / runs itself (P and candidates excluded) */
  reusedTokens: number;
  computedTokens: number;
  /** chunks of the input's plan */
  chunks: number;
}

const FORMAT = 'focusllm-document';
const VERSION = 1;
const MAGIC = Buffer.from('FOCUSDOC', 'latin1'); // 8 bytes
// magic, version u32, header bytes u32, header crc32 u32, reserved u32 (0).
// The chunks follow the header back to back: every byte of a file is
// checked (prelude fields, header CRC, chunk CRCs, exact size).
const PRELUDE = 24;

interface DocState {
  ids: Int32Array;
  text: string | null;
  chat: boolean | { system?: string };
  params: FocusParams;
  bosId: number;
  cacheType: NativeDtype;
  /** tokens cached in chunk slot i */
  chunkLengths: number[];
}

// Documents the garbage collector takes before dispose(): free their caches.
const finalizer = new FinalizationRegistry<KvPool>((pool) => pool.dispose());
// Each model's documents, weakly (model.dispose() disposes those still alive).
const byModel = new WeakMap<Model, Set<WeakRef<Document>>>();

/** @internal model.dispose(): frees every document of the model. */
export function disposeDocuments(model: Model): void {
  for (const r of byModel.get(model) ?? []) r.deref()?.dispose();
  byModel.delete(model);
}

export class Document {
  private pool: KvPool | null;
  private readonly state: DocState;
  private released = false; // dispose() called
  private running = 0;      // question ingests in flight (they read the pool)

  /** @internal use model.ingestDocument() / model.loadDocument() */
  constructor(
    private readonly model: Model,
    state: DocState,
    pool: KvPool | null,
  ) {
    this.state = state;
    this.pool = pool;
    if (pool) finalizer.register(this, pool, this);
    let set = byModel.get(model);
    if (!set) byModel.set(model, (set = new Set()));
    for (const r of set) if (!r.deref()) set.delete(r);
    set.add(new WeakRef(this));
  }

  /** The document's token ids (a copy). */
  get ids(): number[] {
    return Array.from(this.state.ids);
  }
  /** Tokens of the document. */
  get length(): number {
    return this.state.ids.length;
  }
  /** The text it was ingested from (null for ids). */
  get text(): string | null {
    return this.state.text;
  }
  get chat(): boolean | { system?: string } {
    return this.state.chat;
  }
  get params(): FocusParams {
    return { ...this.state.params };
  }
  get bosId(): number {
    return this.state.bosId;
  }
  get cacheType(): NativeDtype {
    return this.state.cacheType;
  }
  /** Chunks whose caches the document keeps. */
  get chunks(): number {
    return this.state.chunkLengths.length;
  }
  get disposed(): boolean {
    return this.released || this.pool === null || this.pool.disposed;
  }

  memory(): DocumentMemory {
    return {
      chunkCaches: this.pool && !this.pool.disposed ? this.pool.bytes : 0,
      chunks: this.chunks,
      tokens: this.length,
    };
  }

  /**
   * A FocusLLM session over this document's caches: ingest(ids) and step(id)
   * give exactly what a fresh model.createSession() with the document's
   * options gives; wherever `ids` starts with the document's ids (normally
   * `[...doc.ids, ...question]`), the chunk tokens among them are copied
   * from the document instead of recomputed.
   */
  session(opts: DocumentSessionOptions = {}): Session {
    this.checkLive();
    const { maxSteps, stepMode } = opts ?? {};
    const s = this.model.createSession({ ...this.sessionOptions(), ...definedOnly({ maxSteps, stepMode }) }, {
      seed: (x, plan) => this.seeds(x, plan),
    });
    // An ingest reads the document's caches: dispose() waits for it.
    for (const name of ['ingest', 'ingestToken'] as const) {
      const f = s[name].bind(s) as (...a: unknown[]) => Promise<unknown>;
      (s as unknown as Record<string, unknown>)[name] = (...a: unknown[]) => {
        this.running++;
        const p = f(...a);
        const done = () => {
          this.running--;
          this.freeIfUnused();
        };
        p.then(done, done);
        return p;
      };
    }
    return s;
  }

  /**
   * Answers a question in text: the pieces model.generate({ context: text,
   * prompt, ... }) yields for this document (ids documents: generate({ ids,
   * prompt, ... })), with the document's chunk parameters. `chat` defaults
   * to the document's.
   */
  generate(req: DocumentGenerateRequest): AsyncGenerator<string> {
    this.checkLive();
    if (!req || typeof req !== 'object') throw new Error('document.generate() expects a request object');
    const { stepMode, ...rest } = req;
    const full: GenerateRequest = {
      ...rest,
      chat: req.chat ?? this.state.chat,
      ...(this.state.text !== null ? { context: this.state.text } : { ids: this.state.ids }),
      focus: { ...this.sessionOptions(), ...definedOnly({ stepMode }) },
    };
    return generateText(this.model, full, (o) => this.session({ maxSteps: o.maxSteps, stepMode }));
  }

  /** Generates token ids after the document's ids and `question` (model.generateTokens on the concatenation). */
  async *generateTokens(question: ArrayLike<number>, opts: DocumentTokenOptions = {}): AsyncGenerator<number> {
    this.checkLive();
    if (!question || typeof question.length !== 'number') throw new Error('question must be an array of token ids');
    const x = [...this.state.ids, ...Array.from(question)];
    yield* sessionTokens(x, opts, this.model.config.eosTokenIds, (maxSteps) => this.session({ maxSteps, stepMode: opts.stepMode }));
  }

  /** What the caches would cover for input ids `x` (no native work). */
  reuseFor(x: ArrayLike<number>): DocumentReuse {
    const ids = Array.from(x);
    const plan = planFor(ids, this.state);
    const p = commonPrefix(ids, this.state.ids);
    if (plan.mode === 'native') return { mode: 'native', commonPrefix: p, reusedTokens: 0, computedTokens: 0, chunks: 0 };
    let reused = 0;
    let computed = 0;
    plan.chunks.forEach((c, i) => {
      const r = this.reusable(i, i * this.state.params.chunkSize, c.length, p);
      reused += r;
      computed += c.length - r;
    });
    return { mode: 'focus', commonPrefix: p, reusedTokens: reused, computedTokens: computed, chunks: plan.chunks.length };
  }

  /**
   * Writes the document to `file`: a header (format, model identity, focus
   * parameters, dtype, token ids, text) and each chunk's cache with its
   * CRC-32. Written to a temporary file beside it, then renamed.
   */
  async save(file: string): Promise<void> {
    this.checkLive();
    if (typeof file !== 'string' || file.length === 0) throw new Error('document.save(path): path must be a file path');
    const pool = this.pool!;
    const identity = await modelIdentity(this.model);
    const blobs: Uint8Array[] = [];
    for (let i = 0; i < this.state.chunkLengths.length; i++)
      blobs.push(await this.model.native.kvRead(pool, i, this.state.chunkLengths[i]));
    const chunks: { tokens: number; offset: number; bytes: number; crc32: number }[] = [];
    let off = 0;
    for (let i = 0; i < blobs.length; i++) {
      chunks.push({ tokens: this.state.chunkLengths[i], offset: off, bytes: blobs[i].byteLength, crc32: zlib.crc32(blobs[i]) });
      off += blobs[i].byteLength;
    }
    const header = {
      format: FORMAT,
      version: VERSION,
      model: identity,
      params: this.state.params,
      bosId: this.state.bosId,
      dtype: this.state.cacheType,
      chat: this.state.chat,
      text: this.state.text,
      ids: Array.from(this.state.ids),
      chunks,
    };
    const hbuf = Buffer.from(JSON.stringify(header), 'utf8');
    const prelude = Buffer.alloc(PRELUDE);
    MAGIC.copy(prelude, 0);
    prelude.writeUInt32LE(VERSION, 8);
    prelude.writeUInt32LE(hbuf.length, 12);
    prelude.writeUInt32LE(zlib.crc32(hbuf), 16);
    const dataStart = PRELUDE + hbuf.length;
    const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
    const fh = await fs.promises.open(tmp, 'w');
    try {
      await fh.write(prelude, 0, PRELUDE, 0);
      await fh.write(hbuf, 0, hbuf.length, PRELUDE);
      for (let i = 0; i < blobs.length; i++) await fh.write(blobs[i], 0, blobs[i].byteLength, dataStart + chunks[i].offset);
      await fh.truncate(dataStart + off);
      await fh.close();
      await fs.promises.rename(tmp, file);
    } catch (e) {
      await fh.close().catch(() => undefined);
      await fs.promises.rm(tmp, { force: true });
      throw new Error(`saving the document to ${file}: ${(e as Error).message}`);
    }
  }

  /** Frees the document's caches; questions already running finish first (their runs hold them). */
  dispose(): void {
    this.released = true;
    this.freeIfUnused();
  }

  private freeIfUnused(): void {
    if (!this.released || this.running > 0 || !this.pool) return;
    this.pool.dispose();
    finalizer.unregister(this);
    this.pool = null;
  }

  // ---- internals -------------------------------------------------------------

  private sessionOptions(): SessionOptions {
    return { ...this.state.params, bosId: this.state.bosId, cacheType: this.state.cacheType };
  }

  private checkLive(): void {
    if (this.disposed) throw new Error('this document has been disposed');
    if (this.model.disposed) throw new Error('this model has been disposed');
  }

  /** Leading tokens of plan chunk i (at `start`, `len` tokens) that the document's slot i holds, given common prefix p. */
  private reusable(i: number, start: number, len: number, p: number): number {
    if (i >= this.state.chunkLengths.length) return 0;
    return Math.max(0, Math.min(len, p - start, this.state.chunkLengths[i]));
  }

  private seeds(x: readonly number[], plan: Extract<Plan, { mode: 'focus' }>): (ChunkSeed | null)[] {
    if (this.disposed) throw new Error('this document has been disposed');
    const p = commonPrefix(x, this.state.ids);
    const C = this.state.params.chunkSize;
    return plan.chunks.map((c, i) => {
      const n = this.reusable(i, i * C, c.length, p);
      return n > 0 ? { pool: this.pool!, slot: i, length: n } : null;
    });
  }
}

function commonPrefix(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

function planFor(ids: number[], s: DocState): Plan {
  return planIngest(ids, s.params, s.bosId);
}

// ---- ingest ------------------------------------------------------------------------

const CHAT_MARK = '\u0000focusllm-question\u0000';

/** The ids a text document keeps: those generate() would start its input with. */
function documentIds(model: Model, text: string, chat: boolean | { system?: string }): number[] {
  const tok = model.tokenizer;
  if (!tok) throw new Error('this model folder has no tokenizer.json: ingest token ids instead of text');
  if (!chat) return tok.encode(text, { addSpecial: true });
  // The chat input renders text + "\n\n" + question as one user message: keep
  // what comes before the question. A template that moves or rewrites the
  // mark only costs reuse (questions share fewer tokens), never exactness.
  const messages = [];
  if (typeof chat === 'object' && chat.system) messages.push({ role: 'system', content: chat.system });
  messages.push({ role: 'user', content: `${text}\n\n${CHAT_MARK}` });
  const rendered = tok.applyChatTemplate(messages, { addGenerationPrompt: true });
  const at = rendered.indexOf(CHAT_MARK);
  return tok.encode(at >= 0 ? rendered.slice(0, at) : rendered, { addSpecial: false });
}

function checkChat(chat: unknown): boolean | { system?: string } {
  if (chat === undefined) return false;
  if (typeof chat === 'boolean') return chat;
  if (chat && typeof chat === 'object' && !Array.isArray(chat)) {
    const sys = (chat as { system?: unknown }).system;
    if (sys !== undefined && typeof sys !== 'string') throw new Error('option chat.system must be a string');
    return sys === undefined ? {} : { system: sys };
  }
  throw new Error('option chat must be a boolean or { system?: string }');
}

/** model.ingestDocument(): runs every chunk of the document's tokens once and keeps the caches. */
export async function ingestDocument(
  model: Model,
  input: string | ArrayLike<number>,
  opts: IngestDocumentOptions = {},
): Promise<Document> {
  if (model.disposed) throw new Error('this model has been disposed');
  if (opts === null || typeof opts !== 'object') throw new Error('ingestDocument options must be an object');
  const chat = checkChat(opts.chat);
  // A throwaway session resolves and checks the options exactly as a question's will.
  const probe = model.createSession({ ...opts.focus, maxSteps: 0 });
  const params = probe.params;
  const bosId = probe.bosId;
  const cacheType = probe.resolvedCacheType();
  probe.dispose();
  let ids: number[];
  let text: string | null = null;
  if (typeof input === 'string') {
    text = input;
    ids = documentIds(model, input, chat);
  } else {
    if (!input || typeof (input as ArrayLike<number>).length !== 'number')
      throw new Error('ingestDocument(input): input must be text or an array of token ids');
    if (chat) throw new Error('option chat needs a text document (ids are used as they are)');
    ids = Array.from(input);
  }
  const vocab = model.config.vocabSize;
  if (ids.length === 0) throw new Error('the document is empty');
  ids.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 0 || v >= vocab)
      throw new Error(`document ids[${i}] = ${String(v)} is not a token id (vocabulary size ${vocab})`);
  });
  opts.signal?.throwIfAborted();
  const C = params.chunkSize;
  const lengths: number[] = [];
  for (let b = 0; b < ids.length; b += C) lengths.push(Math.min(C, ids.length - b));
  const pool = model.native.createKvPool(lengths.length, Math.min(C, ids.length), cacheType);
  try {
    const batch: NativeSeq[] = lengths.map((n, i) => ({
      tokens: Int32Array.from(ids.slice(i * C, i * C + n)),
      pool,
      slot: i,
    }));
    await runCancellable(opts.signal, (control) => withProgress(control, lengths.length, opts.onProgress, () => model.run(batch, control)));
    // aborted as the run ended (by its last progress report, say): still aborted
    opts.signal?.throwIfAborted();
  } catch (e) {
    pool.dispose();
    throw e;
  }
  const doc = new Document(model, { ids: Int32Array.from(ids), text, chat, params, bosId, cacheType, chunkLengths: lengths }, pool);
  return doc;
}

async function withProgress<T>(
  control: { tokensDone: number; tokensTotal: number; cancel(): void },
  chunksTotal: number,
  onProgress: ((p: IngestProgress) => void) | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  if (!onProgress) return fn();
  if (typeof onProgress !== 'function') throw new Error('option onProgress must be a function');
  let err: unknown = null;
  const report = () => {
    if (err) return;
    const total = control.tokensTotal;
    const done = control.tokensDone;
    try {
      onProgress({ phase: 'chunks', chunksDone: total > 0 ? Math.floor((chunksTotal * done) / total) : 0, chunksTotal, tokensDone: done, tokensTotal: total });
    } catch (e) {
      err = e ?? new Error('onProgress threw');
      control.cancel();
    }
  };
  const timer = setInterval(report, 100);
  try {
    const out = await fn();
    report();
    if (err) throw err;
    return out;
  } catch (e) {
    throw err ?? e;
  } finally {
    clearInterval(timer);
  }
}

// ---- model identity -----------------------------------------------------------------

interface ModelIdentity {
  /** sha256 over config.json's model fields, every safetensors header (tensor table) and sampled weight bytes */
  hash: string;
  /** human-readable parts, to say what differs */
  layers: number;
  hidden: number;
  vocab: number;
  kvDim: number;
  weightsDtype: string;
}

const identities = new WeakMap<Model, Promise<ModelIdentity>>();

/**
 * The model's identity: the parsed config, every safetensors file's header
 * (the tensor table: names, dtypes, shapes, offsets) and 64 KiB of each
 * file's data sampled at 16 evenly spaced offsets. Hashing every weight
 * would cost a full read of the checkpoint per save and load; the samples
 * tell apart checkpoints that share a tensor table (two trainings of one
 * architecture). Weights changed in memory by model.train() are not seen.
 */
export function modelIdentity(model: Model): Promise<ModelIdentity> {
  let p = identities.get(model);
  if (!p) {
    p = computeIdentity(model);
    identities.set(model, p);
    p.catch(() => identities.delete(model));
  }
  return p;
}

async function computeIdentity(model: Model): Promise<ModelIdentity> {
  const h = createHash('sha256');
  const c = model.config;
  h.update(JSON.stringify(Object.fromEntries(Object.entries(c).sort(([a], [b]) => a.localeCompare(b)))));
  const files = (await fs.promises.readdir(model.dir)).filter((f) => f.endsWith('.safetensors')).sort();
  for (const f of files) {
    const fh = await fs.promises.open(path.join(model.dir, f), 'r');
    try {
      const size = (await fh.stat()).size;
      const lenBuf = Buffer.alloc(8);
      await fh.read(lenBuf, 0, 8, 0);
      const hlen = Number(lenBuf.readBigUInt64LE(0));
      if (!(hlen > 0 && 8 + hlen <= size)) throw new Error(`${path.join(model.dir, f)}: malformed safetensors header`);
      const hdr = Buffer.alloc(hlen);
      await fh.read(hdr, 0, hlen, 8);
      h.update(f).update(String(size)).update(hdr);
      const data = size - 8 - hlen;
      const sample = Buffer.alloc(4096);
      for (let i = 0; i < 16 && data > 0; i++) {
        const at = 8 + hlen + Math.floor((data * i) / 16);
        const { bytesRead } = await fh.read(sample, 0, Math.min(sample.length, size - at), at);
        h.update(sample.subarray(0, bytesRead));
      }
    } finally {
      await fh.close();
    }
  }
  return {
    hash: h.digest('hex'),
    layers: c.numLayers,
    hidden: c.hiddenSize,
    vocab: c.vocabSize,
    kvDim: c.numKvHeads * c.headDim,
    weightsDtype: model.info.dtype,
  };
}

// ---- load ----------------------------------------------------------------------------

export interface LoadDocumentOptions {
  /** when given, they must equal the saved document's (else an Error says which differs) */
  focus?: DocumentFocusOptions;
  signal?: AbortSignal;
}

/**
 * model.loadDocument(): reads a saved document. Read, not memory-mapped: the
 * caches must end up in the backend's own memory anyway (a KvPool; device
 * memory on CUDA), each chunk is checked against its CRC-32 on the way, and
 * a file truncated or rewritten under a live mapping would kill the process
 * with SIGBUS, which a read turns into an Error. The read goes chunk by
 * chunk, so the extra host memory is one chunk's cache.
 */
export async function loadDocument(model: Model, file: string, opts: LoadDocumentOptions = {}): Promise<Document> {
  if (model.disposed) throw new Error('this model has been disposed');
  if (typeof file !== 'string' || file.length === 0) throw new Error('loadDocument(path): path must be a file path');
  const bad = (what: string) => new Error(`${file}: ${what}`);
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, 'r');
  } catch (e) {
    throw new Error(`loadDocument: cannot open ${file}: ${(e as Error).message}`);
  }
  let pool: KvPool | null = null;
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw bad('not a regular file');
    const size = st.size;
    const readAt = async (pos: number, n: number): Promise<Buffer> => {
      if (pos + n > size) throw bad(`truncated: needs ${pos + n} bytes, the file has ${size}`);
      const b = Buffer.alloc(n);
      const { bytesRead } = await fh.read(b, 0, n, pos);
      if (bytesRead !== n) throw bad(`truncated: read ${bytesRead} of ${n} bytes at offset ${pos}`);
      return b;
    };
    const pre = await readAt(0, PRELUDE).catch(() => {
      throw bad('not a focusllm document (too short)');
    });
    if (!pre.subarray(0, 8).equals(MAGIC)) throw bad('not a focusllm document (bad magic bytes)');
    if (pre.readUInt32LE(20) !== 0) throw bad('corrupted: reserved prelude bytes are not zero');
    const version = pre.readUInt32LE(8);
    if (version !== VERSION) throw bad(`document format version ${version}; this focusllm reads version ${VERSION}`);
    const hlen = pre.readUInt32LE(12);
    if (PRELUDE + hlen > size) throw bad(`truncated: the header needs ${PRELUDE + hlen} bytes, the file has ${size}`);
    const hbuf = await readAt(PRELUDE, hlen);
    if (zlib.crc32(hbuf) !== pre.readUInt32LE(16)) throw bad('corrupted: the header fails its CRC-32 check');
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(hbuf.toString('utf8'));
    } catch {
      throw bad('corrupted: the header is not JSON');
    }
    const h = checkHeader(header, bad, model.config);
    // The model and the parameters must match before any cache is read.
    const mine = await modelIdentity(model);
    if (h.model.hash !== mine.hash) {
      const diffs: string[] = [];
      for (const k of ['layers', 'hidden', 'vocab', 'kvDim', 'weightsDtype'] as const)
        if (h.model[k] !== mine[k]) diffs.push(`${k} ${String(h.model[k])} in the file, ${String(mine[k])} in the model`);
      throw bad(
        `saved with another model (${diffs.length ? diffs.join('; ') : 'same shapes but other weights, config or tensor table'}; ` +
          `model hash ${h.model.hash.slice(0, 12)} in the file, ${mine.hash.slice(0, 12)} for ${model.dir})`,
      );
    }
    // (after the model check: another model's shapes would fail this first)
    const es = h.dtype === 'f32' ? 4 : 2;
    const cfg = model.config;
    h.chunks.forEach((ch, i) => {
      const want = 2 * cfg.numLayers * ch.tokens * cfg.numKvHeads * cfg.headDim * es;
      if (ch.bytes !== want) throw bad(`header field chunks[${i}].bytes is ${ch.bytes}, its ${ch.tokens} tokens take ${want}`);
    });
    if (opts.focus !== undefined) {
      const probe = model.createSession({ ...opts.focus, maxSteps: 0 });
      const want = { ...probe.params, bosId: probe.bosId, dtype: probe.resolvedCacheType() };
      probe.dispose();
      const have = { ...h.params, bosId: h.bosId, dtype: h.dtype };
      for (const k of Object.keys(want) as (keyof typeof want)[])
        if (want[k] !== have[k]) throw bad(`saved with ${k} ${String(have[k])}, the options ask for ${String(want[k])}`);
    }
    if (model.backend !== 'cpu' && h.dtype !== model.info.actDtype)
      throw bad(`its caches are ${h.dtype}; the ${model.backend} backend keeps caches in ${model.info.actDtype}`);
    const dataStart = PRELUDE + hlen;
    let end = dataStart;
    h.chunks.forEach((c, i) => {
      if (dataStart + c.offset !== end) throw bad(`header field chunks[${i}].offset is ${c.offset}, expected ${end - dataStart}`);
      end += c.bytes;
    });
    if (end > size) throw bad(`truncated: the caches need ${end} bytes, the file has ${size}`);
    if (end < size) throw bad(`corrupted: ${size - end} bytes past the last chunk`);
    opts.signal?.throwIfAborted();
    pool = model.native.createKvPool(h.chunks.length, Math.min(h.params.chunkSize, h.ids.length), h.dtype);
    for (let i = 0; i < h.chunks.length; i++) {
      const c = h.chunks[i];
      const blob = await readAt(dataStart + c.offset, c.bytes);
      if (zlib.crc32(blob) !== c.crc32) throw bad(`corrupted: the cache of chunk ${i} fails its CRC-32 check`);
      opts.signal?.throwIfAborted();
      await model.native.kvWrite(pool, i, new Uint8Array(blob.buffer, blob.byteOffset, blob.byteLength), c.tokens);
    }
    const state: DocState = {
      ids: Int32Array.from(h.ids),
      text: h.text,
      chat: h.chat,
      params: h.params,
      bosId: h.bosId,
      cacheType: h.dtype,
      chunkLengths: h.chunks.map((c) => c.tokens),
    };
    const doc = new Document(model, state, pool);
    pool = null;
    return doc;
  } finally {
    pool?.dispose();
    await fh.close();
  }
}

interface Header {
  model: ModelIdentity;
  params: FocusParams;
  bosId: number;
  dtype: NativeDtype;
  chat: boolean | { system?: string };
  text: string | null;
  ids: number[];
  chunks: { tokens: number; offset: number; bytes: number; crc32: number }[];
}

/** Every field of a parsed header checked (a header that passed its CRC can still come from a bad writer). */
function checkHeader(o: Record<string, unknown>, bad: (w: string) => Error, cfg: NativeConfig): Header {
  const vocab = cfg.vocabSize;
  const isInt = (v: unknown, lo = 0): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= lo;
  if (o.format !== FORMAT || o.version !== VERSION) throw bad('not a focusllm document (header format)');
  const m = o.model as ModelIdentity | undefined;
  if (!m || typeof m.hash !== 'string') throw bad('header field model is missing');
  const p = o.params as FocusParams | undefined;
  if (!p || !isInt(p.localWindow, 1) || !isInt(p.chunkSize, 1) || !isInt(p.promptCap, 1) || !isInt(p.minChunkedLength, 1))
    throw bad('header field params is malformed');
  try {
    resolveFocusParams(p);
  } catch (e) {
    throw bad(`header field params: ${(e as Error).message}`);
  }
  if (!isInt(o.bosId)) throw bad('header field bosId is malformed');
  if (o.dtype !== 'f32' && o.dtype !== 'f16' && o.dtype !== 'bf16') throw bad('header field dtype is malformed');
  if (o.text !== null && typeof o.text !== 'string') throw bad('header field text is malformed');
  const ids = o.ids;
  if (!Array.isArray(ids) || ids.length === 0 || !ids.every((v) => isInt(v) && v < vocab))
    throw bad(`header field ids is malformed (token ids below ${vocab})`);
  const chunks = o.chunks;
  const C = p.chunkSize;
  const nChunks = Math.ceil(ids.length / C);
  if (!Array.isArray(chunks) || chunks.length !== nChunks) throw bad(`header field chunks must list ${nChunks} chunks`);
  chunks.forEach((c, i) => {
    if (!c || !isInt(c.tokens) || !isInt(c.offset) || !isInt(c.bytes) || !isInt(c.crc32))
      throw bad(`header field chunks[${i}] is malformed`);
    if (c.tokens !== Math.min(C, ids.length - i * C)) throw bad(`header field chunks[${i}].tokens does not match the ids`);
  });

  const chat = o.chat === false || o.chat === true ? o.chat : (o.chat as { system?: string } | null);
  if (chat === null || (typeof chat === 'object' && chat.system !== undefined && typeof chat.system !== 'string'))
    throw bad('header field chat is malformed');
  return { model: m, params: p, bosId: o.bosId, dtype: o.dtype, chat, text: o.text as string | null, ids: ids as number[], chunks: chunks as Header['chunks'] };
}
