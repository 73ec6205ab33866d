// focusllm train: a run through main() (plain progress lines without a
// terminal, --json summary), usage errors naming the flag before any work,
// and Ctrl-C in a real process: a resumable checkpoint, then --resume.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import t from 'tap';

import { writeRandomModel } from '../bench/random-model';
import { main } from '../lib/cli/main';
import { makeRng } from '../lib/sampling';
import { writeTinyModel } from './helpers/checkpoint';
import { captureStdout } from './helpers/cli';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'focusllm-train-cli-'));
t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
const base = writeTinyModel({ seed: 4 }, path.join(root, 'base'));
const r = makeRng(8);
const doc = () => JSON.stringify({ ids: [1, ...Array.from({ length: 70 }, () => 3 + Math.floor(r() * 93))] });
const data = path.join(root, 'a.jsonl');
fs.writeFileSync(data, [doc(), doc(), JSON.stringify({ ids: [1, 5, 6] })].join('\n') + '\n');
const data2 = path.join(root, 'b.jsonl');
fs.writeFileSync(data2, doc() + '\n');
const GEO = ['--window', '32', '--strides', '4,8', '--prompt-cap', '8', '--threads', '2'];
const run = (argv: string[]) => captureStdout(() => main(['train', ...argv]));

t.test('a short run: plain progress lines, data summary, --json', async (t) => {
  const out = path.join(root, 'out1');
  const res = await run(['--model', base, '--data', data, data2, '--out', out, ...GEO, '--steps', '3', '--batch', '2', '--lr', '1e-3', '--seed', '5', '--losses', 'both', '--json']);
  t.equal(res.code, 0, res.stderr);
  t.match(res.stderr, /^data: 3 documents, \d+ tokens from 2 files; 1 shorter than 32 tokens skipped\n/);
  t.match(res.stderr, /step 1\/3 loss \S+ \(continuation \S+, repetition \S+\) lr 1\.00e-3 grad-norm/);
  t.match(res.stderr, /step 3\/3 loss/);
  t.notMatch(res.stderr, /\r/, 'no terminal: no carriage returns');
  t.match(res.stderr, /trained 3 steps \(3\/3\), final loss \S+, 8 tensors \/ \d+ parameters trained/);
  const j = JSON.parse(res.stdout);
  t.match(j, { out, steps: 3, interrupted: false, seed: 5, data: { files: 2, documents: 3, tooShort: 1 } });
  t.equal(j.losses.length, 3);
  t.ok(fs.existsSync(path.join(out, 'model.safetensors')) && fs.existsSync(path.join(out, 'loss-curve.svg')));
  // logits CLI runs the trained folder
  const ids = path.join(root, 'ids.json');
  fs.writeFileSync(ids, JSON.stringify([1, 5, 6, 7]));
  const lg = await captureStdout(() => main(['logits', '--model', out, '--backend', 'cpu', '--ids', ids]));
  t.equal(lg.code, 0, lg.stderr);
  t.equal(JSON.parse(lg.stdout).logits[0].length, 96);
});

t.test('usage errors name the flag, before the model is loaded', async (t) => {
  const out = path.join(root, 'never');
  const bad = async (argv: string[], re: RegExp, code = 2) => {
    const res = await run(argv);
    t.equal(res.code, code, `exit ${code}: ${argv.join(' ')}`);
    t.match(res.stderr, re);
  };
  await bad(['--data', data, '--out', out], /focusllm train: --model is required \(or --resume DIR to continue a run\)/);
  await bad(['--model', base, '--out', out], /--data is required/);
  await bad(['--model', base, '--data', data], /--out is required/);
  await bad(['--model', base, '--data', data, '--out', out, '--params', 'all', '--loss', 'focus'], /--params "all" needs --loss "lm"/);
  await bad(['--model', base, '--data', data, '--out', out, '--lr', '-1'], /--lr must be a number > 0, got -1/);
  await bad(['--model', base, '--data', data, '--out', out, '--strides', '4,x'], /--strides: 'x' is not a positive integer/);
  await bad(['--model', base, '--data', data, '--out', out, '--weight-decay', '-2'], /--weight-decay must be a number >= 0/);
  await bad(['--model', base, '--data', data, '--out', out, '--schedule', 'step'], /--schedule must be one of linear, cosine, constant/);
  await bad(['--model', base, '--data', data, '--out', path.join(base, 'x')], /--out: .* is inside the base checkpoint folder/);
  await bad(['--model', base, '--data', path.join(root, 'missing.jsonl'), '--out', out], /data file .*missing\.jsonl: no such file/, 1);
  await bad(['--model', base, '--data', data, '--out', out, '--window', '100'], /nothing to train on: none of the 3 documents .* has at least 100 tokens/, 1);
  await bad(['--resume', root], /--resume: .* has no trainer_state\.json/);
  await bad(['--model', base, '--data', data, '--out', out, '--beacon-param', 'q,x'], /--beacon-param: "x" is not a candidate projection \(one of q, k, v, o, mlp\)/);
  await bad(['--model', base, '--data', data, '--out', out, '--beacon-param', 'q,q'], /--beacon-param lists "q" twice/);
  await bad(['--model', base, '--data', data, '--out', out, '--params', 'all', '--beacon-param', 'q'], /--beacon-param chooses candidate projections: it goes with --params candidate/);
  await bad(['--model', path.join(root, 'nomodel'), '--data', data, '--out', out], /nomodel/, 1);
  t.notOk(fs.existsSync(out), 'nothing was written');
});

