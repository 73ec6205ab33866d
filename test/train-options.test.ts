// Training options, schedule, output-folder checks, loss curve and the CLI's
// flag helpers: everything of training that runs without the addon.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import t from 'tap';

import { dataLine, flagMessage, formatDuration, gatherData, progressBar, progressLine } from '../lib/cli/train';
import { checkOutDir, isInside, readState, trainedProjections } from '../lib/train/checkpoint';
import { DataOrder } from '../lib/train/loop';
import { resolveTrainOptions, resumeOptions } from '../lib/train/options';
import type { TrainPlan } from '../lib/train/plan';
import { learningRate } from '../lib/train/schedule';
import { lineChartSvg, lossCurveSvg, movingAverage, ticks } from '../lib/train/svg';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'focusllm-train-options-'));
t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));

const close = (t: tap.Test, a: number, b: number, what: string) => t.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

t.test('schedule: linear / cosine / constant after a linear warmup', async (t) => {
  const o = { lr: 1e-3, warmup: 0, steps: 10, schedule: 'linear' as const };
  close(t, learningRate(0, o), 1e-3, 'linear, no warmup: full rate at the first step');
  close(t, learningRate(5, o), 5e-4, 'half way');
  close(t, learningRate(9, o), 1e-4, 'last step');
  close(t, learningRate(10, o), 0, 'past the end');
  const w = { lr: 1e-3, warmup: 4, steps: 12, schedule: 'linear' as const };
  close(t, learningRate(0, w), 0, 'warmup starts at 0');
  close(t, learningRate(2, w), 5e-4, 'warmup half way');
  close(t, learningRate(4, w), 1e-3, 'peak after warmup');
  close(t, learningRate(8, w), 5e-4, 'decay half way: (8 - 4) / (12 - 4)');
  const c = { lr: 2e-3, warmup: 2, steps: 12, schedule: 'cosine' as const };
  close(t, learningRate(1, c), 1e-3, 'cosine warmup');
  close(t, learningRate(2, c), 2e-3, 'cosine peak');
  close(t, learningRate(7, c), 1e-3, 'cosine half way');
  close(t, learningRate(12, c), 0, 'cosine end');
  close(t, learningRate(4, c), 2e-3 * 0.5 * (1 + Math.cos(Math.PI * 0.2)), 'cosine at 1/5');
  close(t, learningRate(9, { ...c, schedule: 'constant' }), 2e-3, 'constant');
});

t.test('options: official defaults, params and loss go together', async (t) => {
  const o = resolveTrainOptions({ data: ['a.jsonl'], out: 'out', seed: 3 }, 4096);
  t.match(o, {
    params: 'candidate', loss: 'focus', losses: 'random', window: 3072, localMin: 30, localMax: 3070, target: 'block',
    chunkSizes: [64, 128, 256, 512, 1024, 2048], promptCap: 512, seqLen: 3072, minLength: 3072, maxLength: 8192,
    steps: null, batch: 8, accum: 1, lr: 5e-5, warmup: 0, schedule: 'linear', clip: 1, weightDecay: 0,
    beta1: 0.9, beta2: 0.999, eps: 1e-8, seed: 3, saveEvery: 0, recompute: false,
  });
  t.equal(o.data[0], path.resolve('a.jsonl'), 'paths made absolute');
  t.equal(o.out, path.resolve('out'));
  const lm = resolveTrainOptions({ data: ['a'], out: 'o', params: 'all' }, 2048);
  t.match(lm, { params: 'all', loss: 'lm', seqLen: 2048, minLength: 2 }, 'params all implies lm; seqLen capped by max_position_embeddings');
  t.match(resolveTrainOptions({ data: ['a'], out: 'o', loss: 'lm', window: 64 }, 4096), { params: 'all', seqLen: 64 }, 'loss lm implies all');
  t.match(resolveTrainOptions({ data: ['a'], out: 'o', window: 32 }, 4096), { localMin: 4, localMax: 30, minLength: 32, maxLength: 8192 });
  t.ok(Number.isInteger(resolveTrainOptions({ data: ['a'], out: 'o' }, 4096).seed), 'a random seed when none is given');
  t.equal(lm.lmScore, 'all', 'lm scores every next token by default');
  t.equal(resolveTrainOptions({ data: ['a'], out: 'o', loss: 'lm', lmScore: 'output' }, 4096).lmScore, 'output');
});

