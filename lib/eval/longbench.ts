// LongBench (THUDM/LongBench, v1): one task's records through its prompt
// template (config/dataset2prompt.json), greedy generation of at most its
// dataset2maxlen tokens, and its metric (metrics.ts), scored as LongBench's
// eval.py does: 100 x mean over records of the max over the record's answers.
// protocol "official" runs FocusLLM's main/eval_longbench.py settings instead
// (LONGBENCH_OFFICIAL).
import fs from 'node:fs';

import type { Model } from '../model';
import { type FocusParams, resolveFocusParams } from '../plan';
import { definedOnly, type IngestProgress } from '../session';
import type { Tokenizer } from '../tokenizer/types';
import { type FocusOptions, greedyDecode } from './decode';
import { type MetricName, metricFn } from './metrics';

export interface LongbenchTask {
  /** the prompt with {context} and {input} */
  prompt: string;
  /** dataset2maxlen: new tokens at most */
  maxNewTokens: number;
  metric: MetricName;
  /** eval.py scores only the first line of the prediction (after leading newlines) */
  firstLine: boolean;
  /** pred.py wraps the prompt in the chat format for chat models (false: few-shot / code tasks) */
  chat: boolean;
  /** pred.py stops at a newline (and forces one new token first): samsum */
  stopAtNewline: boolean;
}

const QA_PASSAGES =
  'Answer the question based on the given passages. Only give me the answer and do not output any other words.\n\nThe following are given passages.\n{context}\n\nAnswer the question based on the given passages. Only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:';

function task(prompt: string, maxNewTokens: number, metric: MetricName, name: string): LongbenchTask {
  return {
    prompt,
    maxNewTokens,
    metric,
    firstLine: ['trec', 'triviaqa', 'samsum', 'lsht'].includes(name),
    chat: !['trec', 'triviaqa', 'samsum', 'lsht', 'lcc', 'repobench-p'].includes(name),
    stopAtNewline: name === 'samsum',
  };
}

/** The tasks, verbatim from LongBench's config files (the Chinese tasks that need jieba are left out). */
export const LONGBENCH_TASKS: Readonly<Record<string, LongbenchTask>> = Object.freeze(
  Object.fromEntries(
    (
      [
        [
          'narrativeqa',
          'You are given a story, which can be either a novel or a movie script, and a question. Answer the question as concisely as you can, using a single phrase if possible. Do not provide any explanation.\n\nStory: {context}\n\nNow, answer the question based on the story as concisely as you can, using a single phrase if possible. Do not provide any explanation.\n\nQuestion: {input}\n\nAnswer:',
          128,
          'qa_f1',
        ],
        [
          'qasper',
          'You are given a scientific article and a question. Answer the question as concisely as you can, using a single phrase or sentence if possible. If the question cannot be answered based on the information in the article, write "unanswerable". If the question is a yes/no question, answer "yes", "no", or "unanswerable". Do not provide any explanation.\n\nArticle: {context}\n\n Answer the question based on the above article as concisely as you can, using a single phrase or sentence if possible. If the question cannot be answered based on the information in the article, write "unanswerable". If the question is a yes/no question, answer "yes", "no", or "unanswerable". Do not provide any explanation.\n\nQuestion: {input}\n\nAnswer:',
          128,
          'qa_f1',
        ],
        [
          'multifieldqa_en',
          'Read the following text and answer briefly.\n\n{context}\n\nNow, answer the following question based on the above text, only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:',
          64,
          'qa_f1',
        ],
        ['hotpotqa', QA_PASSAGES, 32, 'qa_f1'],
        ['2wikimqa', QA_PASSAGES, 32, 'qa_f1'],
        ['musique', QA_PASSAGES, 32, 'qa_f1'],
        [
          'gov_report',
          'You are given a report by a government agency. Write a one-page summary of the report.\n\nReport:\n{context}\n\nNow, write a one-page summary of the report.\n\nSummary:',
          512,
          'rouge_l',
        ],
        [
          'qmsum',
          'You are given a meeting transcript and a query containing a question or instruction. Answer the query in one or more sentences.\n\nTranscript:\n{context}\n\nNow, answer the query based on the above meeting transcript in one or more sentences.\n\nQuery: {input}\nAnswer:',
          512,
          'rouge_l',
        ],
        [
          'multi_news',
          'You are given several news passages. Write a one-page summary of all news. \n\nNews:\n{context}\n\nNow, write a one-page summary of all the news.\n\nSummary:',
          512,
          'rouge_l',
        ],
        ['trec', 'Please determine the type of the question below. Here are some examples of questions.\n\n{context}\n{input}', 64, 'classification'],
        [
          'triviaqa',
          'Answer the question based on the given passage. Only give me the answer and do not output any other words. The following are some examples.\n\n{context}\n\n{input}',
          32,
          'qa_f1',
        ],
        ['samsum', 'Summarize the dialogue into a few short sentences. The following are some examples.\n\n{context}\n\n{input}', 128, 'rouge_l'],
        ['lsht', '请判断给定新闻的类别，下面是一些例子。\n\n{context}\n{input}', 64, 'classification'],
        [
          'passage_count',
          'There are some paragraphs below sourced from Wikipedia. Some of them may be duplicates. Please carefully read these paragraphs and determine how many unique paragraphs there are after removing duplicates. In other words, how many non-repeating paragraphs are there in total?\n\n{context}\n\nPlease enter the final count of unique paragraphs after removing duplicates. The output format should only contain the number, such as 1, 2, 3, and so on.\n\nThe final answer is: ',
          32,
          'count',
        ],
        [
          'passage_retrieval_en',
          'Here are 30 paragraphs from Wikipedia, along with an abstract. Please determine which paragraph the abstract is from.\n\n{context}\n\nThe following is an abstract.\n\n{input}\n\nPlease enter the number of the paragraph that the abstract is from. The answer format must be like "Paragraph 1", "Paragraph 2", etc.\n\nThe answer is: ',
          32,
          'retrieval',
        ],
        [
          'passage_retrieval_zh',
          '以下是若干段落文字，以及其中一个段落的摘要。请确定给定的摘要出自哪一段。\n\n{context}\n\n下面是一个摘要\n\n{input}\n\n请输入摘要所属段落的编号。答案格式必须是"段落1"，"段落2"等格式\n\n答案是：',
          32,
          'retrieval_zh',
        ],
        ['lcc', 'Please complete the code given below. \n{context}Next line of code:\n', 64, 'code_sim'],
        ['repobench-p', 'Please complete the code given below. \n{context}{input}Next line of code:\n', 64, 'code_sim'],
      ] as [string, string, number, MetricName][]
    ).map(([name, prompt, max, metric]) => [name, task(prompt, max, metric, name)]),
  ),
);

