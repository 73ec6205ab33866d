// LongBench metrics on examples worked out by hand (the working is in the
// comments), including the places where LongBench's reference code departs
// from the textbook formula and our numbers must follow it.
import t from 'tap';

import {
  classificationScore,
  codeSimScore,
  countScore,
  fuzzRatio,
  normalizeAnswer,
  qaF1Score,
  retrievalScore,
  rougeLScore,
  sequenceMatcherRatio,
} from '../lib/eval/metrics';
import { formatPrompt, LONGBENCH_TASKS, longbenchTask, scorePrediction } from '../lib/eval/longbench';

const close = (t: { ok: (c: boolean, m: string) => unknown }, got: number, want: number, msg: string, tol = 1e-7) =>
  t.ok(Math.abs(got - want) <= tol, `${msg}: ${got} ~ ${want}`);

t.test('normalizeAnswer: lowercase, punctuation, articles, whitespace', async (t) => {
  // "  The  U.S.A. -- a Nation!  " -> lower -> drop punctuation "  the  usa  a nation  "
  // -> articles "the", "a" become spaces -> collapse: "usa nation"
  t.equal(normalizeAnswer('  The  U.S.A. -- a Nation!  '), 'usa nation');
  // "an" inside "anthem" is not a word of its own
  t.equal(normalizeAnswer('An anthem'), 'anthem');
});

t.test('qa_f1_score: token F1 with overlaps', async (t) => {
  // pred -> [eiffel, tower, in, paris] (4), gold -> [eiffel, tower] (2); common 2
  // P = 2/4, R = 2/2, F1 = 2 * 0.5 * 1 / 1.5 = 2/3
  close(t, qaF1Score('The Eiffel Tower, in Paris.', 'Eiffel Tower'), 2 / 3, 'partial answer');
  // pred [new, york, new, york], gold [new, york, city]: multiset overlap new x1, york x1 = 2
  // P = 2/4, R = 2/3, F1 = (2/3) / (7/6) = 4/7
  close(t, qaF1Score('new york new york', 'New York City'), 4 / 7, 'repeated tokens count once per gold occurrence');
  t.equal(qaF1Score('An anthem', 'anthem'), 1, 'article dropped, word kept');
  t.equal(qaF1Score('Berlin', 'Paris'), 0, 'no overlap');
  t.equal(qaF1Score('', 'Paris'), 0, 'empty prediction');
});

t.test('rouge_score: ROUGE-L F as the rouge package computes it', async (t) => {
  // One sentence each. ref words [the cat is on the mat], distinct m = 5;
  // hyp distinct n = 5. LCS = "the cat on the mat" (5 tokens) but the
  // package counts distinct LCS words: {the, cat, on, mat} = 4.
  // R = P = 4/5 -> F = 2 * 0.64 / (1.6 + 1e-8) = 0.8 (the textbook value would be 5/6)
  close(t, rougeLScore('the cat sat on the mat', 'the cat is on the mat'), 0.8, 'single sentence');
  // Sentences split on ".": ref ["a b c", "d e"], hyp ["a c", "e"].
  // m = |{a,b,c,d,e}| = 5, n = |{a,c,e}| = 3.
  // ref 1 vs hyp: LCS(abc, ac) = {a, c}, LCS(abc, e) = {}; ref 2: LCS(de, ac) = {}, LCS(de, e) = {e}.
  // union {a, c, e} = 3 -> R = 3/5, P = 3/3, F = 2 * 0.6 / 1.6 = 0.75
  close(t, rougeLScore('a c. e', 'a b c. d e'), 0.75, 'summary level, union LCS');
  // "a b. " splits into "a b" and " " -> the blank piece survives as the word "":
  // n = |{a, b, ""}| = 3, m = 2, LCS words {a, b}: R = 1, P = 2/3, F = (4/3) / (5/3) = 0.8
  close(t, rougeLScore('a b. ', 'a b'), 0.8, 'blank sentence after the last period');
  close(t, rougeLScore('a b', 'a b'), 1, 'identical', 1e-7);
  t.equal(rougeLScore('', 'a b'), 0, 'empty prediction (the package raises; LongBench scores 0)');
  t.equal(rougeLScore('...', 'a b'), 0, 'only periods');
});

t.test('classification_score (trec) with all_classes', async (t) => {
  const classes = ['Food', 'Animal', 'Color'];
  t.equal(classificationScore('Food', 'Food', classes), 1, 'exact class');
  // matches [Food, Animal]; gold among them -> 1/2
  t.equal(classificationScore('Food or Animal', 'Animal', classes), 0.5, 'two classes named');
  t.equal(classificationScore('Vehicle', 'Food', classes), 0, 'no class named');
  // matches [Other, Other location]; "Other" is a proper substring of the gold -> dropped -> 1/1
  t.equal(classificationScore('Other location', 'Other location', ['Other', 'Other location', 'City']), 1, 'substring class dropped');
  // matches [Other, location, Other location]: removing "Other" while iterating
  // skips "location", which survives -> [location, Other location] -> 1/2
  t.equal(classificationScore('Other location', 'Other location', ['Other', 'location', 'Other location']), 0.5, "LongBench's skip");
});