t.test('--beacon-param chooses the candidate projections trained (a candidate MLP needs no config.json edit)', async (t) => {
  const out = path.join(root, 'bp');
  const res = await run(['--model', base, '--data', data, '--out', out, ...GEO, '--steps', '2', '--batch', '2', '--lr', '1e-3', '--seed', '5', '--beacon-param', 'k,v,mlp']);
  t.equal(res.code, 0, res.stderr);
  // 2 layers: k and v weights, up and down of the candidate MLP
  t.match(res.stderr, /8 tensors \/ \d+ parameters trained/);
  t.same(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).beacon_param, ['k', 'v', 'mlp']);
  const names = Object.keys(JSON.parse(fs.readFileSync(path.join(out, 'model.safetensors')).subarray(8, 8 + Number(fs.readFileSync(path.join(out, 'model.safetensors')).readBigUInt64LE(0))).toString('utf8')));
  t.ok(names.includes('model.layers.1.mlp.beacon_up_proj.weight') && names.includes('model.layers.0.mlp.beacon_down_proj.weight'), 'the candidate MLP is written');
  t.same(JSON.parse(fs.readFileSync(path.join(base, 'config.json'), 'utf8')).beacon_param, ['q', 'k', 'v', 'o'], 'the base config.json is untouched');
  const again = await run(['--resume', out, '--steps', '3', '--beacon-param', 'q', '--threads', '2']);
  t.equal(again.code, 2);
  t.match(again.stderr, /--beacon-param: a resumed run trains what it started with \(beacon_param in .*config\.json\); leave it out/);
  const res2 = await run(['--resume', out, '--steps', '3', '--threads', '2']);
  t.equal(res2.code, 0, res2.stderr);
  t.match(res2.stderr, /8 tensors/);
});

t.test('Ctrl-C saves a resumable checkpoint; --resume finishes the run', async (t) => {
  const out = path.join(root, 'sig');
  const args = ['--import', 'tsx', path.join(__dirname, '..', 'lib', 'cli', 'main.ts'), 'train', '--model', base, '--data', data, '--out', out, ...GEO, '--steps', '100000', '--batch', '1', '--seed', '3'];
  // no coverage from a child that loads lib/ through tsx (see test/model-files.test.ts)
  const env = { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: '0' };
  const child = spawn(process.execPath, args, { cwd: path.join(__dirname, '..'), env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b) => (stderr += String(b)));
  const log = path.join(out, 'train-log.jsonl');
  // Interrupt once a few steps are logged.
  const timer = setInterval(() => {
    try {
      if (fs.readFileSync(log, 'utf8').split('\n').filter((l) => l.includes('"event":"step"')).length >= 3) {
        clearInterval(timer);
        child.kill('SIGINT');
      }
    } catch {
      // not there yet
    }
  }, 20);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearInterval(timer);
  t.equal(code, 130, `exit 130 after SIGINT\n${stderr}`);
  t.match(stderr, /interrupted at step \d+\/100000: checkpoint saved in .*; continue with: focusllm train --resume /);
  const state = JSON.parse(fs.readFileSync(path.join(out, 'trainer_state.json'), 'utf8'));
  t.ok(state.step >= 3 && state.step < 100000, `saved at step ${state.step}`);
  t.equal(state.losses.length, state.step);
  const res = await run(['--resume', out, '--steps', String(state.step + 2), '--threads', '2']);
  t.equal(res.code, 0, res.stderr);
  t.match(res.stderr, new RegExp(`resuming .* at step ${state.step}/${state.step + 2}`));
  t.match(res.stderr, new RegExp(`trained 2 steps \\(${state.step + 2}/${state.step + 2}\\)`));
  const again = await run(['--resume', out, '--lr', '0.5']);
  t.equal(again.code, 2);
  t.match(again.stderr, /--lr cannot change on resume/);
  const other = await run(['--resume', out, '--model', root]);
  t.equal(other.code, 2);
  t.match(other.stderr, /--model .* is not the base of the run/);
});

