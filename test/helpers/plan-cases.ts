// The table of chunk plans that lib/plan.ts (the reference) writes to
// test/fixtures/plan-cases.json, for the C++ copy of the plan
// (test/cpp/common/focus_plan.h, checked by test/cpp/plan_test.cpp) to
// agree with. test/plan-cases.test.ts fails when the committed file is not
// what this writes; regenerate it with
//
//   npx tsx test/helpers/plan-cases.ts
import fs from 'node:fs';
import path from 'node:path';

import { chunkCount, planIngest, type FocusParams } from '../../lib/plan';

export const PLAN_CASES_FILE = path.join(__dirname, '..', 'fixtures', 'plan-cases.json');

const BOS = 1;

// Small parameters cover every boundary: L just under / at the native
// threshold, memory an exact multiple of chunkSize or not, a single short
// chunk, the prompt capped by each of promptCap, chunkSize and localWindow,
// inputs with and without BOS first (and BOS only first: chunk 0 alone
// starts with it).
const PARAMS: FocusParams[] = [
  { localWindow: 4, chunkSize: 3, promptCap: 2, minChunkedLength: 6 },
  { localWindow: 4, chunkSize: 3, promptCap: 8, minChunkedLength: 5 },
  { localWindow: 2, chunkSize: 5, promptCap: 8, minChunkedLength: 3 },
  { localWindow: 6, chunkSize: 4, promptCap: 5, minChunkedLength: 10 },
  { localWindow: 1, chunkSize: 1, promptCap: 1, minChunkedLength: 2 },
  { localWindow: 8, chunkSize: 8, promptCap: 3, minChunkedLength: 9 },
];
const LENGTHS = [1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 16, 17, 24, 25];

export interface PlanCase {
  params: FocusParams;
  ids: number[];
  mode: 'native' | 'focus';
  /** chunkCount(ids.length, params) */
  chunkCount: number;
  memory?: number;
  prompt?: number[];
  chunks?: number[][];
  local: number[];
}

export function planCases(): { bos: number; cases: PlanCase[] } {
  const cases: PlanCase[] = [];
  for (const params of PARAMS)
    for (const L of LENGTHS)
      for (const bosFirst of [true, false]) {
        // Token ids 10, 11, ... (never BOS), with BOS first when asked.
        const ids = Array.from({ length: L }, (_, i) => (bosFirst && i === 0 ? BOS : 10 + i));
        const plan = planIngest(ids, params, BOS);
        cases.push(
          plan.mode === 'native'
            ? { params, ids, mode: 'native', chunkCount: chunkCount(L, params), local: plan.local }
            : {
                params,
                ids,
                mode: 'focus',
                chunkCount: chunkCount(L, params),
                memory: plan.memory,
                prompt: plan.prompt,
                chunks: plan.chunks,
                local: plan.local,
              },
        );
      }
  return { bos: BOS, cases };
}

/** The file's text: one case per line, so that a diff shows which changed. */
export function planCasesText(): string {
  const { bos, cases } = planCases();
  return `{"bos": ${bos}, "cases": [\n${cases.map((c) => JSON.stringify(c)).join(',\n')}\n]}\n`;
}

if (require.main === module) {
  fs.writeFileSync(PLAN_CASES_FILE, planCasesText());
  console.log(`wrote ${PLAN_CASES_FILE}`);
}
