// A FocusLLM inference session over one input: ingest(ids) gives the next-token
// logits, step(id) appends one token and gives the next. Follows DESIGN.md
// section 1 to the letter (step mode 'exact', the default; the other step
// modes approximate its steps for speed); the native side runs whole batched
// steps.
import type {
  CandidateSet,
  KvPool,
  Model as NativeModel,
  NativeDtype,
  NativeSeq,
  RunControl,
} from '../typings/native';
import { native } from './native';
import { type FocusParams, type Plan, planIngest, resolveFocusParams } from './plan';
import type { NativeSampler } from './sampling';

export type CacheType = 'auto' | NativeDtype;

/**
 * How a FocusLLM step recomputes the local sequence (README, "Step modes").
 * - 'exact' (default): DESIGN section 1, the method as published: the whole
 *   local sequence runs again over the new candidates.
 * - 'incremental': the local sequence keeps a KV cache; only the new token
 *   runs, over the new candidates and the cached local keys/values (which
 *   were computed over earlier candidates). An approximation.
 * - 'refresh:N': incremental, with the exact full recompute at steps 1,
 *   N+1, 2N+1, ... ('refresh:1' computes what exact does).
 * - 'tail:N': incremental, but the last N local tokens before the new one
 *   are recomputed over the new candidates at every step.
 * Native mode (short inputs) ignores it: its steps are exact anyway.
 */
export type StepMode = 'exact' | 'incremental' | `refresh:${number}` | `tail:${number}`;

/** A parsed step mode: the first local token a step recomputes follows from it. */
export interface StepModeSpec {
  kind: 'exact' | 'incremental' | 'refresh' | 'tail';
  /** refresh: the period; tail: tokens recomputed; else 0 */
  n: number;
}

/** Parses a step mode, or throws an Error naming the option and the accepted forms. */
export function parseStepMode(v: unknown, what = 'option stepMode'): StepModeSpec {
  if (v === 'exact' || v === 'incremental') return { kind: v, n: 0 };
  const m = typeof v === 'string' ? /^(refresh|tail):([0-9]+)$/.exec(v) : null;
  const n = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(n) || n < 1 || n > 1 << 24)
    throw new Error(
      `${what} must be exact, incremental, refresh:N or tail:N (N an integer from 1 to ${1 << 24}), got ${typeof v === 'string' ? `'${v}'` : String(v)}`,
    );
  return { kind: m[1] as 'refresh' | 'tail', n };
}

export interface SessionOptions extends Partial<FocusParams> {
  /** start token (default: the model's bos_token_id) */
  bosId?: number;
  /** Steps the session must be able to take after ingest (sizes the caches up front). Default 256. */
  maxSteps?: number;
  /**
   * Keep every chunk's KV cache (needed to step). false: keep only the
   * candidate KVs, for scoring the ingest logits alone. Default true.
   */
  keepChunkCaches?: boolean;
  /**
   * Storage of the chunk caches. "auto" (default): the weights' 16-bit type
   * when the weights are 16-bit, else float32 (on CUDA: the backend's type).
   */
  cacheType?: CacheType;
  /** How FocusLLM steps recompute the local sequence (see StepMode). Default 'exact'. */
  stepMode?: StepMode;
}

export interface IngestProgress {
  phase: 'chunks' | 'local';
  /** chunks ingested; in the local phase (after the chunks), all of them */
  chunksDone: number;
  chunksTotal: number;
  tokensDone: number;
  tokensTotal: number;
}

export interface RunOptions {
  signal?: AbortSignal;
  onProgress?: (p: IngestProgress) => void;
}

/** What a session holds in native memory, in bytes. */
export interface SessionMemory {
  chunkCaches: number;
  candidates: number;
  /** native mode: the sequence's cache; focus mode: the local sequence's (step modes other than exact) */
  localCache: number;
}

/** The parts of the model a session needs (lib/model.ts implements it). */
export interface SessionHost {
  readonly native: NativeModel;
  /** serialised native runs */
  run(batch: NativeSeq[], control?: RunControl): Promise<Float32Array>;
  runSample(batch: NativeSeq[], sampler: NativeSampler, control?: RunControl): Promise<Int32Array>;
  /** FocusLLM parameters where the options are silent (default: DESIGN's) */
  readonly focusDefaults?: FocusParams;
}

