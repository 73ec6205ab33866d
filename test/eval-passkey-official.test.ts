// The official (FocusLLM eval_passkey.py) pass-key protocol: the prompt text
// written out by hand, the draws, the token-length search, the answer's token
// count and exact match (an oracle model), and a real run on a tiny random
// model, FocusLLM and native.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import t from 'tap';

import { scriptedModel } from './helpers/scripted-model';
import { writeRandomModel } from '../bench/random-model';
import {
  makePasskeyOfficialPrompt,
  PASSKEY_OFFICIAL_GARBAGE,
  passkeyOfficialGarbage,
  passkeyOfficialText,
  runPasskeyOfficial,
} from '../lib/eval/passkey-official';
import { passkeyTrialSeed } from '../lib/eval/passkey';
import { loadModel, type Model } from '../lib/model';
import { makeRng } from '../lib/sampling';
import { loadTokenizer } from '../lib/tokenizer/index';
import type { Tokenizer } from '../lib/tokenizer/types';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'focusllm-passkey-official-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

let tok: Tokenizer;
t.before(async () => {
  await writeRandomModel(dir, { tokenizer: 'llama2', hidden: 64, layers: 2, heads: 4, kvHeads: 2, dtype: 'F16', candidates: ['q', 'k', 'v', 'o'], seed: 9 });
  tok = (await loadTokenizer(dir))!;
});

/** A generator that returns the given values in order. */
const fixed = (...v: number[]) => () => {
  if (!v.length) throw new Error('test generator exhausted');
  return v.shift()!;
};

const TASK =
  'There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will quiz you about the important information there.';
const QUESTION = 'What is the pass key? The pass key is';

t.test('prompt text: prefix filler, information line, suffix filler, task, question', async (t) => {
  t.equal(PASSKEY_OFFICIAL_GARBAGE, 'The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.');
  // 100 characters of filler, 30 before the key: both pieces cut from the start of the filler.
  t.equal(
    passkeyOfficialText(100, 30, 4242),
    [
      'The grass is green. The sky is',
      'The pass key is 4242. Remember it. 4242 is the pass key.',
      'The grass is green. The sky is blue. The sun is yellow. Here we go. Th',
      TASK,
      QUESTION,
    ].join('\n'),
  );
  t.equal(passkeyOfficialText(0, 0, 7), `\nThe pass key is 7. Remember it. 7 is the pass key.\n\n${TASK}\n${QUESTION}`, 'no filler: empty lines');
  // garbage_inf joins copies with one space
  t.equal(passkeyOfficialGarbage(95), PASSKEY_OFFICIAL_GARBAGE + ' The g');
  t.equal(passkeyOfficialGarbage(89), PASSKEY_OFFICIAL_GARBAGE);
  const far = passkeyOfficialGarbage(4_500_100);
  t.equal(far.length, 4_500_100, 'past the script\'s 50,000 copies the filler goes on');
  t.equal(far.slice(90 * 50_000, 90 * 50_000 + 9), 'The grass', 'copy 50,001 starts where expected');
  t.throws(() => passkeyOfficialText(10, 11, 1), /filler prefix 11 is not in \[0, 10\]/);
});

t.test('draws: the offset fraction first, then the key in 1..49999', async (t) => {
  const lo = makePasskeyOfficialPrompt(tok, 1000, 'chars', fixed(0, 0));
  t.match(lo, { garbageChars: 1000, prefixChars: 0, passkey: 1, answer: '1', depth: 0, unit: 'chars', length: 1000 });
  const hi = makePasskeyOfficialPrompt(tok, 1000, 'chars', fixed(0.9999999, 0.9999999));
  t.match(hi, { prefixChars: 999, passkey: 49999 }, 'numpy randint: the high end is excluded');
  const mid = makePasskeyOfficialPrompt(tok, 1000, 'chars', fixed(0.5, 0.5));
  t.match(mid, { prefixChars: 500, passkey: 25000, depth: 0.5 });
  t.equal(mid.text, passkeyOfficialText(1000, 500, 25000));
  t.same(mid.ids, tok.encode(mid.text), 'ids: the text tokenized, BOS first');
  t.equal(mid.ids[0], tok.bosId);
  // The answer's tokens without BOS: LLaMA-2 writes "▁" and one piece per digit.
  t.same(tok.encode('25000', { addSpecial: false }).map((i) => tok.idToToken(i)), ['▁', '2', '5', '0', '0', '0']);
  t.equal(mid.answerTokens, 6);
  t.equal(lo.answerTokens, 2, '"1": "▁" and "1"');
  t.equal(makePasskeyOfficialPrompt(tok, 0, 'chars', fixed(0.7, 0)).prefixChars, 0, 'no filler, no prefix');
  const keys = new Set<number>();
  for (let s = 0; s < 200; s++) {
    const p = makePasskeyOfficialPrompt(tok, 300, 'chars', makeRng(s));
    t.ok(p.passkey >= 1 && p.passkey <= 49999 && p.prefixChars >= 0 && p.prefixChars < 300, `seed ${s}: key ${p.passkey}, prefix ${p.prefixChars}`);
    keys.add(p.passkey);
  }
  t.ok(keys.size > 190, `keys vary (${keys.size} distinct of 200)`);
  t.same(makePasskeyOfficialPrompt(tok, 500, 'tokens', makeRng(3)), makePasskeyOfficialPrompt(tok, 500, 'tokens', makeRng(3)), 'deterministic');
});