t.test('--stop-at: a time-boxed run stops with a resumable checkpoint, the schedule spanning --steps', async (t) => {
  const out = path.join(root, 'stop-at');
  const res = await run(['--model', base, '--data', data, '--out', out, ...GEO, '--steps', '5', '--stop-at', '2', '--batch', '2', '--lr', '1e-3', '--seed', '5']);
  t.equal(res.code, 0, res.stderr);
  t.match(res.stderr, /stopped at step 2\/5 \(--stop-at\): checkpoint saved in .*; continue with: focusllm train --resume /);
  const state = JSON.parse(fs.readFileSync(path.join(out, 'trainer_state.json'), 'utf8'));
  t.equal(state.step, 2);
  const more = await run(['--resume', out, '--stop-at', '4', '--threads', '2']);
  t.equal(more.code, 0, more.stderr);
  t.equal(JSON.parse(fs.readFileSync(path.join(out, 'trainer_state.json'), 'utf8')).step, 4);
  const bad = await run(['--resume', out, '--stop-at', '3', '--threads', '2']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--stop-at must be a step after 4 and at most --steps \(5\), got 3/);
  const fin = await run(['--resume', out, '--threads', '2']);
  t.equal(fin.code, 0, fin.stderr);
  t.match(fin.stderr, /trained 1 step \(5\/5\)/);
  // The same five steps in one run give the same weights (the schedule did not change).
  const one = path.join(root, 'stop-at-one');
  const whole = await run(['--model', base, '--data', data, '--out', one, ...GEO, '--steps', '5', '--batch', '2', '--lr', '1e-3', '--seed', '5']);
  t.equal(whole.code, 0, whole.stderr);
  t.same(
    JSON.parse(fs.readFileSync(path.join(out, 'trainer_state.json'), 'utf8')).losses,
    JSON.parse(fs.readFileSync(path.join(one, 'trainer_state.json'), 'utf8')).losses,
    'the losses of the split run equal the whole run\'s',
  );
});

t.test("text data through the checkpoint's tokenizer; its tokenizer files travel with the output", async (t) => {
  const tokBase = path.join(root, 'tok-base');
  await writeRandomModel(tokBase, { tokenizer: 'llama2', hidden: 32, layers: 1, heads: 2, kvHeads: 1, candidates: ['q', 'k', 'v', 'o'], seed: 2 });
  const sentence = 'The quick brown fox jumps over the lazy dog while the clock strikes thirteen. ';
  const txt = path.join(root, 'story.txt');
  fs.writeFileSync(txt, sentence.repeat(6));
  const jsonl = path.join(root, 'records.jsonl');
  fs.writeFileSync(jsonl, [JSON.stringify({ text: sentence.repeat(4) }), JSON.stringify({ input: sentence.repeat(3), output: 'fox' }), JSON.stringify({ text: 'short' })].join('\n'));
  const out = path.join(root, 'tok-out');
  const res = await run(['--model', tokBase, '--data', txt, jsonl, '--out', out, ...GEO, '--steps', '2', '--batch', '2', '--seed', '1', '--json']);
  t.equal(res.code, 0, res.stderr);
  t.match(JSON.parse(res.stdout), { steps: 2, data: { files: 2, records: 4, documents: 3, tooShort: 1 } });
  for (const f of ['tokenizer.json', 'tokenizer_config.json'])
    t.ok(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(tokBase, f))), `${f} copied`);
  const gen = await captureStdout(() => main(['generate', '--model', out, '--backend', 'cpu', '--prompt', 'The quick', '--max-new-tokens', '3']));
  t.equal(gen.code, 0, gen.stderr);
});
