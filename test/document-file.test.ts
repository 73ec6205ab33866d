// Saved documents (lib/document.ts save / loadDocument): a round trip gives
// the same answers; a file saved with another model or other options is
// refused naming the file and what differs; a truncated or corrupted file
// is an Error, never a crash.
import fs from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { loadModel, type Model } from '../lib/model';
import { writeTinyModel } from './helpers/checkpoint';
import { pseudoIds } from './helpers/ids';

const focus = { localWindow: 20, chunkSize: 16, promptCap: 7, minChunkedLength: 40 };

const ids = pseudoIds;

async function rows(model: Model, x: number[], session?: ReturnType<Model['createSession']>): Promise<Float32Array[]> {
  const s = session ?? model.createSession({ ...focus, maxSteps: 2 });
  const out = [await s.ingest(x)];
  out.push(await s.step(7), await s.step(8));
  s.dispose();
  return out;
}

t.test('save, load, answer: the same numbers; the file has what it should', async (t) => {
  const dir = t.testdir();
  const model = await loadModel(writeTinyModel({ dtype: 'F16', seed: 21 }), { threads: 1, tokenizer: false });
  t.teardown(() => model.dispose());
  const d = ids(90, 96, 3);
  d[0] = 1;
  const doc = await model.ingestDocument(d, { focus });
  const file = path.join(dir, 'doc.fdoc');
  await doc.save(file);
  const kvd = model.config.numKvHeads * model.config.headDim;
  const cacheBytes = 2 * model.config.numLayers * 90 * kvd * 2; // f16 caches of 90 tokens
  const size = fs.statSync(file).size;
  t.ok(size > cacheBytes && size < cacheBytes + 4096, `file of ${size} bytes for ${cacheBytes} bytes of caches`);
  t.same(fs.readdirSync(dir), ['doc.fdoc'], 'no temporary file left');
  const loaded = await model.loadDocument(file);
  t.same(loaded.ids, d);
  t.same(loaded.params, doc.params);
  t.equal(loaded.cacheType, 'f16');
  t.same(loaded.memory(), doc.memory());
  for (const q of [ids(2, 96, 5), ids(30, 96, 6)]) {
    const x = [...d, ...q];
    const want = await rows(model, x);
    const got = await rows(model, x, loaded.session({ maxSteps: 2 }));
    t.same(got, want, `bit for bit after a round trip (question of ${q.length})`);
  }
  // the same options given explicitly are accepted; other ones are refused by name
  (await model.loadDocument(file, { focus })).dispose();
  await t.rejects(model.loadDocument(file, { focus: { ...focus, chunkSize: 8 } }), {
    message: new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: saved with chunkSize 16, the options ask for 8`),
  });
  await t.rejects(model.loadDocument(file, { focus: { ...focus, cacheType: 'f32' } }), /saved with dtype f16, the options ask for f32/);
  // another model: other weights (same shapes), other shapes
  const other = await loadModel(writeTinyModel({ dtype: 'F16', seed: 22 }), { threads: 1, tokenizer: false });
  await t.rejects(other.loadDocument(file), /doc\.fdoc: saved with another model \(same shapes but other weights/);
  other.dispose();
  const wider = await loadModel(writeTinyModel({ dtype: 'F16', seed: 21, hidden: 64 }), { threads: 1, tokenizer: false });
  await t.rejects(wider.loadDocument(file), /saved with another model \(hidden 32 in the file, 64 in the model/);
  wider.dispose();
  // a text document keeps its text
  loaded.dispose();
  doc.dispose();
});

t.test('truncated, corrupted, or not a document: an Error naming the file, never a crash', async (t) => {
  const dir = t.testdir();
  const model = await loadModel(writeTinyModel({ seed: 23 }), { threads: 1, tokenizer: false });
  t.teardown(() => model.dispose());
  const d = ids(40, 96, 4);
  const doc = await model.ingestDocument(d, { focus });
  const file = path.join(dir, 'doc.fdoc');
  await doc.save(file);
  doc.dispose();
  const good = fs.readFileSync(file);
  const bad = path.join(dir, 'bad.fdoc');
  const n = good.length;
  // truncations at many offsets (every byte of the prelude and header region, then strided)
  const hlen = good.readUInt32LE(12);
  const offsets = new Set<number>();
  for (let i = 0; i < Math.min(n, 24 + hlen + 8); i++) offsets.add(i);
  for (let i = 0; i < n; i += 97) offsets.add(i);
  offsets.add(n - 1);
  let refused = 0;
  for (const off of offsets) {
    fs.writeFileSync(bad, good.subarray(0, off));
    try {
      (await model.loadDocument(bad)).dispose();
      t.fail(`a file truncated at ${off} of ${n} bytes loaded`);
    } catch (e) {
      if (!(e instanceof Error) || !e.message.startsWith(bad)) t.fail(`truncated at ${off}: ${String(e)}`);
      else refused++;
    }
  }
  t.equal(refused, offsets.size, `${refused} truncations refused`);
  // a byte flipped anywhere: every position in the prelude and header, strided in the caches
  const positions = new Set<number>();
  for (let i = 0; i < 24 + hlen; i += i < 24 ? 1 : 7) positions.add(i);
  for (let i = 24 + hlen; i < n; i += 13) positions.add(i);
  refused = 0;
  for (const pos of positions) {
    const b = Buffer.from(good);
    b[pos] ^= 0x5a;
    fs.writeFileSync(bad, b);
    try {
      (await model.loadDocument(bad)).dispose();
      t.fail(`a byte flipped at ${pos} loaded`);
    } catch (e) {
      if (!(e instanceof Error) || !e.message.startsWith(bad)) t.fail(`flipped at ${pos}: ${String(e)}`);
      else refused++;
    }
  }
  t.equal(refused, positions.size, `${refused} corruptions refused`);
  // extra bytes at the end
  fs.writeFileSync(bad, Buffer.concat([good, Buffer.from([0])]));
  await t.rejects(model.loadDocument(bad), /bytes past the last chunk/);
  // not a document at all, missing, a folder
  fs.writeFileSync(bad, 'hello world, this is not a document at all');
  await t.rejects(model.loadDocument(bad), /bad\.fdoc: not a focusllm document \(bad magic bytes\)/);
  await t.rejects(model.loadDocument(path.join(dir, 'missing.fdoc')), /cannot open .*missing\.fdoc/);
  await t.rejects(model.loadDocument(dir), /not a regular file|cannot open/);
  await t.rejects(model.loadDocument(''), /path must be a file path/);
  // the good file still loads
  const ok = await model.loadDocument(file);
  t.same(ok.ids, d);
  ok.dispose();
  // saving to a folder that does not exist: an Error naming it
  const d2 = await model.ingestDocument(d, { focus });
  await t.rejects(d2.save(path.join(dir, 'nope', 'x.fdoc')), /nope/);
  d2.dispose();
});
