// Training data (lib/train/data.ts): JSONL text / input-output / ids records
// and plain text files, BOS first, min / max length, skip counts, LM
// sequences; errors name the file and line. A character-level stand-in
// tokenizer keeps the counts exact.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import t from 'tap';

import { checkDataFiles, fingerprint, lmSequences, loadDocuments, truncateMiddle, type DataOptions } from '../lib/train/data';
import type { Tokenizer } from '../lib/tokenizer/types';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'focusllm-train-data-'));
t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));

/** One token per character: 'a' -> 3, 'b' -> 4, ...; BOS 1 when addSpecial. */
const charTok: Tokenizer = {
  vocabSize: 100,
  bosId: 1,
  eosIds: [2],
  addBos: true,
  encode: (text, o = {}) => [...(o.addSpecial === false ? [] : [1]), ...[...text].map((c) => 3 + ((c.codePointAt(0) ?? 0) % 90))],
  decode: () => '',
  streamDecoder: () => ({ push: () => '', flush: () => '' }),
  tokenToId: () => null,
  idToToken: () => null,
  hasChatTemplate: false,
  applyChatTemplate: () => '',
};

function file(name: string, content: string): string {
  const f = path.join(root, name);
  fs.writeFileSync(f, content);
  return f;
}

const base = (files: string[], over: Partial<DataOptions> = {}): DataOptions => ({
  files,
  bosId: 1,
  vocabSize: 100,
  tokenizer: charTok,
  minLength: 4,
  maxLength: 10,
  ...over,
});

const tok = (s: string) => charTok.encode(s, { addSpecial: false });

t.test('JSONL text records: BOS first, cut to maxLength, too-short ones dropped and counted', async (t) => {
  const f = file('text.jsonl', ['{"text": "abcdef"}', '', '{"text": "ab"}', '{"text": "abcdefghijklmnop"}', '  {"text": "xyz"}  '].join('\n'));
  const d = loadDocuments(base([f]));
  t.same(d.docs.map((x) => [...x]), [[1, ...tok('abcdef')], [1, ...tok('abcdefghi')], [1, ...tok('xyz')]]);
  t.same(d.stats, { files: 1, records: 4, documents: 3, tokens: 7 + 10 + 4, tooShort: 1, cut: 1 });
});

t.test('input / output records: input truncated in its middle, output kept', async (t) => {
  const f = file('io.jsonl', [
    JSON.stringify({ input: 'abc', output: 'xy' }),
    JSON.stringify({ input: 'abcdefghijkl', output: 'xyz' }), // 13 + 3 > 10: input keeps 7 = 4 + 3
    JSON.stringify({ input: 'ab', output: 'mnopqrstuvw' }), // output long: input keeps all (3 <= 5), output cut to 7
    JSON.stringify({ input: 'abcdefghijkl', output: 'mnopqrstuvw' }), // both long: input keeps half (5), output 5
  ].join('\n'));
  const d = loadDocuments(base([f]));
  const inp = (s: string) => [1, ...tok(s)];
  t.same(d.docs.map((x) => [...x]), [
    [...inp('abc'), ...tok('xy')],
    [...truncateMiddle(inp('abcdefghijkl'), 7), ...tok('xyz')],
    [...inp('ab'), ...tok('mnopqrs')],
    [...truncateMiddle(inp('abcdefghijkl'), 5), ...tok('mnopq')],
  ]);
  t.same(truncateMiddle(inp('abcdefghijkl'), 7), [1, ...tok('abc'), ...tok('jkl')], 'first ceil(7/2) and last floor(7/2)');
  t.ok(d.docs.every((x) => x.length <= 10));
  t.equal(d.stats.cut, 3);
});

t.test('input / output records: where the output starts; recordMaxLength bounds records only', async (t) => {
  const f = file('io-start.jsonl', [
    JSON.stringify({ input: 'abc', output: 'xy' }),
    JSON.stringify({ text: 'abcdefghijklmnop' }),
    JSON.stringify({ input: 'abcdefghijkl', output: 'xyz' }),
    JSON.stringify({ ids: [5, 6, 7, 8] }),
  ].join('\n'));
  const d = loadDocuments(base([f], { maxLength: 1000, recordMaxLength: 10 }));
  t.same(d.outputStart, [4, 0, 7, 0], 'BOS + input tokens before the output; 0 for text and ids records');
  t.same(d.docs.map((x) => x.length), [6, 17, 10, 5], 'the text record is not cut to recordMaxLength, the long record is');
  t.same([...d.docs[2].subarray(7)], tok('xyz'), 'the output kept whole after the middle-truncated input');
  t.equal(d.stats.cut, 1);
  const m = loadDocuments(base([f]));
  t.same(m.outputStart, [4, 0, 7, 0], 'without recordMaxLength every record follows maxLength');
  t.same(m.docs.map((x) => x.length), [6, 10, 10, 5]);
});

t.test('input_ids / output_ids records: as input / output records, in token ids (no tokenizer needed)', async (t) => {
  const f = file('io-ids.jsonl', [
    JSON.stringify({ input_ids: [5, 1, 6], output_ids: [7, 8] }), // a BOS inside the input stays; one is added in front
    JSON.stringify({ input_ids: [1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19], output_ids: [20, 21] }), // 11 + 2 > 10: input keeps 8
    JSON.stringify({ input_ids: [5, 6, 7, 8], output_ids: [] }),
  ].join('\n'));
  const d = loadDocuments(base([f], { tokenizer: null }));
  t.same(d.docs.map((x) => [...x]), [
    [1, 5, 1, 6, 7, 8],
    [...truncateMiddle([1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19], 8), 20, 21],
    [1, 5, 6, 7, 8],
  ]);
  t.same(d.outputStart, [4, 8, 5], 'the output starts after BOS and the input; an empty output starts at the end');
  t.equal(d.stats.cut, 1);
});

