// LongBench runner: records, prompts, generation rules and scoring, with an
// oracle model (answers from its prompt) and a tiny random model.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import t from 'tap';

import { scriptedModel } from './helpers/scripted-model';
import { writeRandomModel } from '../bench/random-model';
import {
  formatPrompt,
  LONGBENCH_OFFICIAL,
  LONGBENCH_TASKS,
  longbenchProtocolTask,
  readLongbenchJsonl,
  runLongbench,
  scorePrediction,
  truncateMiddle,
  type LongbenchRecord,
} from '../lib/eval/longbench';
import { loadModel, type Model } from '../lib/model';
import { loadTokenizer } from '../lib/tokenizer/index';
import type { Tokenizer } from '../lib/tokenizer/types';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'focusllm-longbench-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const modelDir = path.join(dir, 'model');

let tok: Tokenizer;
t.before(async () => {
  await writeRandomModel(modelDir, { tokenizer: 'llama2', hidden: 64, layers: 2, heads: 4, kvHeads: 2, dtype: 'F16', candidates: ['q', 'k', 'v', 'o'], seed: 3 });
  tok = (await loadTokenizer(modelDir))!;
});

const filler = (n: number) => Array.from({ length: n }, (_, i) => `Passage ${i} talks about nothing in particular.`).join('\n');

/**
 * A stand-in model: answers with the text after "ANSWER=" in its prompt, up to
 * the end of that line, then `tail`, then EOS. With `newlineFirst`, a newline
 * is its top choice for the first token (the answer second).
 */
function oracle(newlineFirst = false, tail = ''): Model & { prompts: string[] } {
  const prompts: string[] = [];
  const m = scriptedModel(tok, {
    newlineFirst,
    prompts,
    answer: (text) => {
      const a = /ANSWER=([^\n]*)/.exec(text);
      return `${a ? a[1] : 'nothing'}${tail}`;
    },
  });
  return Object.assign(m, { prompts });
}

const qa = (answer: string, gold: string[]): LongbenchRecord => ({
  context: `${filler(3)}\nANSWER=${answer}\n${filler(2)}`,
  input: 'Who?',
  answers: gold,
  all_classes: null,
  length: 900,
});

t.test('scores are 100 x mean of the per-record max over answers', async (t) => {
  const m = oracle();
  // F1: "Paris" vs ["Paris"] = 1; "the city of Paris" vs ["Paris"]: pred [city, of, paris] -> P 1/3, R 1 -> 0.5;
  // "Berlin" vs ["Rome", "Madrid"] = 0.  Mean 0.5 -> 50.
  const records = [qa('Paris', ['Paris']), qa('the city of Paris', ['Paris']), qa('Berlin', ['Rome', 'Madrid'])];
  const r = await runLongbench(m, { task: 'hotpotqa', records });
  t.same(r.details.map((d) => d.prediction.trim()), ['Paris', 'the city of Paris', 'Berlin'], 'predictions as the model wrote them');
  t.same(r.details.map((d) => d.score), [1, 0.5, 0]);
  t.equal(r.score, 50);
  t.equal(r.metric, 'qa_f1');
  t.equal(r.maxNewTokens, 32, 'hotpotqa dataset2maxlen');
  t.same(r.byLength, { '0-4k': { records: 3, score: 50 }, '4-8k': { records: 0, score: null }, '8k+': { records: 0, score: null } });
  t.equal(m.prompts[0], formatPrompt(LONGBENCH_TASKS.hotpotqa.prompt, records[0]), 'the model saw the task template');
  const lim = await runLongbench(m, { task: 'hotpotqa', records, limit: 1, maxNewTokens: 2 });
  t.equal(lim.records, 1);
  t.ok(lim.details[0].newTokens <= 2, 'maxNewTokens');
});