t.test('options: bad values name the option', async (t) => {
  const bad = (o: object, re: RegExp) => t.throws(() => resolveTrainOptions({ data: ['a.jsonl'], out: 'o', ...o }, 4096), re);
  t.throws(() => resolveTrainOptions({ out: 'o' }, 4096), /option data: give at least one data file/);
  t.throws(() => resolveTrainOptions({ data: [], out: 'o' }, 4096), /option data/);
  t.throws(() => resolveTrainOptions({ data: ['a'] }, 4096), /option out: give the output folder/);
  bad({ params: 'all', loss: 'focus' }, /option params "all" needs option loss "lm"/);
  bad({ params: 'candidate', loss: 'lm' }, /option loss "lm" needs option params "all"/);
  bad({ params: 'some' }, /option params must be one of candidate, all, got "some"/);
  bad({ loss: 'mse' }, /option loss must be one of focus, lm/);
  bad({ lr: -1 }, /option lr must be a number > 0, got -1/);
  bad({ lr: NaN }, /option lr/);
  bad({ steps: 0 }, /option steps must be an integer >= 1, got 0/);
  bad({ batch: 1.5 }, /option batch must be an integer >= 1/);
  bad({ accum: 0 }, /option accum/);
  bad({ warmup: -1 }, /option warmup/);
  bad({ schedule: 'step' }, /option schedule must be one of linear, cosine, constant/);
  bad({ clip: -0.5 }, /option clip must be a number >= 0/);
  bad({ weightDecay: -1 }, /option weightDecay/);
  bad({ beta1: 1 }, /option beta1 must be a number in \[0, 1\)/);
  bad({ beta2: -0.1 }, /option beta2/);
  bad({ eps: 0 }, /option eps/);
  bad({ seed: -1 }, /option seed must be an integer from 0 to 4294967295/);
  bad({ saveEvery: -1 }, /option saveEvery/);
  bad({ window: 2 }, /option window must be an integer >= 3/);
  bad({ window: 32, minLength: 31 }, /option minLength must be an integer >= 32, got 31/);
  bad({ window: 32, maxLength: 20 }, /option maxLength must be an integer >= 32/);
  bad({ chunkSizes: [8, -1] }, /option chunkSizes\[1\]/);
  bad({ promptCap: 0 }, /option promptCap/);
  bad({ seqLen: 1 }, /option seqLen/);
  bad({ recompute: 'yes' }, /option recompute must be true or false/);
  bad({ losses: 'all' }, /option losses must be one of random, both, continuation, repetition/);
  bad({ loss: 'lm', lmScore: 'input' }, /option lmScore must be one of all, output, got "input"/);
  bad({ lmScore: 'output' }, /option lmScore is for loss "lm"/);
});

t.test('resume: only steps, saveEvery, recompute and the data paths may change', async (t) => {
  const saved = { ...resolveTrainOptions({ data: ['a.jsonl'], out: 'run', seed: 5, window: 32 }, 4096), steps: 10 };
  const dir = path.resolve('run');
  t.same(resumeOptions(saved, {}, dir), saved, 'nothing given: the saved options');
  t.match(resumeOptions(saved, { steps: 20, saveEvery: 5, recompute: true, data: ['b.jsonl'] }, dir), { steps: 20, saveEvery: 5, recompute: true, data: [path.resolve('b.jsonl')] });
  t.same(resumeOptions(saved, { lr: 5e-5, seed: 5, window: 32, params: 'candidate' }, dir), saved, 'the same values may be repeated');
  t.throws(() => resumeOptions(saved, { lr: 1e-3 }, dir), /option lr cannot change on resume: the run in .* used 0\.00005, got 0\.001/);
  t.throws(() => resumeOptions(saved, { seed: 6 }, dir), /option seed cannot change on resume/);
  t.throws(() => resumeOptions(saved, { params: 'all' }, dir), /option params cannot change on resume/);
  t.throws(() => resumeOptions(saved, { chunkSizes: [4] }, dir), /option chunkSizes cannot change on resume/);
  const { lmScore: _, target: __, ...older } = saved; // a run saved before these options existed
  t.match(resumeOptions(older as typeof saved, {}, dir), { target: 'block', lmScore: 'all' }, 'options added later take the value old runs had');
  t.throws(() => resumeOptions(older as typeof saved, { lmScore: 'output' }, dir), /option lmScore cannot change on resume: the run in .* used "all", got "output"/);
  t.throws(() => resumeOptions(saved, { out: 'elsewhere' }, dir), /option out \(elsewhere\) must be the resumed folder/);
  t.throws(() => resumeOptions(saved, { steps: 0 }, dir), /option steps must be an integer >= 1/);
});

