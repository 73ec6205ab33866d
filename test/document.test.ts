// Documents (lib/document.ts; issue 10): a question asked of a kept document
// gives the logits of a fresh session on the concatenated ids (1e-5), at
// every edge of the chunk plan, while running only what depends on the
// question; concurrent questions, abort, dispose, memory, bad input.
// Saving and loading are in document-file.test.ts.
import fs from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { loadModel, type Model } from '../lib/model';
import type { DocumentFocusOptions } from '../lib/document';
import type { IngestProgress } from '../lib/session';
import { writeTinyModel } from './helpers/checkpoint';
import { pseudoIds } from './helpers/ids';

const FX = path.join(__dirname, 'fixtures');
const TOL = 1e-5;

function relDiff(a: Float32Array, b: Float32Array): number {
  let mx = 0;
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    mx = Math.max(mx, Math.abs(a[i]));
    d = Math.max(d, Math.abs(a[i] - b[i]));
  }
  return d / mx;
}

const ids = pseudoIds;

const STEPS = [5, 9, 11];

/** Rows of a fresh session: ingest x, then STEPS. */
async function freshRows(model: Model, focus: DocumentFocusOptions, x: number[]): Promise<Float32Array[]> {
  const s = model.createSession({ ...focus, maxSteps: STEPS.length });
  try {
    const rows = [await s.ingest(x)];
    for (const y of STEPS) rows.push(await s.step(y));
    return rows;
  } finally {
    s.dispose();
  }
}

interface Case {
  name: string;
  model: () => Promise<Model>;
  focus: DocumentFocusOptions;
  docLen: number;
}

const fixture = (dir: string, cacheType: 'f32' | 'auto'): (() => Promise<Model>) => () =>
  loadModel(path.join(FX, dir), { threads: 1, tokenizer: false });

const cases: Case[] = [
  {
    name: 'fixture tiny-gqa (F32)',
    model: fixture('tiny-gqa', 'f32'),
    focus: { localWindow: 32, chunkSize: 24, promptCap: 16, minChunkedLength: 64, cacheType: 'f32' },
    docLen: 130,
  },
  {
    name: 'fixture tiny-gqa-bf16 (sharded BF16, bf16 caches)',
    model: fixture('tiny-gqa-bf16', 'auto'),
    focus: { localWindow: 32, chunkSize: 24, promptCap: 16, minChunkedLength: 64 },
    docLen: 130,
  },
  {
    name: 'random F16 model with biases, candidate MLP, micro-batches of 16 rows',
    model: () =>
      loadModel(writeTinyModel({ dtype: 'F16', attentionBias: true, candidateMlp: true, seed: 5 }), {
        threads: 1,
        tokenizer: false,
        maxBatchTokens: 16,
      }),
    focus: { localWindow: 20, chunkSize: 16, promptCap: 7, minChunkedLength: 40 },
    docLen: 101,
  },
];

for (const c of cases) {
  t.test(`${c.name}: questions of every length equal a fresh session`, async (t) => {
    const model = await c.model();
    t.teardown(() => model.dispose());
    const V = model.config.vocabSize;
    const doc0 = ids(c.docLen, V, 17);
    doc0[0] = 1; // BOS first, as a tokenizer writes it
    const docIds = Object.freeze(doc0.slice()) as readonly number[];
    const doc = await model.ingestDocument(docIds, { focus: c.focus });
    t.same(docIds, doc0, 'the caller ids are not modified');
    const p = doc.params;
    const C = p.chunkSize;
    t.equal(doc.chunks, Math.ceil(c.docLen / C));
    t.equal(doc.length, c.docLen);
    // Question lengths: 1 token; M inside a chunk and on a chunk boundary;
    // the local window just past the document; memory reaching into the
    // question (M > docLen); a question long enough to add whole chunks.
    const W = p.localWindow;
    const onBoundary = (() => {
      for (let q = 1; q < 3 * C; q++) if ((c.docLen + q - W) % C === 0) return q;
      return 1;
    })();
    const lens = [...new Set([1, 2, 3, onBoundary, onBoundary + 1, W - 1, W, W + 1, W + 3, W + C + 5, W + 3 * C + 2])];
    let reusedSomething = false;
    for (const q of lens) {
      const x = [...doc0, ...ids(q, V, 1000 + q)];
      const want = await freshRows(model, c.focus, x);
      const s = doc.session({ maxSteps: STEPS.length });
      const progress: IngestProgress[] = [];
      const got = [await s.ingest(x, { onProgress: (e) => progress.push(e) })];
      for (const y of STEPS) got.push(await s.step(y));
      s.dispose();
      const worst = Math.max(...got.map((r, i) => relDiff(want[i], r)));
      const reuse = doc.reuseFor(x);
      t.ok(worst <= TOL, `question of ${q} tokens (${reuse.mode}, ${reuse.chunks} chunks, ${reuse.reusedTokens} reused / ${reuse.computedTokens} run): ${worst.toExponential(2)}`);
      if (reuse.mode === 'focus') {
        // The native run did only what the question needs: the copied rows are not run.
        const last = progress.filter((e) => e.phase === 'chunks').at(-1);
        const P = Math.min(p.promptCap, C, W) + 1; // the question's ids never start with BOS here
        t.equal(last?.tokensTotal, reuse.computedTokens + reuse.chunks * P, `chunk tokens run for ${q}`);
        // Every chunk token inside the document was copied.
        const M = x.length - W;
        t.equal(reuse.reusedTokens, Math.min(M, c.docLen), 'reused tokens');
        if (reuse.reusedTokens > 0) reusedSomething = true;
      }
    }
    t.ok(reusedSomething, 'reuse happened');
    doc.dispose();
  });
}

