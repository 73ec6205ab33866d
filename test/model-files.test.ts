// A model's files on disk: changed under a loaded model, or not files at all.
// From the reliability issue:
//   "SIGBUS: truncating a weights file after loadModel kills the process at
//   the next forward (exit 135); overwriting it in place silently changes the
//   logits."
//   "FIFO / device files: a model.safetensors, config.json, index or
//   tokenizer*.json that is a FIFO makes loadModel never settle (even
//   process.exit blocks); a config.json or index pointing at /dev/zero is read
//   without limit."
// The rule (README, "Model files"): a checkpoint must not be modified in place
// while a model uses it; replace it by rename, and the loaded model keeps
// running the weights it loaded.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import t from 'tap';

import { loadModel } from '../lib/model';
import { writeTinyModel } from './helpers/checkpoint';

const root = path.resolve(__dirname, '..');
const FX = path.join(__dirname, 'fixtures');

/** A copy of a fixture checkpoint in a fresh temp folder. */
function copyFixture(t: tap.Test, name = 'tiny-gqa'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'focusllm-files-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const f of fs.readdirSync(path.join(FX, name))) fs.copyFileSync(path.join(FX, name, f), path.join(dir, f));
  return dir;
}

// Children that load lib/ through tsx record no coverage: tsx transpiles the
// files differently from tap's loader, and merged with the test processes'
// coverage of the same URLs the report could drop whole files (npm test then
// failed its thresholds at random; tap's processinfo reads this variable).
const CHILD_ENV = { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: '0' };

/** Runs `code` (TypeScript, from the repository root) in a child Node; a hang is killed after `timeoutMs`. */
function child(code: string, timeoutMs = 60000) {
  return spawnSync(process.execPath, ['--import', 'tsx', '-e', code], {
    cwd: root,
    env: CHILD_ENV,
    encoding: 'utf8',
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
  });
}

const ids = [1, 5, 9, 13, 17, 21, 25, 29];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('a weights file truncated after load: a JS Error, not SIGBUS', async (t) => {
  const dir = copyFixture(t);
  // In a child: before the fix the next forward died of SIGBUS (exit 135).
  const r = child(`
    const fs = require('node:fs');
    const { loadModel } = require('./lib/model');
    (async () => {
      const m = await loadModel(${JSON.stringify(dir)}, { backend: 'cpu', threads: 1, tokenizer: false });
      const trainer = m.native.createTrainer({ params: 'candidate' });
      await m.forward(${JSON.stringify(ids)});
      const file = ${JSON.stringify(path.join(dir, 'model.safetensors'))};
      fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
      for (const [what, f] of [
        ['forward', () => m.forward(${JSON.stringify(ids)})],
        ['accumulate', () => trainer.accumulate([{ kind: 'focus', ids: Int32Array.from(${JSON.stringify(ids)}), loss: 'continuation', localStart: 4, localSize: 3, chunkSize: 2, promptCap: 2 }])],
      ]) {
        try { await f(); console.log(what + ' OK'); }
        catch (e) { console.log(what + ' ' + (e instanceof Error ? 'ERROR ' + e.message : 'THROWN ' + String(e))); }
      }
    })();`);
  t.equal(r.signal, null, `no signal (got ${r.signal})`);
  t.equal(r.status, 0, 'the process exits normally');
  const file = path.join(dir, 'model.safetensors').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = (what: string) => new RegExp(`^${what} ERROR ${file}: the file was truncated in place after the model was loaded \\(\\d+ bytes then, \\d+ now\\); load the model again`, 'm');
  t.match(r.stdout, re('forward'), 'forward: an Error naming the file');
  t.match(r.stdout, re('accumulate'), 'trainer accumulate: an Error naming the file');
});

t.test('a weights file rewritten in place after load: an Error, not other logits', async (t) => {
  const dir = copyFixture(t);
  const file = path.join(dir, 'model.safetensors');
  const model = await loadModel(dir, { backend: 'cpu', threads: 1, tokenizer: false });
  t.teardown(() => model.dispose());
  await model.forward(ids);
  // File timestamps move in clock ticks (a few ms): let one pass since the copy.
  await sleep(30);
  const fd = fs.openSync(file, 'r+');
  const size = fs.fstatSync(fd).size;
  const tail = Buffer.alloc(4096);
  fs.readSync(fd, tail, 0, tail.length, size - tail.length);
  for (let i = 0; i < tail.length; i++) tail[i] ^= 0x40; // same size, other weights
  fs.writeSync(fd, tail, 0, tail.length, size - tail.length);
  fs.closeSync(fd);
  await t.rejects(model.forward(ids), { message: `${file}: the file was rewritten in place after the model was loaded (${size} bytes then, ${size} now); load the model again. A checkpoint must not be modified while a model uses it: replace it by writing a new file and renaming it over the old one` });
  await t.rejects(model.forward(ids), /rewritten in place/, 'and stays refused');
});

