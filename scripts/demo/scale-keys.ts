// The stage-2 start for the real base: a copy of a float32 checkpoint with
// every layer's candidate key projection set to FACTOR times its base key
// projection (beacon_k_proj = FACTOR * k_proj; the other candidate
// projections stay absent, so training starts them as copies of the base,
// as the recipe does). On the 4-layer base the decoder's attention logits
// to the candidates sit 18 or more below their peak, which leaves the
// candidate keys and values of the last layer without a gradient; scaled keys
// raise the logits of the heads that already favour a candidate (README, "A
// base that retrieves").
//
//   npx tsx scripts/demo/scale-keys.ts SRC DST FACTOR
import fs from 'node:fs';
import path from 'node:path';

import { writeCheckpoint, type TensorSource } from '../../bench/random-model';

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

function main(argv: string[]): void {
  const [src, dst, factorS] = argv;
  const factor = Number(factorS);
  if (!src || !dst || !(factor > 0)) throw new Error('usage: scale-keys.ts SRC DST FACTOR (FACTOR > 0)');
  if (fs.existsSync(dst)) throw new Error(`${dst} exists: give a new folder`);
  const file = path.join(src, 'model.safetensors');
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, Entry>;
  const base = 8 + n;
  const config = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8')) as Record<string, unknown>;
  const layers = Number(config.num_hidden_layers);
  const view = (name: string): Float32Array => {
    const e = header[name];
    if (!e) throw new Error(`${file}: no tensor ${name}`);
    if (e.dtype !== 'F32') throw new Error(`${file}: ${name} is ${e.dtype}; scale-keys reads float32 checkpoints`);
    const [a, b] = e.data_offsets;
    return new Float32Array(buf.buffer.slice(buf.byteOffset + base + a, buf.byteOffset + base + b));
  };
  const tensors: TensorSource[] = [];
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (/beacon_k_proj\.weight$/.test(name)) throw new Error(`${file}: already has ${name}`);
    const v = view(name);
    tensors.push({ name, dtype: 'F32', shape: e.shape, fill: (out, from) => out.set(v.subarray(from, from + out.length)) });
  }
  for (let i = 0; i < layers; i++) {
    const name = `model.layers.${i}.self_attn.k_proj.weight`;
    const v = view(name);
    tensors.push({
      name: `model.layers.${i}.self_attn.beacon_k_proj.weight`,
      dtype: 'F32',
      shape: header[name].shape,
      fill: (out, from) => {
        for (let j = 0; j < out.length; j++) out[j] = factor * v[from + j];
      },
    });
  }
  writeCheckpoint(dst, config, [tensors]);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) if (fs.existsSync(path.join(src, f))) fs.copyFileSync(path.join(src, f), path.join(dst, f));
  process.stdout.write(`${dst}: ${tensors.length} tensors, beacon_k_proj = ${factor} * k_proj in ${layers} layers\n`);
}

try {
  main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`scale-keys: ${(e as Error).message}\n`);
  process.exit(1);
}
