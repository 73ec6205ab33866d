// focusllm passkey / ppl / longbench, run in-process through main(): JSON
// shape, tables, and usage errors (exit 2) naming the flag.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import t from 'tap';

import { writeRandomModel } from '../bench/random-model';
import { main } from '../lib/cli/main';
import { scorePrediction } from '../lib/eval/longbench';
import { pplOfficialWindows } from '../lib/eval/ppl-official';
import { loadTokenizer } from '../lib/tokenizer/index';
import { captureStdout } from './helpers/cli';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'focusllm-cli-eval-'));
t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
const modelDir = path.join(root, 'model');
const FX = path.join(__dirname, 'fixtures');
const BASE = ['--model', modelDir, '--backend', 'cpu', '--threads', '2'];
const FOCUS = ['--local-window', '64', '--chunk-size', '64', '--prompt-cap', '16', '--min-chunked-length', '128'];

const run = (argv: string[]) => captureStdout(() => main(argv));

const text = [
  'It was a bright cold day in April, and the clocks were striking thirteen.',
  'The hallway smelt of boiled cabbage and old rag mats.',
  'At one end of it a coloured poster, too large for indoor display, had been tacked to the wall.',
].join(' ');

t.before(async () => {
  await writeRandomModel(modelDir, { tokenizer: 'llama2', hidden: 64, layers: 2, heads: 4, kvHeads: 2, dtype: 'F16', candidates: ['q', 'k', 'v', 'o'], seed: 5 });
  fs.writeFileSync(path.join(root, 'text.txt'), Array.from({ length: 12 }, () => text).join('\n'));
  const rec = (answer: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({ context: `${text}\nThe answer is ${answer}.\n${text}`, input: 'What is the answer?', answers: [answer], all_classes: null, length: 150, _id: answer, ...extra });
  fs.writeFileSync(path.join(root, 'qa.jsonl'), [rec('Paris'), rec('Rome'), rec('Oslo')].join('\n') + '\n');
  fs.writeFileSync(path.join(root, 'trec.jsonl'), rec('Location', { all_classes: ['Location', 'Animal'] }) + '\n');
  fs.writeFileSync(path.join(root, 'bad.jsonl'), rec('x') + '\n{"context": "c", "input": "i"}\n');
});

t.test('passkey --json', async (t) => {
  const r = await run(['passkey', ...BASE, '--lengths', '100,300', '--trials', '2', '--seed', '3', '--json', ...FOCUS]);
  t.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.equal(j.task, 'passkey');
  t.equal(j.seed, 3);
  t.same(j.lengths.map((l: { length: number; trials: number }) => [l.length, l.trials]), [[100, 2], [300, 2]]);
  t.equal(j.records.length, 4);
  for (const x of j.records) {
    t.ok(x.tokens <= x.length && x.passkey >= 10000 && x.passkey <= 99999 && typeof x.answer === 'string');
    t.equal(x.correct, (/\d+/.exec(x.answer)?.[0] ?? null) === String(x.passkey));
  }
  t.same(j.records.map((x: { mode: string }) => x.mode), ['native', 'native', 'focus', 'focus'], '300 tokens run chunked');
  t.equal(j.accuracy, j.correct / 4);
  t.same(j.focus, { localWindow: 64, chunkSize: 64, promptCap: 16, minChunkedLength: 128 });
  const again = await run(['passkey', ...BASE, '--lengths', '100,300', '--trials', '2', '--seed', '3', '--json', ...FOCUS]);
  t.same(
    JSON.parse(again.stdout).records.map((x: { passkey: number; answer: string }) => [x.passkey, x.answer]),
    j.records.map((x: { passkey: number; answer: string }) => [x.passkey, x.answer]),
    'deterministic for a seed',
  );
});

t.test('passkey table with fixed depths', async (t) => {
  const r = await run(['passkey', ...BASE, '--lengths', '120', '--trials', '1', '--depths', '0,0.5,1']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^length\s+trials\s+correct\s+accuracy/);
  t.match(r.stdout, /0: \d\/1 {2}0\.5: \d\/1 {2}1: \d\/1/);
  t.match(r.stdout, /accuracy \d+\.\d% \(\d\/3\), seed 42/);
});

t.test('ppl --file, FocusLLM and native', async (t) => {
  const file = path.join(root, 'text.txt');
  const f = await run(['ppl', ...BASE, '--file', file, '--length', '300', '--score-last', '32', '--json', ...FOCUS]);
  t.equal(f.code, 0, f.stderr);
  const j = JSON.parse(f.stdout);
  t.match(j, { task: 'ppl', mode: 'focus', length: 300, scored: 32 });
  t.equal(j.focus.sessionMode, 'focus');
  t.equal(j.focus.chunks, Math.ceil((300 - 32 - 64) / 64));
  t.ok(j.ppl > 1 && Number.isFinite(j.ppl), `ppl ${j.ppl}`);
  t.ok(Math.abs(Math.log(j.ppl) - j.meanNll) < 1e-9, 'ppl = exp(mean NLL)');
  t.ok(j.tokensPerSecond > 0);
  const n = await run(['ppl', ...BASE, '--file', file, '--length', '300', '--score-last', '32', '--mode', 'native', '--window', '100', '--json', '--keep-nlls']);
  t.equal(n.code, 0, n.stderr);
  const k = JSON.parse(n.stdout);
  t.match(k, { mode: 'native', window: 100, stride: 32, windows: 1, windowBos: true });
  t.equal(k.nlls.length, 32);
  t.match(k.method, /at most 100 tokens/);
  const tab = await run(['ppl', ...BASE, '--file', file, '--length', '200', '--score-last', '16']);
  t.equal(tab.code, 0, tab.stderr);
  t.match(tab.stdout, /^mode\s+tokens\s+scored\s+ppl\s+mean NLL\s+tokens\/s/);
  t.match(tab.stdout, /native \(short input\)/);
});

t.test('ppl --ids on a fixture model without tokenizer', async (t) => {
  const c = JSON.parse(fs.readFileSync(path.join(FX, 'tiny-gqa.focus.json'), 'utf8'));
  const idsFile = path.join(root, 'ids.json');
  fs.writeFileSync(idsFile, JSON.stringify({ ids: [...c.ids, ...c.continuation] }));
  const o = c.options;
  const r = await run([
    'ppl', '--model', path.join(FX, 'tiny-gqa'), '--backend', 'cpu', '--threads', '2', '--ids', idsFile, '--score-last', '4', '--json',
    '--local-window', String(o.local_window), '--chunk-size', String(o.chunk_size), '--prompt-cap', String(o.prompt_cap),
    '--min-chunked-length', String(o.min_chunked_length), '--cache-type', 'f32',
  ]);
  t.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  // the reference rows score the 4 continuation tokens
  const nll = (row: number[], tok: number) => {
    const mx = Math.max(...row);
    return Math.log(row.reduce((s, x) => s + Math.exp(x - mx), 0)) + mx - row[tok];
  };
  const ref = c.continuation.reduce((s: number, tok: number, i: number) => s + nll(c.logits[i], tok), 0) / 4;
  t.ok(Math.abs(j.meanNll - ref) < 1e-3, `mean NLL ${j.meanNll} vs float64 reference ${ref}`);
  const noTok = await run(['ppl', '--model', path.join(FX, 'tiny-gqa'), '--backend', 'cpu', '--file', path.join(root, 'text.txt')]);
  t.equal(noTok.code, 1);
  t.match(noTok.stderr, /has no tokenizer\.json: give token ids with --ids/);
});

t.test('longbench --json', async (t) => {
  const r = await run(['longbench', ...BASE, '--data', path.join(root, 'qa.jsonl'), '--task', 'hotpotqa', '--limit', '2', '--max-new-tokens', '5', '--json', ...FOCUS]);
  t.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.match(j, { task: 'longbench', dataset: 'hotpotqa', metric: 'qa_f1', records: 2, maxNewTokens: 5, chat: false, maxLength: null });
  t.equal(j.details.length, 2);
  t.same(j.details.map((d: { id: string }) => d.id), ['Paris', 'Rome']);
  for (const d of j.details) {
    t.ok(d.newTokens <= 5 && d.inputTokens > 100);
    t.equal(d.mode, 'focus');
    t.equal(d.score, scorePrediction('hotpotqa', d.prediction, d.answers, null), 'score recomputed from the prediction');
  }
  t.equal(j.score, Math.round(((100 * (j.details[0].score + j.details[1].score)) / 2) * 100) / 100);
  t.same(Object.keys(j.byLength), ['0-4k', '4-8k', '8k+']);
  const tab = await run(['longbench', ...BASE, '--data', path.join(root, 'trec.jsonl'), '--task', 'trec', '--max-new-tokens', '3']);
  t.equal(tab.code, 0, tab.stderr);
  t.match(tab.stdout, /^#\s+tokens\s+chunks\s+new\s+score\s+prediction\s+answer/);
  t.match(tab.stdout, /trec \(classification\): [\d.]+ over 1 record,/);
});

t.test('passkey --protocol official', async (t) => {
  const r = await run(['passkey', ...BASE, '--protocol', 'official', '--lengths', '100,300', '--trials', '2', '--seed', '3', '--json', ...FOCUS]);
  t.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.match(j, { task: 'passkey', protocol: 'official', unit: 'tokens', native: false, seed: 3 });
  t.same(j.lengths.map((l: { length: number; trials: number }) => [l.length, l.trials]), [[100, 2], [300, 2]]);
  for (const x of j.records) {
    t.ok(x.tokens <= x.length && x.passkey >= 1 && x.passkey <= 49999, `key ${x.passkey}, ${x.tokens} tokens`);
    t.equal(x.answerTokens, String(x.passkey).length + 1, 'the answer: "▁" and its digits');
    t.equal(x.correct, x.answer.trim() === String(x.passkey));
  }
  t.same(j.records.map((x: { mode: string }) => x.mode), ['native', 'native', 'focus', 'focus']);
  const c = await run(['passkey', ...BASE, '--protocol', 'official', '--chars', '--native', '--lengths', '0,1200', '--trials', '1', '--json', ...FOCUS]);
  t.equal(c.code, 0, c.stderr);
  const k = JSON.parse(c.stdout);
  t.match(k, { unit: 'chars', native: true });
  t.same(k.records.map((x: { garbageChars: number; mode: string }) => [x.garbageChars, x.mode]), [[0, 'native'], [1200, 'native']], 'n_garbage as given; native above 128 tokens');
  t.ok(k.records[1].tokens > 128);
  const tab = await run(['passkey', ...BASE, '--protocol', 'official', '--chars', '--lengths', '400', '--trials', '1']);
  t.equal(tab.code, 0, tab.stderr);
  t.match(tab.stdout, /^length\s+trials\s+correct\s+accuracy/);
  t.match(tab.stdout, /\n400 chars\s+1\s+[01]\s/);
  t.match(tab.stdout, /protocol official \(FocusLLM eval_passkey\.py\)/);
  const w = await run(['passkey', ...BASE, '--protocol', 'official', '--native', '--native-window', '100', '--lengths', '300', '--trials', '1', '--json', ...FOCUS]);
  t.equal(w.code, 0, w.stderr);
  const wr = JSON.parse(w.stdout).records[0];
  t.equal(wr.inputTokens, 100 - wr.answerTokens, '--native-window: BOS + the last (100 - 1 - answer) tokens');
  t.ok(wr.tokens > wr.inputTokens);
  const bad = await run(['passkey', ...BASE, '--protocol', 'official', '--native-window', '100', '--lengths', '300']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--native-window needs --native/);
});

t.test('passkey --lengths as multiples of the window (Nx), and the default', async (t) => {
  // The random model's max_position_embeddings is 4096: 0.05x = 205 tokens.
  const r = await run(['passkey', ...BASE, '--lengths', '0.05x,120', '--trials', '1', '--json', ...FOCUS]);
  t.equal(r.code, 0, r.stderr);
  t.same(JSON.parse(r.stdout).lengths.map((l: { length: number }) => l.length), [205, 120]);
  const bad = await run(['passkey', ...BASE, '--lengths', '2y', '--trials', '1']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--lengths: '2y' is not a positive token count/);
  const chars = await run(['passkey', ...BASE, '--protocol', 'official', '--chars']);
  t.equal(chars.code, 2);
  t.match(chars.stderr, /--chars needs --lengths/);
});

t.test('ppl --protocol official', async (t) => {
  const tok = (await loadTokenizer(modelDir))!;
  const docs = [Array.from({ length: 3 }, () => text).join('\n'), text];
  const data = path.join(root, 'docs.jsonl');
  fs.writeFileSync(data, docs.map((d, i) => JSON.stringify({ text: d, name: `doc${i}` })).join('\n') + '\n');
  const r = await run(['ppl', ...BASE, '--protocol', 'official', '--data', data, '--max-length', '64', '--stride', '32', '--score-last', '8', '--mode', 'both', '--json', ...FOCUS]);
  t.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.match(j, { task: 'ppl', protocol: 'official', maxLength: 64, stride: 32, scoreLast: 8, nativeScoreLast: 256, nativeWindow: 4096, maxWindows: null });
  const n = docs.map((d) => tok.encode(d, { addSpecial: false }).length);
  t.same(j.documents, docs.map((_, i) => ({ name: `doc${i}`, tokens: n[i], windows: pplOfficialWindows(n[i], 64, 32).length })));
  t.same(
    j.windows.map((w: { doc: number; begin: number; end: number }) => [w.doc, w.begin, w.end]),
    n.flatMap((m, doc) => pplOfficialWindows(m, 64, 32).map((w) => [doc, w.begin, w.end])),
  );
  t.same(j.results.map((m: { mode: string }) => m.mode), ['focus', 'native']);
  for (const m of j.results) {
    t.equal(m.documents.length, 2);
    t.ok(Math.abs(Math.log(m.ppl) - m.meanNll) < 1e-9 && m.ppl > 1, `${m.mode}: ppl ${m.ppl}`);
  }
  t.ok(j.windows.every((w: { tokens: number; native: { scored: number } }) => w.native.scored === w.tokens - 1), 'native: windows under 257 tokens score all but BOS');
  const f = await run(['ppl', ...BASE, '--protocol', 'official', '--file', path.join(root, 'text.txt'), '--max-length', '64', '--stride', '32', '--score-last', '8', '--max-windows', '2', ...FOCUS]);
  t.equal(f.code, 0, f.stderr);
  t.match(f.stdout, /^mode\s+documents\s+windows\s+scored\s+ppl\s+mean NLL\s+seconds/);
  t.match(f.stdout, /\nfocus\s+1\s+2\s+16\s/, 'one document, two windows of 8 scored tokens');
  t.match(f.stdout, /protocol official: max length 64, stride 32, 2 windows \(--max-windows 2\)/);
  const c = JSON.parse(fs.readFileSync(path.join(FX, 'tiny-gqa.focus.json'), 'utf8'));
  const idsFile = path.join(root, 'ids-official.json');
  fs.writeFileSync(idsFile, JSON.stringify(c.ids));
  const i = await run(['ppl', '--model', path.join(FX, 'tiny-gqa'), '--backend', 'cpu', '--threads', '2', '--protocol', 'official', '--ids', idsFile, '--max-length', '100', '--stride', '100', '--mode', 'native', '--window', '20', '--json']);
  t.equal(i.code, 0, i.stderr);
  const k = JSON.parse(i.stdout);
  t.equal(k.nativeWindow, 20);
  t.same(k.windows.map((w: { begin: number; end: number; native: { scored: number; inputTokens: number } }) => [w.begin, w.end, w.native.scored, w.native.inputTokens]), [
    [0, 99, 19, 20],
    [100, 149, 19, 20],
  ], '149 ids after BOS: two windows, each forward cut to 20 tokens');
});

t.test('longbench --protocol official', async (t) => {
  const r = await run(['longbench', ...BASE, '--protocol', 'official', '--data', path.join(root, 'qa.jsonl'), '--task', 'hotpotqa', '--limit', '1', '--max-new-tokens', '4', '--json']);
  t.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.match(j, { protocol: 'official', dataset: 'hotpotqa', maxLength: 15500, stopAtNewline: true, chat: false });
  t.same(j.focus, { localWindow: 3500, chunkSize: 1024, promptCap: 512, minChunkedLength: 4096 });
  const o = await run(['longbench', ...BASE, '--protocol', 'official', '--data', path.join(root, 'trec.jsonl'), '--task', 'trec', '--max-new-tokens', '3', '--max-length', '60', ...FOCUS]);
  t.equal(o.code, 0, o.stderr);
  t.match(o.stdout, /protocol official: local window 64, chunk 64, prompts cut to 60 tokens\n?$/, 'given flags win over the preset; trec has no newline stop');
});

t.test('usage errors exit 2 and name the flag', async (t) => {
  const cases: [string[], RegExp][] = [
    [['passkey', ...BASE, '--lengths', '1.5y'], /--lengths: '1.5y' is not a positive token count/],
    [['passkey', ...BASE, '--lengths', '4k,abc'], /--lengths: 'abc' is not a positive token count/],
    [['passkey', ...BASE, '--lengths', '4k', '--trials', '0'], /--trials must be at least 1/],
    [['passkey', ...BASE, '--lengths', '4k', '--trials', 'x'], /--trials must be an integer/],
    [['passkey', ...BASE, '--lengths', '4k', '--depths', '0.5,2'], /--depths: '2' is not a number in \[0, 1\]/],
    [['passkey', ...BASE, '--lengths', '4k', '--local-window', '0'], /--local-window must be a positive integer/],
    [['passkey', ...BASE, '--lengths', '4k', '--local-window', '300', '--min-chunked-length', '200'], /--min-chunked-length \(200\) must be larger than --local-window \(300\)/],
    [['passkey', ...BASE, '--lengths', '4k', '--cache-type', 'f8'], /--cache-type must be/],
    [['passkey', ...BASE, '--lengths', '4k', '--bogus'], /unknown option --bogus/],
    [['ppl', ...BASE], /give exactly one of --file and --ids/],
    [['ppl', ...BASE, '--file', 'a.txt', '--ids', 'b.json'], /give exactly one of --file and --ids/],
    [['ppl', ...BASE, '--file', path.join(root, 'text.txt'), '--mode', 'fast'], /--mode must be focus or native, got 'fast'/],
    [['ppl', ...BASE, '--file', path.join(root, 'text.txt'), '--window', '64', '--stride', '64'], /--stride must be from 1 to --window - 1 \(63\)/],
    [['ppl', ...BASE, '--file', path.join(root, 'text.txt'), '--length', '100', '--score-last', '100'], /--score-last \(100\) must be smaller than --length \(100\)/],
    [['ppl', ...BASE, '--file', path.join(root, 'missing.txt')], /--file: ENOENT/],
    [['ppl', ...BASE, '--ids', path.join(root, 'text.txt')], /--ids .*text\.txt/],
    [['longbench', ...BASE, '--data', path.join(root, 'qa.jsonl'), '--task', 'nope'], /--task: unknown LongBench task "nope"/],
    [['longbench', ...BASE, '--data', path.join(root, 'qa.jsonl'), '--task', 'vcsum'], /--task: .*jieba/],
    [['longbench', ...BASE, '--data', path.join(root, 'missing.jsonl'), '--task', 'qasper'], /--data: no such file/],
    [['longbench', ...BASE, '--data', path.join(root, 'qa.jsonl'), '--task', 'qasper', '--limit', '0'], /--limit must be at least 1/],
    [['longbench', ...BASE, '--task', 'qasper'], /--data is required/],
    [['passkey', ...BASE, '--lengths', '4k', '--protocol', 'landmark'], /--protocol must be default or official, got 'landmark'/],
    [['passkey', ...BASE, '--lengths', '4k', '--chars'], /--chars needs --protocol official/],
    [['passkey', ...BASE, '--lengths', '4k', '--native'], /--native needs --protocol official/],
    [['passkey', ...BASE, '--lengths', '4k', '--protocol', 'official', '--depths', '0.5'], /--depths does not apply to --protocol official/],
    [['passkey', ...BASE, '--lengths', '4k', '--protocol', 'official', '--max-new-tokens', '5'], /--max-new-tokens does not apply to --protocol official/],
    [['passkey', ...BASE, '--lengths', '-5', '--protocol', 'official', '--chars'], /--lengths: '-5' is not a character count/],
    [['ppl', ...BASE, '--file', path.join(root, 'text.txt'), '--protocol', 'official'], /--max-length is required with --protocol official/],
    [['ppl', ...BASE, '--file', path.join(root, 'text.txt'), '--protocol', 'official', '--max-length', '1'], /--max-length must be at least 2/],
    [['ppl', ...BASE, '--file', path.join(root, 'text.txt'), '--protocol', 'official', '--max-length', '64', '--length', '100'], /--length does not apply to --protocol official/],
    [['ppl', ...BASE, '--file', path.join(root, 'text.txt'), '--protocol', 'official', '--max-length', '64', '--window-bos=false'], /--window-bos does not apply to --protocol official/],
    [['ppl', ...BASE, '--file', path.join(root, 'text.txt'), '--protocol', 'official', '--max-length', '64', '--mode', 'fast'], /--mode must be focus, native or both, got 'fast'/],
    [['ppl', ...BASE, '--file', path.join(root, 'text.txt'), '--protocol', 'official', '--max-length', '64', '--max-windows', '0'], /--max-windows must be at least 1/],
    [['ppl', ...BASE, '--file', path.join(root, 'text.txt'), '--protocol', 'official', '--max-length', '64', '--stride', '0'], /--stride must be at least 1/],
    [['ppl', ...BASE, '--file', 'a.txt', '--data', 'b.jsonl', '--protocol', 'official', '--max-length', '64'], /give exactly one of --file, --ids and --data/],
    [['ppl', ...BASE, '--data', path.join(root, 'missing.jsonl'), '--protocol', 'official', '--max-length', '64'], /--data: no such file/],
    [['ppl', ...BASE, '--data', path.join(root, 'docs.jsonl')], /--data needs --protocol official/],
    [['ppl', ...BASE, '--file', path.join(root, 'text.txt'), '--max-length', '64'], /--max-length needs --protocol official/],
    [['ppl', ...BASE, '--file', path.join(root, 'text.txt'), '--protocol', 'official', '--max-length', '64', '--mode', 'both', '--both'], /unknown option --both/],
    [
      ['longbench', ...BASE, '--data', path.join(root, 'qa.jsonl'), '--task', 'qasper', '--protocol', 'official', '--min-chunked-length', '2048'],
      /--min-chunked-length \(2048\) must be larger than --local-window \(3500\) \(--protocol official sets --local-window 3500, --chunk-size 1024, --prompt-cap 512 and --min-chunked-length 4096 unless given\)/,
    ],
  ];
  for (const [argv, re] of cases) {
    const r = await run(argv);
    t.equal(r.code, 2, `${argv.slice(7).join(' ') || argv[0]}: exit 2`);
    t.match(r.stderr, re, `names the problem: ${r.stderr.split('\n')[0]}`);
    t.match(r.stderr, new RegExp(`usage: focusllm ${argv[0]}`), 'prints the usage');
    t.equal(r.stdout, '');
  }
});

t.test('bad input files and lengths: exit 1 naming the file, line or flag', async (t) => {
  const bad = await run(['longbench', ...BASE, '--data', path.join(root, 'bad.jsonl'), '--task', 'qasper']);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /bad\.jsonl:2: field "input"|bad\.jsonl:2: field "answers"/);
  const long = await run(['ppl', ...BASE, '--file', path.join(root, 'text.txt'), '--length', '100k']);
  t.equal(long.code, 1);
  t.match(long.stderr, /--length 102400: --file .*text\.txt has only \d+ tokens/);
  const short = await run(['passkey', ...BASE, '--lengths', '30']);
  t.equal(short.code, 1);
  t.match(short.stderr, /passkey length 30 is shorter than the prompt without filler/);
  const trecNoClasses = path.join(root, 'trec-bad.jsonl');
  fs.writeFileSync(trecNoClasses, JSON.stringify({ context: 'c', input: 'i', answers: ['Location'] }) + '\n');
  const nc = await run(['longbench', ...BASE, '--data', trecNoClasses, '--task', 'trec']);
  t.equal(nc.code, 1);
  t.match(nc.stderr, /record 0: task trec needs the field "all_classes"/);
});
