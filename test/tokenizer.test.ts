// loadTokenizer(): tokenizer.json + tokenizer_config.json (+ generation_config.json):
// BOS / EOS / add_bos_token, the library fallback, and errors that name the file.
import fs from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { loadTokenizer, type Tokenizer } from '../lib/tokenizer/index';
import { LENML_LLAMA2, LENML_LLAMA3 } from './fixtures-text/meta-llama2';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const hf = require('@huggingface/tokenizers') as {
  Tokenizer: new (json: object, config: object) => {
    encode(text: string, o?: { add_special_tokens?: boolean }): { ids: number[] };
    decode(ids: number[], o?: object): string;
  };
};

const root = t.testdir({});
let n = 0;

/**
 * A tokenizer folder: `base`'s tokenizer.json (edited by `edit` when given, or
 * raw text) and the given other files (objects are written as JSON, strings as is).
 */
function folder(base: string, files: Record<string, unknown>, edit?: (json: Record<string, unknown>) => void): string {
  const dir = path.join(root, `t${n++}`);
  fs.mkdirSync(dir);
  if (edit) {
    const json = JSON.parse(fs.readFileSync(path.join(base, 'tokenizer.json'), 'utf8'));
    edit(json);
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
  } else if (!('tokenizer.json' in files)) fs.copyFileSync(path.join(base, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  for (const [f, v] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), typeof v === 'string' ? v : JSON.stringify(v));
  return dir;
}
const load = async (dir: string): Promise<Tokenizer> => (await loadTokenizer(dir))!;
const llama2Config = JSON.parse(fs.readFileSync(path.join(LENML_LLAMA2, 'tokenizer_config.json'), 'utf8'));

t.test('a folder without tokenizer.json has no tokenizer', async (t) => {
  t.equal(await loadTokenizer(root), null);
});

t.test('LLaMA-2 (SentencePiece BPE) as shipped', async (t) => {
  const tok = await load(LENML_LLAMA2);
  t.equal(tok.vocabSize, 32000);
  t.equal(tok.bosId, 1);
  t.same(tok.eosIds, [2]);
  t.equal(tok.addBos, true);
  const ids = tok.encode('Hello world');
  t.equal(ids[0], 1, 'BOS first');
  t.same(tok.encode('Hello world', { addSpecial: false }), ids.slice(1), 'no BOS without special tokens');
  t.equal(tok.decode(ids, { skipSpecial: true }), 'Hello world');
  t.equal(tok.decode(ids), '<s> Hello world', "the library's decode: <s> then the word's leading space");
  t.equal(tok.decode([]), '');
  t.equal(tok.decode(Int32Array.from(ids), { skipSpecial: true }), 'Hello world', 'typed arrays');
  t.equal(tok.tokenToId('<s>'), 1);
  t.equal(tok.tokenToId('</s>'), 2);
  t.equal(tok.tokenToId('no-such-token-here'), null);
  t.equal(tok.idToToken(1), '<s>');
  t.equal(tok.idToToken(-1), null);
  t.equal(tok.idToToken(32000), null);
  t.equal(tok.idToToken(0.5), null);
  t.equal(tok.hasChatTemplate, false);
});

t.test('LLaMA-3 (byte-level BPE) as shipped', async (t) => {
  const tok = await load(LENML_LLAMA3);
  t.equal(tok.vocabSize, 128256);
  t.equal(tok.bosId, 128000);
  t.same(tok.eosIds, [128001]);
  // the config says nothing about add_bos_token and this post-processor adds nothing
  t.equal(tok.addBos, false);
  t.notOk(tok.encode('Hello').includes(128000));
  t.equal(tok.decode(tok.encode(' Hello, world!')), ' Hello, world!');
  t.equal(tok.hasChatTemplate, true);
});

t.test('add_bos_token / add_eos_token and the post-processor', async (t) => {
  const { add_bos_token: _b, add_eos_token: _e, ...silent } = llama2Config;
  // config silent: the post-processor (TemplateProcessing "<s> $A") decides
  let tok = await load(folder(LENML_LLAMA2, { 'tokenizer_config.json': silent }));
  t.equal(tok.addBos, true);
  t.equal(tok.encode('x')[0], 1);
  // config says no: no BOS even though the post-processor has one (transformers' LLaMA rule)
  tok = await load(folder(LENML_LLAMA2, { 'tokenizer_config.json': { ...llama2Config, add_bos_token: false } }));
  t.equal(tok.addBos, false);
  t.notOk(tok.encode('x').includes(1));
  // add_eos_token
  tok = await load(folder(LENML_LLAMA2, { 'tokenizer_config.json': { ...llama2Config, add_eos_token: true } }));
  const ids = tok.encode('x');
  t.same([ids[0], ids.at(-1)], [1, 2]);
  t.same(tok.encode('x', { addSpecial: false }), ids.slice(1, -1));
  // no tokenizer_config.json: BOS from the post-processor, no EOS
  tok = await load(folder(LENML_LLAMA2, {}));
  t.equal(tok.bosId, 1);
  t.same(tok.eosIds, []);
  t.equal(tok.addBos, true);
  // LLaMA-3 with add_bos_token true: BOS although its post-processor adds none
  tok = await load(folder(LENML_LLAMA3, { 'tokenizer_config.json': { bos_token: '<|begin_of_text|>', add_bos_token: true } }));
  t.equal(tok.addBos, true);
  t.equal(tok.encode('Hi')[0], 128000);
  t.equal(tok.encode('Hi', { addSpecial: false })[0] !== 128000, true);
});

t.test('BOS / EOS forms', async (t) => {
  let tok = await load(
    folder(LENML_LLAMA2, {
      'tokenizer_config.json': { bos_token: { content: '<s>', lstrip: false }, eos_token: { __type: 'AddedToken', content: '</s>' } },
      'generation_config.json': { eos_token_id: [2, 7], bos_token_id: 1 },
    }),
  );
  t.equal(tok.bosId, 1);
  t.same(tok.eosIds, [2, 7], 'config eos_token, then generation_config.json eos_token_id list');
  tok = await load(folder(LENML_LLAMA3, { 'tokenizer_config.json': {}, 'generation_config.json': { bos_token_id: 128000, eos_token_id: 128009 } }));
  t.equal(tok.bosId, 128000, 'bos_token_id from generation_config.json');
  t.same(tok.eosIds, [128009]);
  tok = await load(folder(LENML_LLAMA3, { 'tokenizer_config.json': { bos_token: null, eos_token: null } }));
  t.equal(tok.bosId, null, 'no BOS anywhere');
  t.same(tok.eosIds, []);
  t.equal(tok.addBos, false);
});

t.test('errors name the file', async (t) => {
  const cases: [string, Record<string, unknown>, RegExp, ((j: Record<string, unknown>) => void)?][] = [
    ['tokenizer.json not JSON', { 'tokenizer.json': '{"model": ' }, /tokenizer\.json: invalid JSON/],
    ['tokenizer.json an array', { 'tokenizer.json': '[]' }, /tokenizer\.json: expected a JSON object/],
    ['tokenizer.json without a model', { 'tokenizer.json': '{"normalizer": null}' }, /tokenizer\.json: no "model" object/],
    ['unknown model type', {}, /tokenizer\.json: Unknown TokenizerModel type: Foo/, (j) => (j.model = { type: 'Foo' })],
    ['unknown normalizer', {}, /tokenizer\.json: Unknown Normalizer type: Bar/, (j) => (j.normalizer = { type: 'Bar' })],
    ['tokenizer_config.json not JSON', { 'tokenizer_config.json': '{' }, /tokenizer_config\.json: invalid JSON/],
    ['bos_token not a token', { 'tokenizer_config.json': { bos_token: '<bos>' } }, /tokenizer_config\.json: bos_token "<bos>" is not a token of tokenizer\.json/],
    ['bos_token a number', { 'tokenizer_config.json': { bos_token: 1 } }, /tokenizer_config\.json: bos_token must be a string or \{ "content": string \}/],
    ['eos_token not a token', { 'tokenizer_config.json': { eos_token: { content: '<eos>' } } }, /tokenizer_config\.json: eos_token "<eos>" is not a token/],
    ['add_bos_token not a boolean', { 'tokenizer_config.json': { add_bos_token: 'yes' } }, /tokenizer_config\.json: add_bos_token must be true or false, got "yes"/],
    ['generation_config.json not JSON', { 'generation_config.json': 'nope' }, /generation_config\.json: invalid JSON/],
    ['eos_token_id out of range', { 'generation_config.json': { eos_token_id: [2, 999999] } }, /generation_config\.json: eos_token_id 999999 is not a token id \(vocabulary size 32000\)/],
    ['eos_token_id not a number', { 'generation_config.json': { eos_token_id: '2' } }, /generation_config\.json: eos_token_id "2" is not a token id/],
  ];
  for (const [what, files, re, edit] of cases) await t.rejects(loadTokenizer(folder(LENML_LLAMA2, files, edit)), re, what);
  // add_bos_token without any BOS (LLaMA-3's post-processor adds none)
  await t.rejects(
    loadTokenizer(folder(LENML_LLAMA3, { 'tokenizer_config.json': { add_bos_token: true } })),
    /tokenizer_config\.json: add_bos_token is true but there is no bos_token/,
  );
  await t.rejects(
    loadTokenizer(folder(LENML_LLAMA3, { 'tokenizer_config.json': { bos_token: '<|begin_of_text|>', add_eos_token: true } })),
    /tokenizer_config\.json: add_eos_token is true but there is no eos_token/,
  );
});

t.test('bad arguments', async (t) => {
  const tok = await load(LENML_LLAMA2);
  t.throws(() => tok.encode(42 as never), /encode: text must be a string, got number/);
  t.throws(() => tok.decode([1, 40000]), /token id 40000 is not in the tokenizer's vocabulary/);
  t.throws(() => tok.decode('abc' as never), /token id a/);
  t.throws(() => tok.decode(null as never), /decode: ids must be an array/);
});

t.test('a WordPiece tokenizer goes through the library (correct, not accelerated)', async (t) => {
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const json = {
    version: '1.0',
    added_tokens: [special(0, '[UNK]'), special(1, '[CLS]'), special(2, '[SEP]')],
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: {},
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: { '[UNK]': 0, '[CLS]': 1, '[SEP]': 2, hello: 3, world: 4, '##s': 5, the: 6, ',': 7, '!': 8, llama: 9 },
    },
  };
  const config = { cls_token: '[CLS]', sep_token: '[SEP]', unk_token: '[UNK]' };
  const dir = folder(LENML_LLAMA2, { 'tokenizer.json': json, 'tokenizer_config.json': config });
  const tok = await load(dir);
  t.match((tok as unknown as { slowEncodeReason: string | null }).slowEncodeReason, /not BPE/);
  const lib = new hf.Tokenizer(json, config);
  for (const text of ['Hello worlds!', 'the llama, THE LLAMA', 'unknown words here', '']) {
    t.same(tok.encode(text), lib.encode(text).ids, `encode ${JSON.stringify(text)}`);
    t.same(tok.encode(text, { addSpecial: false }), lib.encode(text, { add_special_tokens: false }).ids);
  }
  t.same(tok.encode('Hello worlds!'), [1, 3, 4, 5, 8, 2]);
  // no bos_token in the config: the one token the post-processor puts first serves as BOS
  t.equal(tok.bosId, 1);
  t.equal(tok.addBos, true);
  const ids = [1, 3, 4, 5, 7, 9, 8, 2];
  t.equal(tok.decode(ids), lib.decode(ids));
  // its decoder has no streaming form: the text comes at flush, in full
  const d = tok.streamDecoder();
  t.same(
    ids.map((id) => d.push(id)),
    ids.map(() => ''),
  );
  t.equal(d.flush(), lib.decode(ids));
});

t.test('the fast path is used for the LLaMA tokenizers', async (t) => {
  for (const dir of [LENML_LLAMA2, LENML_LLAMA3]) {
    const tok = await load(dir);
    t.equal((tok as unknown as { slowEncodeReason: string | null }).slowEncodeReason, null, path.basename(path.dirname(dir)));
  }
});
