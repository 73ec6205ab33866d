// Test helper: write and read safetensors files, including deliberately broken ones.
// The bytes come from the checkpoint writer of bench/random-model.ts.
import fs from 'node:fs';

import { safetensorsHeader, safetensorsPieces, type TensorSource } from '../../bench/random-model';

export type Dtype = 'F32' | 'F16' | 'BF16';

export interface TensorSpec {
  dtype: Dtype;
  shape: number[];
  /** values (converted to dtype), as many as the shape holds */
  data: ArrayLike<number>;
}

/** The tensors, in key order, as the checkpoint writer's sources. */
export function tensorSources(tensors: Record<string, TensorSpec>): TensorSource[] {
  return Object.entries(tensors).map(([name, t]) => {
    const n = t.shape.reduce((a, x) => a * x, 1);
    if (t.data.length !== n) throw new Error(`tensor ${name}: ${t.data.length} values for shape (${t.shape.join(', ')})`);
    const fill = (out: Float32Array, from: number) => {
      for (let i = 0; i < out.length; i++) out[i] = t.data[from + i];
    };
    return { name, dtype: t.dtype, shape: t.shape, fill };
  });
}

/** Builds a safetensors file; `header` can be edited before it is serialised. */
export function buildSafetensors(
  tensors: Record<string, TensorSpec>,
  edit?: (header: Record<string, unknown>) => void,
): Buffer {
  const sources = tensorSources(tensors);
  const header = safetensorsHeader(sources);
  edit?.(header);
  const pieces: Buffer[] = [];
  for (const piece of safetensorsPieces(sources, header)) pieces.push(Buffer.from(piece)); // a copy: pieces share a buffer
  return Buffer.concat(pieces);
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