t.test('retrieval_score with "Paragraph N" answers', async (t) => {
  t.equal(retrievalScore('Paragraph 3', 'Paragraph 3'), 1);
  // numbers [3, 13], one right -> 1/2
  t.equal(retrievalScore('Paragraph 3 or Paragraph 13', 'Paragraph 3'), 0.5);
  t.equal(retrievalScore('The answer is Paragraph 12, not 2', 'Paragraph 12'), 0.5);
  t.equal(retrievalScore('paragraph 30', 'Paragraph 3'), 0, '30 is not 3');
  t.equal(retrievalScore('no idea', 'Paragraph 3'), 0, 'no number');
  t.throws(() => retrievalScore('3', 'Page 3'), /does not name a paragraph/);
});

t.test('count_score', async (t) => {
  t.equal(countScore('5', '5'), 1);
  // numbers [5, 12] -> 1/2
  t.equal(countScore('There are 5 unique paragraphs out of 12', '5'), 0.5);
  t.equal(countScore('05', '5'), 0, 'compared as strings');
  t.equal(countScore('five', '5'), 0);
});

t.test('code_sim_score: fuzz.ratio on the first non-comment line', async (t) => {
  // "abcd"/"abce": longest match "abc", then d vs e nothing: M = 3, 2M/T = 6/8 -> 75
  t.equal(fuzzRatio('abcd', 'abce'), 75);
  // kitten/sitting: "itt" (3), then right of it "en" vs "ing": "n" (1); M = 4, 8/13 = 61.5 -> 62
  t.equal(fuzzRatio('kitten', 'sitting'), 62);
  // only "a" matches: M = 1, 2/16 -> 12.5 -> Python rounds half to even: 12
  t.equal(fuzzRatio('abcdefgh', 'aijklmno'), 12);
  t.equal(fuzzRatio('', ''), 100, 'equal strings first');
  t.equal(fuzzRatio('', 'x'), 0, 'one empty');
  // b of 200+ characters: "a" occurs 199 > 200/100 + 1 times, so it cannot seed
  // a match (difflib autojunk); only "b" matches: M = 1, 2/206 = 0.97% -> 1
  close(t, sequenceMatcherRatio('baaaaa', 'a'.repeat(199) + 'b'), 2 / 206, 'autojunk');
  // lines after stripping leading newlines: "# comment", "```python", "x = foo(1)", ...
  // -> "x = foo(1)" vs "x = foo(2)": "x = foo(" (8) + ")" (1) = 9, 18/20 -> 90
  t.equal(codeSimScore('\n# comment\n```python\nx = foo(1)\nmore', 'x = foo(2)'), 0.9);
  t.equal(codeSimScore('// only\n# comments', 'x = 1'), 0, 'no code line: empty prediction');
});

t.test('LongBench tasks: templates, lengths, scorer rules', async (t) => {
  const need = ['narrativeqa', 'qasper', 'multifieldqa_en', 'hotpotqa', '2wikimqa', 'musique', 'gov_report', 'qmsum', 'multi_news', 'trec', 'triviaqa', 'samsum', 'passage_count', 'passage_retrieval_en', 'lcc', 'repobench-p'];
  for (const n of need) t.ok(LONGBENCH_TASKS[n], n);
  t.equal(LONGBENCH_TASKS.gov_report.maxNewTokens, 512);
  t.equal(LONGBENCH_TASKS.hotpotqa.maxNewTokens, 32);
  t.equal(LONGBENCH_TASKS.samsum.maxNewTokens, 128);
  t.equal(LONGBENCH_TASKS.trec.metric, 'classification');
  t.equal(LONGBENCH_TASKS.lcc.metric, 'code_sim');
  t.equal(longbenchTask('qasper_e').name, 'qasper', 'LongBench-E names');
  t.throws(() => longbenchTask('dureader'), /jieba/);
  t.throws(() => longbenchTask('nope'), /unknown LongBench task "nope"/);
  // {input} inside the context is not substituted again
  t.equal(formatPrompt('{context}|{input}', { context: 'a {input}', input: 'b' }), 'a {input}|b');
  t.equal(
    formatPrompt(LONGBENCH_TASKS['repobench-p'].prompt, { context: 'CTX\n', input: 'IN\n' }),
    'Please complete the code given below. \nCTX\nIN\nNext line of code:\n',
  );
  // trec scores only the first line after leading newlines
  t.equal(scorePrediction('trec', '\n\nFood\nAnimal', ['Food'], ['Food', 'Animal']), 1);
  t.equal(scorePrediction('trec', 'Food Animal', ['Food'], ['Food', 'Animal']), 0.5);
  // max over answers: F1 with "Paris" = 1, with "City of Light" = 0
  t.equal(scorePrediction('hotpotqa', 'Paris', ['City of Light', 'Paris'], null), 1);
});
