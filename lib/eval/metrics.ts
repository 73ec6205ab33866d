// LongBench's metrics (THUDM/LongBench metrics.py), rewritten to give the same
// numbers: token F1 with SQuAD-style English normalisation, ROUGE-L as the
// `rouge` package (pltrdy, 1.0.1) computes it, trec-style classification,
// passage retrieval and counting, and fuzzywuzzy's ratio for code.
// Each returns a value in [0, 1]; LongBench reports 100 x the mean over
// records of the max over a record's answers.

// Python's string.punctuation (ASCII only, as LongBench uses it).
const PUNCTUATION = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');

/** Python's str.split() with no argument: split on runs of whitespace, drop empties. */
function pySplit(s: string): string[] {
  return s.split(/\s+/u).filter((w) => w.length > 0);
}

/** Lowercase, drop punctuation, drop the articles a/an/the, collapse whitespace. */
export function normalizeAnswer(s: string): string {
  let t = s.toLowerCase();
  t = Array.from(t)
    .filter((ch) => !PUNCTUATION.has(ch))
    .join('');
  // Python 3's \b is Unicode-aware: a word character is a letter, digit or "_".
  t = t.replace(/(?<![\p{L}\p{N}_])(a|an|the)(?![\p{L}\p{N}_])/gu, ' ');
  return pySplit(t).join(' ');
}

/** F1 of two token lists, counting repeated tokens as a multiset (collections.Counter &). */
export function tokenF1(prediction: string[], groundTruth: string[]): number {
  const counts = new Map<string, number>();
  for (const w of groundTruth) counts.set(w, (counts.get(w) ?? 0) + 1);
  let same = 0;
  for (const w of prediction) {
    const c = counts.get(w) ?? 0;
    if (c > 0) {
      same++;
      counts.set(w, c - 1);
    }
  }
  if (same === 0) return 0;
  const precision = same / prediction.length;
  const recall = same / groundTruth.length;
  return (2 * precision * recall) / (precision + recall);
}

/** qa_f1_score: token F1 after normalizeAnswer. */
export function qaF1Score(prediction: string, groundTruth: string): number {
  return tokenF1(normalizeAnswer(prediction).split(' ').filter(Boolean), normalizeAnswer(groundTruth).split(' ').filter(Boolean));
}

// --- ROUGE-L (summary level), as pltrdy/rouge with its default exclusive=True ---
//
// That implementation differs from the textbook formula, and LongBench's
// numbers come from it: sentences are split on "."; a sentence's LCS with each
// hypothesis sentence contributes its *words* (not positions) to a set, so
// LLCS = number of distinct words in the union of all LCSs; m and n are the
// numbers of *distinct* words of reference and hypothesis.

function rougeSentences(text: string): string[] {
  // [" ".join(_.split()) for _ in text.split(".") if len(_) > 0]: the length
  // test comes before the whitespace fix, so a blank piece stays as "".
  return text
    .split('.')
    .filter((p) => p.length > 0)
    .map((p) => pySplit(p).join(' '));
}

function words(sentences: string[]): string[] {
  return sentences.flatMap((s) => s.split(' '));
}

/** The words of one LCS of x and y, reconstructed with the rouge package's tie-breaking. */
function lcsWords(x: string[], y: string[]): string[] {
  const n = x.length;
  const m = y.length;
  const w = m + 1;
  const table = new Int32Array((n + 1) * w);
  for (let i = 1; i <= n; i++)
    for (let j = 1; j <= m; j++)
      table[i * w + j] = x[i - 1] === y[j - 1] ? table[(i - 1) * w + j - 1] + 1 : Math.max(table[(i - 1) * w + j], table[i * w + j - 1]);
  const out: string[] = [];
  let i = n;
  let j = m;
  while (i > 0 && j > 0) {
    if (x[i - 1] === y[j - 1]) {
      out.push(x[i - 1]);
      i--;
      j--;
    } else if (table[(i - 1) * w + j] > table[i * w + j - 1]) i--;
    else j--;
  }
  return out.reverse();
}

/** rouge_score: ROUGE-L F of `rouge.Rouge().get_scores([prediction], [reference])`; 0 where it raises (empty text). */
export function rougeLScore(prediction: string, reference: string): number {
  const hyp = rougeSentences(prediction);
  const ref = rougeSentences(reference);
  if (hyp.length === 0 || ref.length === 0) return 0;
  const m = new Set(words(ref)).size;
  const n = new Set(words(hyp)).size;
  const union = new Set<string>();
  for (const r of ref) {
    const rw = r.split(' ');
    for (const h of hyp) for (const word of lcsWords(rw, h.split(' '))) union.add(word);
  }
  const llcs = union.size;
  const r = llcs / m;
  const p = llcs / n;
  return 2.0 * ((p * r) / (p + r + 1e-8));
}

// --- classification, retrieval, counting ---

/**
 * classification_score (trec, lsht): the classes named in the prediction;
 * those that are a proper substring of the answer are dropped; score 1/k when
 * the answer is among the k left.
 */
export function classificationScore(prediction: string, groundTruth: string, allClasses: readonly string[]): number {
  const matches = allClasses.filter((c) => prediction.includes(c));
  // LongBench removes items from the list while iterating over it, which skips
  // the item after each removed one; done the same way for equal numbers.
  for (let i = 0; i < matches.length; i++) {
    const term = matches[i];
    if (groundTruth.includes(term) && term !== groundTruth) matches.splice(matches.indexOf(term), 1);
  }
  return matches.includes(groundTruth) ? 1 / matches.length : 0;
}

/** Python's re.findall(r"\d+", s) (Unicode decimal digits). */
function numbersIn(s: string): string[] {
  return s.match(/\p{Nd}+/gu) ?? [];
}

