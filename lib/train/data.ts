// Training data: JSONL records ({"text"}, {"input", "output"} or {"ids"}) and
// plain text files, tokenized BOS first, cut to a maximum length, too-short
// documents dropped and counted; LM sequences of a fixed length cut from the
// stream of documents. No native code.
import fs from 'node:fs';
import path from 'node:path';

import type { Tokenizer } from '../tokenizer/types';

export interface DataOptions {
  /** .jsonl / .ndjson (records) or .txt / .text / .md (one document per file) */
  files: string[];
  bosId: number;
  vocabSize: number;
  /** for text records; null when the checkpoint has none (then only "ids" records work) */
  tokenizer: Tokenizer | null;
  /** documents with fewer tokens (BOS included) are dropped */
  minLength: number;
  /** documents are cut to their first maxLength tokens; input/output records are truncated in the input's middle */
  maxLength: number;
  /** input/output records are truncated to this many tokens instead of maxLength (lm scored on the output: one sequence each) */
  recordMaxLength?: number;
}

export interface DataStats {
  files: number;
  /** records read (lines of JSONL files, whole text files) */
  records: number;
  /** documents kept */
  documents: number;
  /** tokens of the kept documents */
  tokens: number;
  /** documents dropped because they had fewer than minLength tokens */
  tooShort: number;
  /** documents cut (or middle-truncated) to maxLength */
  cut: number;
}

export interface Dataset {
  docs: Int32Array[];
  /** per document: where an {"input","output"} record's output starts (BOS and input before it); 0 for other records */
  outputStart: number[];
  stats: DataStats;
  /** hash of every kept token: a resumed run checks it reads the same data */
  fingerprint: string;
}

const RECORD_EXT = new Set(['.jsonl', '.ndjson']);
const TEXT_EXT = new Set(['.txt', '.text', '.md']);