t.test('a question that leaves the input short runs natively; a document shorter than a chunk', async (t) => {
  const model = await loadModel(writeTinyModel({ seed: 2 }), { threads: 1, tokenizer: false });
  t.teardown(() => model.dispose());
  const focus = { localWindow: 20, chunkSize: 16, promptCap: 7, minChunkedLength: 40 };
  for (const docLen of [5, 16, 30]) {
    const d = ids(docLen, 96, docLen);
    d[0] = 1;
    const doc = await model.ingestDocument(d, { focus });
    t.equal(doc.chunks, Math.ceil(docLen / 16));
    for (const q of [1, 39 - docLen, 40 - docLen, 60]) {
      if (q < 1) continue;
      const x = [...d, ...ids(q, 96, 50 + q)];
      const want = await freshRows(model, focus, x);
      const s = doc.session({ maxSteps: 3 });
      const got = [await s.ingest(x)];
      for (const y of STEPS) got.push(await s.step(y));
      s.dispose();
      t.equal(doc.reuseFor(x).mode, x.length < 40 ? 'native' : 'focus');
      t.ok(Math.max(...got.map((r, i) => relDiff(want[i], r))) <= TOL, `document ${docLen} + question ${q}`);
    }
    doc.dispose();
  }
});

t.test('an input that is not the document plus a question: only the common prefix is reused', async (t) => {
  const model = await loadModel(writeTinyModel({ seed: 3 }), { threads: 1, tokenizer: false });
  t.teardown(() => model.dispose());
  const focus = { localWindow: 20, chunkSize: 16, promptCap: 7, minChunkedLength: 40 };
  const d = ids(90, 96, 9);
  const doc = await model.ingestDocument(d, { focus });
  const x = d.slice();
  x[37] = (x[37] % 90) + 4; // differs inside chunk 2
  x.push(...ids(6, 96, 3));
  const r = doc.reuseFor(x);
  t.equal(r.commonPrefix, 37);
  t.equal(r.reusedTokens, 37);
  const want = await freshRows(model, focus, x);
  const s = doc.session({ maxSteps: 3 });
  const got = [await s.ingest(x)];
  for (const y of STEPS) got.push(await s.step(y));
  t.ok(Math.max(...got.map((g, i) => relDiff(want[i], g))) <= TOL, 'exact');
  s.dispose();
});

t.test('generateTokens, concurrent questions, step modes', async (t) => {
  const model = await loadModel(writeTinyModel({ dtype: 'F16', seed: 4 }), { threads: 1, tokenizer: false });
  t.teardown(() => model.dispose());
  const focus = { localWindow: 20, chunkSize: 16, promptCap: 7, minChunkedLength: 40 };
  const d = ids(150, 96, 11);
  d[0] = 1;
  const doc = await model.ingestDocument(d, { focus });
  const questions = [ids(3, 96, 1), ids(12, 96, 2), ids(25, 96, 3), ids(1, 96, 4)];
  const fresh = async (q: number[], stepMode?: 'exact' | 'incremental') => {
    const out: number[] = [];
    for await (const tok of model.generateTokens([...d, ...q], { maxNewTokens: 6, stop: [], focus: { ...focus, stepMode } }))
      out.push(tok);
    return out;
  };
  const viaDoc = async (q: number[], stepMode?: 'exact' | 'incremental') => {
    const out: number[] = [];
    for await (const tok of doc.generateTokens(q, { maxNewTokens: 6, stop: [], stepMode })) out.push(tok);
    return out;
  };
  const want = await Promise.all(questions.map((q) => fresh(q)));
  // All at once on one document: each question has its own caches.
  const got = await Promise.all(questions.map((q) => viaDoc(q)));
  t.same(got, want, 'concurrent greedy answers equal fresh ones');
  // Sessions interleaved step by step.
  const ss = questions.map(() => doc.session({ maxSteps: 2 }));
  const firsts = await Promise.all(ss.map((s, i) => s.ingest([...d, ...questions[i]])));
  const wantRows = await Promise.all(questions.map((q) => freshRows(model, focus, [...d, ...q])));
  firsts.forEach((r, i) => t.ok(relDiff(wantRows[i][0], r) <= TOL, `interleaved ingest ${i}`));
  const seconds = await Promise.all(ss.map((s) => s.step(STEPS[0])));
  seconds.forEach((r, i) => t.ok(relDiff(wantRows[i][1], r) <= TOL, `interleaved step ${i}`));
  ss.forEach((s) => s.dispose());
  t.same(await viaDoc(questions[1], 'incremental'), await fresh(questions[1], 'incremental'), 'step mode incremental');
  doc.dispose();
});

