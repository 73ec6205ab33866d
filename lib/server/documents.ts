// Kept documents for POST /v1/documents: a document is uploaded once, gets an
// id, and completion requests name it with document_id to ask about it.
// Each is model.ingestDocument's (lib/document.ts): its chunks run once, in
// the server's queue like any request, and every question reuses their
// caches through doc.generate, with exactly model.generate({ context: text,
// prompt })'s answer.
import { randomBytes } from 'node:crypto';

import type { Document } from '../document';
import type { GenerateRequest } from '../generate';
import type { Model } from '../model';
import type { IngestProgress, SessionOptions } from '../session';
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
  /**
   * Ingested for chat questions (the text rendered as the start of a user
   * message with the chat template) or for plain completions; questions of
   * the other kind are answered as exactly, reusing less.
   */
  chat: boolean;
  /** ingest progress: FocusLLM chunks done / all */
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
  /** called when a document's ingest ends, ready or failed */
  onIngested?: (info: DocumentObject, ms: number) => void;
}

/** A library document as the server's: its questions take the server's step mode, and say whether they are chat. */
function keptDocument(doc: Document, stepMode: SessionOptions['stepMode']): KeptDocument {
  return {
    tokens: doc.length,
    // chat: a completion request's question is plain even on a document ingested for chat.
    generate: ({ focus: _focus, context: _context, ids: _ids, ...req }) => {
      // Deleted between the request's check and its turn on the model.
      if (doc.disposed) throw new ApiError(404, 'the document was deleted', 'invalid_request_error', 'document_id', 'document_not_found');
      return doc.generate({ ...req, chat: req.chat ?? false, stepMode });
    },
    dispose: () => doc.dispose(),
  };
}

export class DocumentStore {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly model: Model,
    private readonly queue: JobQueue,
    readonly opts: DocumentStoreOptions,
  ) {}

  /**
   * Starts keeping `text`, for chat questions (with the system message their
   * requests will start with) or for plain completions: its ingest waits its
   * turn on the queue.
   */
  add(text: string, chat: boolean | { system?: string }): DocumentObject {
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
      chat: chat !== false,
      chunks_done: 0,
      chunks_total: 0,
      error: null,
    };
    const abort = new AbortController();
    const t0 = performance.now();
    const entry: Entry = { info, text, doc: null, abort, done: Promise.resolve() };
    entry.done = this.queue
      .run(async () => {
        info.status = 'ingesting';
        const { stepMode, ...focus } = this.opts.focus;
        const onProgress = (p: IngestProgress) => {
          info.chunks_done = p.chunksDone;
          info.chunks_total = p.chunksTotal;
        };
        const doc = await this.model.ingestDocument(text, { focus, chat, signal: abort.signal, onProgress });
        if (abort.signal.aborted) {
          doc.dispose(); // deleted as its ingest ended
          abort.signal.throwIfAborted();
        }
        entry.doc = keptDocument(doc, stepMode);
        info.tokens = doc.length;
        info.chunks_total = doc.chunks;
        info.chunks_done = doc.chunks;
        info.status = 'ready';
      }, abort.signal)
      .catch((e: unknown) => {
        info.status = 'failed';
        info.error = e instanceof Error ? e.message : String(e);
      })
      .then(() => this.opts.onIngested?.({ ...info }, performance.now() - t0));
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
    // Questions already running on it finish: a document frees its caches once
    // the question ingests in flight are done (Document.dispose).
    e.doc?.dispose();
    return true;
  }

  dispose(): void {
    for (const id of [...this.entries.keys()]) this.delete(id);
  }
}
