// The HTTP server's overhead per generated token against the library API, on
// the same model, prompt and seed, in one run (README, "Server"):
//
//   npx tsx bench/server.ts [--model DIR] [--threads 1] [--tokens 128] [--repeats 5]
//       [--prompt TEXT] [--seed N] [--client process|inline] [--json] [--out FILE]
//
// Each repeat runs, interleaved (so that load from other processes falls on
// all three alike):
// - library: model.generate({ prompt, temperature 1, seed, maxNewTokens });
// - server, whole: POST /v1/completions (the same fields), one JSON answer;
// - server, streamed: the same with stream: true, read to `data: [DONE]`.
// The server runs in this process on 127.0.0.1 (port 0); the client is
// node's fetch in a child process (--client inline: in this process, where
// its parsing competes with the server for the event loop). The figures
// include HTTP on loopback, JSON and SSE on both sides, and the queue, not a
// network. All three must
// produce the same text (same seed); a difference is a failure. Per variant:
// the median wall time, tokens, ms per token, time to the first text piece;
// the server's overhead per token is (server - library) / tokens of the
// medians, and of the minimums (on a shared machine, the least disturbed
// repeats); and from the server's own time per request (its 'request'
// event: arrival to the last write), which leaves the client out. Markdown on stdout (with --json, JSON lines); --out FILE writes
// the JSON lines too.
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { parseFlags, usage, UsageError } from '../lib/cli/args';
import { loadModel } from '../lib/model';
import { createServer, type RequestRecord } from '../lib/server/index';
import { machine, median } from './report';

const SPEC = {
  model: { type: 'string' as const, help: 'checkpoint folder (default: the shipped focus-tiny)' },
  threads: { type: 'int' as const, help: 'CPU threads', default: 1 },
  backend: { type: 'string' as const, help: 'cpu, cuda or auto', default: 'cpu' },
  tokens: { type: 'int' as const, help: 'max_tokens of each answer', default: 128 },
  repeats: { type: 'int' as const, help: 'repeats of each variant (medians)', default: 5 },
  prompt: { type: 'string' as const, help: 'the prompt', default: 'Once upon a time' },
  seed: { type: 'int' as const, help: 'sampling seed (temperature 1)', default: 1 },
  client: { type: 'string' as const, help: 'process: the client in a child process; inline: in this one', default: 'process' },
  json: { type: 'bool' as const, help: 'JSON lines instead of Markdown' },
  out: { type: 'string' as const, help: 'also write the JSON lines to FILE' },
};

