// Every module of lib/ loads, so that coverage counts the files no other test
// loads (tap measures only what a test process loads: without this a module
// nobody imports would not lower the figure). Also: the package entry exports
// no undefined names, and every CLI command has a usage text under its name.
import fs from 'node:fs';
import path from 'node:path';

import t from 'tap';

import type { Command } from '../lib/cli/command';

const lib = path.join(__dirname, '..', 'lib');
const modules = (fs.readdirSync(lib, { recursive: true }) as string[])
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  .map((f) => f.split(path.sep).join('/'))
  .sort();

t.test('every module of lib/ loads', async (t) => {
  t.ok(modules.length >= 40, `${modules.length} modules`);
  for (const f of modules) {
    const m = require(path.join(lib, f)) as Record<string, unknown>;
    t.ok(m && typeof m === 'object', f);
  }
});

t.test('lib/index.ts exports no undefined names', async (t) => {
  const index = require('../lib/index') as Record<string, unknown>;
  const names = Object.keys(index);
  t.ok(names.length > 30, `${names.length} exports`);
  t.same(names.filter((n) => index[n] === undefined), [], 'all defined');
  for (const n of ['loadModel', 'Model', 'Session', 'estimateMemory', 'StopMatcher', 'buildInput', 'runTraining', 'native'])
    t.type(index[n], 'function', n);
});

t.test('every CLI command has a usage text under its name', async (t) => {
  const cli = modules.filter((f) => f.startsWith('cli/') && !['cli/main.ts', 'cli/args.ts', 'cli/command.ts', 'cli/common.ts'].includes(f));
  t.ok(cli.length >= 10, `${cli.length} commands`);
  for (const f of cli) {
    const name = path.basename(f, '.ts');
    const { command } = require(path.join(lib, f)) as { command: Command };
    t.match(command.usage(), new RegExp(`^usage: focusllm ${name} \\[options\\]\\n`), name);
  }
});