/** count_score (passage_count): the fraction of numbers in the prediction equal to the answer. */
export function countScore(prediction: string, groundTruth: string): number {
  const nums = numbersIn(prediction);
  if (nums.length === 0) return 0;
  return nums.filter((x) => x === String(groundTruth)).length / nums.length;
}

/** retrieval_score (passage_retrieval_en): the answer is "Paragraph N"; the fraction of numbers in the prediction equal to N. */
export function retrievalScore(prediction: string, groundTruth: string, pattern = /Paragraph (\p{Nd}+)/u): number {
  const m = pattern.exec(groundTruth);
  if (!m) throw new Error(`retrieval answer ${JSON.stringify(groundTruth)} does not name a paragraph (${pattern.source})`);
  const nums = numbersIn(prediction);
  if (nums.length === 0) return 0;
  return nums.filter((x) => x === m[1]).length / nums.length;
}

/** retrieval_zh_score (passage_retrieval_zh): answers like "段落3". */
export function retrievalZhScore(prediction: string, groundTruth: string): number {
  return retrievalScore(prediction, groundTruth, /段落(\p{Nd}+)/u);
}

// --- code: fuzzywuzzy's fuzz.ratio (pure-Python path: difflib.SequenceMatcher) ---

/**
 * difflib.SequenceMatcher(None, a, b).ratio(): 2 * M / (len(a) + len(b)), M
 * the characters in the matching blocks that Ratcliff/Obershelp finds
 * (longest match, then recursively left and right of it), with difflib's
 * "autojunk" rule: in b of 200+ characters, characters occurring more than
 * 1% + 1 times are not used to seed matches.
 */
export function sequenceMatcherRatio(a: string, b: string): number {
  const A = Array.from(a); // code points, as Python indexes str
  const B = Array.from(b);
  const b2j = new Map<string, number[]>();
  B.forEach((ch, j) => {
    const l = b2j.get(ch);
    if (l) l.push(j);
    else b2j.set(ch, [j]);
  });
  if (B.length >= 200) {
    const ntest = Math.floor(B.length / 100) + 1;
    for (const [ch, idx] of [...b2j]) if (idx.length > ntest) b2j.delete(ch);
  }
  const longest = (alo: number, ahi: number, blo: number, bhi: number): [number, number, number] => {
    let besti = alo;
    let bestj = blo;
    let bestsize = 0;
    let j2len = new Map<number, number>();
    for (let i = alo; i < ahi; i++) {
      const next = new Map<number, number>();
      for (const j of b2j.get(A[i]) ?? []) {
        if (j < blo) continue;
        if (j >= bhi) break;
        const k = (j2len.get(j - 1) ?? 0) + 1;
        next.set(j, k);
        if (k > bestsize) {
          besti = i - k + 1;
          bestj = j - k + 1;
          bestsize = k;
        }
      }
      j2len = next;
    }
    // Extend over equal characters that autojunk kept out of b2j (no isjunk: nothing else is junk).
    while (besti > alo && bestj > blo && A[besti - 1] === B[bestj - 1]) {
      besti--;
      bestj--;
      bestsize++;
    }
    while (besti + bestsize < ahi && bestj + bestsize < bhi && A[besti + bestsize] === B[bestj + bestsize]) bestsize++;
    return [besti, bestj, bestsize];
  };
  let matches = 0;
  const queue: [number, number, number, number][] = [[0, A.length, 0, B.length]];
  while (queue.length) {
    const [alo, ahi, blo, bhi] = queue.pop()!;
    const [i, j, k] = longest(alo, ahi, blo, bhi);
    if (k) {
      matches += k;
      if (alo < i && blo < j) queue.push([alo, i, blo, j]);
      if (i + k < ahi && j + k < bhi) queue.push([i + k, ahi, j + k, bhi]);
    }
  }
  const total = A.length + B.length;
  return total ? (2.0 * matches) / total : 1.0;
}

/** Python 3's round(): to nearest, ties to even. */
function pyRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** fuzzywuzzy fuzz.ratio: 100 for equal strings, 0 when one is empty, else round(100 * ratio). */
export function fuzzRatio(a: string, b: string): number {
  if (a === b) return 100;
  if (a.length === 0 || b.length === 0) return 0;
  return pyRound(100 * sequenceMatcherRatio(a, b));
}

/** code_sim_score (lcc, repobench-p): fuzz.ratio / 100 of the first line that is not a comment or a code fence. */
export function codeSimScore(prediction: string, groundTruth: string): number {
  const lines = prediction.replace(/^\n+/, '').split('\n');
  const line = lines.find((l) => !l.includes('`') && !l.includes('#') && !l.includes('//')) ?? '';
  return fuzzRatio(line, groundTruth) / 100;
}

export type MetricName = 'qa_f1' | 'rouge_l' | 'classification' | 'retrieval' | 'retrieval_zh' | 'count' | 'code_sim';

/** A metric by name: (prediction, one answer, all_classes) -> [0, 1]. */
export function metricFn(name: MetricName): (prediction: string, answer: string, allClasses: readonly string[] | null) => number {
  switch (name) {
    case 'qa_f1':
      return (p, a) => qaF1Score(p, a);
    case 'rouge_l':
      return (p, a) => rougeLScore(p, a);
    case 'classification':
      return (p, a, c) => {
        if (!c) throw new Error('classification needs the record field all_classes');
        return classificationScore(p, a, c);
      };
    case 'retrieval':
      return (p, a) => retrievalScore(p, a);
    case 'retrieval_zh':
      return (p, a) => retrievalZhScore(p, a);
    case 'count':
      return (p, a) => countScore(p, a);
    case 'code_sim':
      return (p, a) => codeSimScore(p, a);
  }
}
