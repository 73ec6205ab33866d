// streamDecoder(): never half a UTF-8 character, never text that a later token
// changes, and all pushes + flush == decode(all ids) for any id sequence.
import fs from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { loadTokenizer, type Tokenizer } from '../lib/tokenizer/index';
import { buildDocument, multilingualParagraphs, rng } from './fixtures-text/document';
import { LENML_LLAMA2, LENML_LLAMA3 } from './fixtures-text/meta-llama2';

const root = t.testdir({});

/** `base`'s tokenizer with tokenizer.json / tokenizer_config.json edited. */
async function variant(name: string, base: string, edit: (json: Record<string, unknown>, config: Record<string, unknown>) => void) {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  const json = JSON.parse(fs.readFileSync(path.join(base, 'tokenizer.json'), 'utf8'));
  const config = JSON.parse(fs.readFileSync(path.join(base, 'tokenizer_config.json'), 'utf8'));
  edit(json, config);
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return (await loadTokenizer(dir))!;
}

/** Streams `ids`; checks the pieces against decode() as it goes. Returns the pieces. */
function stream(t: tap.Test, tok: Tokenizer, ids: number[], skipSpecial: boolean, what: string, prefixCheck = true): string[] {
  const d = tok.streamDecoder({ skipSpecial });
  const pieces: string[] = [];
  let sofar = '';
  for (let i = 0; i < ids.length; i++) {
    const p = d.push(ids[i]);
    pieces.push(p);
    sofar += p;
    // what was emitted is final: a prefix of the decode of the ids so far
    if (prefixCheck && !tok.decode(ids.slice(0, i + 1), { skipSpecial }).startsWith(sofar)) {
      t.fail(`${what}: after ${i + 1} tokens the stream emitted text that decode does not start with`, {
        ids: ids.slice(0, i + 1),
        emitted: sofar,
        decode: tok.decode(ids.slice(0, i + 1), { skipSpecial }),
      });
      return pieces;
    }
  }
  const tail = d.flush();
  pieces.push(tail);
  const want = tok.decode(ids, { skipSpecial });
  if (pieces.join('') !== want) t.fail(`${what}: pushes + flush != decode`, { ids, got: pieces.join(''), want });
  return pieces;
}

const hasBrokenSurrogate = (s: string) => /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);

t.test('byte-fallback characters arrive one byte token at a time', async (t) => {
  const tok = (await loadTokenizer(LENML_LLAMA2))!;
  const byte = (b: number) => tok.tokenToId(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)!;
  const euro = [0xe2, 0x82, 0xac].map(byte);
  const llama = [0xf0, 0x9f, 0xa6, 0x99].map(byte);
  const a = tok.tokenToId('▁a')!;
  t.same(stream(t, tok, euro, false, '€'), ['', '', '€', '']);
  t.same(stream(t, tok, [a, ...llama, a], false, 'a🦙 a'), ['a', '', '', '', '🦙', ' a', '']);
  // an unfinished character is U+FFFD only at flush (as decode gives it)
  t.same(stream(t, tok, [a, ...llama.slice(0, 3)], false, 'cut 🦙'), ['a', '', '', '', '\ufffd']);
  // a byte that cannot continue the sequence: the library's decode replaces, so does the stream
  t.same(stream(t, tok, [euro[0], a], false, 'broken €').join(''), '\ufffd a');
});