interface Run {
  text: string;
  tokens: number;
  /** as the client saw it */
  ms: number;
  firstMs: number;
  /** the server's own time, arrival to the end of the answer (its 'request' event); the library: ms */
  serverMs: number;
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help')) {
    process.stdout.write(usage('(bench/server.ts)', "the server's overhead per token against the library API", SPEC) + '\n');
    return 0;
  }
  let f;
  try {
    f = parseFlags(argv, SPEC);
    if (!((f.tokens as number) >= 1) || !((f.repeats as number) >= 1)) throw new UsageError('--tokens and --repeats must be >= 1');
    if (f.client !== 'process' && f.client !== 'inline') throw new UsageError(`--client must be process or inline, got '${String(f.client)}'`);
  } catch (e) {
    process.stderr.write(`server bench: ${(e as Error).message}\n`);
    return 2;
  }
  const outFile = f.out === undefined ? null : String(f.out);
  if (outFile) fs.writeFileSync(outFile, '');
  const add = (r: Record<string, unknown>) => {
    const line = JSON.stringify({ ...r, machine });
    if (f.json) process.stdout.write(line + '\n');
    if (outFile) fs.appendFileSync(outFile, line + '\n');
  };
  const model = await loadModel(f.model as string | undefined, {
    backend: String(f.backend) as 'cpu' | 'cuda' | 'auto',
    threads: f.threads as number,
  });
  const server = createServer(model, { maxTokensLimit: Math.max(4096, f.tokens as number) });
  let child: ChildProcess | null = null;
  try {
    const addr = await server.listen(0);
    const url = `http://127.0.0.1:${addr.port}/v1/completions`;
    const prompt = String(f.prompt);
    const maxTokens = f.tokens as number;
    const seed = f.seed as number;
    const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: path.resolve(__dirname, '..'), encoding: 'utf8' });
    const label = `${path.basename(model.dir)} (${(model.info.parameters / 1e6).toFixed(1)}M, ${model.info.dtype}, ${model.backend})`;
    add({
      bench: 'server_run',
      date: new Date().toISOString(),
      command: ['npx tsx bench/server.ts', ...argv].join(' '),
      commit: commit.status === 0 ? commit.stdout.trim() : null,
      model: label,
      threads: f.threads,
      tokens: maxTokens,
      repeats: f.repeats,
    });

    const library = async (): Promise<Run> => {
      const t0 = performance.now();
      let firstMs = -1;
      let text = '';
      let tokens = 0;
      for await (const piece of model.generate({ prompt, temperature: 1, seed, maxNewTokens: maxTokens, onProgress: (p) => (tokens = p.generatedTokens) })) {
        if (firstMs < 0) firstMs = performance.now() - t0;
        text += piece;
      }
      const ms = performance.now() - t0;
      return { text, tokens, ms, firstMs, serverMs: ms };
    };
    // The server's time of the request that just ended.
    let lastServerMs = NaN;
    server.on('request', (r: RequestRecord) => (lastServerMs = r.ms));
    const body = (stream: boolean) =>
      JSON.stringify({ model: server.modelName, prompt, temperature: 1, seed, max_tokens: maxTokens, stream, ...(stream ? { stream_options: { include_usage: true } } : {}) });
    // The client: a child process (default), so that its fetch and parsing
    // do not share this event loop with the server; --client inline keeps it here.
    child = f.client === 'inline' ? null : fork(__filename, ['--client-child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const ask = async (stream: boolean): Promise<Run> => {
      const req = { url, body: body(stream), stream };
      const c = child;
      const got = c
        ? await new Promise<ClientRun>((resolve, reject) => {
            c.once('message', (m) => ((m as { error?: string }).error ? reject(new Error((m as { error: string }).error)) : resolve(m as ClientRun)));
            c.send(req);
          })
        : await clientRequest(req);
      return { ...got, serverMs: lastServerMs };
    };
    const whole = () => ask(false);
    const streamed = () => ask(true);

    const variants = { library, server_whole: whole, server_stream: streamed } as const;
    const runs: Record<string, Run[]> = { library: [], server_whole: [], server_stream: [] };
    await library(); // warm-up: first-call costs (tokenizer, allocations) out of the figures
    await whole();
    let failures = 0;
    for (let r = 0; r < (f.repeats as number); r++)
      for (const [name, fn] of Object.entries(variants)) {
        const run = await fn();
        runs[name].push(run);
        add({ bench: 'server_repeat', variant: name, repeat: r, tokens: run.tokens, ms: run.ms, first_ms: run.firstMs, server_ms: run.serverMs });
        if (run.text !== runs.library[0].text || run.tokens !== runs.library[0].tokens) {
          failures++;
          process.stderr.write(`FAILED: ${name} repeat ${r} differs from the library's answer\n`);
        }
      }
    const lib = median(runs.library.map((x) => x.ms));
    const libMin = Math.min(...runs.library.map((x) => x.ms));
    const tokens = runs.library[0].tokens;
    const rows: string[] = [];
    for (const name of Object.keys(variants)) {
      const ms = median(runs[name].map((x) => x.ms));
      const min = Math.min(...runs[name].map((x) => x.ms));
      const serverMs = median(runs[name].map((x) => x.serverMs));
      const first = median(runs[name].map((x) => x.firstMs));
      const rec = {
        bench: 'server',
        variant: name,
        tokens,
        median_ms: ms,
        ms_per_token: ms / tokens,
        first_piece_ms: first,
        overhead_ms_per_token: name === 'library' ? 0 : (ms - lib) / tokens,
        overhead_pct: name === 'library' ? 0 : ((ms - lib) / lib) * 100,
        // The fastest repeats: on a shared machine the least disturbed.
        min_ms: min,
        overhead_ms_per_token_min: name === 'library' ? 0 : (min - libMin) / tokens,
        // The server's side alone: its own time (no client, no loopback transfer after the last write).
        server_median_ms: serverMs,
        server_overhead_ms_per_token: name === 'library' ? 0 : (serverMs - lib) / tokens,
      };
      add(rec);
      rows.push(
        `| ${name} | ${tokens} | ${ms.toFixed(1)} | ${rec.ms_per_token.toFixed(3)} | ${first.toFixed(1)} | ${rec.overhead_ms_per_token.toFixed(3)} | ${rec.overhead_pct.toFixed(1)}% | ${min.toFixed(1)} | ${rec.overhead_ms_per_token_min.toFixed(3)} | ${rec.server_overhead_ms_per_token.toFixed(3)} |`,
      );
    }
    // The server's own synchronous work per streamed token: the time inside
    // ServerResponse.write and JSON.stringify, wrapped for a few extra
    // streamed runs (not the timed ones above). What the event-loop and
    // scheduler costs of a write add on top is the rest of the difference.
    const write = http.ServerResponse.prototype.write;
    const stringify = JSON.stringify;
    let inside = 0;
    const timed = <A extends unknown[], R>(fn: (...a: A) => R, self: unknown) =>
      function (this: unknown, ...a: A): R {
        const t0 = performance.now();
        try {
          return fn.apply(this ?? self, a);
        } finally {
          inside += performance.now() - t0;
        }
      };
    http.ServerResponse.prototype.write = timed(write, null) as typeof write;
    JSON.stringify = timed(stringify, JSON) as typeof stringify;
    let streamedTokens = 0;
    try {
      for (let r = 0; r < 3; r++) streamedTokens += (await streamed()).tokens;
    } finally {
      http.ServerResponse.prototype.write = write;
      JSON.stringify = stringify;
    }
    const perToken = inside / streamedTokens;
    add({ bench: 'server_stream_sync_work', tokens: streamedTokens, ms_per_token: perToken });
    if (!f.json)
      process.stdout.write(
        [
          `# Server overhead: ${label}, ${f.threads} thread(s), ${machine.cpu}, client: ${child ? 'child process' : 'inline'}`,
          '',
          `The server's synchronous work per streamed token (JSON + write): ${perToken.toFixed(3)} ms.`,
          '',
          '| variant | tokens | median ms | ms/token | first piece ms | overhead ms/token | overhead | min ms | overhead ms/token (mins) | server-side overhead ms/token |',
          '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
          ...rows,
          '',
        ].join('\n'),
      );
    return failures ? 1 : 0;
  } finally {
    child?.disconnect();
    await server.close();
    model.dispose();
  }
}

