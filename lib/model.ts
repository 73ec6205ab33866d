// The public model object: load a checkpoint, run forwards, open FocusLLM
// sessions, generate.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { Model as NativeModel, NativeConfig, NativeModelInfo, NativeSeq, RunControl } from '../typings/native';
import { native } from './native';
import { generateText, type GenerateRequest, sessionTokens } from './generate';
import { type NativeSampler, type SamplingOptions } from './sampling';
import { type ChunkSeeder, runCancellable, Session, type SessionHost, type SessionOptions } from './session';
import { Document, disposeDocuments, ingestDocument, type IngestDocumentOptions, loadDocument, type LoadDocumentOptions } from './document';
import { type FocusParams, resolveFocusParams } from './plan';
import { resolveModelDir } from './shipped';
import { loadTokenizer } from './tokenizer/index';
import { prepareTraining, runTraining, type TrainOptions, type TrainRunOptions, type TrainSummary } from './train/index';
import type { Tokenizer } from './tokenizer/types';

export type BackendName = 'cpu' | 'cuda' | 'auto';

export interface LoadOptions {
  /** "cpu", "cuda", or "auto" (CUDA when a device is usable). Default "auto". */
  backend?: BackendName;
  /** CPU threads (default: the available cores) */
  threads?: number;
  /** CUDA device index (default 0) */
  device?: number;
  /** rows per native micro-batch (default: 1024 on CPU, 16384 on CUDA) */
  maxBatchTokens?: number;
  /** load tokenizer.json from the folder when present (default true) */
  tokenizer?: boolean;
  /**
   * Which candidate projections to use, in place of config.json's
   * beacon_param: of "q", "k", "v", "o" and "mlp". A listed projection the
   * checkpoint lacks starts as a copy of the base one; one left out runs as
   * the base. It is also what a candidate trainer trains (the CLI's
   * `train --beacon-param`). Default: config.json's, else q k v o.
   */
  beaconParam?: readonly string[];
}

const BEACON_PARAMS = ['q', 'k', 'v', 'o', 'mlp'];

/** LoadOptions.beaconParam, checked: a non-empty list of distinct q, k, v, o, mlp. */
export function checkBeaconParam(v: unknown, what = 'option beaconParam'): string[] {
  if (!Array.isArray(v) || v.length === 0)
    throw new Error(`${what} must be a non-empty list of ${BEACON_PARAMS.join(', ')}, got ${JSON.stringify(v)}`);
  for (const p of v)
    if (typeof p !== 'string' || !BEACON_PARAMS.includes(p))
      throw new Error(`${what}: ${JSON.stringify(p)} is not a candidate projection (one of ${BEACON_PARAMS.join(', ')})`);
  const dup = v.find((p, i) => v.indexOf(p) !== i);
  if (dup !== undefined) throw new Error(`${what} lists ${JSON.stringify(dup)} twice`);
  return [...(v as string[])];
}

export interface TokenGenerateOptions extends SamplingOptions {
  /** at most this many new tokens (default 256) */
  maxNewTokens?: number;
  /** token ids that end generation (default: the model's EOS ids); the stop token is not yielded */
  stop?: number[];
  signal?: AbortSignal;
  /** FocusLLM session options (chunking parameters, cache type, ...) */
  focus?: Omit<SessionOptions, 'maxSteps'>;
}

function checkIds(ids: ArrayLike<number>, vocab: number, what = 'ids'): number[] {
  if (!ids || typeof (ids as ArrayLike<number>).length !== 'number') throw new Error(`${what} must be an array of token ids`);
  const out = Array.from(ids);
  if (out.length === 0) throw new Error(`${what} is empty`);
  out.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 0 || v >= vocab)
      throw new Error(`${what}[${i}] = ${String(v)} is not a token id (vocabulary size ${vocab})`);
  });
  return out;
}

export class Model implements SessionHost {
  private queue: Promise<unknown> = Promise.resolve();
  private sessions = new Set<Session>();

