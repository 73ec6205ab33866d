// An independent float64 implementation of DESIGN.md section 1, written the
// most direct way (no caches, no batching: every step recomputes every
// sequence from scratch), for tiny models only. The engine is tested against
// it on cases the shared fixtures do not cover.
import fs from 'node:fs';
import path from 'node:path';

import { readSafetensors } from './safetensors';

type Mat = { rows: number; cols: number; data: Float64Array };

export interface RefParams {
  localWindow: number;
  chunkSize: number;
  promptCap: number;
  minChunkedLength: number;
}

export class RefModel {
  readonly cfg: Record<string, any>;
  /** every tensor of the checkpoint, as float64 */
  protected readonly t = new Map<string, { shape: number[]; data: Float64Array }>();
  readonly hd: number;
  readonly invFreq: number[];

  constructor(dir: string) {
    this.cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    const idx = path.join(dir, 'model.safetensors.index.json');
    const files = fs.existsSync(idx)
      ? [...new Set(Object.values<string>(JSON.parse(fs.readFileSync(idx, 'utf8')).weight_map))]
      : fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors'));
    for (const f of files) for (const [k, v] of readSafetensors(path.join(dir, f))) this.t.set(k, v);
    const c = this.cfg;
    this.hd = c.head_dim ?? c.hidden_size / c.num_attention_heads;
    const theta = c.rope_theta ?? 10000;
    this.invFreq = [];
    for (let i = 0; i < this.hd / 2; i++) this.invFreq.push(1 / Math.pow(theta, (2 * i) / this.hd));
    const rs = c.rope_scaling;
    if (rs) {
      const type = rs.rope_type ?? rs.type;
      if (type === 'linear') this.invFreq = this.invFreq.map((f) => f / rs.factor);
      else if (type === 'llama3') {
        const lowW = rs.original_max_position_embeddings / rs.low_freq_factor;
        const highW = rs.original_max_position_embeddings / rs.high_freq_factor;
        this.invFreq = this.invFreq.map((f) => {
          const w = (2 * Math.PI) / f;
          if (w < highW) return f;
          if (w > lowW) return f / rs.factor;
          const sm = (rs.original_max_position_embeddings / w - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
          return (1 - sm) * (f / rs.factor) + sm * f;
        });
      }
    }
  }

  private get(name: string): Mat | null {
    const x = this.t.get(name);
    if (!x) return null;
    return { rows: x.shape[0], cols: x.shape.length > 1 ? x.shape[1] : 1, data: x.data };
  }

  /** Candidate projection p of layer l, or null (use the base one). */
  private cand(l: number, p: string): { w: Mat; b: Mat | null } | null {
    const bp: string[] | undefined = this.cfg.beacon_param;
    const key = p === 'up' || p === 'down' ? 'mlp' : p;
    if (bp && !bp.includes(key)) return null;
    const base = p === 'up' || p === 'down' ? `model.layers.${l}.mlp.beacon_${p}_proj` : `model.layers.${l}.self_attn.beacon_${p}_proj`;
    const w = this.get(base + '.weight');
    if (!w) return null;
    return { w, b: this.get(base + '.bias') };
  }

  private linear(x: Float64Array, w: Mat, b: Mat | null): Float64Array {
    const out = new Float64Array(w.rows);
    for (let r = 0; r < w.rows; r++) {
      let s = b ? b.data[r] : 0;
      const o = r * w.cols;
      for (let c = 0; c < w.cols; c++) s += w.data[o + c] * x[c];
      out[r] = s;
    }
    return out;
  }

  private rmsnorm(x: Float64Array, w: Mat): Float64Array {
    let ss = 0;
    for (const v of x) ss += v * v;
    const inv = 1 / Math.sqrt(ss / x.length + (this.cfg.rms_norm_eps ?? 1e-6));
    return x.map((v, i) => v * inv * w.data[i]);
  }

  private rope(x: Float64Array, nHeads: number, pos: number): Float64Array {
    const out = new Float64Array(x.length);
    const h2 = this.hd / 2;
    for (let h = 0; h < nHeads; h++)
      for (let i = 0; i < h2; i++) {
        const a = pos * this.invFreq[i];
        const c = Math.cos(a), s = Math.sin(a);
        const x0 = x[h * this.hd + i], x1 = x[h * this.hd + i + h2];
        out[h * this.hd + i] = x0 * c - x1 * s;
        out[h * this.hd + i + h2] = x1 * c + x0 * s;
      }
    return out;
  }

  /**
   * Forward of one sequence. Token j is at position pos0 + j. prefix: per
   * layer, pre-rotary keys and values of fully visible tokens at positions
   * 0..n-1. past: per layer, rotated keys and values of earlier tokens of
   * the sequence (a KV cache), visible to every token after the prefix. When
   * candidateLast, the last token uses the candidate projections.
   * Returns the last token's logits, its pre-rotary K/V per layer, and per
   * layer the rotated keys and the values of every token (to extend a past).
   */
  forward(
    tokens: number[],
    opts: {
      pos0?: number;
      prefix?: { k: Float64Array[][]; v: Float64Array[][] };
      past?: { k: Float64Array[][]; v: Float64Array[][] };
      candidateLast?: boolean;
    } = {},
  ): { logits: Float64Array; lastK: Float64Array[]; lastV: Float64Array[]; keys: Float64Array[][]; values: Float64Array[][] } {
    const c = this.cfg;
    const nh = c.num_attention_heads, nkv = c.num_key_value_heads ?? nh, hd = this.hd;
    const G = nh / nkv;
    const pos0 = opts.pos0 ?? 0;
    const emb = this.get('model.embed_tokens.weight')!;
    let xs: Float64Array[] = tokens.map((t) => emb.data.slice(t * emb.cols, (t + 1) * emb.cols));
    const n = tokens.length;
    const lastK: Float64Array[] = [], lastV: Float64Array[] = [];
    const keys: Float64Array[][] = [], values: Float64Array[][] = [];
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const p = `model.layers.${l}.`;
      const proj = (name: string) => ({ w: this.get(`${p}self_attn.${name}_proj.weight`)!, b: this.get(`${p}self_attn.${name}_proj.bias`) });
      const pick = (name: string, j: number) => (opts.candidateLast && j === n - 1 ? this.cand(l, name) ?? proj(name) : proj(name));
      const qs: Float64Array[] = [], ks: Float64Array[] = [], vs: Float64Array[] = [];
      for (let j = 0; j < n; j++) {
        const h = this.rmsnorm(xs[j], this.get(p + 'input_layernorm.weight')!);
        const q = this.linear(h, pick('q', j).w, pick('q', j).b);
        const k = this.linear(h, pick('k', j).w, pick('k', j).b);
        const v = this.linear(h, pick('v', j).w, pick('v', j).b);
        if (j === n - 1) {
          lastK.push(k);
          lastV.push(v);
        }
        qs.push(this.rope(q, nh, pos0 + j));
        ks.push(this.rope(k, nkv, pos0 + j));
        vs.push(v);
      }
      keys.push(ks);
      values.push(vs);
      const pk = [...(opts.prefix?.k[l] ?? []).map((k, i) => this.rope(k, nkv, i)), ...(opts.past?.k[l] ?? [])];
      const pv = [...(opts.prefix?.v[l] ?? []), ...(opts.past?.v[l] ?? [])];
      const next: Float64Array[] = [];
      for (let j = 0; j < n; j++) {
        const att = new Float64Array(nh * hd);
        for (let h = 0; h < nh; h++) {
          const g = Math.floor(h / G);
          const keys = [...pk, ...ks.slice(0, j + 1)], vals = [...pv, ...vs.slice(0, j + 1)];
          const sc = keys.map((k) => {
            let s = 0;
            for (let d = 0; d < hd; d++) s += qs[j][h * hd + d] * k[g * hd + d];
            return s / Math.sqrt(hd);
          });
          const mx = Math.max(...sc);
          const e = sc.map((s) => Math.exp(s - mx));
          const z = e.reduce((a, b) => a + b, 0);
          for (let i = 0; i < keys.length; i++)
            for (let d = 0; d < hd; d++) att[h * hd + d] += (e[i] / z) * vals[i][g * hd + d];
        }
        const o = pick('o', j);
        const x1 = xs[j].map((v, i) => v + this.linear(att, o.w, o.b)[i]);
        const h2 = this.rmsnorm(x1, this.get(p + 'post_attention_layernorm.weight')!);
        const useC = opts.candidateLast && j === n - 1;
        const up = (useC && this.cand(l, 'up')) || { w: this.get(p + 'mlp.up_proj.weight')!, b: null };
        const down = (useC && this.cand(l, 'down')) || { w: this.get(p + 'mlp.down_proj.weight')!, b: null };
        const gt = this.linear(h2, this.get(p + 'mlp.gate_proj.weight')!, null);
        const u = this.linear(h2, up.w, null);
        const a = gt.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]);
        const d = this.linear(a, down.w, null);
        next.push(x1.map((v, i) => v + d[i]));
      }
      xs = next;
    }
    const h = this.rmsnorm(xs[n - 1], this.get('model.norm.weight')!);
    const head = this.get('lm_head.weight') ?? emb;
    return { logits: this.linear(h, head, null), lastK, lastV, keys, values };
  }
}