/** LongBench tasks whose metric needs the jieba segmenter (not implemented). */
export const LONGBENCH_UNSUPPORTED = ['multifieldqa_zh', 'dureader', 'vcsum'] as const;

/**
 * FocusLLM's LongBench settings (eval_longbench.sh and main/eval_longbench.py):
 * local window 3500 and chunks ("memory_stride") of 1024 tokens, with the
 * official prompt cap (512) and native threshold (4096) whatever the
 * checkpoint's own defaults; prompts
 * longer than 15,500 tokens (BOS included) cut in the middle; generation
 * stops at EOS or at the newline token (the last id of "\n" encoded without
 * specials) for the tasks in `newlineStop`, with no minimum length (LongBench's
 * pred.py forces one token first on samsum; FocusLLM's script does not); no
 * chat template. Its prompt templates are Activation Beacon's: the typo
 * "asconcisely" in narrativeqa, and the summarization tasks with the
 * document first; `prompts` holds those that differ from LongBench's.
 */
export const LONGBENCH_OFFICIAL = Object.freeze({
  localWindow: 3500,
  chunkSize: 1024,
  promptCap: 512,
  minChunkedLength: 4096,
  maxLength: 15500,
  newlineStop: Object.freeze(['2wikimqa', 'hotpotqa', 'musique', 'multifieldqa_en', 'qasper', 'narrativeqa', 'samsum']) as readonly string[],
  prompts: Object.freeze({
    narrativeqa:
      'You are given a story, which can be either a novel or a movie script, and a question. Answer the question asconcisely as you can, using a single phrase if possible. Do not provide any explanation.\n\nStory: {context}\n\nNow, answer the question based on the story asconcisely as you can, using a single phrase if possible. Do not provide any explanation.\n\nQuestion: {input}\n\nAnswer:',
    gov_report:
      'Report:\n{context}\n\nYou are given a report by a government agency. Write a one-page summary of the report.\n\nNow, write a one-page summary of the report.\n\nSummary:',
    qmsum:
      'Transcript:\n{context}\n\nNow, you are given a meeting transcript and a query containing a question or instruction. Answer the query based on the above meeting transcript in one or more sentences.\n\nQuery: {input}\nAnswer:',
    multi_news: 'News:\n{context}\n\nYou are given several news passages. Write a one-page summary of all news. \n\nSummary:',
  }) as Readonly<Record<string, string>>,
});