t.test('a weights file replaced by rename: the loaded model keeps its weights', async (t) => {
  const dir = copyFixture(t);
  const file = path.join(dir, 'model.safetensors');
  const model = await loadModel(dir, { backend: 'cpu', threads: 1, tokenizer: false });
  t.teardown(() => model.dispose());
  const before = await model.forward(ids);
  const other = writeTinyModel({ layers: 2, hidden: 64, heads: 4, kvHeads: 2, inter: 160, vocab: 512, seed: 77 });
  t.teardown(() => fs.rmSync(other, { recursive: true, force: true }));
  fs.copyFileSync(path.join(other, 'model.safetensors'), file + '.new');
  fs.renameSync(file + '.new', file);
  const after = await model.forward(ids);
  t.same(Array.from(after), Array.from(before), 'same logits: the mapping holds the old file');
  const reloaded = await loadModel(dir, { backend: 'cpu', threads: 1, tokenizer: false });
  t.teardown(() => reloaded.dispose());
  t.notSame(Array.from(await reloaded.forward(ids)), Array.from(before), 'a new load reads the new file');
});

t.test('FIFOs and devices as model files: an Error at once, not a hang or an endless read', async (t) => {
  const dir = copyFixture(t);
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{"model": {}}');
  const mkfifo = (p: string) => {
    fs.rmSync(p, { force: true });
    const r = spawnSync('mkfifo', [p]);
    if (r.status !== 0) throw new Error(`mkfifo ${p} failed`);
  };
  const cases: [string, string, RegExp][] = [
    ['config.json', 'fifo', /config\.json: not a regular file/],
    ['model.safetensors', 'fifo', /model\.safetensors: not a regular file/],
    ['model.safetensors.index.json', 'fifo', /model\.safetensors\.index\.json: not a regular file/],
    ['tokenizer.json', 'fifo', /tokenizer\.json: not a regular file/],
    ['tokenizer_config.json', 'fifo', /tokenizer_config\.json: not a regular file/],
    ['config.json', '/dev/zero', /config\.json: not a regular file/],
    ['model.safetensors.index.json', '/dev/zero', /model\.safetensors\.index\.json: not a regular file/],
    ['tokenizer.json', '/dev/zero', /tokenizer\.json: not a regular file/],
  ];
  // Each case in its own copy; all of them in one child, killed if it hangs.
  const dirs: string[] = [];
  for (const [name, kind] of cases) {
    const d = copyFixture(t);
    fs.copyFileSync(path.join(dir, 'tokenizer.json'), path.join(d, 'tokenizer.json'));
    const p = path.join(d, name);
    if (kind === 'fifo') mkfifo(p);
    else {
      fs.rmSync(p, { force: true });
      fs.symlinkSync(kind, p);
    }
    dirs.push(d);
  }
  const r = child(
    `
    const { loadModel } = require('./lib/model');
    (async () => {
      for (const d of ${JSON.stringify(dirs)}) {
        try { await loadModel(d, { backend: 'cpu', threads: 1 }); console.log('LOADED'); }
        catch (e) { console.log('ERROR ' + e.message); }
      }
    })();`,
    30000,
  );
  t.equal(r.signal, null, 'the child settles (was killed after 30 s when a FIFO blocked it)');
  const lines = r.stdout.trim().split('\n');
  t.equal(lines.length, cases.length, 'one answer per case');
  cases.forEach(([name, kind, re], i) => t.match(lines[i] ?? '', re, `${name} as ${kind}`));
});

t.test('JSON files have a size cap', async (t) => {
  const dir = writeTinyModel({ layers: 1 });
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Sparse: 100 MB + 1 of nothing, refused from its size.
  for (const name of ['config.json', 'tokenizer.json']) {
    const p = path.join(dir, name);
    const keep = fs.existsSync(p) ? fs.readFileSync(p) : null;
    fs.writeFileSync(p, '');
    fs.truncateSync(p, 100_000_001);
    await t.rejects(
      loadModel(dir, { backend: 'cpu', threads: 1 }),
      { message: `${p}: file of 100000001 bytes is larger than the limit for JSON files (100000000 bytes)` },
      name,
    );
    if (keep) fs.writeFileSync(p, keep);
    else fs.rmSync(p);
  }
});