export const withBos = (x: number[], bos: number) => (x[0] === bos ? x.slice() : [bos, ...x]);

/** Logits rows of DESIGN section 1: row 0 after ids, row i after also stepping cont[0..i-1]. */
export function refLogits(m: RefModel, ids: number[], cont: number[], p: RefParams | null): Float64Array[] {
  const bos = m.cfg.bos_token_id ?? 1;
  const rows: Float64Array[] = [];
  const L = ids.length;
  for (let s = 0; s <= cont.length; s++) {
    const gen = cont.slice(0, s);
    if (!p || L < p.minChunkedLength) {
      rows.push(m.forward([...withBos(ids, bos), ...gen]).logits);
      continue;
    }
    const M = L - p.localWindow;
    const t = Math.min(p.promptCap, p.chunkSize, p.localWindow);
    const P = withBos(ids.slice(L - t), bos);
    const K: Float64Array[][] = [], V: Float64Array[][] = [];
    for (let l = 0; l < m.cfg.num_hidden_layers; l++) {
      K.push([]);
      V.push([]);
    }
    for (let b = 0; b < M; b += p.chunkSize) {
      // After s steps a chunk's sequence is chunk ++ P ++ gen, its last token the candidate.
      const r = m.forward([...ids.slice(b, Math.min(b + p.chunkSize, M)), ...P, ...gen], { candidateLast: true });
      r.lastK.forEach((k, l) => K[l].push(k));
      r.lastV.forEach((v, l) => V[l].push(v));
    }
    const k = K[0].length;
    rows.push(m.forward([...withBos(ids.slice(M), bos), ...gen], { pos0: k, prefix: { k: K, v: V } }).logits);
  }
  return rows;
}

export function relErr(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let md = 0, mr = 0;
  for (let i = 0; i < ref.length; i++) {
    if (Number.isNaN(got[i])) return Infinity;
    md = Math.max(md, Math.abs(got[i] - ref[i]));
    mr = Math.max(mr, Math.abs(ref[i]));
  }
  return mr === 0 ? md : md / mr;
}