/** The task as a protocol runs it: the official one takes FocusLLM's template and stop rule. */
export function longbenchProtocolTask(name: string, protocol: 'default' | 'official'): { name: string; task: LongbenchTask } {
  const r = longbenchTask(name);
  if (protocol !== 'official') return r;
  return {
    name: r.name,
    task: { ...r.task, prompt: LONGBENCH_OFFICIAL.prompts[r.name] ?? r.task.prompt, stopAtNewline: LONGBENCH_OFFICIAL.newlineStop.includes(r.name) },
  };
}

/**
 * pred.py's cut: when `text` tokenizes (BOS included) to more than maxLength
 * tokens, the decoded first floor(maxLength / 2) tokens followed by the
 * decoded last floor(maxLength / 2), special tokens skipped; the caller
 * tokenizes the result again.
 */
export function truncateMiddle(tok: Tokenizer, text: string, maxLength: number): { text: string; truncated: boolean } {
  if (!Number.isInteger(maxLength) || maxLength < 2) throw new Error(`maxLength must be an integer >= 2, got ${String(maxLength)}`);
  const ids = tok.encode(text);
  if (ids.length <= maxLength) return { text, truncated: false };
  const half = Math.floor(maxLength / 2);
  return { text: tok.decode(ids.slice(0, half), { skipSpecial: true }) + tok.decode(ids.slice(ids.length - half), { skipSpecial: true }), truncated: true };
}

/** A task by name; LongBench-E names ("qasper_e") map to the base task. */
export function longbenchTask(name: string): { name: string; task: LongbenchTask } {
  const base = name.endsWith('_e') && LONGBENCH_TASKS[name.slice(0, -2)] ? name.slice(0, -2) : name;
  const t = LONGBENCH_TASKS[base];
  if (t) return { name: base, task: t };
  if ((LONGBENCH_UNSUPPORTED as readonly string[]).includes(base))
    throw new Error(`LongBench task ${name} is scored on jieba word segmentation, which focusllm does not implement`);
  throw new Error(`unknown LongBench task ${JSON.stringify(name)}; known: ${Object.keys(LONGBENCH_TASKS).join(', ')}`);
}

export interface LongbenchRecord {
  context: string;
  input: string;
  answers: string[];
  all_classes: string[] | null;
  length?: number;
  _id?: string;
  [key: string]: unknown;
}

/** Checks one parsed record; `where` names it in errors ("file.jsonl:3"). */
export function checkRecord(v: unknown, where: string): LongbenchRecord {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${where}: a record must be a JSON object`);
  const r = v as Record<string, unknown>;
  for (const f of ['context', 'input'])
    if (typeof r[f] !== 'string') throw new Error(`${where}: field "${f}" must be a string`);
  if (!Array.isArray(r.answers) || r.answers.length === 0 || !r.answers.every((a) => typeof a === 'string'))
    throw new Error(`${where}: field "answers" must be a non-empty array of strings`);
  if (r.all_classes !== undefined && r.all_classes !== null && (!Array.isArray(r.all_classes) || !r.all_classes.every((a) => typeof a === 'string')))
    throw new Error(`${where}: field "all_classes" must be null or an array of strings`);
  if (r.length !== undefined && typeof r.length !== 'number') throw new Error(`${where}: field "length" must be a number`);
  return { ...r, all_classes: (r.all_classes as string[] | null | undefined) ?? null } as LongbenchRecord;
}

/** Reads a LongBench .jsonl file (one record a line; blank lines skipped). */
export function readLongbenchJsonl(file: string): LongbenchRecord[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: LongbenchRecord[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: ${(e as Error).message}`);
    }
    out.push(checkRecord(v, `${file}:${i + 1}`));
  });
  if (out.length === 0) throw new Error(`${file}: no records`);
  return out;
}

/** Python's str.format(**record) for the two fields the templates use, in one pass. */
export function formatPrompt(template: string, record: Pick<LongbenchRecord, 'context' | 'input'>): string {
  return template.replace(/\{(context|input)\}/g, (_, k: 'context' | 'input') => record[k]);
}

