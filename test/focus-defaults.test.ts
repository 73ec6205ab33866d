// A checkpoint's own FocusLLM defaults (config.json "focusllm") and the
// shipped-model resolution of a missing model argument.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import t from 'tap';

import { writeRandomModel } from '../bench/random-model';
import { loadModel, readFocusDefaults } from '../lib/model';
import { DEFAULT_FOCUS } from '../lib/plan';
import { resolveModelDir, SHIPPED_MODEL, shippedModelDir } from '../lib/shipped';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'focusllm-focus-defaults-'));
t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));

function withFocus(name: string, focus: unknown): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  const cfg = focus === undefined ? {} : { focusllm: focus };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ vocab_size: 8, ...cfg }));
  return dir;
}

t.test('config.json focusllm: absent, partial, complete', async (t) => {
  t.same(readFocusDefaults(withFocus('none', undefined)), DEFAULT_FOCUS);
  t.same(readFocusDefaults(withFocus('partial', { chunk_size: 256 })), { ...DEFAULT_FOCUS, chunkSize: 256 });
  t.same(readFocusDefaults(withFocus('all', { local_window: 192, chunk_size: 256, prompt_cap: 64, min_chunked_length: 512 })), {
    localWindow: 192,
    chunkSize: 256,
    promptCap: 64,
    minChunkedLength: 512,
  });
});

t.test('config.json focusllm: bad values name the field', async (t) => {
  t.throws(() => readFocusDefaults(withFocus('arr', [1])), /config\.json: field focusllm must be an object/);
  t.throws(() => readFocusDefaults(withFocus('unknown', { chunk: 4 })), /field focusllm\.chunk is unknown \(known: local_window/);
  t.throws(() => readFocusDefaults(withFocus('neg', { chunk_size: -1 })), /field focusllm: focus option chunkSize must be a positive integer/);
  t.throws(
    () => readFocusDefaults(withFocus('order', { local_window: 5000 })),
    /field focusllm: focus option minChunkedLength \(4096\) must be larger than localWindow \(5000\)/,
  );
  t.throws(() => readFocusDefaults(withFocus('order2', { local_window: 64, min_chunked_length: 64 })), /must be larger than localWindow \(64\)/);
});

t.test('sessions take the checkpoint defaults; options override them', async (t) => {
  const dir = path.join(root, 'model');
  await writeRandomModel(dir, { vocab: 64, hidden: 32, layers: 1, heads: 2, seed: 3 });
  const cfgFile = path.join(dir, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, focusllm: { local_window: 8, chunk_size: 16, min_chunked_length: 20 } }));
  const model = await loadModel(dir, { threads: 1, tokenizer: false });
  t.teardown(() => model.dispose());
  t.same(model.focusDefaults, { ...DEFAULT_FOCUS, localWindow: 8, chunkSize: 16, minChunkedLength: 20 });
  const ids = Array.from({ length: 50 }, (_, i) => 1 + (i % 60));
  const s = model.createSession();
  await s.ingest(ids);
  t.equal(s.mode, 'focus', '50 tokens >= min_chunked_length 20: chunked');
  t.equal(s.chunks, Math.ceil((50 - 8) / 16), 'memory 42 tokens in chunks of 16');
  s.dispose();
  const o = model.createSession({ chunkSize: 7, localWindow: undefined });
  await o.ingest(ids);
  t.equal(o.chunks, Math.ceil((50 - 8) / 7), 'chunkSize given, localWindow undefined keeps the default');
  o.dispose();
  const n = model.createSession({ minChunkedLength: 100 });
  await n.ingest(ids);
  t.equal(n.mode, 'native');
  n.dispose();
});

t.test('a missing model argument means the shipped model', async (t) => {
  t.same(resolveModelDir('some/dir'), { dir: 'some/dir', shipped: false });
  t.equal(path.basename(shippedModelDir()), SHIPPED_MODEL);
  t.equal(path.basename(path.dirname(shippedModelDir())), 'models');
  t.same(resolveModelDir(undefined), { dir: shippedModelDir(), shipped: true });
  t.same(resolveModelDir(SHIPPED_MODEL), { dir: shippedModelDir(), shipped: true });
  await t.rejects(loadModel(''), /loadModel\(dir\): dir must be a folder path, or omitted for the shipped model/);
});
