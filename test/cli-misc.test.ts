// Small CLI behaviours: doctor --backend, generate --ids on a model without a
// tokenizer.
import fs from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { main } from '../lib/cli/main';
import { loadModel } from '../lib/model';
import { native } from '../lib/native';
import { captureStdout } from './helpers/cli';
import { writeTinyModel } from './helpers/checkpoint';

t.test('doctor --backend says whether that backend is usable, and exits 1 when it is not', async (t) => {
  const cuda = native().backends().cuda;
  const cpu = await captureStdout(() => main(['doctor', '--backend', 'cpu']));
  t.equal(cpu.code, 0);
  t.match(cpu.stdout, /^--backend cpu: usable \(runs on cpu\)$/m);
  const auto = await captureStdout(() => main(['doctor', '--backend', 'auto', '--json']));
  t.equal(auto.code, 0);
  t.same(JSON.parse(auto.stdout).backend, { requested: 'auto', usable: true, runsOn: cuda.available ? 'cuda' : 'cpu' });
  const gpu = await captureStdout(() => main(['doctor', '--backend', 'cuda']));
  if (cuda.available) {
    t.equal(gpu.code, 0);
    t.match(gpu.stdout, /^--backend cuda: usable \(runs on cuda\)$/m);
  } else {
    t.equal(gpu.code, 1, 'exit 1: cuda is not usable here');
    t.match(gpu.stdout, /^--backend cuda: NOT USABLE - \S/m);
  }
  const bad = await captureStdout(() => main(['doctor', '--backend', 'gpu']));
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--backend must be cpu, cuda or auto, got 'gpu'/);
});

t.test('generate --ids on a model without tokenizer.json prints the new token ids', async (t) => {
  const dir = writeTinyModel({ seed: 3 });
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const idsFile = path.join(dir, 'ids.json');
  const ids = [1, 5, 9, 14, 20, 7];
  fs.writeFileSync(idsFile, JSON.stringify(ids));
  const args = ['generate', '--model', dir, '--backend', 'cpu', '--threads', '1', '--max-new-tokens', '5'];
  const r = await captureStdout(() => main([...args, '--ids', idsFile]));
  t.equal(r.code, 0, r.stderr);
  const model = await loadModel(dir, { backend: 'cpu', threads: 1 });
  const want: number[] = [];
  for await (const id of model.generateTokens(ids, { maxNewTokens: 5 })) want.push(id);
  model.dispose();
  t.equal(r.stdout, want.join(' ') + '\n', `the greedy continuation: ${want.join(' ')}`);
  // Text needs a tokenizer: the error speaks CLI, not API.
  const text = await captureStdout(() => main([...args, '--ids', idsFile, '--prompt', 'Hi']));
  t.equal(text.code, 1);
  t.match(text.stderr, /has no tokenizer\.json: --context-file, --prompt, --chat and --stop need one \(with --ids alone, generate prints the new token ids\)/);
  t.notMatch(text.stderr, /generateTokens/);
});