/** Checks that every data file exists, is readable and has a known type; an Error names the file. */
export function checkDataFiles(files: readonly string[]): void {
  if (!Array.isArray(files) || files.length === 0) throw new Error('option data: give at least one data file (.jsonl or .txt)');
  for (const f of files) {
    if (typeof f !== 'string' || !f) throw new Error(`option data: ${JSON.stringify(f)} is not a file path`);
    const ext = path.extname(f).toLowerCase();
    if (!RECORD_EXT.has(ext) && !TEXT_EXT.has(ext))
      throw new Error(`data file ${f}: unknown type '${ext || '(no extension)'}' (use .jsonl / .ndjson records or .txt / .text / .md text)`);
    let st: fs.Stats;
    try {
      st = fs.statSync(f);
    } catch (e) {
      throw new Error(`data file ${f}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
    if (!st.isFile()) throw new Error(`data file ${f}: not a regular file`);
    try {
      fs.accessSync(f, fs.constants.R_OK);
    } catch {
      throw new Error(`data file ${f}: not readable`);
    }
  }
}

/** x cut in its middle to `budget` tokens: the first ceil(budget / 2) and the last floor(budget / 2). */
export function truncateMiddle(x: number[], budget: number): number[] {
  if (x.length <= budget) return x;
  const head = Math.ceil(budget / 2);
  return [...x.slice(0, head), ...x.slice(x.length - (budget - head))];
}

class Reader {
  readonly docs: Int32Array[] = [];
  readonly outputStart: number[] = [];
  readonly stats: DataStats = { files: 0, records: 0, documents: 0, tokens: 0, tooShort: 0, cut: 0 };

  constructor(private readonly o: DataOptions) {}

  private encode(text: string, where: string, addBos: boolean): number[] {
    const tok = this.o.tokenizer;
    if (!tok)
      throw new Error(
        `${where}: text needs a tokenizer, but the model has none (no tokenizer.json in its folder, or loaded with tokenizer: false); ` +
          'give {"ids": [...]} records instead',
      );
    const ids = tok.encode(text, { addSpecial: addBos });
    return addBos ? this.withBos(ids) : ids;
  }

  private withBos(x: number[]): number[] {
    return x.length > 0 && x[0] === this.o.bosId ? x : [this.o.bosId, ...x];
  }

  /** outputStart: where an input/output record's output starts (0: not such a record) */
  private keep(x: number[], cut: boolean, outputStart = 0): void {
    this.stats.records++;
    const max = outputStart > 0 ? (this.o.recordMaxLength ?? this.o.maxLength) : this.o.maxLength;
    if (x.length > max) {
      x = x.slice(0, max);
      cut = true;
    }
    if (x.length < this.o.minLength) {
      this.stats.tooShort++;
      return;
    }
    if (cut) this.stats.cut++;
    this.docs.push(Int32Array.from(x));
    this.outputStart.push(outputStart);
    this.stats.documents++;
    this.stats.tokens += x.length;
  }

  /** x = withBos(input) ++ output, the input truncated in its middle so that x fits maxLength */
  private instruction(input: string, output: string, where: string): void {
    this.instructionIds(this.encode(input, where, true), this.encode(output, where, false));
  }

  /** an {"input","output"} record's tokens: inp (BOS first) and out */
  private instructionIds(inp: number[], out: number[]): void {
    const max = this.o.recordMaxLength ?? this.o.maxLength;
    let cut = false;
    if (inp.length + out.length > max) {
      cut = true;
      // The input keeps at least half of the budget (or all of itself when
      // shorter); the output is cut at its end when it needs more.
      const inKeep = Math.min(inp.length, Math.max(Math.ceil(max / 2), max - out.length));
      out = out.slice(0, max - inKeep);
      inp = truncateMiddle(inp, inKeep);
    }
    this.keep([...inp, ...out], cut, inp.length);
  }

  private tokenIds(v: unknown, field: string, where: string): number[] {
    if (!Array.isArray(v)) throw new Error(`${where}: "${field}" must be an array of token ids`);
    v.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.o.vocabSize)
        throw new Error(`${where}: ${field}[${i}] = ${JSON.stringify(id)} is not a token id (vocabulary size ${this.o.vocabSize})`);
    });
    return v as number[];
  }

  private ids(v: unknown, where: string): void {
    this.keep(this.withBos(this.tokenIds(v, 'ids', where)), false);
  }

  readFile(file: string): void {
    this.stats.files++;
    const text = fs.readFileSync(file, 'utf8');
    if (!RECORD_EXT.has(path.extname(file).toLowerCase())) {
      this.keep(text.length ? this.encode(text, file, true) : [], false);
      return;
    }
    const lines = text.split('\n');
    lines.forEach((raw, i) => {
      const line = raw.trim();
      if (!line) return;
      const where = `${file}:${i + 1}`;
      let r: unknown;
      try {
        r = JSON.parse(line);
      } catch (e) {
        throw new Error(`${where}: invalid JSON (${(e as Error).message})`);
      }
      if (!r || typeof r !== 'object' || Array.isArray(r)) throw new Error(`${where}: expected a JSON object`);
      const rec = r as Record<string, unknown>;
      if (rec.ids !== undefined) return this.ids(rec.ids, where);
      if (rec.input_ids !== undefined || rec.output_ids !== undefined) {
        if (rec.input_ids === undefined || rec.output_ids === undefined) throw new Error(`${where}: a record with "input_ids" needs "output_ids" too, and the other way round`);
        return this.instructionIds(this.withBos(this.tokenIds(rec.input_ids, 'input_ids', where)), this.tokenIds(rec.output_ids, 'output_ids', where));
      }
      if (typeof rec.text === 'string') return this.keep(this.encode(rec.text, where, true), false);
      if (typeof rec.input === 'string' && typeof rec.output === 'string') return this.instruction(rec.input, rec.output, where);
      throw new Error(`${where}: a record needs "text" (a string), "input" and "output" (strings), "ids" (token ids), or "input_ids" and "output_ids" (token ids)`);
    });
  }
}

/** FNV-1a over the documents' lengths and tokens, as 8 hex digits. */
export function fingerprint(docs: readonly Int32Array[]): string {
  let h = 0x811c9dc5;
  const mix = (v: number) => {
    for (let k = 0; k < 4; k++) {
      h ^= (v >>> (8 * k)) & 0xff;
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  };
  mix(docs.length);
  for (const d of docs) {
    mix(d.length);
    for (let i = 0; i < d.length; i++) mix(d[i]);
  }
  return h.toString(16).padStart(8, '0');
}

/** Reads and tokenizes every file, in order. */
export function loadDocuments(o: DataOptions): Dataset {
  checkDataFiles(o.files);
  if (!Number.isInteger(o.minLength) || o.minLength < 1) throw new Error(`option minLength must be a positive integer, got ${String(o.minLength)}`);
  if (!Number.isInteger(o.maxLength) || o.maxLength < o.minLength)
    throw new Error(`option maxLength must be an integer >= minLength (${o.minLength}), got ${String(o.maxLength)}`);
  const r = new Reader(o);
  for (const f of o.files) r.readFile(f);
  return { docs: r.docs, outputStart: r.outputStart, stats: r.stats, fingerprint: fingerprint(r.docs) };
}

/**
 * Causal-LM sequences: the documents (BOS first each) concatenated in order
 * and cut into consecutive pieces of seqLen tokens; a last shorter piece is
 * dropped.
 */
export function lmSequences(docs: readonly Int32Array[], seqLen: number): Int32Array[] {
  if (!Number.isInteger(seqLen) || seqLen < 2) throw new Error(`option seqLen must be an integer >= 2, got ${String(seqLen)}`);
  let total = 0;
  for (const d of docs) total += d.length;
  const n = Math.floor(total / seqLen);
  const all = new Int32Array(n * seqLen);
  let at = 0;
  for (const d of docs) {
    if (at >= all.length) break;
    const take = Math.min(d.length, all.length - at);
    all.set(take === d.length ? d : d.subarray(0, take), at);
    at += take;
  }
  return Array.from({ length: n }, (_, i) => all.subarray(i * seqLen, (i + 1) * seqLen));
}
