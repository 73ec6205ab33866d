// The OpenAI API's error shape: every failed request answers
// {"error": {"message", "type", "param", "code"}} with the status the API
// uses for the case (400 bad parameter, 401 key, 404 unknown model / URL /
// document, 405 method, 413 body too large, 429 queue or store full, 500).
import type { ServerResponse } from 'node:http';

export interface ApiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  body(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A 400 about one request field (`param` names it as the API does: "messages[1].content"). */
export function badParam(param: string, message: string, code: string | null = 'invalid_value'): ApiError {
  return new ApiError(400, message, 'invalid_request_error', param, code);
}

/** Any thrown value as an ApiError: ApiErrors pass, anything else is a 500 server_error. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new ApiError(500, `the server failed: ${msg}`, 'server_error', null, null);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

export function sendError(res: ServerResponse, e: unknown, headers: Record<string, string> = {}): void {
  const err = toApiError(e);
  sendJson(res, err.status, err.body(), headers);
}