t.test('abort, dispose, memory, finalizer-free disposal by the model', async (t) => {
  const model = await loadModel(writeTinyModel({ seed: 6, hidden: 64, inter: 96 }), { threads: 1, tokenizer: false });
  t.teardown(() => model.dispose());
  const focus = { localWindow: 20, chunkSize: 16, promptCap: 7, minChunkedLength: 40 };
  const d = ids(3000, 96, 12);
  // aborted before: nothing runs
  const ac0 = new AbortController();
  ac0.abort();
  await t.rejects(model.ingestDocument(d, { focus, signal: ac0.signal }), { name: 'AbortError' });
  // aborted during the ingest (from its progress callback)
  const ac = new AbortController();
  let calls = 0;
  await t.rejects(
    model.ingestDocument(d, { focus, signal: ac.signal, onProgress: () => (++calls, ac.abort()) }),
    { name: 'AbortError' },
  );
  // an onProgress that throws stops the ingest with its error
  await t.rejects(
    model.ingestDocument(d.slice(0, 2000), { focus, onProgress: () => { throw new Error('stop here'); } }),
    /stop here/,
  );
  const doc = await model.ingestDocument(d.slice(0, 200), { focus });
  const kvd = model.config.numKvHeads * model.config.headDim;
  t.same(doc.memory(), { chunkCaches: 2 * model.config.numLayers * 13 * 16 * kvd * 4, chunks: 13, tokens: 200 });
  // a question aborted: its own session fails, the document still serves the next
  const acq = new AbortController();
  acq.abort();
  const it = doc.generateTokens(ids(4, 96, 1), { maxNewTokens: 3, signal: acq.signal });
  await t.rejects(it.next(), { name: 'AbortError' });
  const q = ids(4, 96, 1);
  const want = await freshRows(model, focus, [...d.slice(0, 200), ...q]);
  // dispose while a question's ingest is in flight: the question finishes exactly
  const s = doc.session({ maxSteps: 3 });
  const pending = s.ingest([...d.slice(0, 200), ...q]);
  doc.dispose();
  t.ok(doc.disposed);
  t.ok(relDiff(want[0], await pending) <= TOL, 'the in-flight question completes');
  t.equal(doc.memory().chunkCaches, 0, 'freed after it');
  t.ok(relDiff(want[1], await s.step(STEPS[0])) <= TOL, 'its session steps on its own caches');
  s.dispose();
  t.throws(() => doc.session(), /disposed/);
  await t.rejects(doc.generateTokens([1]).next(), /disposed/);
  await t.rejects(doc.save(path.join(t.testdir(), 'x.fdoc')), /disposed/);
  // a session created before dispose, ingesting after it
  const doc2 = await model.ingestDocument(d.slice(0, 100), { focus });
  const s2 = doc2.session();
  doc2.dispose();
  await t.rejects(s2.ingest([...d.slice(0, 100), 5]), /document has been disposed/);
  s2.dispose();
  // model.dispose() frees its documents
  const m2 = await loadModel(writeTinyModel({ seed: 8 }), { threads: 1, tokenizer: false });
  const doc3 = await m2.ingestDocument(d.slice(0, 60), { focus });
  t.ok(doc3.memory().chunkCaches > 0);
  m2.dispose();
  t.ok(doc3.disposed, 'disposed with its model');
});