/** eval.py's scorer for one prediction: max over answers (first line only for some tasks). */
export function scorePrediction(taskName: string, prediction: string, answers: readonly string[], allClasses: readonly string[] | null): number {
  const { task: t } = longbenchTask(taskName);
  const p = t.firstLine ? prediction.replace(/^\n+/, '').split('\n')[0] : prediction;
  const fn = metricFn(t.metric);
  let best = 0;
  for (const a of answers) best = Math.max(best, fn(p, a, allClasses));
  return best;
}

export interface LongbenchDetail {
  index: number;
  id?: string;
  /** the record's "length" field (LongBench: words) */
  length?: number;
  inputTokens: number;
  /** the prompt was cut in the middle to maxLength tokens */
  truncated: boolean;
  prediction: string;
  answers: string[];
  score: number;
  newTokens: number;
  ingestSeconds: number;
  decodeSeconds: number;
  mode: 'native' | 'focus';
  chunks: number;
}

export interface LongbenchResult {
  task: 'longbench';
  protocol: 'default' | 'official';
  dataset: string;
  metric: MetricName;
  /** 100 x mean score, rounded to 2 decimals like eval.py */
  score: number;
  records: number;
  /** LongBench-E buckets by the records' length field, when every record has one */
  byLength?: Record<'0-4k' | '4-8k' | '8k+', { records: number; score: number | null }>;
  maxNewTokens: number;
  chat: boolean;
  maxLength: number | null;
  /** generation also stopped at a newline */
  stopAtNewline: boolean;
  /** the FocusLLM parameters in force */
  focus: FocusParams;
  details: LongbenchDetail[];
  seconds: number;
}

export interface LongbenchProgress {
  done: number;
  total: number;
  phase: 'ingest' | 'decode' | 'done';
  ingest?: IngestProgress;
  /** mean score so far x 100 */
  score: number;
}