t.test('samsum: a newline cannot be the first token, and ends the answer', async (t) => {
  const rec = { ...qa('Amanda baked cookies.', ['Amanda baked cookies.']), length: undefined };
  const s = await runLongbench(oracle(true, '\nmore words'), { task: 'samsum', records: [rec] });
  t.equal(s.details[0].prediction, ' Amanda baked cookies.', 'newline skipped first, then stopped at');
  t.equal(s.details[0].score, scorePrediction('samsum', s.details[0].prediction, rec.answers, null));
  t.ok(s.details[0].score > 0.99);
  t.notOk(s.byLength, 'no length buckets without length fields');
  // other tasks keep going through newlines: the prediction holds the whole answer
  const h = await runLongbench(oracle(true, '\nmore words'), { task: 'hotpotqa', records: [rec], maxNewTokens: 12 });
  t.match(h.details[0].prediction, /^\n/, 'hotpotqa: the newline was allowed first');
  const h2 = await runLongbench(oracle(false, '\nmore words'), { task: 'hotpotqa', records: [rec] });
  t.equal(h2.details[0].prediction, ' Amanda baked cookies.\nmore words', 'hotpotqa: generation runs through newlines');
});

t.test('classification and retrieval tasks', async (t) => {
  const trec: LongbenchRecord = { ...qa('Location', ['Location']), all_classes: ['Location', 'Animal', 'Food'] };
  const r = await runLongbench(oracle(false, '\nAnimal'), { task: 'trec', records: [trec] });
  t.equal(r.details[0].prediction, ' Location\nAnimal');
  t.equal(r.details[0].score, 1, 'trec scores the first line only (both lines: 1/2)');
  await t.rejects(runLongbench(oracle(), { task: 'trec', records: [{ ...trec, all_classes: null }] }), /record 0: task trec needs the field "all_classes"/);
  const pr = await runLongbench(oracle(), { task: 'passage_retrieval_en', records: [qa('Paragraph 7', ['Paragraph 7'])] });
  t.equal(pr.score, 100);
});

t.test('maxLength cuts the prompt in the middle', async (t) => {
  const m = oracle();
  const rec = qa('Paris', ['Paris']);
  const full = tok.encode(formatPrompt(LONGBENCH_TASKS.hotpotqa.prompt, rec)).length;
  const r = await runLongbench(m, { task: 'hotpotqa', records: [rec], maxLength: 60 });
  t.ok(full > 60, `prompt has ${full} tokens`);
  t.ok(r.details[0].truncated);
  t.ok(r.details[0].inputTokens <= 64 && r.details[0].inputTokens >= 56, `re-tokenized cut prompt: ${r.details[0].inputTokens} tokens`);
  t.match(m.prompts[0], /^Answer the question based on the given passages/, 'head kept');
  t.match(m.prompts[0], /Answer:$/, 'tail kept');
  const keep = await runLongbench(m, { task: 'hotpotqa', records: [rec], maxLength: 100000 });
  t.notOk(keep.details[0].truncated);
  t.equal(keep.details[0].inputTokens, full);
});

t.test('records file: errors name the line and field', async (t) => {
  const f = path.join(dir, 'bad.jsonl');
  fs.writeFileSync(f, JSON.stringify(qa('x', ['x'])) + '\n\n' + '{"context": "c", "input": 3, "answers": ["a"]}\n');
  t.throws(() => readLongbenchJsonl(f), new RegExp(`bad.jsonl:3: field "input" must be a string`));
  fs.writeFileSync(f, '{"context": "c", "input": "i", "answers": []}\n');
  t.throws(() => readLongbenchJsonl(f), /bad.jsonl:1: field "answers" must be a non-empty array of strings/);
  fs.writeFileSync(f, '{"context": "c", \n');
  t.throws(() => readLongbenchJsonl(f), /bad.jsonl:1: /);
  fs.writeFileSync(f, '\n');
  t.throws(() => readLongbenchJsonl(f), /no records/);
  fs.writeFileSync(f, '{"context": "c", "input": "i", "answers": ["a"], "all_classes": null, "length": 5}\n');
  t.same(readLongbenchJsonl(f)[0].answers, ['a']);
  await t.rejects(runLongbench(oracle(), { task: 'vcsum', records: [qa('x', ['x'])] }), /jieba/);
  await t.rejects(runLongbench(oracle(), { task: 'hotpotqa', records: [] }), /non-empty array/);
  await t.rejects(runLongbench(oracle(), { task: 'hotpotqa', records: [qa('x', ['x'])], limit: 0 }), /option limit/);
});