type ClientRun = Omit<Run, 'serverMs'>;

/** One request as a client: POST it, read the whole answer (or every event of the stream). */
async function clientRequest(req: { url: string; body: string; stream: boolean }): Promise<ClientRun> {
  const t0 = performance.now();
  const r = await fetch(req.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: req.body });
  if (!req.stream) {
    const j = (await r.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } };
    const ms = performance.now() - t0;
    if (r.status !== 200) throw new Error(`server answered ${r.status}: ${JSON.stringify(j)}`);
    return { text: j.choices[0].text, tokens: j.usage.completion_tokens, ms, firstMs: ms };
  }
  if (r.status !== 200 || !r.body) throw new Error(`server answered ${r.status}`);
  let buf = '';
  let text = '';
  let tokens = 0;
  let firstMs = -1;
  const dec = new TextDecoder();
  for await (const b of r.body as unknown as AsyncIterable<Uint8Array>) {
    buf += dec.decode(b, { stream: true });
    for (let i; (i = buf.indexOf('\n\n')) >= 0; ) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const j = JSON.parse(ev.slice(6)) as { choices: { text: string }[]; usage?: { completion_tokens: number } };
      if (j.usage) tokens = j.usage.completion_tokens;
      const piece = j.choices[0]?.text ?? '';
      if (piece && firstMs < 0) firstMs = performance.now() - t0;
      text += piece;
    }
  }
  return { text, tokens, ms: performance.now() - t0, firstMs };
}

/** The client child: answers each request message with its ClientRun. */
function clientChild(): void {
  process.on('message', (m) => {
    clientRequest(m as { url: string; body: string; stream: boolean }).then(
      (run) => process.send!(run),
      (e: Error) => process.send!({ error: e.message }),
    );
  });
}

if (require.main === module && process.argv.includes('--client-child')) clientChild();
else if (require.main === module)
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e) => {
      process.stderr.write(`server bench: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
