// The last step of the demo training: a trained checkpoint folder (float32,
// perhaps in several safetensors files) -> the shipped folder: every tensor in
// one F16 model.safetensors, config.json with torch_dtype float16 and the
// model's FocusLLM defaults, the tokenizer files.
//
//   npx tsx scripts/demo/finalize.ts --from DIR --out models/focus-tiny \
//       --focus '{"local_window":192,"chunk_size":256,"prompt_cap":64,"min_chunked_length":512}'
import fs from 'node:fs';
import path from 'node:path';
import { toF16 } from '../../bench/random-model';

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

function readHeader(file: string): { header: Record<string, Entry>; base: number; buf: Buffer } {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, Entry>;
  delete (header as Record<string, unknown>).__metadata__;
  return { header, base: 8 + n, buf };
}

/** the tensor as F16 bits */
function asF16(e: Entry, bytes: Buffer, name: string): Uint16Array {
  const n = e.shape.reduce((a, b) => a * b, 1);
  const aligned = Buffer.from(bytes); // a copy with its own aligned ArrayBuffer
  if (e.dtype === 'F16') return new Uint16Array(aligned.buffer, aligned.byteOffset, n);
  const f32 = new Uint32Array(n);
  if (e.dtype === 'F32') f32.set(new Uint32Array(aligned.buffer, aligned.byteOffset, n));
  else if (e.dtype === 'BF16') {
    const b = new Uint16Array(aligned.buffer, aligned.byteOffset, n);
    for (let i = 0; i < n; i++) f32[i] = b[i] << 16;
  } else throw new Error(`${name}: dtype ${e.dtype} is not F32, F16 or BF16`);
  const out = new Uint16Array(n);
  toF16(f32, out, n);
  return out;
}

function main(argv: string[]): void {
  const a: Record<string, string> = {};
  for (let i = 0; i < argv.length; i += 2) a[argv[i].replace(/^--/, '')] = argv[i + 1];
  if (!a.from || !a.out) throw new Error('finalize: --from DIR --out DIR [--focus JSON] are required');
  const indexFile = path.join(a.from, 'model.safetensors.index.json');
  const files = fs.existsSync(indexFile)
    ? [...new Set(Object.values((JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { weight_map: Record<string, string> }).weight_map))]
    : ['model.safetensors'];
  const tensors: { name: string; shape: number[]; data: Uint16Array }[] = [];
  for (const f of files) {
    const { header, base, buf } = readHeader(path.join(a.from, f));
    for (const [name, e] of Object.entries(header)) {
      const [s, t] = e.data_offsets;
      tensors.push({ name, shape: e.shape, data: asF16(e, buf.subarray(base + s, base + t), name) });
    }
  }
  tensors.sort((x, y) => x.name.localeCompare(y.name));
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: 'F16', shape: t.shape, data_offsets: [off, off + t.data.byteLength] };
    off += t.data.byteLength;
  }
  let head = Buffer.from(JSON.stringify(header), 'utf8');
  head = Buffer.concat([head, Buffer.alloc((8 - (head.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(head.length));
  fs.mkdirSync(a.out, { recursive: true });
  for (const f of fs.readdirSync(a.out)) if (f.endsWith('.safetensors') || f.endsWith('.index.json')) fs.rmSync(path.join(a.out, f));
  const fd = fs.openSync(path.join(a.out, 'model.safetensors'), 'w');
  fs.writeSync(fd, len);
  fs.writeSync(fd, head);
  for (const t of tensors) fs.writeSync(fd, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  fs.closeSync(fd);
  const config = JSON.parse(fs.readFileSync(path.join(a.from, 'config.json'), 'utf8')) as Record<string, unknown>;
  config.torch_dtype = 'float16';
  if (a.focus) config.focusllm = JSON.parse(a.focus);
  fs.writeFileSync(path.join(a.out, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'])
    if (fs.existsSync(path.join(a.from, f))) fs.copyFileSync(path.join(a.from, f), path.join(a.out, f));
  process.stdout.write(JSON.stringify({ out: a.out, tensors: tensors.length, bytes: off }) + '\n');
}

if (require.main === module) main(process.argv.slice(2));
