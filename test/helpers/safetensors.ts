// Test helper: write and read safetensors files, including deliberately broken ones.
import fs from 'node:fs';

import { toBf16, toF16 } from '../../bench/random-model';

export type Dtype = 'F32' | 'F16' | 'BF16';

export interface TensorSpec {
  dtype: Dtype;
  shape: number[];
  /** values (converted to dtype) */
  data: ArrayLike<number>;
}

export function encodeTensor(t: TensorSpec): Buffer {
  const n = t.data.length;
  if (t.dtype === 'F32') return Buffer.from(Float32Array.from(t.data).buffer);
  const f = Float32Array.from(t.data);
  const u = new Uint16Array(n);
  (t.dtype === 'BF16' ? toBf16 : toF16)(new Uint32Array(f.buffer), u, n);
  return Buffer.from(u.buffer);
}

/** Builds a safetensors file; `header` can be edited before it is serialised. */
export function buildSafetensors(
  tensors: Record<string, TensorSpec>,
  edit?: (header: Record<string, unknown>) => void,
): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const bufs: Buffer[] = [];
  let off = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const b = encodeTensor(t);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + b.length] };
    bufs.push(b);
    off += b.length;
  }
  edit?.(header);
  let hjson = JSON.stringify(header);
  while ((8 + hjson.length) % 8 !== 0) hjson += ' ';
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(hjson)));
  return Buffer.concat([len, Buffer.from(hjson), ...bufs]);
}

/** Reads a safetensors file into float64 arrays (F32/F16/BF16). */
export function readSafetensors(file: string): Map<string, { shape: number[]; data: Float64Array }> {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const base = 8 + n;
  const out = new Map<string, { shape: number[]; data: Float64Array }>();
  for (const [name, info] of Object.entries<{ dtype: string; shape: number[]; data_offsets: [number, number] }>(header)) {
    if (name === '__metadata__') continue;
    const [b, e] = info.data_offsets;
    const raw = buf.subarray(base + b, base + e);
    const count = info.shape.reduce((a, x) => a * x, 1);
    const data = new Float64Array(count);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < count; i++) {
      if (info.dtype === 'F32') data[i] = dv.getFloat32(i * 4, true);
      else if (info.dtype === 'BF16') data[i] = new Float32Array(new Uint32Array([dv.getUint16(i * 2, true) << 16]).buffer)[0];
      else if (info.dtype === 'F16') data[i] = f16ToF64(dv.getUint16(i * 2, true));
      else throw new Error(`${file}: ${name} has dtype ${info.dtype}`);
    }
    out.set(name, { shape: info.shape, data });
  }
  return out;
}

function f16ToF64(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