/** Leading tokens of a chunk that a kept cache already holds (lib/document.ts). */
export interface ChunkSeed {
  pool: KvPool;
  slot: number;
  /** tokens of the chunk, from its first, cached in pool[slot] */
  length: number;
}

/**
 * @internal For each chunk of a FocusLLM plan of input `ids`, cached leading
 * tokens to copy instead of running them, or null. The seeded caches must
 * hold the tokens the chunk starts with, computed as a chunk (from position 0).
 */
export type ChunkSeeder = (ids: readonly number[], plan: Extract<Plan, { mode: 'focus' }>) => (ChunkSeed | null)[];

/** the entries of o whose value is not undefined (so they do not mask defaults) */
export function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function abortError(signal: AbortSignal): Error {
  const r = signal.reason;
  if (r instanceof Error) return r;
  const e = new Error('the operation was aborted');
  e.name = 'AbortError';
  return e;
}

/**
 * Runs `fn` with a native RunControl that `signal` cancels: an aborted signal
 * rejects before any work, or (once the native run stopped) with AbortError.
 */
export async function runCancellable<T>(signal: AbortSignal | undefined, fn: (control: RunControl) => Promise<T>): Promise<T> {
  signal?.throwIfAborted();
  const control = new (native().RunControl)();
  const onAbort = () => control.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await fn(control);
  } catch (e) {
    if (signal?.aborted) throw abortError(signal);
    throw e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

export class Session {
  readonly params: FocusParams;
  readonly bosId: number;
  readonly maxSteps: number;
  readonly keepChunkCaches: boolean;
  readonly cacheType: CacheType;
  readonly stepMode: StepMode;

  private readonly stepSpec: StepModeSpec;
  private plan: Plan | null = null;
  private pool: KvPool | null = null;   // chunk caches (focus) or the sequence's cache (native)
  private localPool: KvPool | null = null; // focus, step modes but exact: the local sequence's cache
  private cands: CandidateSet | null = null;
  private local: number[] = [];         // focus: the local sequence, grown by each step
  private last = -1;                    // focus: the previous last token
  private steps = 0;
  private busy = false;
  private failed: string | null = null; // why the caches cannot be stepped further
  private disposed = false;

  constructor(
    private readonly host: SessionHost,
    opts: SessionOptions = {},
    /** @internal kept chunk caches to start from (lib/document.ts) */
    private readonly seeder: ChunkSeeder | null = null,
  ) {
    const { bosId, maxSteps, keepChunkCaches, cacheType, stepMode, ...focus } = opts;
    this.params = resolveFocusParams({ ...host.focusDefaults, ...definedOnly(focus) });
    const cfg = host.native.config;
    this.bosId = bosId ?? cfg.bosTokenId;
    if (!Number.isInteger(this.bosId) || this.bosId < 0 || this.bosId >= cfg.vocabSize)
      throw new Error(`option bosId must be a token id below ${cfg.vocabSize}, got ${String(bosId)}`);
    this.maxSteps = maxSteps ?? 256;
    if (!Number.isInteger(this.maxSteps) || this.maxSteps < 0 || this.maxSteps > 1 << 24)
      throw new Error(`option maxSteps must be an integer from 0 to ${1 << 24}, got ${String(maxSteps)}`);
    this.keepChunkCaches = keepChunkCaches ?? true;
    if (typeof this.keepChunkCaches !== 'boolean') throw new Error('option keepChunkCaches must be a boolean');
    this.cacheType = cacheType ?? 'auto';
    if (!['auto', 'f32', 'f16', 'bf16'].includes(this.cacheType))
      throw new Error(`option cacheType must be auto, f32, f16 or bf16, got ${String(cacheType)}`);
    this.stepSpec = parseStepMode(stepMode ?? 'exact');
    this.stepMode = (stepMode ?? 'exact') as StepMode;
  }

  /** 'native' or 'focus' once ingested, else null. */
  get mode(): 'native' | 'focus' | null {
    return this.plan?.mode ?? null;
  }

  /** Number of chunks of the ingested input (0 in native mode). */
  get chunks(): number {
    return this.plan?.mode === 'focus' ? this.plan.chunks.length : 0;
  }

  get stepsTaken(): number {
    return this.steps;
  }

  get memory(): SessionMemory {
    const m = { chunkCaches: 0, candidates: 0, localCache: 0 };
    if (this.pool && !this.pool.disposed) {
      if (this.plan?.mode === 'native') m.localCache = this.pool.bytes;
      else m.chunkCaches = this.pool.bytes;
    }
    if (this.localPool && !this.localPool.disposed) m.localCache = this.localPool.bytes;
    if (this.cands && !this.cands.disposed) m.candidates = this.cands.bytes;
    return m;
  }

  /** Chunk-cache storage type this session uses for the model. */
  resolvedCacheType(): NativeDtype {
    const info = this.host.native.info;
    if (this.host.native.backend !== 'cpu') return info.actDtype;
    if (this.cacheType !== 'auto') return this.cacheType;
    return info.dtype === 'BF16' ? 'bf16' : info.dtype === 'F16' ? 'f16' : 'f32';
  }

  /** Ingests input ids; resolves with the next-token logits (vocab floats). */
  ingest(ids: ArrayLike<number>, opts: RunOptions = {}): Promise<Float32Array> {
    return this.ingestImpl(ids, opts, null) as Promise<Float32Array>;
  }

  /** Ingests input ids; the next token is sampled on the backend (only it crosses to the host). */
  ingestToken(ids: ArrayLike<number>, sampler: NativeSampler, opts: RunOptions = {}): Promise<number> {
    return this.ingestImpl(ids, opts, sampler) as Promise<number>;
  }

  /** Appends token `id`; resolves with the next-token logits. */
  step(id: number, opts: RunOptions = {}): Promise<Float32Array> {
    return this.stepImpl(id, opts, null) as Promise<Float32Array>;
  }

  /** Appends token `id`; the next token is sampled on the backend. */
  stepToken(id: number, sampler: NativeSampler, opts: RunOptions = {}): Promise<number> {
    return this.stepImpl(id, opts, sampler) as Promise<number>;
  }

  private async ingestImpl(ids: ArrayLike<number>, opts: RunOptions, sampler: NativeSampler | null): Promise<Float32Array | number> {
    const x = this.checkIds(ids, 'ids');
    return this.exclusive(async () => {
      // An already aborted call changes nothing.
      opts.signal?.throwIfAborted();
      this.release();
      this.plan = null;
      this.failed = null;
      this.steps = 0;
      const plan = planIngest(x, this.params, this.bosId);
      this.plan = plan;
      try {
        if (plan.mode === 'native') {
          this.local = plan.local.slice();
          this.pool = this.host.native.createKvPool(1, plan.local.length + this.maxSteps, 'act');
          return await this.runWith(
            [{ tokens: Int32Array.from(plan.local), pool: this.pool, slot: 0, logits: 1 }],
            opts,
            'local',
            0,
            sampler,
          );
        }
        const k = plan.chunks.length;
        const P = plan.prompt.length;
        // Size everything before any work: an Error names the bytes if it does not fit.
        this.cands = this.host.native.createCandidateSet(k);
        if (this.keepChunkCaches) {
          const longest = plan.chunks[0].length + P; // chunk 0 is never shorter than the others
          this.pool = this.host.native.createKvPool(k, longest + this.maxSteps, this.resolvedCacheType());
          // The local sequence's cache, in the activation type: its keys and
          // values are then the numbers the exact recompute attends to.
          if (this.stepSpec.kind !== 'exact')
            this.localPool = this.host.native.createKvPool(1, plan.local.length + this.maxSteps, 'act');
        }
        // Every chunk with the dynamic prompt appended, as one batched call; the
        // last token (the prompt's last) of each is its candidate. A seeded
        // chunk starts from a copy of its first tokens' cache and runs the rest.
        const seeds = this.seeder && this.pool ? this.seeder(x, plan) : null;
        const chunkSeqs: NativeSeq[] = plan.chunks.map((c, i) => {
          const seed = seeds?.[i] ?? null;
          const n = seed ? seed.length : 0;
          return {
            tokens: Int32Array.from([...c.slice(n), ...plan.prompt]),
            ...(this.pool ? { pool: this.pool, slot: i } : {}),
            ...(seed ? { base: seed.pool, baseSlot: seed.slot, baseLength: n } : {}),
            cand: this.cands!,
            candSlot: i,
          };
        });
        await this.runWith(chunkSeqs, opts, 'chunks', k, null);
        this.local = plan.local.slice();
        this.last = x[x.length - 1];
        return await this.runLocal(0, opts, sampler);
      } catch (e) {
        this.release();
        this.plan = null;
        throw e;
      }
    });
  }

  private async stepImpl(id: number, opts: RunOptions, sampler: NativeSampler | null): Promise<Float32Array | number> {
    const vocab = this.host.native.config.vocabSize;
    if (!Number.isInteger(id) || id < 0 || id >= vocab)
      throw new Error(`token id ${String(id)} is out of range (vocabulary size ${vocab})`);
    return this.exclusive(async () => {
      const plan = this.plan;
      if (this.failed) throw new Error(`this session's caches are no longer consistent (${this.failed}): ingest again`);
      if (!plan) throw new Error('step() before ingest(): ingest an input first');
      if (this.steps >= this.maxSteps)
        throw new Error(`this session was sized for ${this.maxSteps} steps (option maxSteps); create it with more`);
      if (plan.mode === 'focus' && !this.pool)
        throw new Error('this session kept no chunk caches (keepChunkCaches: false): it can only score the ingest logits');
      opts.signal?.throwIfAborted();
      // Once a native call of the step has started, a failure or an abort can
      // leave the caches part-way through the step: the session then refuses
      // further steps until it ingests again.
      try {
        return await this.stepRuns(plan, id, opts, sampler);
      } catch (e) {
        this.failed = e instanceof Error && e.name === 'AbortError' ? 'the last step was aborted' : 'the last step failed';
        this.release();
        throw e;
      }
    });
  }

  private async stepRuns(
    plan: Plan,
    id: number,
    opts: RunOptions,
    sampler: NativeSampler | null,
  ): Promise<Float32Array | number> {
    const pool = this.pool;
    if (!pool) throw new Error('this session was disposed during the call');
    if (plan.mode === 'native') {
      const out = await this.runWith([{ tokens: Int32Array.of(id), pool, slot: 0, logits: 1 }], opts, 'local', 0, sampler);
      this.local.push(id);
      this.steps++;
      return out;
    }
    // Parallel candidate decoding: every chunk runs [last, y] on its cache;
    // y is the new candidate, last becomes an ordinary cached token.
    const k = plan.chunks.length;
    const seqs: NativeSeq[] = [];
    for (let i = 0; i < k; i++)
      seqs.push({ tokens: Int32Array.of(this.last, id), pool, slot: i, cand: this.cands!, candSlot: i });
    const exact = this.stepSpec.kind === 'exact';
    if (exact) await this.runWith(seqs, opts, 'chunks', k, null);
    this.local.push(id);
    this.last = id;
    this.steps++;
    // Exact: the local sequence in a second call, as published. The other
    // modes run it in the chunks' call, after them in the batch: it then
    // attends to their new candidates (the runner stores each layer's
    // candidates before any attention reads them), and a step makes one pass
    // over the weights instead of two, which is most of a decode step's time.
    return await this.runLocal(this.recomputeFrom(), opts, sampler, exact ? [] : seqs);
  }

  /**
   * The first local token this step recomputes (the local sequence already
   * holds the new token): 0 is the full, exact recompute; local.length - 1
   * runs the new token alone over the cached keys and values.
   */
  private recomputeFrom(): number {
    const { kind, n } = this.stepSpec;
    const newest = this.local.length - 1;
    if (kind === 'exact') return 0;
    if (kind === 'refresh') return (this.steps - 1) % n === 0 ? 0 : newest;
    if (kind === 'tail') return Math.max(0, newest - n);
    return newest;
  }

  /** Frees the session's native memory; the session cannot be used afterwards. */
  dispose(): void {
    this.release();
    this.plan = null;
    this.disposed = true;
  }

  private runLocal(
    from: number,
    opts: RunOptions,
    sampler: NativeSampler | null,
    before: NativeSeq[] = [],
  ): Promise<Float32Array | number> {
    // The local sequence from token `from` on, over the k candidates,
    // positions k.. after the candidates' 0..k-1, in one call after the
    // sequences `before`. Exact mode has no local cache and recomputes it
    // all (the candidates all changed); the other modes keep tokens
    // [0, from) cached from earlier steps, computed over earlier candidates,
    // and append the rest.
    if (this.disposed || !this.plan || this.plan.mode !== 'focus' || !this.cands)
      throw new Error('this session was disposed during the call');
    const k = this.plan.chunks.length;
    const lp = this.localPool;
    if (lp) lp.truncate(0, from);
    else if (from !== 0) throw new Error('internal: a partial local recompute without a local cache');
    return this.runWith(
      [...before, { tokens: Int32Array.from(this.local.slice(from)), ...(lp ? { pool: lp, slot: 0 } : {}), prefix: this.cands!, nPrefix: k, logits: 1 }],
      opts,
      'local',
      k,
      sampler,
    );
  }

  private async runWith(
    batch: NativeSeq[],
    opts: RunOptions,
    phase: IngestProgress['phase'],
    chunksTotal: number,
    sampler: NativeSampler | null,
  ): Promise<Float32Array | number> {
    const { signal, onProgress } = opts;
    signal?.throwIfAborted();
    const addon = native();
    const control = new addon.RunControl();
    const onAbort = () => control.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    let callbackError: unknown = null; // an onProgress that throws stops the run with its error
    const report = () => {
      if (!onProgress || callbackError) return;
      const total = control.tokensTotal;
      const done = control.tokensDone;
      // The local phase runs after every chunk: it reports them all done, so
      // a progress bar never goes back from the chunks phase.
      const chunksDone = phase === 'local' ? chunksTotal : total > 0 ? Math.floor((chunksTotal * done) / total) : 0;
      try {
        onProgress({ phase, chunksDone, chunksTotal, tokensDone: done, tokensTotal: total });
      } catch (e) {
        callbackError = e ?? new Error('onProgress threw');
        control.cancel();
      }
    };
    const timer = onProgress ? setInterval(report, 100) : undefined;
    try {
      const out = sampler
        ? (await this.host.runSample(batch, sampler, control))[0]
        : await this.host.run(batch, control);
      report();
      if (callbackError) throw callbackError;
      return out;
    } catch (e) {
      if (callbackError) throw callbackError;
      if (signal?.aborted) throw abortError(signal);
      throw e;
    } finally {
      if (timer) clearInterval(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  private checkIds(ids: ArrayLike<number>, what: string): number[] {
    if (this.disposed) throw new Error('this session has been disposed');
    if (!ids || typeof ids.length !== 'number') throw new Error(`${what} must be an array of token ids`);
    const vocab = this.host.native.config.vocabSize;
    const out = Array.from(ids);
    for (let i = 0; i < out.length; i++) {
      const v = out[i];
      if (!Number.isInteger(v) || v < 0 || v >= vocab)
        throw new Error(`${what}[${i}] = ${String(v)} is not a token id (vocabulary size ${vocab})`);
    }
    if (out.length === 0) throw new Error(`${what} is empty`);
    return out;
  }

  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.disposed) throw new Error('this session has been disposed');
    if (this.busy) throw new Error('a session runs one ingest or step at a time: await the previous call');
    this.busy = true;
    try {
      return await fn();
    } finally {
      this.busy = false;
    }
  }

  private release(): void {
    this.pool?.dispose();
    this.cands?.dispose();
    this.localPool?.dispose();
    this.pool = null;
    this.cands = null;
    this.localPool = null;
  }
}
