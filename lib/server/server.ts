// An HTTP server whose endpoints follow the OpenAI API, over one loaded model:
//   POST /v1/chat/completions, POST /v1/completions (whole or streamed as
//   server-sent events), GET /v1/models[/ID], and focusllm's own
//   POST /v1/documents, GET /v1/documents[/ID], DELETE /v1/documents/ID
//   (a kept document that completions name with document_id).
//
// Built on node:http rather than a framework: the API is seven routes with
// JSON bodies and one streaming format, and what matters here (a body limit
// enforced while reading, noticing a client that goes away mid-stream to
// cancel the native work, writing SSE by hand) is a few lines on node:http,
// where a framework would add a dependency tree to the package's runtime
// dependencies for routing it does not need.
//
// Requests queue on the model first come first served (lib/server/queue.ts);
// a client that disconnects aborts its request's AbortSignal, which removes it
// from the queue or stops its generation at the next native micro-batch.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import type { GenerateProgress } from '../generate';
import type { Model } from '../model';
import type { SessionOptions } from '../session';
import { DocumentStore, type KeptDocument } from './documents';
import { ApiError, badParam, sendError, sendJson, toApiError } from './errors';
import {
  chunkObject,
  completionObject,
  parseCompletion,
  toGenerateRequest,
  usage,
  type CompletionJob,
  type FinishReason,
  type Meta,
} from './protocol';
import { JobQueue } from './queue';

export interface ServerOptions {
  /** the id /v1/models lists and requests must name (default: the model folder's name) */
  modelName?: string;
  /** when set, every request needs `Authorization: Bearer <apiKey>` */
  apiKey?: string;
  /** largest request body, bytes (default 16 MiB: a long context may come inside a prompt) */
  maxBodyBytes?: number;
  /** largest kept document, UTF-8 bytes (default 16 MiB) */
  maxDocumentBytes?: number;
  /** documents kept at once (default 16) */
  maxDocuments?: number;
  /** requests waiting behind the running one before new ones get 429 (default 64) */
  maxQueue?: number;
  /** the largest max_tokens a request may ask (default 4096; sessions size their caches for it) */
  maxTokensLimit?: number;
  /** max_tokens when a request gives none (default 256, or maxTokensLimit when lower) */
  defaultMaxTokens?: number;
  /** FocusLLM options of every generation (chunking parameters, cache type, step mode) */
  focus?: Omit<SessionOptions, 'maxSteps'>;
}

/** One finished completion request ('request' event), for logs and tests. */
export interface RequestRecord {
  id: string;
  endpoint: 'chat' | 'text';
  stream: boolean;
  status: 'completed' | 'cancelled' | 'failed';
  promptTokens: number;
  completionTokens: number;
  maxTokens: number;
  /** ms from arrival to the end */
  ms: number;
  error?: string;
}

export interface ServerStats {
  /** jobs (completion requests and document ingests) running / waiting on the model */
  active: number;
  queued: number;
  completed: number;
  cancelled: number;
  failed: number;
}

const DEFAULTS = {
  maxBodyBytes: 16 << 20,
  maxDocumentBytes: 16 << 20,
  maxDocuments: 16,
  maxQueue: 64,
  maxTokensLimit: 4096,
  defaultMaxTokens: 256,
};

