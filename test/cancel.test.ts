// AbortSignal cancels during ingest, during decoding and during a plain
// forward, and frees what the session allocated; progress is reported while
// chunks are ingested.
import fs from 'node:fs';

import t from 'tap';

import { loadModel } from '../lib/model';
import { writeTinyModel } from './helpers/checkpoint';

const dir = writeTinyModel({ vocab: 1000, hidden: 256, inter: 512, layers: 4, heads: 8, kvHeads: 2, seed: 5 });
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

const input = Array.from({ length: 8192 }, (_, i) => (i === 0 ? 1 : 3 + ((i * 7919) % 997)));
const focus = { localWindow: 256, chunkSize: 256, promptCap: 64, minChunkedLength: 1024 };

t.test('abort during ingest rejects with AbortError, frees the session, keeps the model usable', async (t) => {
  const model = await loadModel(dir, { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  const s = model.createSession({ ...focus, maxSteps: 4 });
  const ac = new AbortController();
  // Abort as soon as the native run is queued: the run is then cancelled at
  // its first micro-batch boundary, whatever the speed of the machine.
  const run = model.run.bind(model);
  let runs = 0;
  model.run = (batch, control) => {
    const p = run(batch, control);
    runs++;
    ac.abort();
    return p;
  };
  await t.rejects(s.ingest(input, { signal: ac.signal }), { name: 'AbortError' });
  model.run = run;
  t.equal(runs, 1, 'the abort came during the ingest run');
  t.same(s.memory, { chunkCaches: 0, candidates: 0, localCache: 0 }, 'session memory freed');
  t.equal(s.mode, null, 'session is back to not ingested');
  // The model still works, and the aborted session can ingest again.
  const l = await model.forward([1, 2, 3]);
  t.equal(l.length, 1000);
  const again = await s.ingest(input.slice(0, 300));
  t.equal(again.length, 1000);
  s.dispose();
});

t.test('abort during a forward rejects with AbortError and keeps the model usable', async (t) => {
  const model = await loadModel(dir, { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  const ac = new AbortController();
  // As above: abort once the run is queued, so it stops at its first
  // micro-batch boundary (an uncancelled 8192-token forward takes seconds).
  const run = model.run.bind(model);
  const controls: unknown[] = [];
  model.run = (batch, control) => {
    const p = run(batch, control);
    controls.push(control);
    ac.abort();
    return p;
  };
  const t0 = performance.now();
  await t.rejects(model.forward(input, { all: true, from: 8000, signal: ac.signal }), { name: 'AbortError' });
  const ms = performance.now() - t0;
  model.run = run;
  t.equal(controls.length, 1, 'the abort came during the forward run');
  t.ok(controls[0] !== undefined, 'the run was given a RunControl');
  t.ok(ms < 2000, `rejected in ${ms.toFixed(0)} ms`);
  await t.rejects(model.forward([1, 2, 3], { signal: AbortSignal.abort() }), { name: 'AbortError' }, 'an already aborted signal');
  t.equal((await model.forward([1, 2, 3], { signal: new AbortController().signal })).length, 1000, 'the model still works');
});

t.test('an ingest reports its progress, ending with every chunk done', async (t) => {
  const model = await loadModel(dir, { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  const s = model.createSession({ ...focus, maxSteps: 4 });
  const seen: { phase: string; chunksDone: number; chunksTotal: number; tokensDone: number; tokensTotal: number }[] = [];
  await s.ingest(input, { onProgress: (p) => seen.push({ ...p }) });
  t.ok(seen.length > 0, `progress reported (${seen.length} calls)`);
  const chunkReports = seen.filter((p) => p.phase === 'chunks');
  t.ok(chunkReports.length > 0, 'the chunks phase is reported');
  const last = chunkReports[chunkReports.length - 1]!;
  t.equal(last.chunksTotal, 31, 'progress knows the chunk count');
  t.equal(last.chunksDone, 31, 'and ends with all of them done');
  t.equal(last.tokensDone, last.tokensTotal, 'every token done');
  const backwards = chunkReports.findIndex((p, i) => i > 0 && p.tokensDone < chunkReports[i - 1]!.tokensDone);
  t.equal(backwards, -1, `progress never goes back (${chunkReports.length} reports)`);
  s.dispose();
});

t.test('an already aborted signal rejects before any work', async (t) => {
  const model = await loadModel(dir, { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  const s = model.createSession(focus);
  await t.rejects(s.ingest(input, { signal: AbortSignal.abort() }), { name: 'AbortError' });
  t.equal(s.memory.chunkCaches, 0);
  s.dispose();
});

t.test('abort during decoding ends generation and disposes the session', async (t) => {
  const model = await loadModel(dir, { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  const ac = new AbortController();
  const got: number[] = [];
  await t.rejects(
    (async () => {
      for await (const tok of model.generate(input.slice(0, 1500), { maxNewTokens: 50, stop: [], signal: ac.signal, focus })) {
        got.push(tok);
        if (got.length === 2) ac.abort();
      }
    })(),
    { name: 'AbortError' },
  );
  t.equal(got.length, 2, 'two tokens before the abort');
  t.equal((model as unknown as { sessions: Set<unknown> }).sessions.size, 0, 'no session left open');
});

t.test('breaking out of generation early disposes the session', async (t) => {
  const model = await loadModel(dir, { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  for await (const tok of model.generate([1, 5, 6, 7], { maxNewTokens: 10, stop: [] })) {
    t.type(tok, 'number');
    break;
  }
  t.equal((model as unknown as { sessions: Set<unknown> }).sessions.size, 0);
});

t.test('native work runs off the main thread: the event loop turns while an ingest runs', async (t) => {
  const model = await loadModel(dir, { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  const s = model.createSession({ ...focus, maxSteps: 1 });
  let settled = false;
  const p = s.ingest(input).finally(() => (settled = true));
  // A few event-loop turns take microseconds; the ingest takes a good fraction of a second.
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  t.notOk(settled, 'timers and I/O callbacks ran before the ingest finished');
  t.equal((await p).length, 1000);
  s.dispose();
});