t.test('a real model: greedy predictions, scored by the task metric', async (t) => {
  const model = await loadModel(modelDir, { backend: 'cpu', threads: 2 });
  t.teardown(() => model.dispose());
  const focus = { localWindow: 64, chunkSize: 64, promptCap: 16, minChunkedLength: 128 };
  const records = [qa('Paris', ['Paris', 'passage']), qa('Rome', ['nothing in particular'])];
  const r = await runLongbench(model, { task: 'hotpotqa', records, maxNewTokens: 6, focus });
  t.same(r.details.map((d) => d.mode), ['focus', 'focus']);
  for (const d of r.details) {
    t.equal(d.score, scorePrediction('hotpotqa', d.prediction, d.answers, null), 'detail score = metric(prediction)');
    t.ok(d.newTokens <= 6);
  }
  t.equal(r.score, Math.round(100 * ((r.details[0].score + r.details[1].score) / 2) * 100) / 100);
  // the prediction is what the Model API generates greedily
  const ids = tok.encode(formatPrompt(LONGBENCH_TASKS.hotpotqa.prompt, records[0]));
  const out: number[] = [];
  for await (const id of model.generateTokens(ids, { maxNewTokens: 6, focus })) out.push(id);
  t.equal(r.details[0].prediction, tok.decode(out, { skipSpecial: true }));
});