t.test('byte-level tokens: emoji and CJK split across tokens', async (t) => {
  const tok = (await loadTokenizer(LENML_LLAMA3))!;
  for (const text of ['🦙', '👨‍👩‍👧‍👦 family', '羊驼（学名：Lama glama）', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𓀀 🀄', 'Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇']) {
    const ids = tok.encode(text, { addSpecial: false });
    const pieces = stream(t, tok, ids, false, text);
    t.equal(pieces.join(''), text, `${text}: round trip`);
    t.notOk(pieces.some((p) => p.includes('\ufffd') || hasBrokenSurrogate(p)), `${text}: no piece holds part of a character`);
  }
});

t.test('real encodings of multilingual text', async (t) => {
  for (const [name, dir] of [
    ['llama2', LENML_LLAMA2],
    ['llama3', LENML_LLAMA3],
  ]) {
    const tok = (await loadTokenizer(dir))!;
    for (const [i, p] of multilingualParagraphs().entries()) {
      const ids = tok.encode(p);
      for (const skip of [false, true]) {
        const pieces = stream(t, tok, ids, skip, `${name} paragraph ${i}`, ids.length < 400);
        t.notOk(pieces.some((x) => x.includes('\ufffd') || hasBrokenSurrogate(x)), `${name} paragraph ${i}: whole characters only`);
      }
    }
  }
});

/** Pieces of clean_up_tokenization's patterns (" .", " n't", " 've", " ' "...) and their neighbours. */
const CLEANUP = [' ', '  ', '.', ',', '!', '?', "'", ' .', ' ,', ' !', ' ?', " '", " ' ", 'n', ' n', "n't", " n't", "'t", "'m", "'s", "'ve", "'re", 've', 're', 'v', 'r', 'e', 'm', 's', 't', ' a', 'a'];

/** Token ids worth mixing into random sequences: bytes, specials, spaces, clean-up patterns. */
function interesting(tok: Tokenizer, strings = [...CLEANUP, '\n', '\ufeff', 'é', '€', '🦙', '羊']): number[] {
  const ids = new Set<number>();
  for (const s of strings) {
    for (const form of [s, s.replaceAll(' ', '▁'), s.replaceAll(' ', 'Ġ')]) {
      const id = tok.tokenToId(form);
      if (id !== null) ids.add(id);
    }
    for (const id of tok.encode(s, { addSpecial: false })) ids.add(id);
  }
  for (let b = 0; b < 256; b += 7) {
    const id = tok.tokenToId(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    if (id !== null) ids.add(id);
  }
  for (const id of [tok.bosId, ...tok.eosIds]) if (id !== null) ids.add(id);
  return [...ids];
}

t.test('random id sequences', async (t) => {
  const tokenizers: [string, Tokenizer][] = [
    ['llama2', (await loadTokenizer(LENML_LLAMA2))!],
    ['llama3', (await loadTokenizer(LENML_LLAMA3))!],
    [
      'metaspace decoder',
      await variant('metaspace', LENML_LLAMA2, (j) => {
        j.decoder = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true };
      }),
    ],
    [
      'llama2 with clean-up',
      await variant('cleanup', LENML_LLAMA2, (_j, c) => {
        c.clean_up_tokenization_spaces = true;
      }),
    ],
    [
      'llama3 without clean-up',
      await variant('no-cleanup', LENML_LLAMA3, (_j, c) => {
        c.clean_up_tokenization_spaces = false;
      }),
    ],
    [
      'WordPiece decoder (decoded at flush)',
      await variant('wordpiece-decoder', LENML_LLAMA2, (j) => {
        j.decoder = { type: 'WordPiece', prefix: '##', cleanup: true };
      }),
    ],
  ];
  for (const [name, tok] of tokenizers) {
    const pool = interesting(tok);
    const cleanup = interesting(tok, CLEANUP);
    const r = rng(99);
    let failures = 0;
    for (let trial = 0; trial < 1500 && failures === 0; trial++) {
      const n = 1 + Math.floor(r() * 24);
      const ids: number[] = [];
      for (let i = 0; i < n; i++) {
        const u = r();
        const from = u < 0.35 ? cleanup : u < 0.6 ? pool : null;
        ids.push(from ? from[Math.floor(r() * from.length)] : u < 0.7 ? Math.floor(r() * 300) : Math.floor(r() * tok.vocabSize));
      }
      const before = t.counts.fail;
      stream(t, tok, ids, trial % 2 === 1, `${name} trial ${trial}`);
      failures += t.counts.fail - before;
    }
    t.equal(failures, 0, `${name}: 1500 random sequences`);
  }
});

t.test('clean-up patterns across token boundaries: every short sequence', async (t) => {
  // clean_up_tokenization rewrites " .", " ' ", " n't", " 've"...: sequences of the pieces of
  // those patterns, all of length <= 3 and random longer ones, catch a stream that cuts too early
  const pieces = [' ', "'", 'n', 'v', 'r', 'e', 't', 's', '.', ',', 'x'];
  for (const [name, dir] of [
    ['llama3 (clean-up on)', LENML_LLAMA3],
    ['llama2', LENML_LLAMA2],
  ]) {
    const tok = name.startsWith('llama2')
      ? await variant('cleanup-2', dir, (_j, c) => {
          c.clean_up_tokenization_spaces = true;
        })
      : (await loadTokenizer(dir))!;
    const pool = [...new Set(pieces.flatMap((p) => [p, ' ' + p]).map((p) => tok.encode(p, { addSpecial: false }).at(-1)!))];
    const before = t.counts.fail;
    let n = 0;
    for (const a of pool)
      for (const b of pool) {
        stream(t, tok, [a, b], false, name);
        for (const c of pool) stream(t, tok, [a, b, c], false, name), n++;
      }
    const r = rng(5);
    for (let i = 0; i < 1000; i++, n++) stream(t, tok, Array.from({ length: 4 + Math.floor(r() * 6) }, () => pool[Math.floor(r() * pool.length)]), false, name);
    t.equal(t.counts.fail - before, 0, `${name}: ${n} sequences over ${pool.length} tokens`);
  }
});

t.test('a decoder is reusable after flush', async (t) => {
  const tok = (await loadTokenizer(LENML_LLAMA2))!;
  const d = tok.streamDecoder();
  const one = tok.encode('Hello world', { addSpecial: false });
  const two = tok.encode(' second', { addSpecial: false });
  const text1 = one.map((id) => d.push(id)).join('') + d.flush();
  const text2 = two.map((id) => d.push(id)).join('') + d.flush();
  t.equal(text1, tok.decode(one));
  t.equal(text2, tok.decode(two), 'the second sequence starts afresh (leading space stripped again)');
});

t.test('ids outside the vocabulary', async (t) => {
  const tok = (await loadTokenizer(LENML_LLAMA2))!;
  const d = tok.streamDecoder();
  t.throws(() => d.push(32000), /token id 32000 is not in the tokenizer's vocabulary \(size 32000\)/);
  t.throws(() => d.push(-1), /token id -1/);
  t.throws(() => d.push(1.5), /token id 1.5/);
  t.throws(() => tok.decode([5, 99999]), /token id 99999/);
});

t.test('a whole long document streams to its decode', async (t) => {
  const doc = buildDocument(400_000);
  for (const [name, dir] of [
    ['llama2', LENML_LLAMA2],
    ['llama3', LENML_LLAMA3],
  ]) {
    const tok = (await loadTokenizer(dir))!;
    const ids = tok.encode(doc);
    const d = tok.streamDecoder();
    let out = '';
    for (const id of ids) out += d.push(id);
    out += d.flush();
    t.equal(out === tok.decode(ids), true, `${name}: ${ids.length} tokens, pushes + flush == decode`);
  }
});
