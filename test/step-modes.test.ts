// Step modes (lib/session.ts StepMode; README "Step modes"): the cheaper
// FocusLLM steps against a float64 reference of what each computes, the
// ingest identical in every mode, refresh:1 = exact, a regression check of
// how far incremental departs from exact, memory sized at ingest, options
// checked, the CLI flag.
import fs from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { greedyTokens, stepModesMain, summarizeFidelity, teacherForced } from '../bench/step-modes';
import { main } from '../lib/cli/main';
import { loadModel, type Model } from '../lib/model';
import { parseStepMode, type SessionOptions, type StepMode } from '../lib/session';
import { captureStdout } from './helpers/cli';
import { RefModel, relErr, withBos, type RefParams } from './helpers/reference';

const FX = path.join(__dirname, 'fixtures');

interface Case {
  file: string;
  model: string;
  ids: number[];
  continuation: number[];
  options: { local_window: number; chunk_size: number; prompt_cap: number; min_chunked_length: number };
  logits: number[][];
}

// The FocusLLM cases of the shared fixtures (F32, and sharded BF16).
const cases: Case[] = (JSON.parse(fs.readFileSync(path.join(FX, 'cases.json'), 'utf8')) as string[])
  .map((f) => ({ file: f, ...JSON.parse(fs.readFileSync(path.join(FX, f), 'utf8')) }))
  .filter((c) => c.options !== null);

const paramsOf = (c: Case): RefParams => ({
  localWindow: c.options.local_window,
  chunkSize: c.options.chunk_size,
  promptCap: c.options.prompt_cap,
  minChunkedLength: c.options.min_chunked_length,
});
// float32 chunk caches: the fixtures' bar (1e-4 against float64) holds for BF16 weights too
const focusOf = (c: Case): SessionOptions => ({ ...paramsOf(c), cacheType: 'f32' });

/** The fixture's continuation, then fixed ids below the vocabulary, `n` tokens in all. */
function longer(c: Case, n: number, vocab: number): number[] {
  const out = [...c.continuation];
  let s = 7;
  while (out.length < n) {
    s = (s * 1103515245 + 12345) >>> 0;
    out.push(3 + (s % (vocab - 3)));
  }
  return out.slice(0, n);
}

/**
 * The rows of a step mode in float64, written from the definitions (README
 * "Step modes") the most direct way: every step recomputes every chunk from
 * scratch for its candidate; the local sequence keeps per layer the rotated
 * keys and values of its tokens, and a step recomputes its tokens from
 * `from` on over the step's candidates, on top of the kept ones before it.
 */
function refStepRows(m: RefModel, ids: number[], cont: number[], p: RefParams, mode: StepMode): Float64Array[] {
  const spec = parseStepMode(mode);
  const bos = m.cfg.bos_token_id ?? 1;
  const nLayer: number = m.cfg.num_hidden_layers;
  const L = ids.length;
  const M = L - p.localWindow;
  const P = withBos(ids.slice(L - Math.min(p.promptCap, p.chunkSize, p.localWindow)), bos);
  const local = withBos(ids.slice(M), bos);
  const kept = { k: Array.from({ length: nLayer }, () => [] as Float64Array[]), v: Array.from({ length: nLayer }, () => [] as Float64Array[]) };
  const rows: Float64Array[] = [];
  for (let s = 0; s <= cont.length; s++) {
    const gen = cont.slice(0, s);
    const K: Float64Array[][] = Array.from({ length: nLayer }, () => []);
    const V: Float64Array[][] = Array.from({ length: nLayer }, () => []);
    for (let b = 0; b < M; b += p.chunkSize) {
      const r = m.forward([...ids.slice(b, Math.min(b + p.chunkSize, M)), ...P, ...gen], { candidateLast: true });
      r.lastK.forEach((k, l) => K[l].push(k));
      r.lastV.forEach((v, l) => V[l].push(v));
    }
    if (s > 0) local.push(cont[s - 1]);
    const newest = local.length - 1;
    let from = 0; // ingest, exact, and refresh steps 1, N+1, ...
    if (s > 0 && spec.kind === 'incremental') from = newest;
    if (s > 0 && spec.kind === 'refresh' && (s - 1) % spec.n !== 0) from = newest;
    if (s > 0 && spec.kind === 'tail') from = Math.max(0, newest - spec.n);
    for (let l = 0; l < nLayer; l++) {
      kept.k[l].length = from;
      kept.v[l].length = from;
    }
    const k = K[0].length;
    const r = m.forward(local.slice(from), { pos0: k + from, prefix: { k: K, v: V }, past: kept });
    for (let l = 0; l < nLayer; l++) {
      kept.k[l].push(...r.keys[l]);
      kept.v[l].push(...r.values[l]);
    }
    rows.push(r.logits);
  }
  return rows;
}

