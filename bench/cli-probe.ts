// Preload (node --require) that times a focusllm CLI run from inside, the CLI
// itself unchanged: it wraps Model.generate, Model.createSession and the
// session's ingestToken / stepToken (the calls `focusllm generate` makes) and,
// when the process exits, prints one line on stderr:
//   {"cli_probe": {tokenize_ms, ingest_ms, input_tokens, chunks,
//                  steps, step_ms, peak_rss_bytes}}
// tokenize_ms runs from the generate call to the session's creation (the
// input's tokenization); step_ms is the total of the decode steps.
// bench/long-context.ts runs `focusllm generate` with it.
import fs from 'node:fs';

import { Model } from '../lib/model';
import { Session } from '../lib/session';

const probe = {
  tokenize_ms: null as number | null,
  ingest_ms: null as number | null,
  input_tokens: null as number | null,
  chunks: null as number | null,
  steps: 0,
  step_ms: 0,
  peak_rss_bytes: 0,
};
let tGenerate: number | null = null;

type Method = (this: unknown, ...args: unknown[]) => unknown;
function wrap(proto: object, name: string, around: (orig: Method) => Method): void {
  const p = proto as Record<string, Method>;
  const orig = p[name];
  if (typeof orig !== 'function') throw new Error(`cli-probe: ${name} is not a method`);
  p[name] = around(orig);
}

wrap(Model.prototype, 'generate', (orig) =>
  function (this: unknown, ...args) {
    tGenerate ??= performance.now();
    return orig.apply(this, args);
  },
);
wrap(Model.prototype, 'createSession', (orig) =>
  function (this: unknown, ...args) {
    if (tGenerate !== null && probe.tokenize_ms === null) probe.tokenize_ms = performance.now() - tGenerate;
    return orig.apply(this, args);
  },
);
wrap(Session.prototype, 'ingestToken', (orig) =>
  async function (this: unknown, ...args) {
    const t0 = performance.now();
    const r = await (orig.apply(this, args) as Promise<unknown>);
    probe.ingest_ms = performance.now() - t0;
    probe.input_tokens = (args[0] as ArrayLike<number>).length;
    probe.chunks = (this as Session).chunks;
    return r;
  },
);
wrap(Session.prototype, 'stepToken', (orig) =>
  async function (this: unknown, ...args) {
    const t0 = performance.now();
    const r = await (orig.apply(this, args) as Promise<unknown>);
    probe.step_ms += performance.now() - t0;
    probe.steps++;
    return r;
  },
);

process.on('exit', () => {
  probe.peak_rss_bytes = process.resourceUsage().maxRSS * 1024;
  fs.writeSync(2, `\n${JSON.stringify({ cli_probe: probe })}\n`);
});
