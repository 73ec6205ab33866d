// focusllm serve: the OpenAI-compatible HTTP server (lib/server) over one model.
import { parseFlags, usage, UsageError, type FlagSpec } from './args';
import type { Command } from './command';
import { FOCUS_FLAGS, focusFromFlags, MODEL_FLAGS, modelFromFlags } from './common';
import { createServer, type DocumentObject, type RequestRecord } from '../server/index';

const SPEC: Record<string, FlagSpec> = {
  ...MODEL_FLAGS,
  host: { type: 'string', help: 'address to listen on (0.0.0.0: every interface)', default: '127.0.0.1' },
  port: { type: 'int', help: 'TCP port (0: any free port)', default: 8080 },
  'api-key': { type: 'string', help: 'require Authorization: Bearer KEY on every request (default: $FOCUSLLM_API_KEY, else none)' },
  'model-name': { type: 'string', help: "the model id clients name (default: the model folder's name)" },
  'max-queue': { type: 'int', help: 'requests waiting behind the running one before 429', default: 64 },
  'max-tokens-limit': { type: 'int', help: 'largest max_tokens a request may ask', default: 4096 },
  'default-max-tokens': { type: 'int', help: 'max_tokens of a request that gives none', default: 256 },
  'max-body-bytes': { type: 'int', help: 'largest request body, bytes (4m = 4 MiB)', default: 16 << 20 },
  'max-document-bytes': { type: 'int', help: 'largest kept document, bytes', default: 16 << 20 },
  'max-documents': { type: 'int', help: 'documents kept at once', default: 16 },
  ...FOCUS_FLAGS,
};

export interface ServeHooks {
  /** stops the server (the command waits for SIGINT / SIGTERM otherwise) */
  signal?: AbortSignal;
  /** called once listening, with the URL */
  onListening?: (url: string) => void;
}

/** Runs the server until `hooks.signal` aborts, or SIGINT / SIGTERM. Resolves with the exit code. */
export async function runServe(argv: string[], hooks: ServeHooks = {}): Promise<number> {
  const f = parseFlags(argv, SPEC);
  const num = (k: string) => f[k] as number;
  const port = num('port');
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be from 0 to 65535, got ${String(f.port)}`);
  const apiKey = f['api-key'] !== undefined ? String(f['api-key']) : process.env.FOCUSLLM_API_KEY || undefined;
  if (apiKey !== undefined && apiKey.length === 0) throw new UsageError('--api-key must not be empty');
  const focus = focusFromFlags(f);
  const model = await modelFromFlags(f);
  let server;
  try {
    server = createServer(model, {
      apiKey,
      modelName: f['model-name'] as string | undefined,
      maxQueue: num('max-queue'),
      maxTokensLimit: num('max-tokens-limit'),
      defaultMaxTokens: num('default-max-tokens'),
      maxBodyBytes: num('max-body-bytes'),
      maxDocumentBytes: num('max-document-bytes'),
      maxDocuments: num('max-documents'),
      focus,
    });
  } catch (e) {
    model.dispose();
    throw new UsageError((e as Error).message);
  }
  const host = String(f.host);
  try {
    const addr = await server.listen(port, host);
    const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    const url = `http://${shown}:${addr.port}/v1`;
    process.stderr.write(
      `focusllm serve: model '${server.modelName}' at ${url}${apiKey ? ' (API key required)' : ''}; Ctrl-C stops\n`,
    );
    server.on('request', (r: RequestRecord) =>
      process.stderr.write(
        `${new Date().toISOString()} ${r.endpoint === 'chat' ? 'chat' : 'completion'} ${r.status} ${r.promptTokens}+${r.completionTokens} tokens ${(r.ms / 1000).toFixed(2)} s${r.error ? `: ${r.error}` : ''}\n`,
      ),
    );
    server.on('document', (d: DocumentObject, ms: number) =>
      process.stderr.write(
        `${new Date().toISOString()} document ${d.id} ${d.status} ${d.tokens ?? 0} tokens, ${d.chunks_total} chunks ${(ms / 1000).toFixed(2)} s${d.error ? `: ${d.error}` : ''}\n`,
      ),
    );
    hooks.onListening?.(url);
    let stop = () => {};
    await new Promise<void>((resolve) => {
      stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      hooks.signal?.addEventListener('abort', stop, { once: true });
      if (hooks.signal?.aborted) stop();
    });
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
    hooks.signal?.removeEventListener('abort', stop);
    process.stderr.write('focusllm serve: stopping\n');
    return 0;
  } finally {
    await server.close();
    model.dispose();
  }
}

export const command: Command = {
  usage: () => usage('serve', 'An HTTP server with the OpenAI API (chat/completions, completions, models) plus documents (README, Server).', SPEC),
  run: (argv) => runServe(argv),
};
