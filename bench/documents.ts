// Documents (README "Documents"; issue 10): the time to answer the 2nd..Nth
// question about one long document with the document's chunk caches reused
// vs a fresh generate per question, side by side in one run; the ingest;
// save / load times and the file size.
//
//   npx tsx bench/documents.ts [--model DIR] [--length 16k] [--questions 10]
//       [--question-tokens 24] [--answer-tokens 1,16] [--threads N]
//       [--local-window N --chunk-size N --prompt-cap N --min-chunked-length N]
//       [--out FILE]
//
// Without --model it writes a random-weight model (bench/random-model.ts:
// hidden 256, 4 layers, 8 heads / 2 KV heads, F16, candidate q k v o, vocab
// 512: "rand256") to a temporary folder. The document and the questions are
// pseudo-random ids (the document BOS first); question i is different for
// every i, of --question-tokens tokens. Each question runs both ways and is
// checked to give the same tokens (greedy). JSON lines on stdout (and to
// --out), with the machine and the command; no machine paths.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { parseFlags, parseNumber, usage, UsageError } from '../lib/cli/args';
import { FOCUS_FLAGS, focusFromFlags } from '../lib/cli/common';
import { loadModel } from '../lib/model';
import { makeRng } from '../lib/sampling';
import { writeRandomModel } from './random-model';
import { machine, median } from './report';

const SPEC = {
  model: { type: 'string', help: 'checkpoint folder (default: a random rand256 model)' },
  length: { type: 'string', help: 'document tokens (default 16k)' },
  questions: { type: 'int', help: 'questions asked (default 10)' },
  'question-tokens': { type: 'int', help: 'tokens per question (default 24)' },
  'answer-tokens': { type: 'string', help: 'answer lengths to time, comma-separated (default 1,16)' },
  threads: { type: 'int', help: 'CPU threads (default: the cores)' },
  out: { type: 'string', help: 'also write the JSON lines to FILE' },
  help: { type: 'bool', help: 'this help' },
  ...FOCUS_FLAGS,
} as const;

async function main(argv: string[]): Promise<number> {
  const f = parseFlags(argv, SPEC as never) as Record<string, unknown>;
  if (f.help) {
    process.stdout.write(usage('bench/documents.ts', 'Question-answer reuse of a kept document vs fresh generates.', SPEC as never));
    return 0;
  }
  const num = (v: string, what: string) => {
    const n = parseNumber(v);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${what} must be a positive integer, got ${v}`);
    return n;
  };
  const length = num(String(f.length ?? '16k'), 'length');
  const nq = (f.questions as number | undefined) ?? 10;
  const qTokens = (f['question-tokens'] as number | undefined) ?? 24;
  const answers = String(f['answer-tokens'] ?? '1,16').split(',').map((s) => num(s, 'answer-tokens'));
  if (nq < 2) throw new UsageError('--questions must be at least 2');
  const threads = (f.threads as number | undefined) ?? Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  let dir = f.model as string | undefined;
  let modelName = dir ? path.basename(dir) : 'rand256';
  let tmp: string | null = null;
  if (!dir) {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'focusllm-bench-doc-'));
    const info = await writeRandomModel(tmp, {
      vocab: 512, hidden: 256, layers: 4, heads: 8, kvHeads: 2, dtype: 'F16', candidates: ['q', 'k', 'v', 'o'], seed: 1,
    });
    dir = tmp;
    modelName = `rand256 (${(info.parameters / 1e6).toFixed(1)}M, F16)`;
  }
  const out: string[] = [];
  const emit = (r: Record<string, unknown>) => {
    const line = JSON.stringify({ ...r, machine });
    out.push(line);
    process.stdout.write(line + '\n');
  };
  const model = await loadModel(dir, { threads, tokenizer: false });
  try {
    const focus = { ...focusFromFlags(f as never) };
    const V = model.config.vocabSize;
    const rng = makeRng(7);
    const rid = () => 3 + Math.floor(rng() * (V - 3));
    const docIds = [model.config.bosTokenId, ...Array.from({ length: length - 1 }, rid)];
    const questions = Array.from({ length: nq }, () => Array.from({ length: qTokens }, rid));
    emit({
      bench: 'documents_run',
      date: new Date().toISOString(),
      command: `npx tsx bench/documents.ts ${argv.map((a, i) => (a.includes('/') ? (argv[i - 1] === '--out' ? 'FILE' : 'DIR') : a)).join(' ')}`.trim(),
      model: `${modelName}, ${model.backend}`,
      threads,
      length,
      questions: nq,
      questionTokens: qTokens,
      focus: model.createSession({ ...focus, maxSteps: 0 }).params,
    });
    let t0 = performance.now();
    const doc = await model.ingestDocument(docIds, { focus });
    const ingestS = (performance.now() - t0) / 1000;
    emit({ bench: 'documents_ingest', length, chunks: doc.chunks, seconds: ingestS, cacheBytes: doc.memory().chunkCaches });
    for (const maxNew of answers) {
      const fresh: number[] = [];
      const reuse: number[] = [];
      let same = true;
      for (let i = 1; i < nq; i++) {
        const q = questions[i];
        t0 = performance.now();
        const a: number[] = [];
        for await (const tok of model.generateTokens([...docIds, ...q], { maxNewTokens: maxNew, stop: [], focus })) a.push(tok);
        fresh.push((performance.now() - t0) / 1000);
        t0 = performance.now();
        const b: number[] = [];
        for await (const tok of doc.generateTokens(q, { maxNewTokens: maxNew, stop: [] })) b.push(tok);
        reuse.push((performance.now() - t0) / 1000);
        if (a.join() !== b.join()) same = false;
      }
      const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0);
      emit({
        bench: 'documents_questions',
        length,
        answerTokens: maxNew,
        questionsTimed: `2..${nq}`,
        freshMedianS: median(fresh),
        reuseMedianS: median(reuse),
        ratio: sum(fresh) / sum(reuse),
        sameTokens: same,
        freshS: fresh,
        reuseS: reuse,
      });
      if (!same) process.exitCode = 1;
    }
    const fileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'focusllm-bench-docfile-'));
    const file = path.join(fileDir, 'doc.fdoc');
    t0 = performance.now();
    await doc.save(file);
    const saveS = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const loaded = await model.loadDocument(file);
    const loadS = (performance.now() - t0) / 1000;
    emit({
      bench: 'documents_file',
      length,
      fileBytes: fs.statSync(file).size,
      cacheBytes: doc.memory().chunkCaches,
      saveS,
      loadS,
      ingestS,
    });
    loaded.dispose();
    doc.dispose();
    fs.rmSync(fileDir, { recursive: true, force: true });
  } finally {
    model.dispose();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (typeof f.out === 'string') fs.writeFileSync(f.out, out.join('\n') + '\n');
  return Number(process.exitCode ?? 0);
}

if (require.main === module)
  main(process.argv.slice(2)).then(
    (c) => process.exit(c),
    (e) => {
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(e instanceof UsageError ? 2 : 1);
    },
  );