t.test('official protocol: FocusLLM templates and newline stops', async (t) => {
  t.match(LONGBENCH_OFFICIAL, { localWindow: 3500, chunkSize: 1024, promptCap: 512, minChunkedLength: 4096, maxLength: 15500 });
  t.same([...LONGBENCH_OFFICIAL.newlineStop].sort(), ['2wikimqa', 'hotpotqa', 'multifieldqa_en', 'musique', 'narrativeqa', 'qasper', 'samsum']);
  const nq = longbenchProtocolTask('narrativeqa', 'official').task;
  t.match(nq.prompt, /Answer the question asconcisely as you can/, 'narrativeqa: Activation Beacon\'s template, typo included');
  t.equal(longbenchProtocolTask('gov_report', 'official').task.prompt.slice(0, 20), 'Report:\n{context}\n\nY', 'summaries: the document first');
  t.equal(longbenchProtocolTask('qasper', 'official').task.prompt, LONGBENCH_TASKS.qasper.prompt, 'the other templates are LongBench\'s');
  t.equal(longbenchProtocolTask('qasper_e', 'official').name, 'qasper');
  t.same(
    ['hotpotqa', 'samsum', 'trec', 'gov_report'].map((n) => [longbenchProtocolTask(n, 'official').task.stopAtNewline, longbenchProtocolTask(n, 'default').task.stopAtNewline]),
    [[true, false], [true, true], [false, false], [false, false]],
  );

  const m = oracle(false, '\nmore words');
  const sessions: Record<string, unknown>[] = [];
  const create = m.createSession.bind(m);
  m.createSession = (o) => {
    sessions.push({ ...o });
    return create(o);
  };
  const rec = { ...qa('Amanda baked cookies.', ['Amanda baked cookies.']), length: undefined };
  const h = await runLongbench(m, { task: 'hotpotqa', protocol: 'official', records: [rec] });
  t.equal(h.details[0].prediction, ' Amanda baked cookies.', 'hotpotqa stops at the newline');
  t.match(h, { protocol: 'official', maxLength: 15500, stopAtNewline: true, chat: false });
  t.same(h.focus, { localWindow: 3500, chunkSize: 1024, promptCap: 512, minChunkedLength: 4096 });
  t.match(sessions[0], { localWindow: 3500, chunkSize: 1024 }, 'the session ran with the preset');
  const d = await runLongbench(m, { task: 'hotpotqa', records: [rec] });
  t.equal(d.details[0].prediction, ' Amanda baked cookies.\nmore words', 'the default protocol does not');
  t.match(d, { protocol: 'default', maxLength: null, stopAtNewline: false });
  // samsum: no forced first token in FocusLLM's script, so a newline first ends the answer at once.
  const s = await runLongbench(oracle(true, '\nmore words'), { task: 'samsum', protocol: 'official', records: [rec] });
  t.equal(s.details[0].prediction, '');
  t.equal(s.details[0].newTokens, 0);
  // Given options win over the preset.
  sessions.length = 0;
  const o = await runLongbench(m, {
    task: 'gov_report',
    protocol: 'official',
    records: [rec],
    maxLength: 40,
    maxNewTokens: 4,
    focus: { localWindow: 64, chunkSize: undefined, minChunkedLength: 128 },
  });
  t.same(o.focus, { localWindow: 64, chunkSize: 1024, promptCap: 512, minChunkedLength: 128 });
  t.match(sessions[0], { localWindow: 64, chunkSize: 1024, minChunkedLength: 128 });
  t.equal(o.maxLength, 40);
  t.ok(o.details[0].truncated);
  t.match(m.prompts.at(-1)!, /^Report:\n/, 'the official gov_report template');
  t.match(m.prompts.at(-1)!, /Summary:$/);
  await t.rejects(
    runLongbench(m, { task: 'hotpotqa', protocol: 'official', records: [rec], focus: { minChunkedLength: 2048 } }),
    /minChunkedLength \(2048\) must be larger than localWindow \(3500\)/,
  );
  await t.rejects(runLongbench(m, { task: 'hotpotqa', protocol: 'pred' as 'official', records: [rec] }), /option protocol must be "default" or "official"/);
  // A checkpoint's own FocusLLM defaults: the default protocol reports them, the official one does not use them.
  const own = { localWindow: 100, chunkSize: 50, promptCap: 20, minChunkedLength: 200 };
  const withDefaults = Object.assign(oracle(), { focusDefaults: own });
  t.same((await runLongbench(withDefaults, { task: 'hotpotqa', records: [rec] })).focus, own);
  t.same((await runLongbench(withDefaults, { task: 'hotpotqa', protocol: 'official', records: [rec] })).focus, {
    localWindow: 3500,
    chunkSize: 1024,
    promptCap: 512,
    minChunkedLength: 4096,
  });
});

t.test('truncateMiddle keeps the first and last maxLength / 2 tokens, as text', async (t) => {
  const words = Array.from({ length: 30 }, (_, i) => `w${i}`);
  const text = words.join(' ');
  const ids = tok.encode(text);
  // Each word is "▁w" and one piece per digit.
  t.same(ids.slice(0, 4).map((i) => tok.idToToken(i)), ['<s>', '▁w', '0', '▁w'], 'the pieces this test counts on');
  const full = truncateMiddle(tok, text, ids.length);
  t.same(full, { text, truncated: false }, 'a prompt of maxLength tokens is kept');
  t.equal(ids.length, 81, 'BOS, 10 words of two pieces, 20 of three');
  // maxLength 11: half 5. The first 5 pieces <s> ▁w 0 ▁w 1 read "w0 w1"; the last 5, 2 8 ▁w 2 9, read
  // "28 w29"; the two decoded halves are joined as they are, as pred.py does.
  t.same(truncateMiddle(tok, text, 11), { text: 'w0 w128 w29', truncated: true });
  t.equal(truncateMiddle(tok, text, 10).text, 'w0 w128 w29', 'an odd limit rounds the half down');
  // maxLength 12: <s> ▁w 0 ▁w 1 ▁w and ▁w 2 8 ▁w 2 9 (a leading "▁" decodes to nothing).
  t.equal(truncateMiddle(tok, text, 12).text, 'w0 w1 ww28 w29');
  t.throws(() => truncateMiddle(tok, text, 1), /maxLength must be an integer >= 2/);
});