t.test('ids records and plain text files', async (t) => {
  const ids = file('ids.jsonl', [JSON.stringify({ ids: [5, 6, 7, 8] }), JSON.stringify({ ids: [1, 9, 9, 9, 9] }), JSON.stringify({ ids: [4] })].join('\n'));
  const txt = file('doc.txt', 'hello world');
  const empty = file('empty.txt', '');
  const d = loadDocuments(base([ids, txt, empty], { maxLength: 100 }));
  t.same(d.docs.map((x) => [...x]), [[1, 5, 6, 7, 8], [1, 9, 9, 9, 9], [1, ...tok('hello world')]], 'BOS added once; files in order');
  t.same(d.stats, { files: 3, records: 5, documents: 3, tokens: 5 + 5 + 12, tooShort: 2, cut: 0 });
  // ids records need no tokenizer
  t.equal(loadDocuments(base([ids], { tokenizer: null })).docs.length, 2);
  t.throws(() => loadDocuments(base([txt], { tokenizer: null })), /doc\.txt: text needs a tokenizer, but the model has none \(no tokenizer\.json in its folder/);
});

t.test('bad data files and records are Errors naming the file (and line)', async (t) => {
  t.throws(() => checkDataFiles([]), /option data: give at least one data file/);
  t.throws(() => checkDataFiles([path.join(root, 'missing.jsonl')]), /data file .*missing\.jsonl: no such file/);
  t.throws(() => checkDataFiles([file('x.csv', 'a')]), /data file .*x\.csv: unknown type '\.csv'/);
  t.throws(() => checkDataFiles([root + '/sub.txt/']), /data file/);
  fs.mkdirSync(path.join(root, 'dir.txt'));
  t.throws(() => checkDataFiles([path.join(root, 'dir.txt')]), /dir\.txt: not a regular file/);
  const bad = (name: string, content: string, re: RegExp) => t.throws(() => loadDocuments(base([file(name, content)])), re, name);
  bad('b1.jsonl', '{"text": "abcd"}\n{"text": "ab', /b1\.jsonl:2: invalid JSON/);
  bad('b2.jsonl', '[1, 2]', /b2\.jsonl:1: expected a JSON object/);
  bad('b3.jsonl', '{"body": "abcd"}', /b3\.jsonl:1: a record needs "text" \(a string\), "input" and "output" \(strings\), "ids" \(token ids\), or "input_ids" and "output_ids"/);
  bad('b7.jsonl', '{"input_ids": [5, 6]}', /b7\.jsonl:1: a record with "input_ids" needs "output_ids" too/);
  bad('b8.jsonl', '{"input_ids": [5, 6], "output_ids": [7, -1]}', /b8\.jsonl:1: output_ids\[1\] = -1 is not a token id/);
  bad('b9.jsonl', '{"input_ids": 5, "output_ids": [7]}', /b9\.jsonl:1: "input_ids" must be an array of token ids/);
  bad('b4.jsonl', '{"ids": [5, 100]}', /b4\.jsonl:1: ids\[1\] = 100 is not a token id \(vocabulary size 100\)/);
  bad('b5.jsonl', '{"ids": "abc"}', /b5\.jsonl:1: "ids" must be an array/);
  bad('b6.jsonl', '{"input": "abc"}', /b6\.jsonl:1: a record needs/);
  t.throws(() => loadDocuments(base([file('ok.jsonl', '{"text":"abcd"}')], { minLength: 0 })), /option minLength must be a positive integer/);
  t.throws(() => loadDocuments(base([file('ok2.jsonl', '{"text":"abcd"}')], { maxLength: 3 })), /option maxLength must be an integer >= minLength \(4\)/);
});

t.test('LM sequences: the documents concatenated and cut into pieces of seqLen', async (t) => {
  const docs = [Int32Array.from([1, 5, 6]), Int32Array.from([1, 7, 8, 9, 10]), Int32Array.from([1, 11])];
  t.same(lmSequences(docs, 4).map((x) => [...x]), [[1, 5, 6, 1], [7, 8, 9, 10]], 'a last partial piece is dropped');
  t.same(lmSequences(docs, 10).map((x) => [...x]), [[1, 5, 6, 1, 7, 8, 9, 10, 1, 11]]);
  t.same(lmSequences(docs, 11), []);
  t.throws(() => lmSequences(docs, 1), /option seqLen must be an integer >= 2/);
});

t.test('fingerprint: changes with any token, length or order', async (t) => {
  const a = [Int32Array.from([1, 2, 3]), Int32Array.from([1, 4])];
  t.equal(fingerprint(a), fingerprint([Int32Array.from([1, 2, 3]), Int32Array.from([1, 4])]));
  t.not(fingerprint(a), fingerprint([Int32Array.from([1, 2, 3]), Int32Array.from([1, 5])]));
  t.not(fingerprint(a), fingerprint([Int32Array.from([1, 4]), Int32Array.from([1, 2, 3])]));
  t.not(fingerprint(a), fingerprint([Int32Array.from([1, 2]), Int32Array.from([3, 1, 4])]));
  t.match(fingerprint([]), /^[0-9a-f]{8}$/);
});