t.test('output folder: never the base or inside it, new or empty, writable', async (t) => {
  const base = path.join(root, 'base');
  fs.mkdirSync(base);
  fs.writeFileSync(path.join(base, 'config.json'), '{}');
  t.throws(() => checkOutDir(base, base, false), /option out: .*base is the base checkpoint folder .*training never writes into the checkpoint it starts from/);
  t.throws(() => checkOutDir(path.join(base, 'trained'), base, false), /option out: .* is inside the base checkpoint folder/);
  fs.symlinkSync(base, path.join(root, 'link'));
  t.throws(() => checkOutDir(path.join(root, 'link', 'x'), base, false), /inside the base checkpoint folder/, 'through a symbolic link');
  t.ok(isInside(path.join(root, 'link', 'a', 'b'), base));
  t.notOk(isInside(path.join(root, 'base2'), base), 'a sibling with a common prefix is outside');
  t.doesNotThrow(() => checkOutDir(path.join(root, 'new', 'deeper'), base, false), 'a new folder');
  fs.mkdirSync(path.join(root, 'empty'));
  t.doesNotThrow(() => checkOutDir(path.join(root, 'empty'), base, false), 'an empty folder');
  fs.mkdirSync(path.join(root, 'full'));
  fs.writeFileSync(path.join(root, 'full', 'notes.txt'), 'x');
  t.throws(() => checkOutDir(path.join(root, 'full'), base, false), /option out: .*full is not empty \(notes\.txt\); choose a new or empty folder/);
  fs.writeFileSync(path.join(root, 'full', 'trainer_state.json'), '{}');
  t.throws(() => checkOutDir(path.join(root, 'full'), base, false), /it holds a run: continue it with resume/);
  t.doesNotThrow(() => checkOutDir(path.join(root, 'full'), base, true), 'resuming writes into its own folder');
  fs.writeFileSync(path.join(root, 'afile'), 'x');
  t.throws(() => checkOutDir(path.join(root, 'afile'), base, false), /option out: .*afile exists and is not a folder/);
  t.throws(() => checkOutDir(path.join(root, 'afile', 'sub'), base, false), /option out: .*afile is not a folder/);
  if (process.getuid?.() !== 0) {
    fs.mkdirSync(path.join(root, 'ro'), { mode: 0o555 });
    t.throws(() => checkOutDir(path.join(root, 'ro', 'out'), base, false), /option out: cannot write to .*ro is not writable/);
  } else t.comment('running as root: the read-only-folder case is not checkable');
});

t.test('trainer_state.json problems are named', async (t) => {
  const dir = path.join(root, 'state');
  fs.mkdirSync(dir);
  t.throws(() => readState(dir), /option resume: .*state has no trainer_state\.json: it is not the output folder of a focusllm training run/);
  fs.writeFileSync(path.join(dir, 'trainer_state.json'), '{"format": ');
  t.throws(() => readState(dir), /trainer_state\.json: invalid JSON/);
  fs.writeFileSync(path.join(dir, 'trainer_state.json'), '{"format": "other"}');
  t.throws(() => readState(dir), /trainer_state\.json: missing or invalid format/);
});

t.test('beacon_param of the trained tensors', async (t) => {
  const n = (l: number, p: string) => `model.layers.${l}.self_attn.beacon_${p}_proj.weight`;
  t.same(trainedProjections([n(0, 'q'), n(0, 'k'), n(1, 'v'), n(0, 'o')]), ['q', 'k', 'v', 'o']);
  t.same(trainedProjections([n(0, 'k'), 'model.layers.0.mlp.beacon_up_proj.weight']), ['k', 'mlp']);
  t.same(trainedProjections(['model.layers.0.self_attn.beacon_q_proj.bias']), ['q']);
});

t.test('data order: a seeded permutation per pass, resumable from (epoch, position)', async (t) => {
  const a = new DataOrder(5, 9);
  const first = Array.from({ length: 12 }, () => a.next());
  t.same([...first.slice(0, 5)].sort(), [0, 1, 2, 3, 4], 'each pass visits every unit once');
  t.same([...first.slice(5, 10)].sort(), [0, 1, 2, 3, 4]);
  t.notSame(first.slice(0, 5), first.slice(5, 10), 'passes differ');
  t.equal(a.epoch, 2);
  const b = new DataOrder(5, 9, 1, 3);
  t.same([b.next(), b.next(), b.next(), b.next()], first.slice(8, 12), 'continues from a saved position');
});