t.test('lengths in tokens: the filler fits, one more character does not', async (t) => {
  for (const length of [100, 200, 1000, 4096]) {
    const seed = 100 + length;
    const r = makeRng(seed);
    const u = r();
    const key = 1 + Math.floor(r() * 49999);
    const p = makePasskeyOfficialPrompt(tok, length, 'tokens', makeRng(seed));
    t.equal(p.passkey, key);
    t.equal(p.prefixChars, Math.floor(u * p.garbageChars), 'prefix = floor(u * n)');
    t.ok(p.ids.length <= length, `${length}: ${p.ids.length} tokens fit`);
    const more = tok.encode(passkeyOfficialText(p.garbageChars + 1, Math.floor(u * (p.garbageChars + 1)), key)).length;
    t.ok(more > length, `${length}: ${p.garbageChars + 1} characters give ${more} > ${length} tokens`);
    t.ok(length - p.ids.length <= 2, `${length}: within 2 tokens (${p.ids.length})`);
  }
  t.throws(() => makePasskeyOfficialPrompt(tok, 50, 'tokens', makeRng(1)), /passkey length 50 is shorter than the prompt without filler \(\d+ tokens\)/);
  t.throws(() => makePasskeyOfficialPrompt(tok, 0, 'tokens', makeRng(1)), /positive integer/);
  t.throws(() => makePasskeyOfficialPrompt(tok, -1, 'chars', makeRng(1)), /non-negative integer/);
  t.throws(() => makePasskeyOfficialPrompt(tok, 100, 'words' as 'chars', makeRng(1)), /unit must be "tokens" or "chars"/);
});

/** A stand-in model that answers " <key><tail>" for the key it finds in its prompt (or that key + 1). */
function oracle(tail: string, wrong = false, prompts?: string[]): Model {
  return scriptedModel(tok, {
    strictSteps: true,
    prompts,
    answer: (text) => {
      const key = Number(/The pass key is (\d+)/.exec(text)![1]);
      return `${wrong ? key + 1 : key}${tail}`;
    },
  });
}

t.test('runPasskeyOfficial: exactly the answer tokens, exact match', async (t) => {
  const prompts: string[] = [];
  const trials: number[] = [];
  const good = await runPasskeyOfficial(oracle('.\nThe', false, prompts), { lengths: [150, 400], trials: 3, seed: 4, onTrial: (x) => trials.push(x.trial) });
  t.equal(good.accuracy, 1);
  t.match(good, { task: 'passkey', protocol: 'official', unit: 'tokens', native: false, seed: 4, trials: 6, correct: 6 });
  t.same(trials, [0, 1, 2, 0, 1, 2]);
  for (const r of good.records) {
    t.equal(r.answer.trim(), String(r.passkey), 'generation stopped after the key\'s tokens, before "."');
    t.equal(r.expected, String(r.passkey));
    t.equal(r.answerTokens, String(r.passkey).length + 1);
    t.ok(r.tokens <= r.length);
  }
  // The model read the official prompt, BOS first.
  const p0 = makePasskeyOfficialPrompt(tok, 150, 'tokens', makeRng(passkeyTrialSeed(4, 150, 0)));
  t.equal(p0.passkey, good.records[0].passkey, 'the trial seed reproduces the prompt');
  t.equal(prompts[0], p0.text, 'the prompt as the model decoded it');
  for (const l of good.lengths) {
    t.equal(l.byDepth.reduce((s, d) => s + d.trials, 0), 3, 'depth groups cover the trials');
    t.equal(l.meanTokens, good.records.filter((r) => r.length === l.length).reduce((s, r) => s + r.tokens, 0) / 3);
    t.ok(l.meanGarbageChars > 0);
  }
  // More digits after the key are never generated: still an exact match, as in the script.
  const longer = await runPasskeyOfficial(oracle('0000'), { lengths: [150], trials: 2, seed: 4 });
  t.equal(longer.accuracy, 1);
  const bad = await runPasskeyOfficial(oracle('.', true), { lengths: [150], trials: 2, seed: 4 });
  t.equal(bad.accuracy, 0, 'key + 1 is wrong');
  t.same(bad.records.map((r) => r.passkey), good.records.slice(0, 2).map((r) => r.passkey), 'same seed, same keys');
  const chars = await runPasskeyOfficial(oracle('.'), { lengths: [0, 500], unit: 'chars', trials: 2, seed: 4 });
  t.same(chars.records.map((r) => r.garbageChars), [0, 0, 500, 500], 'unit chars: n_garbage as given');
  t.same(chars.lengths.map((l) => [l.length, l.unit, l.meanGarbageChars]), [[0, 'chars', 0], [500, 'chars', 500]]);
  const ac = new AbortController();
  ac.abort();
  await t.rejects(runPasskeyOfficial(oracle('.'), { lengths: [150], trials: 1, signal: ac.signal }), { name: 'AbortError' });
  await t.rejects(runPasskeyOfficial(oracle('.'), { lengths: [] }), /option lengths must be a non-empty array of token counts/);
  await t.rejects(runPasskeyOfficial(oracle('.'), { lengths: [0] }), /option lengths: 0 is not a positive integer/);
  await t.rejects(runPasskeyOfficial(oracle('.'), { lengths: [150], unit: 'words' as 'chars' }), /option unit must be "tokens" or "chars"/);
  await t.rejects(runPasskeyOfficial(oracle('.'), { lengths: [150], trials: 0 }), /option trials must be a positive integer/);
  await t.rejects(runPasskeyOfficial(oracle('.'), { lengths: [150], native: 'yes' as unknown as boolean }), /option native must be a boolean/);
});