async function rowsOf(model: Model, ids: number[], cont: number[], focus: SessionOptions): Promise<Float32Array[]> {
  return model.logits(ids, { continuation: cont, focus });
}

const sameBits = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

t.test('the float64 reference of the step modes gives the fixtures in exact mode', async (t) => {
  for (const c of cases) {
    const ref = refStepRows(new RefModel(path.join(FX, c.model)), c.ids, c.continuation, paramsOf(c), 'exact');
    ref.forEach((r, i) => t.ok(relErr(r, c.logits[i]) <= 1e-6, `${c.file} row ${i}: rel err ${relErr(r, c.logits[i]).toExponential(2)}`));
  }
});

for (const c of cases) {
  t.test(`${c.file}: every mode within 1e-4 of its float64 reference at every step`, async (t) => {
    const model = await loadModel(path.join(FX, c.model), { backend: 'cpu', threads: 2 });
    t.teardown(() => model.dispose());
    const ref = new RefModel(path.join(FX, c.model));
    const cont = longer(c, 7, model.config.vocabSize);
    for (const mode of ['incremental', 'refresh:3', 'tail:2', 'tail:5'] as StepMode[]) {
      const want = refStepRows(ref, c.ids, cont, paramsOf(c), mode);
      const got = await rowsOf(model, c.ids, cont, { ...focusOf(c), stepMode: mode });
      t.equal(got.length, cont.length + 1, `${mode}: one row per step`);
      const errs = got.map((r, i) => relErr(r, want[i]));
      t.ok(Math.max(...errs) <= 1e-4, `${mode}: rel err per row ${errs.map((e) => e.toExponential(1)).join(' ')} <= 1e-4`);
    }
  });
}

t.test('the ingest logits are the same bits in every mode, whole or in micro-batches', async (t) => {
  for (const c of cases)
    for (const maxBatchTokens of [undefined, 7]) {
      const model = await loadModel(path.join(FX, c.model), { backend: 'cpu', threads: 2, maxBatchTokens });
      // (keepChunkCaches itself may change the last bits: chunks without caches run whole, not in micro-batches)
      for (const keepChunkCaches of [true, false]) {
        const first: Float32Array[] = [];
        for (const stepMode of ['exact', 'incremental', 'refresh:3', 'tail:2'] as StepMode[]) {
          const s = model.createSession({ ...paramsOf(c), stepMode, keepChunkCaches });
          first.push(await s.ingest(c.ids));
          s.dispose();
        }
        const what = `${c.file}, maxBatchTokens ${maxBatchTokens ?? 'default'}, keepChunkCaches ${keepChunkCaches}`;
        t.ok(first.every((r) => sameBits(r, first[0])), `${what}: one ingest row in 4 modes`);
      }
      model.dispose();
    }
});

t.test('refresh:1 equals exact at every step; refresh:N at its refresh steps; tail:N over the whole local sequence', async (t) => {
  for (const c of cases) {
    const model = await loadModel(path.join(FX, c.model), { backend: 'cpu', threads: 2 });
    // 24 steps: past the local window's growth of several micro-steps
    const cont = await greedyTokens(model, c.ids, 24, { ...focusOf(c), stepMode: 'exact' });
    const exact = await rowsOf(model, c.ids, cont, { ...focusOf(c), stepMode: 'exact' });
    const r1 = await rowsOf(model, c.ids, cont, { ...focusOf(c), stepMode: 'refresh:1' });
    const e1 = r1.map((r, i) => relErr(r, exact[i]));
    t.ok(Math.max(...e1) <= 1e-5, `${c.file} refresh:1: worst row ${Math.max(...e1).toExponential(2)} <= 1e-5 over ${r1.length} rows`);
    const r5 = await rowsOf(model, c.ids, cont, { ...focusOf(c), stepMode: 'refresh:5' });
    // Row s is step s's; steps 1, 6, 11, ... recompute in full.
    const at = r5.map((_, s) => s).filter((s) => s === 0 || (s - 1) % 5 === 0);
    t.ok(at.every((s) => relErr(r5[s], exact[s]) <= 1e-5), `${c.file} refresh:5 rows ${at.join(',')} equal exact`);
    t.ok(relErr(r5[2], exact[2]) > 1e-3, `${c.file} refresh:5 row 2 (incremental) departs from exact`);
    const tailAll = await rowsOf(model, c.ids, cont, { ...focusOf(c), stepMode: `tail:${c.options.local_window + 30}` });
    t.ok(tailAll.every((r, i) => relErr(r, exact[i]) <= 1e-5), `${c.file} tail:N with N past the local sequence equals exact`);
    model.dispose();
  }
});