export interface LongbenchOptions {
  task: string;
  /**
   * "default": LongBench's templates and pred.py's rules. "official":
   * FocusLLM's settings (LONGBENCH_OFFICIAL): its templates and newline stops,
   * and its FocusLLM parameters and maxLength where `focus` / `maxLength`
   * leave them unset.
   */
  protocol?: 'default' | 'official';
  records: LongbenchRecord[];
  /** the first N records only */
  limit?: number;
  /** default: the task's dataset2maxlen */
  maxNewTokens?: number;
  /** cut prompts longer than this many tokens in the middle, like pred.py (default: no cut; official: 15500) */
  maxLength?: number;
  /** render the prompt with the checkpoint's chat template, for the tasks pred.py does (default false) */
  chat?: boolean;
  focus?: FocusOptions;
  signal?: AbortSignal;
  onProgress?: (p: LongbenchProgress) => void;
  onRecord?: (d: LongbenchDetail) => void;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

export async function runLongbench(model: Model, opts: LongbenchOptions): Promise<LongbenchResult> {
  const tok = model.tokenizer;
  if (!tok) throw new Error(`${model.dir} has no tokenizer.json: LongBench prompts are text`);
  const t0 = performance.now();
  const protocol = opts.protocol ?? 'default';
  if (protocol !== 'default' && protocol !== 'official')
    throw new Error(`option protocol must be "default" or "official", got ${JSON.stringify(opts.protocol)}`);
  const official = protocol === 'official';
  const { name, task: t } = longbenchProtocolTask(opts.task, protocol);
  if (!Array.isArray(opts.records) || opts.records.length === 0) throw new Error('option records must be a non-empty array');
  const records = opts.records.map((r, i) => checkRecord(r, `record ${i}`));
  if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 1))
    throw new Error(`option limit must be a positive integer, got ${String(opts.limit)}`);
  const maxNew = opts.maxNewTokens ?? t.maxNewTokens;
  if (!Number.isInteger(maxNew) || maxNew < 1) throw new Error(`option maxNewTokens must be a positive integer, got ${String(opts.maxNewTokens)}`);
  const maxLength = opts.maxLength ?? (official ? LONGBENCH_OFFICIAL.maxLength : null);
  // Options the caller set win over the preset (undefined ones do not mask it).
  const { localWindow, chunkSize, promptCap, minChunkedLength } = LONGBENCH_OFFICIAL;
  const sessionFocus: FocusOptions = { ...(official ? { localWindow, chunkSize, promptCap, minChunkedLength } : {}), ...definedOnly(opts.focus ?? {}) };
  const { cacheType: _c, bosId: _b, keepChunkCaches: _k, ...params } = sessionFocus;
  // As the session resolves them: the checkpoint's defaults where nothing is set.
  const focus = resolveFocusParams({ ...model.focusDefaults, ...params });
  if (maxLength !== null && (!Number.isInteger(maxLength) || maxLength < 2))
    throw new Error(`option maxLength must be an integer >= 2, got ${String(opts.maxLength)}`);
  if (t.metric === 'classification')
    records.forEach((r, i) => {
      if (!r.all_classes) throw new Error(`record ${i}: task ${name} needs the field "all_classes"`);
    });
  const useChat = Boolean(opts.chat) && t.chat;
  if (useChat && !tok.hasChatTemplate) throw new Error(`option chat: ${model.dir} has no chat template`);
  const bos = sessionFocus.bosId ?? model.config.bosTokenId;
  const stopIds = new Set([...tok.eosIds, ...model.config.eosTokenIds]);
  if (t.stopAtNewline) {
    const nl = tok.encode('\n', { addSpecial: false });
    if (nl.length) stopIds.add(nl[nl.length - 1]);
  }
  const selected = records.slice(0, opts.limit ?? records.length);
  const details: LongbenchDetail[] = [];
  let sum = 0;
  for (let i = 0; i < selected.length; i++) {
    opts.signal?.throwIfAborted();
    const r = selected[i];
    const progress = (phase: LongbenchProgress['phase'], ingest?: IngestProgress) =>
      opts.onProgress?.({ done: i, total: selected.length, phase, ingest, score: i ? (100 * sum) / i : 0 });
    progress('ingest');
    const prompt = formatPrompt(t.prompt, r);
    const { text, truncated } = maxLength !== null ? truncateMiddle(tok, prompt, maxLength) : { text: prompt, truncated: false };
    let ids: number[];
    if (useChat) ids = tok.encode(tok.applyChatTemplate([{ role: 'user', content: text }], { addGenerationPrompt: true }), { addSpecial: false });
    else ids = tok.encode(text);
    if (!useChat && ids[0] !== bos) ids.unshift(bos);
    let decoding = false;
    const g = await greedyDecode(model, ids, {
      maxNewTokens: maxNew,
      stopIds,
      minNewTokens: t.stopAtNewline && !official ? 1 : 0,
      stopWhen: () => {
        if (!decoding) progress('decode');
        decoding = true;
        return false;
      },
      focus: sessionFocus,
      signal: opts.signal,
      onIngestProgress: (p) => progress('ingest', p),
    });
    const prediction = tok.decode(g.ids, { skipSpecial: true });
    const score = scorePrediction(name, prediction, r.answers, r.all_classes);
    sum += score;
    const d: LongbenchDetail = {
      index: i,
      ...(typeof r._id === 'string' ? { id: r._id } : {}),
      ...(typeof r.length === 'number' ? { length: r.length } : {}),
      inputTokens: ids.length,
      truncated,
      prediction,
      answers: r.answers,
      score,
      newTokens: g.ids.length,
      ingestSeconds: g.ingestSeconds,
      decodeSeconds: g.decodeSeconds,
      mode: g.mode,
      chunks: g.chunks,
    };
    details.push(d);
    opts.onRecord?.(d);
  }
  opts.onProgress?.({ done: selected.length, total: selected.length, phase: 'done', score: (100 * sum) / selected.length });
  let byLength: LongbenchResult['byLength'];
  if (details.every((d) => d.length !== undefined)) {
    const bucket = (lo: number, hi: number) => {
      const sel = details.filter((d) => d.length! >= lo && d.length! < hi);
      return { records: sel.length, score: sel.length ? round2((100 * sel.reduce((s, d) => s + d.score, 0)) / sel.length) : null };
    };
    byLength = { '0-4k': bucket(-Infinity, 4000), '4-8k': bucket(4000, 8000), '8k+': bucket(8000, Infinity) };
  }
  return {
    task: 'longbench',
    protocol,
    dataset: name,
    metric: t.metric,
    score: round2((100 * sum) / selected.length),
    records: selected.length,
    ...(byLength ? { byLength } : {}),
    maxNewTokens: maxNew,
    chat: useChat,
    maxLength,
    stopAtNewline: t.stopAtNewline,
    focus,
    details,
    seconds: (performance.now() - t0) / 1000,
  };
}