function positiveInt(v: number | undefined, name: string, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v < min) throw new Error(`option ${name} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

export class FocusServer extends EventEmitter {
  readonly http: http.Server;
  readonly modelName: string;
  readonly documents: DocumentStore;
  private readonly queue: JobQueue;
  private readonly opts: Required<Omit<ServerOptions, 'apiKey' | 'modelName' | 'focus'>>;
  private readonly focus: Omit<SessionOptions, 'maxSteps'>;
  private readonly keyHash: Buffer | null;
  private readonly created = Math.floor(Date.now() / 1000);
  private readonly counts = { completed: 0, cancelled: 0, failed: 0 };
  private readonly running = new Set<AbortController>();

  constructor(
    readonly model: Model,
    options: ServerOptions = {},
  ) {
    super();
    if (!model || typeof model.generate !== 'function') throw new Error('createServer(model): model must be a loaded Model');
    if (!model.tokenizer) throw new Error(`${model.dir} has no tokenizer.json: the server needs one to read and write text`);
    this.opts = {
      maxBodyBytes: positiveInt(options.maxBodyBytes, 'maxBodyBytes', DEFAULTS.maxBodyBytes),
      maxDocumentBytes: positiveInt(options.maxDocumentBytes, 'maxDocumentBytes', DEFAULTS.maxDocumentBytes),
      maxDocuments: positiveInt(options.maxDocuments, 'maxDocuments', DEFAULTS.maxDocuments, 0),
      maxQueue: positiveInt(options.maxQueue, 'maxQueue', DEFAULTS.maxQueue, 0),
      maxTokensLimit: positiveInt(options.maxTokensLimit, 'maxTokensLimit', DEFAULTS.maxTokensLimit),
      defaultMaxTokens: 0,
    };
    // Unless given, the default follows a lower limit down.
    this.opts.defaultMaxTokens = positiveInt(options.defaultMaxTokens, 'defaultMaxTokens', Math.min(DEFAULTS.defaultMaxTokens, this.opts.maxTokensLimit));
    if (this.opts.defaultMaxTokens > this.opts.maxTokensLimit)
      throw new Error(`option defaultMaxTokens (${this.opts.defaultMaxTokens}) is above maxTokensLimit (${this.opts.maxTokensLimit})`);
    if (options.apiKey !== undefined && (typeof options.apiKey !== 'string' || options.apiKey.length === 0))
      throw new Error('option apiKey must be a non-empty string');
    // Compared as hashes with timingSafeEqual: equal lengths, constant time.
    this.keyHash = options.apiKey !== undefined ? sha256(options.apiKey) : null;
    if (options.modelName !== undefined && (typeof options.modelName !== 'string' || options.modelName.length === 0))
      throw new Error('option modelName must be a non-empty string');
    this.modelName = options.modelName ?? path.basename(model.dir);
    this.focus = options.focus ?? {};
    this.queue = new JobQueue(1, this.opts.maxQueue);
    this.documents = new DocumentStore(model, this.queue, {
      maxDocuments: this.opts.maxDocuments,
      maxDocumentBytes: this.opts.maxDocumentBytes,
      focus: this.focus,
      onIngested: (info, ms) => this.emit('document', info, ms),
    });
    this.http = http.createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        // handle() answers its own errors; this is the last guard.
        if (!res.headersSent) sendError(res, e);
        else res.destroy();
      });
    });
    this.http.on('clientError', (_e, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
      else socket.destroy();
    });
  }

  get stats(): ServerStats {
    return { active: this.queue.active, queued: this.queue.queued, ...this.counts };
  }

  /** Listens on host:port (default 127.0.0.1, port 8080; 0 picks a free port). */
  listen(port = 8080, host = '127.0.0.1'): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      this.http.once('error', onError);
      this.http.listen(port, host, () => {
        this.http.off('error', onError);
        resolve(this.http.address() as AddressInfo);
      });
    });
  }

  /** Stops listening, cancels running and waiting requests, drops the documents. The model stays loaded. */
  close(): Promise<void> {
    const cancelled = new Error('the server is shutting down');
    cancelled.name = 'AbortError';
    this.queue.clear(cancelled);
    for (const ac of this.running) ac.abort(cancelled);
    this.documents.dispose();
    return new Promise((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }

  // ---- routing ---------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // A write to a connection the client has closed must not become an
    // unhandled 'error' event: the request's own 'close' handling cancels it.
    res.on('error', () => undefined);
    const method = req.method ?? 'GET';
    let route = '';
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      route = url.pathname.replace(/\/+$/, '');
      if (!this.authorized(req))
        throw new ApiError(
          401,
          req.headers.authorization ? 'Incorrect API key provided.' : 'You did not provide an API key: send Authorization: Bearer KEY.',
          'invalid_request_error',
          null,
          'invalid_api_key',
        );
      const allow = (methods: string[]) => {
        if (!methods.includes(method))
          throw new ApiError(405, `${method} is not allowed on ${route} (allowed: ${methods.join(', ')})`, 'invalid_request_error', null, 'method_not_allowed');
      };
      if (route === '/v1/models') {
        allow(['GET']);
        return sendJson(res, 200, { object: 'list', data: [this.modelObject()] });
      }
      if (route.startsWith('/v1/models/')) {
        allow(['GET']);
        const id = decodePart(route.slice('/v1/models/'.length));
        if (id !== this.modelName) throw this.unknownModel(id, null);
        return sendJson(res, 200, this.modelObject());
      }
      if (route === '/v1/chat/completions' || route === '/v1/completions') {
        allow(['POST']);
        const body = await this.readJson(req);
        return await this.complete(route === '/v1/chat/completions' ? 'chat' : 'text', body, req, res);
      }
      if (route === '/v1/documents') {
        allow(['GET', 'POST']);
        if (method === 'GET') return sendJson(res, 200, { object: 'list', data: this.documents.list() });
        const { text, chat } = await this.readDocument(req);
        return sendJson(res, 202, this.documents.add(text, chat));
      }
      if (route.startsWith('/v1/documents/')) {
        allow(['GET', 'DELETE']);
        const id = decodePart(route.slice('/v1/documents/'.length));
        if (method === 'DELETE') {
          if (!this.documents.delete(id)) throw new ApiError(404, `no document with id '${id}'`, 'invalid_request_error', null, 'document_not_found');
          return sendJson(res, 200, { id, object: 'document.deleted', deleted: true });
        }
        const info = this.documents.info(id);
        if (!info) throw new ApiError(404, `no document with id '${id}'`, 'invalid_request_error', null, 'document_not_found');
        return sendJson(res, 200, info);
      }
      throw new ApiError(404, `Unknown request URL: ${method} ${url.pathname.slice(0, 200)}.`, 'invalid_request_error', null, 'unknown_url');
    } catch (e) {
      const err = toApiError(e);
      // A 413 leaves the rest of the body unread: close the connection after the answer.
      sendError(res, err, err.status === 413 ? { connection: 'close' } : {});
      if (err.status === 413) res.once('finish', () => req.destroy());
    }
  }

  private authorized(req: IncomingMessage): boolean {
    if (!this.keyHash) return true;
    const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
    return m !== null && timingSafeEqual(sha256(m[1].trim()), this.keyHash);
  }

  private modelObject() {
    return { id: this.modelName, object: 'model', created: this.created, owned_by: 'focusllm' };
  }

  private unknownModel(id: string, param: string | null): ApiError {
    return new ApiError(404, `The model '${id}' does not exist: this server serves '${this.modelName}'.`, 'invalid_request_error', param, 'model_not_found');
  }

  // ---- bodies ----------------------------------------------------------------

  /** The body as a Buffer, refused with 413 past `limit` bytes (by Content-Length at once, else while reading). */
  private readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
    const tooLarge = () => new ApiError(413, `the request body is larger than this server's limit of ${limit} bytes`, 'invalid_request_error', null, 'request_too_large');
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge());
    return new Promise((resolve, reject) => {
      const parts: Buffer[] = [];
      let size = 0;
      let over = false;
      req.on('data', (b: Buffer) => {
        if (over) return;
        size += b.length;
        if (size > limit) {
          over = true;
          parts.length = 0;
          req.pause();
          reject(tooLarge());
          return;
        }
        parts.push(b);
      });
      req.on('end', () => {
        if (!over) resolve(Buffer.concat(parts));
      });
      req.on('error', (e) => reject(e));
    });
  }

  private async readJson(req: IncomingMessage, limit = this.opts.maxBodyBytes): Promise<unknown> {
    const buf = await this.readBody(req, limit);
    try {
      return JSON.parse(buf.toString('utf8'));
    } catch (e) {
      throw new ApiError(400, `We could not parse the JSON body of your request: ${(e as Error).message}`, 'invalid_request_error', null, 'invalid_json');
    }
  }

  /**
   * A document upload: JSON {"text": "...", "chat"?: boolean, "system"?: "..."}
   * or the text itself (Content-Type text/plain). chat (default: when the
   * model has a chat template) ingests it for chat questions, with the system
   * message those will start with; false for /v1/completions questions.
   */
  private async readDocument(req: IncomingMessage): Promise<{ text: string; chat: boolean | { system?: string } }> {
    // The body may hold the document plus JSON escaping.
    const limit = Math.max(this.opts.maxBodyBytes, this.opts.maxDocumentBytes * 2 + 1024);
    const dflt = this.model.tokenizer!.hasChatTemplate;
    if (/^text\/plain\b/i.test(req.headers['content-type'] ?? '')) {
      const text = (await this.readBody(req, limit)).toString('utf8');
      if (text.length === 0) throw badParam('text', 'the document is empty');
      return { text, chat: dflt };
    }
    const body = await this.readJson(req, limit);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'the request body must be a JSON object {"text": "..."}');
    const { text, chat = dflt, system } = body as { text?: unknown; chat?: unknown; system?: unknown };
    if (typeof text !== 'string' || text.length === 0) throw badParam('text', 'text must be a non-empty string (the document)');
    if (typeof chat !== 'boolean') throw badParam('chat', 'chat must be a boolean');
    if (chat && !this.model.tokenizer!.hasChatTemplate) throw badParam('chat', 'this model has no chat template: upload with chat: false');
    if (system !== undefined && (typeof system !== 'string' || !chat)) throw badParam('system', 'system must be a string, with chat: true');
    return { text, chat: chat ? (system ? { system } : true) : false };
  }

  // ---- completions -------------------------------------------------------------

  private async complete(kind: 'chat' | 'text', body: unknown, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = performance.now();
    const job = parseCompletion(kind, body, {
      maxTokens: this.opts.maxTokensLimit,
      defaultMaxTokens: this.opts.defaultMaxTokens,
      vocabSize: this.model.config.vocabSize,
    });
    if (job.model !== this.modelName) throw this.unknownModel(job.model, 'model');
    let doc: KeptDocument | undefined;
    if (job.documentId !== undefined) {
      // Checked before queueing: an unknown id is a 404 now, not after a wait.
      if (!this.documents.info(job.documentId))
        throw new ApiError(404, `no document with id '${job.documentId}'`, 'invalid_request_error', 'document_id', 'document_not_found');
    }
    const lib = toGenerateRequest(job, this.model.tokenizer!, job.documentId !== undefined);
    const meta: Meta = {
      id: `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomBytes(12).toString('hex')}`,
      created: Math.floor(Date.now() / 1000),
      model: this.modelName,
    };
    const ac = new AbortController();
    // 'close' on the response: the connection went away, or the answer ended.
    res.on('close', () => {
      if (!res.writableFinished) ac.abort();
    });
    const record: RequestRecord = {
      id: meta.id,
      endpoint: kind,
      stream: job.stream,
      status: 'failed',
      promptTokens: 0,
      completionTokens: 0,
      maxTokens: job.maxTokens,
      ms: 0,
    };
    let last: GenerateProgress | null = null;
    let text = '';
    let streaming = false;
    const sse = (obj: unknown) => res.write(`data: ${JSON.stringify(obj)}\n\n`);
    try {
      if (job.documentId !== undefined) doc = await this.documents.ready(job.documentId);
      await this.queue.run(async () => {
        this.running.add(ac);
        try {
          const request = {
            ...lib,
            maxNewTokens: job.maxTokens,
            temperature: job.sampling.temperature,
            topP: job.sampling.topP,
            topK: job.sampling.topK,
            seed: job.sampling.seed,
            stop: job.stop,
            signal: ac.signal,
            onProgress: (p: GenerateProgress) => {
              last = p;
            },
          };
          const pieces = doc ? doc.generate(request) : this.model.generate({ ...request, focus: this.focus });
          if (job.stream) {
            res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
            streaming = true;
            if (kind === 'chat') sse(chunkObject(kind, meta, { role: true, text: '' }));
          }
          for await (const piece of pieces) {
            text += piece;
            if (job.stream) sse(chunkObject(kind, meta, { text: piece }));
          }
        } finally {
          this.running.delete(ac);
        }
      }, ac.signal);
      const p = last as GenerateProgress | null;
      record.promptTokens = p?.inputTokens ?? 0;
      record.completionTokens = p?.generatedTokens ?? 0;
      // Fewer tokens than allowed: an end-of-sequence token or a stop string
      // ended it. (A stop string completed by the very last allowed token
      // reads as 'length': the library does not say which.)
      const finish: FinishReason = record.completionTokens >= job.maxTokens ? 'length' : 'stop';
      const u = usage(record.promptTokens, record.completionTokens);
      if (job.stream) {
        sse(chunkObject(kind, meta, { finish, ...(kind === 'chat' ? {} : { text: '' }) }));
        if (job.includeUsage) sse(chunkObject(kind, meta, { usage: u }));
        res.end('data: [DONE]\n\n');
      } else {
        sendJson(res, 200, completionObject(kind, meta, text, finish, u));
      }
      record.status = 'completed';
    } catch (e) {
      const cancelled = ac.signal.aborted;
      record.status = cancelled ? 'cancelled' : 'failed';
      const p = last as GenerateProgress | null;
      record.promptTokens = p?.inputTokens ?? 0;
      record.completionTokens = p?.generatedTokens ?? 0;
      // Errors from the library about the input (too long for the model, a
      // token id out of range...) are the request's fault: 400.
      const err = e instanceof ApiError ? e : cancelled ? null : new ApiError(isInputError(e) ? 400 : 500, (e as Error).message, isInputError(e) ? 'invalid_request_error' : 'server_error');
      if (err) record.error = err.message;
      if (cancelled) {
        res.destroy();
      } else if (streaming) {
        // Headers are gone: the API's streams report an error as an event.
        sse(err!.body());
        res.end('data: [DONE]\n\n');
      } else {
        sendError(res, err);
      }
    } finally {
      record.ms = performance.now() - t0;
      this.counts[record.status]++;
      this.emit('request', record);
    }
  }
}

/** A path segment, decoded; a malformed escape is the request's fault. */
function decodePart(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ApiError(400, `malformed URL escape in '${s.slice(0, 100)}'`, 'invalid_request_error', null, 'invalid_url');
  }
}

/** Library errors that a request's input caused (as opposed to the server failing). */
function isInputError(e: unknown): boolean {
  const m = e instanceof Error ? e.message : '';
  return /must be|is not a token id|is empty|nothing to generate|too long|exceeds|chat template/i.test(m);
}

/**
 * An OpenAI-compatible HTTP server over `model` (call listen() on it; close()
 * stops it). Events: 'request' (RequestRecord) when a completion ends,
 * 'document' (DocumentObject, ms) when a document's ingest ends.
 */
export function createServer(model: Model, options: ServerOptions = {}): FocusServer {
  return new FocusServer(model, options);
}