t.test('regression: how far the cheaper modes depart from exact on a fixed case (teacher forcing, 16 rows)', async (t) => {
  // Measured when the modes were added (bench/step-modes.ts summarizeFidelity,
  // the fixture tiny-gqa, its 4 continuation tokens then 12 fixed ids). Not a
  // bar: a change of these numbers is a change of what the modes compute.
  const recorded: Record<string, { klMean: number; klMax: number; nllDiffMean: number; top1Agree: number }> = {
    incremental: { klMean: 0.02956888371952596, klMax: 0.06039148601610657, nllDiffMean: -0.09312717875132426, top1Agree: 0.625 },
    'tail:4': { klMean: 0.027755996299946812, klMax: 0.059271067253943766, nllDiffMean: -0.060090648661614565, top1Agree: 0.625 },
    'refresh:4': { klMean: 0.02067516294061107, klMax: 0.05501444687804188, nllDiffMean: -0.009124610416708312, top1Agree: 0.8125 },
  };
  const c = cases.find((x) => x.file === 'tiny-gqa.focus.json')!;
  const model = await loadModel(path.join(FX, c.model), { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  const cont = longer(c, 16, model.config.vocabSize);
  t.same(cont, [445, 148, 277, 314, 96, 45, 232, 431, 102, 292, 258, 61, 310, 13, 363, 140], 'the fixed continuation');
  const exact = await teacherForced(model, c.ids, cont, { ...focusOf(c), stepMode: 'exact' });
  for (const [mode, want] of Object.entries(recorded)) {
    const got = summarizeFidelity(exact, await teacherForced(model, c.ids, cont, { ...focusOf(c), stepMode: mode as StepMode }), cont);
    t.equal(got.ingestMaxAbsDiff, 0, `${mode}: the same ingest row`);
    for (const k of ['klMean', 'klMax', 'nllDiffMean'] as const)
      t.ok(Math.abs(got[k] - want[k]) <= 1e-3 * Math.abs(want[k]) + 1e-7, `${mode} ${k}: ${got[k]} (recorded ${want[k]})`);
    t.equal(got.top1Agree, want.top1Agree, `${mode}: top-1 agreement ${got.top1Agree}`);
  }
});

t.test('a batch may read as a prefix the candidates an earlier sequence of it writes, not a later one', async (t) => {
  // What the cheaper modes' one-call step rests on (cpp/core/runner.cpp validate).
  const c = cases.find((x) => x.file === 'tiny-gqa.focus.json')!;
  // 16 rows per micro-batch: the writers' pieces and the reader in different micro-batches
  const split = await loadModel(path.join(FX, c.model), { backend: 'cpu', threads: 2, maxBatchTokens: 16 });
  const model = await loadModel(path.join(FX, c.model), { backend: 'cpu', threads: 2 });
  t.teardown(() => {
    model.dispose();
    split.dispose();
  });
  const nm = model.native;
  const chunk = (i: number) => Int32Array.from([...c.ids.slice(i * 24, i * 24 + 24), 1, 7, 9]);
  const local = Int32Array.from([1, ...c.ids.slice(100, 130)]);
  const run = async (oneCall: boolean, order: 'writers first' | 'reader first' = 'writers first', m = model) => {
    const nm = m.native;
    const cands = nm.createCandidateSet(3);
    const writers = [0, 1, 2].map((i) => ({ tokens: chunk(i), cand: cands, candSlot: i }));
    const reader = { tokens: local, prefix: cands, nPrefix: 3, logits: 1 as const };
    try {
      if (!oneCall) {
        await nm.run(writers);
        return await nm.run([reader]);
      }
      return await nm.run(order === 'writers first' ? [...writers, reader] : [reader, ...writers]);
    } finally {
      cands.dispose();
    }
  };
  const two = await run(false);
  const one = await run(true);
  t.ok(relErr(one, two) <= 1e-5, `one call = two calls (rel err ${relErr(one, two).toExponential(2)})`);
  const oneSplit = await run(true, 'writers first', split);
  t.ok(relErr(oneSplit, two) <= 1e-5, `in micro-batches of 16 rows too (rel err ${relErr(oneSplit, two).toExponential(2)})`);
  await t.rejects(run(true, 'reader first'), /sequence 0 of the batch: reads candidate 0 as a prefix, which sequence 1 writes: a sequence can only read candidates that earlier sequences of the batch write/);
  const cands = nm.createCandidateSet(3);
  await t.rejects(nm.run([{ tokens: local, prefix: cands, nPrefix: 3 }]), /prefix candidate 0 has not been computed yet/, 'an unwritten candidate');
  cands.dispose();
});

t.test("each mode's cache memory is sized at ingest and does not grow over its steps", async (t) => {
  const c = cases.find((x) => x.file === 'tiny-gqa.focus.json')!;
  const model = await loadModel(path.join(FX, c.model), { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  const cfg = model.config;
  const maxSteps = 6;
  const localLen = withBos(c.ids.slice(c.ids.length - c.options.local_window), cfg.bosTokenId).length;
  for (const stepMode of ['exact', 'incremental', 'refresh:2', 'tail:3'] as StepMode[]) {
    const s = model.createSession({ ...focusOf(c), stepMode, maxSteps });
    let logits = await s.ingest(c.ids);
    const m0 = s.memory;
    const scratch0 = model.native.scratchBytes;
    // float32 local cache (the CPU's activation type), keys and values, every layer
    const want = stepMode === 'exact' ? 0 : 2 * cfg.numLayers * (localLen + maxSteps) * cfg.numKvHeads * cfg.headDim * 4;
    t.equal(m0.localCache, want, `${stepMode}: local cache of ${localLen} + ${maxSteps} tokens`);
    t.ok(m0.chunkCaches > 0 && m0.candidates > 0, `${stepMode}: chunk caches and candidates`);
    for (let i = 0; i < maxSteps; i++) logits = await s.step(i + 3);
    t.same(s.memory, m0, `${stepMode}: the same after ${maxSteps} steps`);
    // incremental and tail steps run fewer rows than the ingest: no scratch growth either
    if (stepMode === 'incremental' || stepMode === 'tail:3') t.equal(model.native.scratchBytes, scratch0, `${stepMode}: scratch unchanged`);
    await t.rejects(s.step(5), /sized for 6 steps \(option maxSteps\)/, `${stepMode}: a step past maxSteps is refused`);
    t.equal(logits.length, cfg.vocabSize, `${stepMode}: a logits row after the last step`);
    s.dispose();
    t.same(s.memory, { chunkCaches: 0, candidates: 0, localCache: 0 }, `${stepMode}: dispose frees it all`);
  }
  const scoring = model.createSession({ ...focusOf(c), stepMode: 'incremental', keepChunkCaches: false });
  await scoring.ingest(c.ids);
  t.equal(scoring.memory.localCache, 0, 'keepChunkCaches false: no local cache either (it cannot step)');
  scoring.dispose();
});

t.test('native mode (a short input) is the ordinary decoder in every mode', async (t) => {
  const c = cases.find((x) => x.file === 'tiny-gqa.focus.json')!;
  const model = await loadModel(path.join(FX, c.model), { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  const ids = c.ids.slice(0, 40); // below min_chunked_length 64
  const exact = await rowsOf(model, ids, c.continuation, { ...focusOf(c), stepMode: 'exact' });
  for (const stepMode of ['incremental', 'refresh:2', 'tail:1'] as StepMode[]) {
    const rows = await rowsOf(model, ids, c.continuation, { ...focusOf(c), stepMode });
    t.ok(rows.every((r, i) => sameBits(r, exact[i])), `${stepMode}: the same rows`);
  }
});

t.test('the step mode reaches generation through the focus options', async (t) => {
  const c = cases.find((x) => x.file === 'tiny-gqa.focus.json')!;
  const model = await loadModel(path.join(FX, c.model), { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  const focus = { ...focusOf(c), stepMode: 'incremental' as const };
  const got: number[] = [];
  for await (const id of model.generateTokens(c.ids, { maxNewTokens: 10, stop: [], focus })) got.push(id);
  t.same(got, await greedyTokens(model, c.ids, 10, focus), 'generateTokens = greedy steps of an incremental session');
});

t.test('step modes are checked: an Error names the option before any work', async (t) => {
  const c = cases.find((x) => x.file === 'tiny-gqa.focus.json')!;
  const model = await loadModel(path.join(FX, c.model), { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  for (const bad of ['fast', 'Incremental', 'refresh', 'refresh:', 'refresh:0', 'refresh:-2', 'refresh:1.5', 'tail:x', 'tail:0', 'exact ', `refresh:${2 ** 24 + 1}`, 3, true])
    t.throws(
      () => model.createSession({ stepMode: bad as StepMode }),
      { message: /^option stepMode must be exact, incremental, refresh:N or tail:N \(N an integer from 1 to 16777216\), got / },
      `stepMode ${JSON.stringify(bad)}`,
    );
  t.throws(() => model.createSession({ stepMode: 'tail:abc' as StepMode }), { message: /got 'tail:abc'$/ }, 'the message quotes the value');
  for (const good of ['exact', 'incremental', 'refresh:1', 'refresh:64', 'tail:1', 'tail:512'] as StepMode[]) {
    const s = model.createSession({ stepMode: good });
    t.equal(s.stepMode, good, `${good} accepted`);
    s.dispose();
  }
  t.equal(model.createSession().stepMode, 'exact', 'the default is exact');
});

t.test('CLI: --step-mode reaches the session; a bad value is a usage error naming the flag', async (t) => {
  const c = cases.find((x) => x.file === 'tiny-gqa.focus.json')!;
  const file = path.join(FX, c.file);
  const o = c.options;
  const flags = ['--local-window', o.local_window, '--chunk-size', o.chunk_size, '--prompt-cap', o.prompt_cap, '--min-chunked-length', o.min_chunked_length].map(String);
  const base = ['logits', '--model', path.join(FX, c.model), '--ids', file, '--continuation', file, '--backend', 'cpu', '--threads', '2', ...flags];
  const run = await captureStdout(() => main([...base, '--step-mode', 'incremental']));
  t.equal(run.code, 0, 'exit code 0');
  const rows = (JSON.parse(run.stdout) as { logits: number[][] }).logits;
  const model = await loadModel(path.join(FX, c.model), { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  const api = await rowsOf(model, c.ids, c.continuation, { ...focusOf(c), stepMode: 'incremental' });
  t.ok(rows.every((r, i) => relErr(r, api[i]) === 0), 'the rows of an incremental session');
  t.ok(relErr(rows[1], c.logits[1]) > 1e-3, 'not the exact rows (the flag was not ignored)');
  const bad = await captureStdout(() => main([...base, '--step-mode', 'refresh:0']));
  t.equal(bad.code, 2, 'exit code 2');
  t.match(bad.stderr, /--step-mode must be exact, incremental, refresh:N or tail:N .*got 'refresh:0'/);
});

t.test('bench/step-modes.ts: the fidelity and speed records, one per mode and length', async (t) => {
  const c = cases.find((x) => x.file === 'tiny-gqa.focus.json')!;
  const o = c.options;
  const flags = ['--local-window', o.local_window, '--chunk-size', o.chunk_size, '--prompt-cap', o.prompt_cap, '--min-chunked-length', o.min_chunked_length].map(String);
  const base = ['--model', path.join(FX, c.model), '--backend', 'cpu', '--threads', '2', ...flags];
  const run = await captureStdout(() =>
    stepModesMain([...base, '--modes', 'incremental,refresh:1', '--fidelity-lengths', '4x', '--tokens', '8', '--lengths', '200', '--steps', '3', '--json']),
  );
  t.equal(run.code, 0, 'exit code 0');
  const recs = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const fid = recs.filter((r) => r.bench === 'step_modes_fidelity');
  t.same(fid.map((r) => [r.mode, r.length]), [['exact', 128], ['incremental', 128], ['refresh:1', 128]], 'exact first, then the modes asked for');
  const exact = fid[0];
  t.same([exact.kl_mean, exact.top1_agree, exact.greedy_agree, exact.nll_diff_mean], [0, 1, 1, 0], 'exact against itself');
  t.equal(exact.passkey_accuracy, null, 'no pass key without a tokenizer');
  t.ok((fid[1].kl_mean as number) > 1e-4, 'incremental departs from exact');
  t.ok((fid[2].kl_mean as number) < 1e-9 && fid[2].top1_agree === 1, 'refresh:1 does not');
  t.ok(fid.every((r) => r.ingest_max_abs_diff === 0), 'the same ingest row in every mode');
  const speed = recs.filter((r) => r.bench === 'step_modes_speed');
  t.same(speed.map((r) => [r.mode, r.run_mode]), [['native decode', 'native'], ['exact', 'focus'], ['incremental', 'focus'], ['refresh:1', 'focus']]);
  t.ok(speed.every((r) => (r.ms_per_token as number) > 0 && r.length === 200 && r.steps === 3), 'a time per token for each');
  t.equal(speed[2].local_cache_bytes, 2 * 2 * (33 + 3) * 2 * 16 * 4, 'incremental: the local cache, sized for its steps');
  t.equal(speed[1].local_cache_bytes, 0, 'exact: none');
  const bad = await captureStdout(() => stepModesMain([...base, '--modes', 'fast']));
  t.equal(bad.code, 2, 'a bad mode: exit code 2');
  t.match(bad.stderr, /--modes must be exact, incremental, refresh:N or tail:N/);
});