t.test('loss curve SVG: axes, labels, raw and moving average', async (t) => {
  const losses = Array.from({ length: 50 }, (_, i) => 5 * Math.exp(-i / 10) + 0.3 * Math.sin(i));
  const svg = lossCurveSvg(losses, { title: 'run <1>' });
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  t.match(svg, />step<\/text>/);
  t.match(svg, />loss<\/text>/);
  t.match(svg, /run &lt;1&gt;/, 'title escaped');
  t.match(svg, /moving average \(3 steps\)/);
  t.equal((svg.match(/<path d="M/g) ?? []).length, 3, 'axes, raw and average');
  t.match(svg, /<\/svg>\n$/);
  t.match(lossCurveSvg([]), /no steps yet/);
  t.match(lossCurveSvg([2.5]), /<circle/);
  t.doesNotThrow(() => lossCurveSvg([1, NaN, 2, Infinity, 3]));
  t.same(movingAverage([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5]);
  t.same(movingAverage([1, NaN, 3], 2), [1, 1, 3]);
  t.same(ticks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  t.same(ticks(1, 50, 5), [10, 20, 30, 40, 50]);
});

t.test('CLI helpers: flags in messages, several --data, progress text', async (t) => {
  t.equal(flagMessage('option weightDecay must be a number'), '--weight-decay must be a number');
  t.equal(flagMessage('option chunkSizes[1] must be'), '--strides[1] must be');
  t.equal(flagMessage('option params "all" needs option loss "lm"'), '--params "all" needs --loss "lm"');
  t.same(gatherData(['--data', 'a', 'b', '--out', 'o', '--data=c,d', '--data', 'e']), ['--out', 'o', '--data', 'a,b,c,d,e']);
  t.same(gatherData(['--out', 'o']), ['--out', 'o']);
  t.throws(() => gatherData(['--data', '--out', 'o']), /--data needs a value/);
  t.equal(formatDuration(59.6), '1:00');
  t.equal(formatDuration(3725), '1:02:05');
  t.equal(formatDuration(Infinity), '?');
  const p = { phase: 'step' as const, step: 5, steps: 10, loss: 2.5, lossByKind: { continuation: 2, repetition: 3 }, lr: 1e-4, gradNorm: 0.5, tokens: 100, tokensPerSecond: 1234.4, elapsed: 10, eta: 10, epoch: 0 };
  t.equal(progressBar(p, 10), 'step 5/10 [#####.....] loss 2.500  1234 tok/s  ETA 0:10');
  t.equal(progressLine(p), 'step 5/10 loss 2.500 (continuation 2.000, repetition 3.000) lr 1.00e-4 grad-norm 0.5000 1234 tok/s elapsed 0:10 ETA 0:10');
  const stats = { files: 1, records: 5, documents: 5, tokens: 900, tooShort: 0, cut: 2 };
  const lmPlan = (over: object, unitStarts?: number[], emptyOutputs?: number) =>
    ({ options: { ...resolveTrainOptions({ data: ['a'], out: 'o', loss: 'lm', seqLen: 64, ...over }, 4096), steps: 1 }, units: new Array(4), unitStarts, emptyOutputs }) as unknown as TrainPlan;
  t.equal(dataLine({ ...stats, cut: 0 }, lmPlan({})), 'data: 5 documents, 900 tokens from 1 file; 4 sequences of 64 tokens');
  t.equal(
    dataLine(stats, lmPlan({ lmScore: 'output' }, [9, 1, 1, 1])),
    'data: 5 documents, 900 tokens from 1 file; 2 cut (input/output records to 64 tokens); 1 input/output record scored on its output, 3 sequences of 64 tokens',
  );
  t.equal(
    dataLine(stats, lmPlan({ lmScore: 'output', maxLength: 300 }, [9, 1, 1, 1])),
    'data: 5 documents, 900 tokens from 1 file; 2 cut (input/output records to 64 tokens, documents to 300 tokens); 1 input/output record scored on its output, 3 sequences of 64 tokens',
  );
  t.equal(
    dataLine({ ...stats, cut: 0 }, lmPlan({ lmScore: 'output' }, [9, 1, 1, 1], 2)),
    'data: 5 documents, 900 tokens from 1 file; 2 input/output records with an empty output skipped; 1 input/output record scored on its output, 3 sequences of 64 tokens',
  );
});

t.test('lineChartSvg: named series on a log2 axis, a legend, breaks at non-finite points', async (t) => {
  const svg = lineChartSvg(
    [
      { name: 'native <w>', points: [[512, 0], [2048, 10], [8192, NaN], [32768, 20]] },
      { name: 'focus', points: [[512, 50], [2048, 100]] },
    ],
    { title: 'pass key', xLabel: 'length', yLabel: '%', logX: true, yMin: 0, yMax: 100, xTick: (x) => `${x / 512}x` },
  );
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  t.match(svg, /native &lt;w&gt;/, 'names escaped');
  for (const tick of ['1x', '4x', '16x', '64x']) t.match(svg, new RegExp(`>${tick}</text>`));
  // log2 x: 512 .. 32768 is 6 octaves over the plot width (720 - 64 - 190 = 466)
  t.match(svg, /<circle cx="64\.00" cy="372\.00"/, '(512, 0) at the left bottom corner');
  t.match(svg, /<circle cx="219\.33" cy="/, '2048 two octaves in');
  const paths = svg.match(/<path d="[^"]*"/g) ?? [];
  t.equal(paths.length, 3, 'the axes and a line per series');
  t.equal((paths[1].match(/M/g) ?? []).length, 2, 'the NaN point breaks the native line in two');
  t.equal((svg.match(/<circle/g) ?? []).length, 5, 'a marker per finite point');
});
