// The OpenAI-compatible server (README, "Server"): createServer(model, options).
export { createServer, FocusServer, type ServerOptions, type ServerStats, type RequestRecord } from './server';
export { ApiError, type ApiErrorBody } from './errors';
export { JobQueue } from './queue';
export type { DocumentObject, DocumentStatus, KeptDocument } from './documents';
