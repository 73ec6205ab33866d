// Text for tokenizer tests and benchmarks: a long, varied document (English
// prose and code from the Markdown files installed under node_modules, with
// paragraphs of multilingual.txt woven in) and seeded random "hard" strings.
import fs from 'node:fs';
import path from 'node:path';

import { makeRng } from '../../lib/sampling';

/** The package root (the folder with package.json above this file; also from dist/). */
export const root = (() => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();
const here = path.join(root, 'test', 'fixtures-text');

/** Paragraphs of multilingual.txt (many scripts, emoji, whitespace runs, code, special-looking text). */
export function multilingualParagraphs(): string[] {
  return fs
    .readFileSync(path.join(here, 'multilingual.txt'), 'utf8')
    .split(/\n\n(?=\S)/)
    .filter((p) => p.trim().length > 0);
}

/** Markdown files (over 2 KB) under node_modules, in a fixed order. */
function markdownFiles(): string[] {
  const top = path.join(root, 'node_modules');
  const entries = fs.readdirSync(top, { recursive: true, encoding: 'utf8' }) as string[];
  return entries
    .filter((e) => e.toLowerCase().endsWith('.md'))
    .map((e) => path.join(top, e))
    .filter((f) => {
      try {
        const st = fs.statSync(f);
        return st.isFile() && st.size > 2048;
      } catch {
        return false;
      }
    })
    .sort();
}

/**
 * About `chars` UTF-16 units of varied text (1.5M gives ~400K LLaMA-3 tokens,
 * ~520K LLaMA-2 tokens). The same installation gives the same text.
 */
export function buildDocument(chars = 1_500_000): string {
  const paras = multilingualParagraphs();
  const parts: string[] = [];
  let n = 0;
  let k = 0;
  for (const f of markdownFiles()) {
    const text = fs.readFileSync(f, 'utf8') + '\n\n' + paras[k++ % paras.length] + '\n\n';
    parts.push(text);
    n += text.length;
    if (n >= chars) break;
  }
  // too few Markdown files installed: repeat the multilingual text
  while (n < chars) {
    const p = paras[k++ % paras.length] + '\n\n';
    parts.push(p);
    n += p.length;
  }
  let doc = parts.join('');
  let end = Math.min(chars, doc.length);
  const c = doc.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--; // do not cut a surrogate pair
  doc = doc.slice(0, end);
  return doc;
}

/** A seeded pseudo-random generator (mulberry32) in [0, 1): lib/sampling.ts's. */
export const rng: (seed: number) => () => number = makeRng;

const WORDS = [
  'the', 'The', 'llama', 'grabbed', 'tokenizer', "don't", "it's", "we're", "I've", 'ANTIDISESTABLISHMENTARIANISM',
  'naïve', 'café', 'Größe', 'straße', 'Ñandú', 'ça', 'Лама', 'животное', 'λάμα', 'اللاما', 'שלום', 'नमस्ते',
  '羊驼', '镇', '你好世界', 'ラマ', 'カタカナ', '라마', '안녕하세요', 'ลามะ', 'Việt', 'e\u0301', 'Z̤͔ͧ̑̓',
  '🦙', 'Ꙋ', '👩‍💻', '👨‍👩‍👧‍👦', '🇫🇷', '👍🏽', '𝔘𝔫𝔦', '𓀀', '€', '£', '¥', '½', '∑', '≤', '—', '…',
  '<s>', '</s>', '<unk>', '<0x0A>', '<0xE2>', '[INST]', '<<SYS>>', '<|begin_of_text|>', '<|eot_id|>',
  '▁', '▁▁', 'Ġ', 'Ċ', '<|reserved_special_token_3|>', '{{', '}}', 'http://x.y/z?a=b', 'foo_bar', 'camelCase',
];
const SPACES = [' ', ' ', ' ', '  ', '   ', '    ', '        ', '\t', '\t\t', '\n', '\n\n', '\r\n', ' \n', '\n ', '\u00a0', '\u3000', '\u200b', '\u2009'];
const PUNCT = ['.', ',', '!', '?', ';', ':', '...', '!!', '?!', '-', '--', '(', ')', '[', ']', '"', "'", '`', '#', '####', '*', '/', '\\', '|', '~', '@', '$', '%', '^', '&', '_', '=', '+', '<', '>', ' .', ' ,', " '", " 's", " n't", " 're", " 've", " 'm"];

/**
 * A random string mixing words of many scripts, whitespace runs, newlines,
 * tabs, digits, punctuation, emoji, special-token look-alikes, random code
 * points and (when `surrogates`) unpaired surrogates.
 */
export function randomText(r: () => number, maxParts = 40, surrogates = true): string {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const n = 1 + Math.floor(r() * maxParts);
  let s = '';
  for (let i = 0; i < n; i++) {
    const u = r();
    if (u < 0.02) s += pick([...WORDS, ...SPACES, ...PUNCT, '7', 'x', '羊驼镇']).repeat(10 + Math.floor(r() * 120)); // long runs
    else if (u < 0.35) s += pick(WORDS);
    else if (u < 0.55) s += pick(SPACES);
    else if (u < 0.65) s += pick(PUNCT);
    else if (u < 0.73) s += String(Math.floor(r() * 10 ** (1 + Math.floor(r() * 8))));
    else if (u < 0.8) s += String.fromCodePoint(Math.floor(r() * 0x80)); // ASCII, controls included
    else if (u < 0.9) s += String.fromCodePoint(0xa0 + Math.floor(r() * 0x2f00)); // Latin-1 .. CJK radicals
    else if (u < 0.95) s += String.fromCodePoint(0x1f300 + Math.floor(r() * 0x300)); // emoji
    else if (u < 0.98) s += String.fromCodePoint(0x4e00 + Math.floor(r() * 0x5000)); // CJK
    else if (surrogates) s += String.fromCharCode(0xd800 + Math.floor(r() * 0x800)); // unpaired surrogate
    else s += pick(WORDS);
  }
  return s;
}
