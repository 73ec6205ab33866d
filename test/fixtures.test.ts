// DESIGN section 3/4: every reference case (native and FocusLLM), F32 and
// sharded BF16, through the API and through `focusllm logits`, within 1e-4 of
// the float64 reference on every row, with the reference's greedy tokens.
import fs from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { main } from '../lib/cli/main';
import { loadModel } from '../lib/model';
import type { SessionOptions } from '../lib/session';
import { relErr } from './helpers/reference';
import { captureStdout } from './helpers/cli';

const FX = path.join(__dirname, 'fixtures');

interface Case {
  file: string;
  model: string;
  ids: number[];
  continuation: number[];
  options: { local_window: number; chunk_size: number; prompt_cap: number; min_chunked_length: number } | null;
  logits: number[][];
  greedy: number[];
}

const cases: Case[] = JSON.parse(fs.readFileSync(path.join(FX, 'cases.json'), 'utf8')).map((f: string) => ({
  file: f,
  ...JSON.parse(fs.readFileSync(path.join(FX, f), 'utf8')),
}));

function focusOf(c: Case): SessionOptions {
  const o = c.options;
  return o
    ? { localWindow: o.local_window, chunkSize: o.chunk_size, promptCap: o.prompt_cap, minChunkedLength: o.min_chunked_length }
    : {};
}

function argmax(r: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < r.length; i++) if (r[i] > r[b]) b = i;
  return b;
}

t.test('the fixture set has native and FocusLLM cases for F32 and sharded BF16', async (t) => {
  t.ok(cases.some((c) => c.options === null && c.model === 'tiny-gqa'));
  t.ok(cases.some((c) => c.options !== null && c.model === 'tiny-gqa-bf16'));
  t.ok(fs.existsSync(path.join(FX, 'tiny-gqa-bf16', 'model.safetensors.index.json')));
});

for (const c of cases) {
  t.test(`API: ${c.file}`, async (t) => {
    const model = await loadModel(path.join(FX, c.model), { backend: 'cpu', threads: 2 });
    t.teardown(() => model.dispose());
    const rows = await model.logits(c.ids, { continuation: c.continuation, focus: { ...focusOf(c), cacheType: 'f32' } });
    t.equal(rows.length, c.logits.length, 'one row per step');
    rows.forEach((r, i) => {
      const e = relErr(r, c.logits[i]);
      t.ok(e <= 1e-4, `row ${i}: rel err ${e.toExponential(2)} <= 1e-4`);
      t.equal(argmax(r), c.greedy[i], `row ${i}: greedy token`);
    });
  });

  t.test(`CLI logits: ${c.file}`, async (t) => {
    const o = c.options;
    const flags = o
      ? ['--local-window', o.local_window, '--chunk-size', o.chunk_size, '--prompt-cap', o.prompt_cap, '--min-chunked-length', o.min_chunked_length].map(String)
      : [];
    const file = path.join(FX, c.file);
    const { code, stdout } = await captureStdout(() =>
      main(['logits', '--model', path.join(FX, c.model), '--ids', file, '--continuation', file, '--backend', 'cpu', '--threads', '2', ...flags]),
    );
    t.equal(code, 0, 'exit code 0');
    const out = JSON.parse(stdout) as { logits: number[][] };
    t.equal(out.logits.length, c.logits.length);
    out.logits.forEach((r, i) => {
      const e = relErr(r, c.logits[i]);
      t.ok(e <= 1e-4, `row ${i}: rel err ${e.toExponential(2)} <= 1e-4`);
      t.equal(argmax(r), c.greedy[i], `row ${i}: greedy token`);
    });
  });
}

t.test('16-bit chunk caches (cacheType auto on BF16 weights) stay close and pick the same tokens', async (t) => {
  for (const c of cases.filter((x) => x.options && x.model === 'tiny-gqa-bf16')) {
    const model = await loadModel(path.join(FX, c.model), { backend: 'cpu', threads: 2 });
    const s = model.createSession({ ...focusOf(c), maxSteps: c.continuation.length });
    t.equal(s.resolvedCacheType(), 'bf16', 'auto picks the weights\' 16-bit type');
    const rows = [await s.ingest(c.ids)];
    for (const tok of c.continuation) rows.push(await s.step(tok));
    rows.forEach((r, i) => {
      const e = relErr(r, c.logits[i]);
      t.ok(e <= 2e-3, `row ${i}: rel err ${e.toExponential(2)} <= 2e-3 with bf16 caches`);
      t.equal(argmax(r), c.greedy[i], `row ${i}: greedy token`);
    });
    s.dispose();
    model.dispose();
  }
});

t.test('model.logits with default options gives the logits command\'s rows bit for bit (float32 caches in both)', async (t) => {
  for (const c of cases) {
    const o = c.options;
    const flags = o
      ? ['--local-window', o.local_window, '--chunk-size', o.chunk_size, '--prompt-cap', o.prompt_cap, '--min-chunked-length', o.min_chunked_length].map(String)
      : [];
    const file = path.join(FX, c.file);
    const { code, stdout } = await captureStdout(() =>
      main(['logits', '--model', path.join(FX, c.model), '--ids', file, '--continuation', file, '--backend', 'cpu', '--threads', '2', ...flags]),
    );
    t.equal(code, 0, `${c.file}: logits command exit code 0`);
    const cli = (JSON.parse(stdout) as { logits: number[][] }).logits;
    const model = await loadModel(path.join(FX, c.model), { backend: 'cpu', threads: 2 });
    const api = await model.logits(c.ids, { continuation: c.continuation, focus: focusOf(c) });
    model.dispose();
    let differ = 0;
    api.forEach((r, i) => r.forEach((x, j) => (differ += Math.fround(cli[i]?.[j] ?? NaN) === x ? 0 : 1)));
    t.equal(api.length, cli.length, `${c.file}: as many rows`);
    t.equal(differ, 0, `${c.file}: every logit identical (${api.length} rows)`);
  }
});
