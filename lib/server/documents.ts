// Kept documents for POST /v1/documents: a document is uploaded once, gets an
// id, and completion requests name it with document_id to ask about it.
//
// PLAIN PATH (until the library's model.ingestDocument lands, lib/document.ts,
// issue 10 item 1): the store keeps the document's text and token count, and
// every question runs model.generate({ context: text, prompt }) -- exactly the
// library's answer, but each question ingests the whole document again. The
// KeptDocument interface below is the seam: an ingestDocument-backed document
// answers the same requests through doc.generate (reusing the chunk caches)
// without the server changing.
import { randomBytes } from 'node:crypto';

import type { GenerateRequest } from '../generate';
import type { Model } from '../model';
import type { SessionOptions } from '../session';
import { ApiError } from './errors';
import type { JobQueue } from './queue';

/** What a document answers with: text pieces for a request without context. */
export interface KeptDocument {
  /** input tokens of the document alone */
  readonly tokens: number;
  generate(req: GenerateRequest): AsyncGenerator<string>;
  dispose(): void;
}

export type DocumentStatus = 'queued' | 'ingesting' | 'ready' | 'failed';

/** GET /v1/documents/:id */
export interface DocumentObject {
  id: string;
  object: 'document';
  created: number;
  status: DocumentStatus;
  /** UTF-8 bytes of the text */
  bytes: number;
  /** tokens of the document (once tokenized) */
  tokens: number | null;
  /** ingest progress: FocusLLM chunks done / all (0 / 0 on the plain path, which computes nothing ahead) */
  chunks_done: number;
  chunks_total: number;
  /** why the ingest failed */
  error: string | null;
}

interface Entry {
  info: DocumentObject;
  text: string;
  doc: KeptDocument | null;
  /** settles when the ingest ends (resolves either way; read info.status) */
  done: Promise<void>;
  abort: AbortController;
}

export interface DocumentStoreOptions {
  /** documents kept at once (default 16) */
  maxDocuments: number;
  /** largest document, in UTF-8 bytes */
  maxDocumentBytes: number;
  focus: Omit<SessionOptions, 'maxSteps'>;
}

/** The plain path's document: the text, answered by model.generate with it as the context. */
function plainDocument(model: Model, text: string, focus: Omit<SessionOptions, 'maxSteps'>): KeptDocument {
  const tokens = model.tokenizer!.encode(text).length;
  return {
    tokens,
    generate: (req) => model.generate({ ...req, focus: req.focus ?? focus, context: text }),
    dispose: () => undefined,
  };
}

export class DocumentStore {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly model: Model,
    private readonly queue: JobQueue,
    readonly opts: DocumentStoreOptions,
  ) {}

  /** Starts keeping `text`: its ingest waits its turn on the queue. */
  add(text: string): DocumentObject {
    if (!this.model.tokenizer) throw new ApiError(400, 'this model has no tokenizer.json: documents need one', 'invalid_request_error', null, 'no_tokenizer');
    const bytes = Buffer.byteLength(text);
    if (bytes > this.opts.maxDocumentBytes)
      throw new ApiError(413, `the document has ${bytes} bytes; this server keeps documents of at most ${this.opts.maxDocumentBytes}`, 'invalid_request_error', 'text', 'document_too_large');
    if (this.entries.size >= this.opts.maxDocuments)
      throw new ApiError(429, `this server keeps at most ${this.opts.maxDocuments} documents: delete one first (DELETE /v1/documents/ID)`, 'invalid_request_error', null, 'document_store_full');
    const id = `doc-${randomBytes(12).toString('hex')}`;
    const info: DocumentObject = {
      id,
      object: 'document',
      created: Math.floor(Date.now() / 1000),
      status: 'queued',
      bytes,
      tokens: null,
      chunks_done: 0,
      chunks_total: 0,
      error: null,
    };
    const abort = new AbortController();
    const entry: Entry = { info, text, doc: null, abort, done: Promise.resolve() };
    entry.done = this.queue
      .run(async () => {
        info.status = 'ingesting';
        const doc = plainDocument(this.model, text, this.opts.focus);
        abort.signal.throwIfAborted();
        entry.doc = doc;
        info.tokens = doc.tokens;
        info.status = 'ready';
      }, abort.signal)
      .catch((e: unknown) => {
        info.status = 'failed';
        info.error = e instanceof Error ? e.message : String(e);
      });
    this.entries.set(id, entry);
    return { ...info };
  }

  info(id: string): DocumentObject | undefined {
    const e = this.entries.get(id);
    return e ? { ...e.info } : undefined;
  }

  list(): DocumentObject[] {
    return [...this.entries.values()].map((e) => ({ ...e.info }));
  }

  /** The document once its ingest has ended: ApiError 404 when unknown, 409 when its ingest failed. */
  async ready(id: string, param = 'document_id'): Promise<KeptDocument> {
    const e = this.entries.get(id);
    if (!e) throw new ApiError(404, `no document with id '${id}'`, 'invalid_request_error', param, 'document_not_found');
    await e.done;
    if (e.info.status !== 'ready' || !e.doc)
      throw new ApiError(409, `document '${id}' is not usable: its ingest failed (${e.info.error ?? 'deleted'})`, 'invalid_request_error', param, 'document_failed');
    return e.doc;
  }

  delete(id: string): boolean {
    const e = this.entries.get(id);
    if (!e) return false;
    this.entries.delete(id);
    e.abort.abort();
    // Questions already running on it keep their own references; the plain
    // path's document holds no native memory, an ingested one frees at dispose.
    e.doc?.dispose();
    return true;
  }

  dispose(): void {
    for (const id of [...this.entries.keys()]) this.delete(id);
  }
}
