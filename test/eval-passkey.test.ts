// Pass-key evaluation: prompt construction (length, depth, determinism), the
// scoring loop against an oracle model that reads the key out of its input,
// and a real run on a tiny random model with the LLaMA-2 tokenizer.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import t from 'tap';

import { scriptedModel } from './helpers/scripted-model';
import { writeRandomModel } from '../bench/random-model';
import {
  firstNumber,
  makePasskeyPrompt,
  PASSKEY_FILLER,
  PASSKEY_QUESTION,
  PASSKEY_TASK,
  passkeyInfoLine,
  passkeyText,
  passkeyTrialSeed,
  runPasskey,
} from '../lib/eval/passkey';
import { loadModel, type Model } from '../lib/model';
import { makeRng } from '../lib/sampling';
import { loadTokenizer } from '../lib/tokenizer/index';
import type { Tokenizer } from '../lib/tokenizer/types';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'focusllm-passkey-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

let tok: Tokenizer;
t.before(async () => {
  await writeRandomModel(dir, { tokenizer: 'llama2', hidden: 64, layers: 2, heads: 4, kvHeads: 2, dtype: 'F16', candidates: ['q', 'k', 'v', 'o'], seed: 7 });
  const loaded = await loadTokenizer(dir);
  if (!loaded) throw new Error('no tokenizer written');
  tok = loaded;
});

const sentencesIn = (line: string) => (line.match(/\./g) ?? []).length;

t.test('prompt: the token count hits the target within one filler sentence', async (t) => {
  const maxSentence = Math.max(...PASSKEY_FILLER.map((s) => tok.encode(' ' + s, { addSpecial: false }).length));
  for (const length of [120, 500, 2048, 4096]) {
    const p = makePasskeyPrompt(tok, length, makeRng(length));
    t.same(p.ids, tok.encode(p.text), `${length}: ids are the tokenized text`);
    t.equal(p.ids[0], tok.bosId, `${length}: BOS first`);
    t.ok(p.ids.length <= length, `${length}: ${p.ids.length} tokens fit`);
    t.ok(length - p.ids.length <= maxSentence, `${length}: short by ${length - p.ids.length} <= ${maxSentence} (one sentence)`);
    // and one more sentence would not fit
    const more = tok.encode(passkeyText(p.fillerSentences + 1, Math.round(p.depth * (p.fillerSentences + 1)), p.passkey));
    t.ok(more.length > length, `${length}: one more sentence gives ${more.length} > ${length}`);
  }
});

t.test('prompt: layout, information line at the chosen depth', async (t) => {
  for (const depth of [0, 0.25, 0.5, 1]) {
    const p = makePasskeyPrompt(tok, 1000, makeRng(3), { depth });
    const lines = p.text.split('\n');
    t.equal(lines.length, 5, 'task, filler, info, filler, question');
    t.equal(lines[0], PASSKEY_TASK);
    t.equal(lines[2], passkeyInfoLine(p.passkey));
    t.equal(lines[4], PASSKEY_QUESTION);
    t.equal(p.depth, depth);
    t.equal(sentencesIn(lines[1]), p.sentencesBefore, `depth ${depth}: ${p.sentencesBefore} sentences before the key`);
    t.equal(sentencesIn(lines[1]) + sentencesIn(lines[3]), p.fillerSentences, 'all filler accounted for');
    t.equal(p.sentencesBefore, Math.round(depth * p.fillerSentences), 'before = round(depth x filler)');
  }
  // the filler reads on across the information line
  t.equal(passkeyText(7, 3, 12345).split('\n')[3], 'Here we go. There and back again. The grass is green. The sky is blue.');
});

t.test('prompt: deterministic for a seed, 5-digit keys, random depth', async (t) => {
  const a = makePasskeyPrompt(tok, 600, makeRng(11));
  const b = makePasskeyPrompt(tok, 600, makeRng(11));
  t.same(a, b, 'same seed, same prompt');
  const keys = new Set<number>();
  const depths: number[] = [];
  for (let s = 0; s < 20; s++) {
    const p = makePasskeyPrompt(tok, 300, makeRng(s));
    t.ok(p.passkey >= 10000 && p.passkey <= 99999, `key ${p.passkey} has 5 digits`);
    keys.add(p.passkey);
    depths.push(p.depth);
  }
  t.ok(keys.size >= 18, `keys vary with the seed (${keys.size} distinct of 20)`);
  t.ok(Math.min(...depths) < 0.3 && Math.max(...depths) > 0.7, 'depths spread over [0, 1]');
});