  /** @internal use loadModel() */
  constructor(
    readonly dir: string,
    readonly native: NativeModel,
    readonly tokenizer: Tokenizer | null,
    /** the FocusLLM parameters sessions use where their options are silent (config.json "focusllm", else DESIGN's) */
    readonly focusDefaults: FocusParams = resolveFocusParams(),
  ) {}

  get config(): NativeConfig {
    return this.native.config;
  }
  get info(): NativeModelInfo {
    return this.native.info;
  }
  get backend(): 'cpu' | 'cuda' {
    return this.native.backend;
  }
  get disposed(): boolean {
    return this.native.disposed;
  }

  /** Native runs, one after another (they share the model's scratch memory). */
  run(batch: NativeSeq[], control?: RunControl): Promise<Float32Array> {
    if (this.native.disposed) return Promise.reject(new Error('this model has been disposed'));
    const next = this.queue.then(
      () => this.native.run(batch, control),
      () => this.native.run(batch, control),
    );
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Native runs whose requested rows are sampled on the backend (one token per row). */
  runSample(batch: NativeSeq[], sampler: NativeSampler, control?: RunControl): Promise<Int32Array> {
    if (this.native.disposed) return Promise.reject(new Error('this model has been disposed'));
    const go = () => {
      let rows = 0;
      for (const s of batch) rows += s.logits === 2 ? s.tokens.length - (s.logitsFrom ?? 0) : s.logits === 1 ? 1 : 0;
      const u = new Float32Array(rows);
      for (let i = 0; i < rows; i++) u[i] = Math.fround(sampler.nextUniform());
      // A uniform that rounds up to 1 in float32 would leave [0, 1).
      for (let i = 0; i < rows; i++) if (u[i] >= 1) u[i] = Math.fround(1 - 2 ** -24);
      return this.native.runSample(batch, sampler.params, u, control);
    };
    const next = this.queue.then(go, go);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * A plain causal forward of `ids` (no chunking, no cache): the next-token
   * logits of the last position, or with `all` those of every position from
   * `from` (default 0) on, (ids.length - from, vocab) row-major. Its cost is
   * quadratic in ids.length; `signal` cancels it like a session call (the
   * run stops at its next micro-batch boundary and rejects with AbortError).
   */
  async forward(
    ids: ArrayLike<number>,
    opts: { all?: boolean; from?: number; signal?: AbortSignal } = {},
  ): Promise<Float32Array> {
    const x = checkIds(ids, this.config.vocabSize);
    const from = opts.from ?? 0;
    if (!Number.isInteger(from) || from < 0 || from >= x.length)
      throw new Error(`option from must be an integer in [0, ${x.length}), got ${String(opts.from)}`);
    if (opts.from !== undefined && !opts.all) throw new Error('option from needs all: true');
    const batch: NativeSeq[] = [{ tokens: Int32Array.from(x), logits: opts.all ? 2 : 1, logitsFrom: from }];
    return runCancellable(opts.signal, (control) => this.run(batch, control));
  }

  /** A FocusLLM session (native mode below minChunkedLength). */
  createSession(opts: SessionOptions = {}, internal: { seed?: ChunkSeeder } = {}): Session {
    if (this.native.disposed) throw new Error('this model has been disposed');
    const s = new Session(this, opts, internal.seed ?? null);
    this.sessions.add(s);
    const dispose = s.dispose.bind(s);
    s.dispose = () => {
      dispose();
      this.sessions.delete(s);
    };
    return s;
  }

  /**
   * Runs every chunk of a long document once and keeps the chunk caches:
   * questions asked of the Document (doc.generate, doc.generateTokens,
   * doc.session) then give exactly a fresh generate's numbers while running
   * only what depends on the question (lib/document.ts, README "Documents").
   */
  ingestDocument(input: string | ArrayLike<number>, opts: IngestDocumentOptions = {}): Promise<Document> {
    return ingestDocument(this, input, opts);
  }

  /** Reads a document that doc.save() wrote; refuses one saved with another model or other options. */
  loadDocument(file: string, opts: LoadDocumentOptions = {}): Promise<Document> {
    return loadDocument(this, file, opts);
  }

  /**
   * Logits rows: row 0 after all of `ids`, row i after also feeding
   * continuation[0..i-1] one token at a time (KV cache / FocusLLM steps).
   * The `logits` command's rows, bit for bit: like it, chunk caches are
   * float32 unless focus.cacheType says otherwise (sessions default to "auto").
   */
  async logits(
    ids: ArrayLike<number>,
    opts: { continuation?: ArrayLike<number>; focus?: SessionOptions; signal?: AbortSignal } = {},
  ): Promise<Float32Array[]> {
    const x = checkIds(ids, this.config.vocabSize);
    const cont = opts.continuation ? Array.from(opts.continuation) : [];
    if (cont.length) checkIds(cont, this.config.vocabSize, 'continuation');
    const s = this.createSession({ ...opts.focus, cacheType: opts.focus?.cacheType ?? 'f32', maxSteps: cont.length });
    try {
      const rows = [await s.ingest(x, { signal: opts.signal })];
      for (const t of cont) rows.push(await s.step(t, { signal: opts.signal }));
      return rows;
    } finally {
      s.dispose();
    }
  }

  /**
   * Generation as an async iterator.
   * - generate(ids, options): token ids after the input ids;
   * - generate({ context, prompt, ... }): text pieces, through the tokenizer.
   */
  generate(ids: ArrayLike<number>, opts?: TokenGenerateOptions): AsyncGenerator<number>;
  generate(request: GenerateRequest): AsyncGenerator<string>;
  generate(a: ArrayLike<number> | GenerateRequest, opts?: TokenGenerateOptions): AsyncGenerator<number | string> {
    const isIds = Array.isArray(a) || ArrayBuffer.isView(a);
    if (isIds) return this.generateTokens(a as ArrayLike<number>, opts);
    if (!a || typeof a !== 'object') throw new Error('generate() expects token ids or a request object');
    return generateText(this, a as GenerateRequest);
  }

  /** Generates token ids after `ids` (an async iterator). */
  async *generateTokens(ids: ArrayLike<number>, opts: TokenGenerateOptions = {}): AsyncGenerator<number> {
    const x = checkIds(ids, this.config.vocabSize);
    yield* sessionTokens(x, opts, this.config.eosTokenIds, (maxSteps) => this.createSession({ ...opts.focus, maxSteps }));
  }


  /**
   * Trains this model (CPU backend; lib/train, README "Training") and writes
   * a checkpoint folder to options.out that loadModel() runs. Options,
   * output folder and data are checked before any work starts. Afterwards
   * this model runs with the trained weights. An aborted signal saves a
   * resumable checkpoint and resolves with interrupted: true.
   */
  train(options: TrainOptions & TrainRunOptions): Promise<TrainSummary> {
    if (this.native.disposed) return Promise.reject(new Error('this model has been disposed'));
    let plan;
    try {
      plan = prepareTraining({ dir: this.dir, config: this.config, tokenizer: this.tokenizer }, options);
    } catch (e) {
      return Promise.reject(e);
    }
    // Queued like a run: training uses the model's scratch memory too.
    const go = () => runTraining(this, plan, options);
    const next = this.queue.then(go, go);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Frees the model and every session opened on it. */
  dispose(): void {
    disposeDocuments(this);
    for (const s of [...this.sessions]) s.dispose();
    this.native.dispose();
  }
}

/**
 * Loads a checkpoint folder (config.json + safetensors [+ tokenizer.json]).
 * Without a folder (or with "focus-tiny") it loads the model shipped in the
 * package.
 */
export async function loadModel(dir?: string, opts: LoadOptions = {}): Promise<Model> {
  if (dir !== undefined && (typeof dir !== 'string' || dir.length === 0))
    throw new Error('loadModel(dir): dir must be a folder path, or omitted for the shipped model');
  dir = resolveModelDir(dir).dir;
  const addon = native();
  let backend = opts.backend ?? 'auto';
  if (!['cpu', 'cuda', 'auto'].includes(backend))
    throw new Error(`option backend must be "cpu", "cuda" or "auto", got ${JSON.stringify(opts.backend)}`);
  if (backend === 'auto') backend = addon.backends().cuda.available ? 'cuda' : 'cpu';
  if (backend === 'cuda') {
    const c = addon.backends().cuda;
    if (!c.available) throw new Error(`backend "cuda" is not usable: ${c.reason}`);
  }
  const threads = opts.threads ?? Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  if (!Number.isInteger(threads) || threads < 1 || threads > 1024)
    throw new Error(`option threads must be an integer from 1 to 1024, got ${String(opts.threads)}`);
  const beaconParam = opts.beaconParam === undefined ? undefined : checkBeaconParam(opts.beaconParam);
  const abs = path.resolve(dir);
  const nm = await addon.loadModel(abs, {
    backend: backend as 'cpu' | 'cuda',
    threads,
    device: opts.device ?? 0,
    maxBatchTokens: opts.maxBatchTokens ?? 0,
    beaconParam,
  });
  // After the native loader: it has checked that config.json is a regular file.
  let focusDefaults: FocusParams;
  try {
    focusDefaults = readFocusDefaults(abs);
  } catch (e) {
    nm.dispose();
    throw e;
  }
  let tok: Tokenizer | null = null;
  if (opts.tokenizer !== false) {
    try {
      tok = await loadTokenizer(abs);
      if (tok && tok.vocabSize > nm.config.vocabSize)
        throw new Error(
          `${path.join(abs, 'tokenizer.json')}: the tokenizer has ${tok.vocabSize} tokens but config.json's vocab_size is ${nm.config.vocabSize}`,
        );
    } catch (e) {
      nm.dispose();
      throw e;
    }
  }
  // Reported, not refused: extra tensors are common (a lm_head kept beside tied
  // embeddings, candidates beacon_param leaves out), but a misspelt name shows here.
  const unused = nm.info.unusedTensors;
  if (unused.length > 0)
    process.emitWarning(
      `${abs}: the model does not use ${unused.length} tensor${unused.length === 1 ? '' : 's'} of the checkpoint: ` +
        unused.slice(0, 5).join(', ') + (unused.length > 5 ? ', ...' : '') + ' (model.info.unusedTensors lists them)',
      { code: 'FOCUSLLM_UNUSED_TENSORS' },
    );
  return new Model(abs, nm, tok, focusDefaults);
}

const FOCUS_CONFIG_KEYS: Record<string, keyof FocusParams> = {
  local_window: 'localWindow',
  chunk_size: 'chunkSize',
  prompt_cap: 'promptCap',
  min_chunked_length: 'minChunkedLength',
};

/**
 * The checkpoint's own FocusLLM defaults: config.json may carry
 * `"focusllm": {"local_window", "chunk_size", "prompt_cap", "min_chunked_length"}`
 * (any subset) for a model whose window is not LLaMA-2's 4096; what it leaves
 * out takes DESIGN's defaults. Options given to a session override them.
 */
export function readFocusDefaults(dir: string): FocusParams {
  const file = path.join(dir, 'config.json');
  let cfg: unknown;
  try {
    if (!fs.statSync(file).isFile()) return resolveFocusParams(); // a FIFO or device: the native loader refuses it
    cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return resolveFocusParams(); // the native loader reports a missing or broken config.json
  }
  const f = (cfg as { focusllm?: unknown } | null)?.focusllm;
  if (f === undefined) return resolveFocusParams();
  if (typeof f !== 'object' || f === null || Array.isArray(f)) throw new Error(`${file}: field focusllm must be an object`);
  const p: Partial<FocusParams> = {};
  for (const [k, v] of Object.entries(f)) {
    const key = FOCUS_CONFIG_KEYS[k];
    if (!key) throw new Error(`${file}: field focusllm.${k} is unknown (known: ${Object.keys(FOCUS_CONFIG_KEYS).join(', ')})`);
    p[key] = v as number;
  }
  try {
    return resolveFocusParams(p);
  } catch (e) {
    throw new Error(`${file}: field focusllm: ${(e as Error).message}`);
  }
}
