// test/fixtures/plan-cases.json is what lib/plan.ts plans today: the table
// the C++ copy of the plan (test/cpp/plan_test.cpp) is checked against.
import fs from 'node:fs';

import t from 'tap';

import { PLAN_CASES_FILE, planCases, planCasesText } from './helpers/plan-cases';

t.test('the committed plan table is what lib/plan.ts writes', async (t) => {
  t.equal(fs.readFileSync(PLAN_CASES_FILE, 'utf8'), planCasesText(), 'regenerate with: npx tsx test/helpers/plan-cases.ts');
  const { cases } = planCases();
  // The table covers both modes, single and several chunks, BOS first or not.
  t.ok(cases.some((c) => c.mode === 'native'), 'native cases');
  t.ok(cases.some((c) => c.mode === 'focus' && c.chunks!.length === 1), 'one chunk');
  t.ok(cases.some((c) => c.mode === 'focus' && c.chunks!.length > 3), 'several chunks');
  t.ok(cases.some((c) => c.mode === 'focus' && c.memory! % c.params.chunkSize !== 0), 'a short last chunk');
  t.ok(cases.some((c) => c.mode === 'focus' && c.memory! % c.params.chunkSize === 0), 'memory a multiple of chunkSize');
});