t.test('prompt: errors', async (t) => {
  t.throws(() => makePasskeyPrompt(tok, 20, makeRng(1)), /length 20 is shorter than the prompt without filler/);
  t.throws(() => makePasskeyPrompt(tok, 0, makeRng(1)), /positive integer/);
  t.throws(() => makePasskeyPrompt(tok, 500, makeRng(1), { depth: 1.5 }), /depth must be a number in \[0, 1\]/);
});

t.test('firstNumber', async (t) => {
  t.equal(firstNumber(' 12345. Remember it.'), '12345');
  t.equal(firstNumber('the key: 0042 or 7'), '0042');
  t.equal(firstNumber('no digits'), null);
});

/** A stand-in model that answers with the pass key it finds in its input (or that key + 1). */
function oracle(wrong: boolean): Model {
  return scriptedModel(tok, {
    strictSteps: true,
    answer: (text) => {
      const key = Number(/The pass key is (\d+)/.exec(text)![1]);
      return `${wrong ? key + 1 : key}.\nThe`;
    },
  });
}

t.test('runPasskey scores exact matches, by length and depth', async (t) => {
  const seen: number[] = [];
  const good = await runPasskey(oracle(false), {
    lengths: [200, 400],
    trials: 3,
    seed: 5,
    onProgress: (p) => seen.push(p.done),
  });
  t.equal(good.accuracy, 1, 'oracle answers are all correct');
  t.equal(good.records.length, 6);
  t.same(good.lengths.map((l) => [l.length, l.trials, l.correct]), [[200, 3, 3], [400, 3, 3]]);
  for (const l of good.lengths) t.equal(l.byDepth.reduce((s, d) => s + d.trials, 0), 3, 'depth groups cover the trials');
  t.ok(good.records.every((r) => r.answer.endsWith('\n') && !r.answer.includes('The')), 'generation stopped at the newline');
  t.ok(good.records.every((r) => r.tokens <= r.length), 'prompts fit');
  t.same([...new Set(seen)], [0, 1, 2, 3, 4, 5, 6], 'progress counts trials');
  const bad = await runPasskey(oracle(true), { lengths: [200], trials: 2, seed: 5 });
  t.equal(bad.accuracy, 0, 'an off-by-one key is wrong');
  t.equal(bad.records[0].passkey, good.records[0].passkey, 'same seed, same keys');
  const fixed = await runPasskey(oracle(false), { lengths: [300], trials: 2, depths: [0, 1] });
  t.same(fixed.lengths[0].byDepth.map((d) => [d.depth, d.trials]), [['0', 2], ['1', 2]]);
  t.same(fixed.records.map((r) => r.depth), [0, 0, 1, 1]);
  const ac = new AbortController();
  ac.abort();
  await t.rejects(runPasskey(oracle(false), { lengths: [200], trials: 1, signal: ac.signal }), { name: 'AbortError' });
  await t.rejects(runPasskey(oracle(false), { lengths: [], trials: 1 }), /lengths must be a non-empty array/);
  await t.rejects(runPasskey(oracle(false), { lengths: [200], trials: 0 }), /trials must be a positive integer/);
  await t.rejects(runPasskey(oracle(false), { lengths: [200], depths: [2] }), /depths: 2 is not in \[0, 1\]/);
});

t.test('runPasskey on a real (random) model, native and FocusLLM', async (t) => {
  const model = await loadModel(dir, { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  const focus = { localWindow: 128, chunkSize: 96, promptCap: 32, minChunkedLength: 256 };
  const r = await runPasskey(model, { lengths: [200, 700], trials: 2, seed: 1, focus });
  t.same(r.focus, focus, 'parameters reported');
  t.same(r.records.map((x) => x.mode), ['native', 'native', 'focus', 'focus']);
  for (const x of r.records.filter((x) => x.mode === 'focus'))
    t.equal(x.chunks, Math.ceil((x.tokens - 128) / 96), `${x.tokens} tokens -> ${x.chunks} chunks`);
  // The answer is what greedy generation through the Model API gives.
  const rec = r.records[2];
  const prompt = makePasskeyPrompt(model.tokenizer!, 700, makeRng(passkeyTrialSeed(1, 700, 0)));
  t.equal(prompt.passkey, rec.passkey, 'trial seed reproducible outside runPasskey');
  const ids: number[] = [];
  for await (const id of model.generateTokens(prompt.ids, { maxNewTokens: r.maxNewTokens, focus })) ids.push(id);
  const text = model.tokenizer!.decode(ids, { skipSpecial: true });
  t.ok(text.startsWith(rec.answer), `greedy answer ${JSON.stringify(rec.answer)} is the start of generateTokens' ${JSON.stringify(text)}`);
  t.equal(r.correct, r.records.filter((x) => firstNumber(x.answer) === String(x.passkey)).length, 'correct = exact matches');
});