t.test('runPasskeyOfficial on a real (random) model: FocusLLM and native', async (t) => {
  const model = await loadModel(dir, { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  const focus = { localWindow: 128, chunkSize: 96, promptCap: 32, minChunkedLength: 256 };
  const r = await runPasskeyOfficial(model, { lengths: [150, 600], trials: 1, seed: 2, focus });
  t.same(r.focus, focus);
  t.same(r.records.map((x) => x.mode), ['native', 'focus'], '600 tokens run chunked');
  t.equal(r.records[1].chunks, Math.ceil((r.records[1].tokens - 128) / 96));
  const n = await runPasskeyOfficial(model, { lengths: [600], trials: 1, seed: 2, focus, native: true });
  t.equal(n.native, true);
  t.equal(n.records[0].mode, 'native', 'native: one causal sequence although above minChunkedLength');
  t.equal(n.records[0].passkey, r.records[1].passkey, 'same prompt');
  // Each answer is greedy generation of exactly the answer's tokens through the Model API.
  const prompt = makePasskeyOfficialPrompt(tok, 600, 'tokens', makeRng(passkeyTrialSeed(2, 600, 0)));
  for (const [rec, f] of [
    [r.records[1], focus],
    [n.records[0], { ...focus, minChunkedLength: 10_000 }],
  ] as const) {
    const ids: number[] = [];
    for await (const id of model.generateTokens(prompt.ids, { maxNewTokens: prompt.answerTokens, focus: f })) ids.push(id);
    t.equal(rec.answer, tok.decode(ids, { skipSpecial: true }), `${rec.mode}: the greedy answer`);
    t.equal(rec.correct, rec.answer.trim() === String(rec.passkey));
  }
  // nativeWindow: the prompt cut from the left to BOS + its last (window - 1 - answer) tokens.
  const c = await runPasskeyOfficial(model, { lengths: [600], trials: 1, seed: 2, focus, native: true, nativeWindow: 100 });
  const keep = 100 - 1 - prompt.answerTokens;
  t.equal(c.records[0].inputTokens, 1 + keep);
  t.equal(c.records[0].tokens, prompt.ids.length, 'the prompt length is still reported');
  t.equal(n.records[0].inputTokens, prompt.ids.length, 'no cut without nativeWindow');
  const cut = [prompt.ids[0], ...prompt.ids.slice(-keep)];
  const ids: number[] = [];
  for await (const id of model.generateTokens(cut, { maxNewTokens: prompt.answerTokens, focus: { ...focus, minChunkedLength: 10_000 } })) ids.push(id);
  t.equal(c.records[0].answer, tok.decode(ids, { skipSpecial: true }), 'the greedy answer over the cut prompt');
  const big = await runPasskeyOfficial(model, { lengths: [150], trials: 1, seed: 2, focus, native: true, nativeWindow: 4096 });
  t.equal(big.records[0].inputTokens, big.records[0].tokens, 'a prompt that fits is not cut');
  await t.rejects(runPasskeyOfficial(model, { lengths: [150], nativeWindow: 100 }), /option nativeWindow must be an integer >= 2, with native: true/);
  await t.rejects(runPasskeyOfficial(model, { lengths: [150], native: true, nativeWindow: 1 }), /option nativeWindow must be an integer >= 2/);
});
