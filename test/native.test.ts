// The addon loader: a missing build says which command builds it (when the
// addon is first needed, not at require); a loaded build reports its backends.
import { spawnSync } from 'node:child_process';
import path from 'node:path';

import t from 'tap';

import { BUILD_HELP, native } from '../lib/native';

const root = path.resolve(__dirname, '..');

t.test('a missing addon: require works, loadModel() is the Error that names the build command', async (t) => {
  const code = `
    const m = require('./lib/index');
    console.log('REQUIRED ' + typeof m.loadModel + ' ' + m.planIngest([1, 2, 3], m.resolveFocusParams({}), 1).mode);
    m.loadModel('.').then(
      () => console.log('LOADED'),
      (e) => console.log(e instanceof Error ? 'ERROR ' + e.message : 'THROWN ' + String(e)),
    );`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], {
    cwd: root,
    // no coverage from a child that loads lib/ through tsx (see test/model-files.test.ts)
    env: { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: '0', FOCUSLLM_ADDON: path.join(root, 'no-such-dir', 'focusllm.node') },
    encoding: 'utf8',
  });
  t.equal(r.status, 0, 'the process does not crash');
  t.match(r.stdout, /^REQUIRED function native$/m, "require('focusllm') works without the addon (as the README says)");
  t.match(r.stdout, /^ERROR focusllm: the native addon is not built/m, 'loadModel() rejects');
  t.match(r.stdout, /npm run build:addon/, 'says which command builds it');
  t.match(BUILD_HELP, /npm rebuild focusllm/, 'and what to do when npm skipped install scripts');
});

t.test('the built addon reports its backends', async (t) => {
  const addon = native();
  const b = addon.backends();
  t.equal(b.cpu, true);
  t.type(b.cuda.compiled, 'boolean');
  t.type(b.cuda.available, 'boolean');
  if (!b.cuda.available) t.match(b.cuda.reason, /\S/, 'says why CUDA is not usable');
  t.match(addon.version, /^\d+\.\d+\.\d+$/);
});