t.test('bad input: Errors naming what is wrong, nothing run', async (t) => {
  const model = await loadModel(writeTinyModel({ seed: 7 }), { threads: 1, tokenizer: false });
  t.teardown(() => model.dispose());
  const focus = { localWindow: 20, chunkSize: 16, promptCap: 7, minChunkedLength: 40 };
  await t.rejects(model.ingestDocument([], { focus }), /document is empty/);
  await t.rejects(model.ingestDocument([1, 2, 96], { focus }), /ids\[2\] = 96 is not a token id/);
  await t.rejects(model.ingestDocument([1, 2.5], { focus }), /ids\[1\] = 2.5/);
  await t.rejects(model.ingestDocument([1, 2], { focus: { ...focus, chunkSize: 0 } }), /chunkSize/);
  await t.rejects(model.ingestDocument([1, 2], { focus: { ...focus, minChunkedLength: 10 } }), /minChunkedLength/);
  await t.rejects(model.ingestDocument([1, 2], { chat: true }), /chat needs a text document/);
  await t.rejects(model.ingestDocument([1, 2], { chat: 3 as unknown as boolean }), /option chat must be/);
  await t.rejects(model.ingestDocument('some text'), /no tokenizer.json/);
  await t.rejects(model.ingestDocument(null as unknown as number[]), /input must be text or an array/);
  const doc = await model.ingestDocument([1, 5, 6, 7], { focus });
  await t.rejects(doc.generate({ prompt: 'hi' }).next(), /no tokenizer/);
  await t.rejects(doc.generateTokens([1, 500]).next(), /ids\[5\] = 500 is not a token id/);
  t.throws(() => doc.session({ maxSteps: -1 }), /maxSteps/);
  await t.rejects(doc.generateTokens([4], { maxNewTokens: -2 }).next(), /maxNewTokens/);
  doc.dispose();
});

t.test('text documents on the shipped model: doc.generate equals model.generate({ context, prompt })', async (t) => {
  const model = await loadModel(undefined, { threads: 1 });
  t.teardown(() => model.dispose());
  const tok = model.tokenizer!;
  const text = fs.readFileSync(path.join(FX, '..', 'fixtures-text', 'multilingual.txt'), 'utf8').repeat(3);
  const doc = await model.ingestDocument(text);
  t.ok(doc.length > 600, `a document of ${doc.length} tokens`);
  t.same(doc.ids, tok.encode(text, { addSpecial: true }));
  const answer = async (it: AsyncGenerator<string>) => {
    let s = '';
    for await (const piece of it) s += piece;
    return s;
  };
  for (const prompt of ['What is this about?', 'Summarise.\nIn one line, please: ' + 'word '.repeat(150)]) {
    const opts = { prompt, maxNewTokens: 8, stopIds: [] as number[] };
    const want = await answer(model.generate({ context: text, ...opts }));
    const got = await answer(doc.generate(opts));
    t.equal(got, want, `same answer (${JSON.stringify(prompt.slice(0, 20))})`);
    const full = tok.encode(`${text}\n\n${prompt}`, { addSpecial: true });
    const r = doc.reuseFor(full);
    t.ok(r.reusedTokens > 0, `reused ${r.reusedTokens} chunk tokens, ran ${r.computedTokens}`);
  }
  // logits through a session too
  const full = tok.encode(`${text}\n\nWho?`, { addSpecial: true });
  const want = await freshRows(model, {}, full);
  const s = doc.session({ maxSteps: 3 });
  const got = [await s.ingest(full)];
  for (const y of STEPS) got.push(await s.step(y));
  s.dispose();
  t.ok(Math.max(...got.map((g, i) => relDiff(want[i], g))) <= TOL, 'session rows');
  doc.dispose();
});

t.test('chat documents keep the rendered prefix: the answer equals generate({ chat })', async (t) => {
  // the shipped model with the LLaMA-2 chat template (same vocabulary)
  const dir = t.testdir();
  const shipped = path.join(__dirname, '..', 'models', 'focus-tiny');
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) fs.symlinkSync(path.join(shipped, f), path.join(dir, f));
  fs.copyFileSync(path.join(FX, '..', 'fixtures-text', 'llama2-chat', 'tokenizer_config.json'), path.join(dir, 'tokenizer_config.json'));
  const model = await loadModel(dir, { threads: 1 });
  t.teardown(() => model.dispose());
  const text = fs.readFileSync(path.join(FX, '..', 'fixtures-text', 'multilingual.txt'), 'utf8').repeat(3);
  const chat = { system: 'Be brief.' };
  const doc = await model.ingestDocument(text, { chat });
  t.equal(doc.ids[0], 1, 'BOS from the template');
  const answer = async (it: AsyncGenerator<string>) => {
    let s = '';
    for await (const piece of it) s += piece;
    return s;
  };
  const opts = { prompt: 'Who wrote it?', maxNewTokens: 6, stopIds: [] as number[] };
  const want = await answer(model.generate({ context: text, chat, ...opts }));
  t.equal(await answer(doc.generate(opts)), want, 'chat answer');
  const full = model.tokenizer!.encode(
    model.tokenizer!.applyChatTemplate(
      [{ role: 'system', content: chat.system }, { role: 'user', content: `${text}\n\n${opts.prompt}` }],
      { addGenerationPrompt: true },
    ),
    { addSpecial: false },
  );
  const r = doc.reuseFor(full);
  t.ok(r.commonPrefix >= doc.length - 2 && r.reusedTokens > 0, `common prefix ${r.commonPrefix} of ${doc.length}, ${r.reusedTokens} chunk tokens reused`);
  doc.dispose();
});
