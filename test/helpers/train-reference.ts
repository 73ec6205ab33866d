// An independent float64 implementation of DESIGN.md section 1b: the training
// losses (FocusLLM continuation / repetition, plain LM) and their exact
// gradients, for tiny models only. Written the most direct way: a small
// reverse-mode autodiff over row-major float64 matrices (rows = tokens), one
// closure per op on a tape, run backwards. Weight loading and the rotary
// frequencies come from reference.ts (the section-1 oracle); nothing is shared
// with the engine.
import { RefModel, withBos } from './reference';

/** A (rows, cols) row-major float64 matrix and its gradient (same shape). */
export class Mat {
  readonly grad: Float64Array;
  constructor(
    readonly rows: number,
    readonly cols: number,
    readonly data: Float64Array = new Float64Array(rows * cols),
  ) {
    if (data.length !== rows * cols) throw new Error(`Mat: ${data.length} values for (${rows}, ${cols})`);
    this.grad = new Float64Array(rows * cols);
  }
}

/** The ops. Each computes its output and records how to push gradients back to its inputs. */
export class Tape {
  private steps: (() => void)[] = [];

  /** d(loss)/d(every Mat the loss depends on), added into their .grad; loss is (1, 1) */
  backward(loss: Mat): void {
    loss.grad[0] += 1;
    for (let i = this.steps.length - 1; i >= 0; i--) this.steps[i]();
    this.steps = [];
  }

  /** out (n, dim) = table rows ids */
  embedding(table: Mat, ids: number[]): Mat {
    const d = table.cols;
    const out = new Mat(ids.length, d);
    ids.forEach((id, i) => out.data.set(table.data.subarray(id * d, (id + 1) * d), i * d));
    this.steps.push(() => ids.forEach((id, i) => {
      for (let c = 0; c < d; c++) table.grad[id * d + c] += out.grad[i * d + c];
    }));
    return out;
  }

  /** out (n, dim) = x / sqrt(mean(x²) + eps) * w; w (1, dim) */
  rmsnorm(x: Mat, w: Mat, eps: number): Mat {
    const n = x.rows, d = x.cols;
    const out = new Mat(n, d);
    const inv = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let ss = 0;
      for (let c = 0; c < d; c++) ss += x.data[i * d + c] ** 2;
      inv[i] = 1 / Math.sqrt(ss / d + eps);
      for (let c = 0; c < d; c++) out.data[i * d + c] = x.data[i * d + c] * inv[i] * w.data[c];
    }
    this.steps.push(() => {
      for (let i = 0; i < n; i++) {
        // y_c = x_c r w_c, r = (Σx²/d + eps)^-1/2, dr/dx_c = -r³ x_c / d
        let dot = 0;
        for (let c = 0; c < d; c++) dot += out.grad[i * d + c] * w.data[c] * x.data[i * d + c];
        const r = inv[i];
        for (let c = 0; c < d; c++) {
          const g = out.grad[i * d + c], xv = x.data[i * d + c];
          w.grad[c] += g * xv * r;
          x.grad[i * d + c] += g * w.data[c] * r - (xv * r * r * r * dot) / d;
        }
      }
    });
    return out;
  }

  /** out (n, W.rows) = x (n, W.cols) · Wᵀ + b; b (1, W.rows) or null */
  linear(x: Mat, W: Mat, b: Mat | null): Mat {
    const n = x.rows, K = W.cols, M = W.rows;
    if (x.cols !== K) throw new Error(`linear: x has ${x.cols} columns, the weight ${K}`);
    const out = new Mat(n, M);
    for (let i = 0; i < n; i++)
      for (let r = 0; r < M; r++) {
        let s = b ? b.data[r] : 0;
        for (let c = 0; c < K; c++) s += x.data[i * K + c] * W.data[r * K + c];
        out.data[i * M + r] = s;
      }
    this.steps.push(() => {
      for (let i = 0; i < n; i++)
        for (let r = 0; r < M; r++) {
          const g = out.grad[i * M + r];
          if (g === 0) continue;
          if (b) b.grad[r] += g;
          for (let c = 0; c < K; c++) {
            x.grad[i * K + c] += g * W.data[r * K + c];
            W.grad[r * K + c] += g * x.data[i * K + c];
          }
        }
    });
    return out;
  }

  /**
   * Rotary embedding, HF LLaMA "rotate half": per head, pairs (i, i + hd/2)
   * turn by positions[row] * invFreq[i]. x (n, nHeads * hd).
   */
  rope(x: Mat, nHeads: number, hd: number, positions: number[], invFreq: number[]): Mat {
    const n = x.rows, w = x.cols, h2 = hd / 2;
    const out = new Mat(n, w);
    const turn = (src: Float64Array, dst: Float64Array, sign: number) => {
      for (let j = 0; j < n; j++)
        for (let h = 0; h < nHeads; h++)
          for (let i = 0; i < h2; i++) {
            const a = positions[j] * invFreq[i];
            const c = Math.cos(a), s = sign * Math.sin(a);
            const o0 = j * w + h * hd + i, o1 = o0 + h2;
            const x0 = src[o0], x1 = src[o1];
            dst[o0] += x0 * c - x1 * s;
            dst[o1] += x1 * c + x0 * s;
          }
    };
    turn(x.data, out.data, 1);
    // The rotation is orthogonal: its transpose turns by minus the angle.
    this.steps.push(() => turn(out.grad, x.grad, -1));
    return out;
  }

  /**
   * Softmax attention with GQA (query head h reads KV head h / (nh / nkv)).
   * q (nq, nh*hd), k and v (nk, nkv*hd); query i sees keys [0, key0 + i]:
   * the first key0 keys (a prefix) fully, the rest causally.
   */
  attention(q: Mat, k: Mat, v: Mat, nh: number, nkv: number, hd: number, key0: number): Mat {
    const nq = q.rows, G = nh / nkv, qw = nh * hd, kw = nkv * hd;
    if (key0 + nq > k.rows) throw new Error(`attention: ${nq} queries after ${key0} keys, only ${k.rows} keys`);
    const scale = 1 / Math.sqrt(hd);
    const out = new Mat(nq, qw);
    const probs: Float64Array[] = []; // per (i, h): softmax over keys 0..key0+i
    for (let i = 0; i < nq; i++)
      for (let h = 0; h < nh; h++) {
        const g = Math.floor(h / G), nk = key0 + i + 1;
        const p = new Float64Array(nk);
        let mx = -Infinity;
        for (let j = 0; j < nk; j++) {
          let s = 0;
          for (let d = 0; d < hd; d++) s += q.data[i * qw + h * hd + d] * k.data[j * kw + g * hd + d];
          p[j] = s * scale;
          mx = Math.max(mx, p[j]);
        }
        let z = 0;
        for (let j = 0; j < nk; j++) z += p[j] = Math.exp(p[j] - mx);
        for (let j = 0; j < nk; j++) {
          p[j] /= z;
          for (let d = 0; d < hd; d++) out.data[i * qw + h * hd + d] += p[j] * v.data[j * kw + g * hd + d];
        }
        probs.push(p);
      }
    this.steps.push(() => {
      for (let i = 0; i < nq; i++)
        for (let h = 0; h < nh; h++) {
          const g = Math.floor(h / G), p = probs[i * nh + h], nk = p.length;
          const o = i * qw + h * hd;
          // dp_j = dout · v_j; ds_j = p_j (dp_j - Σ p dp)
          const dp = new Float64Array(nk);
          let sum = 0;
          for (let j = 0; j < nk; j++) {
            let s = 0;
            for (let d = 0; d < hd; d++) {
              s += out.grad[o + d] * v.data[j * kw + g * hd + d];
              v.grad[j * kw + g * hd + d] += p[j] * out.grad[o + d];
            }
            dp[j] = s;
            sum += p[j] * s;
          }
          for (let j = 0; j < nk; j++) {
            const ds = p[j] * (dp[j] - sum) * scale;
            for (let d = 0; d < hd; d++) {
              q.grad[o + d] += ds * k.data[j * kw + g * hd + d];
              k.grad[j * kw + g * hd + d] += ds * q.data[o + d];
            }
          }
        }
    });
    return out;
  }

  /** rows [a, b) of x */
  rows(x: Mat, a: number, b: number): Mat {
    const c = x.cols;
    const out = new Mat(b - a, c, x.data.slice(a * c, b * c));
    this.steps.push(() => {
      for (let i = 0; i < out.data.length; i++) x.grad[a * c + i] += out.grad[i];
    });
    return out;
  }

  /** the rows of every part, in order */
  cat(parts: Mat[]): Mat {
    const c = parts[0].cols;
    const out = new Mat(parts.reduce((s, p) => s + p.rows, 0), c);
    let off = 0;
    const offs = parts.map((p) => {
      out.data.set(p.data, off);
      off += p.data.length;
      return off - p.data.length;
    });
    this.steps.push(() => parts.forEach((p, j) => {
      for (let i = 0; i < p.data.length; i++) p.grad[i] += out.grad[offs[j] + i];
    }));
    return out;
  }

  add(a: Mat, b: Mat): Mat {
    const out = new Mat(a.rows, a.cols, a.data.map((x, i) => x + b.data[i]));
    this.steps.push(() => {
      for (let i = 0; i < out.grad.length; i++) {
        a.grad[i] += out.grad[i];
        b.grad[i] += out.grad[i];
      }
    });
    return out;
  }

  /** silu(gate) * up */
  swiglu(gate: Mat, up: Mat): Mat {
    const sig = gate.data.map((g) => 1 / (1 + Math.exp(-g)));
    const out = new Mat(gate.rows, gate.cols, gate.data.map((g, i) => g * sig[i] * up.data[i]));
    this.steps.push(() => {
      for (let i = 0; i < out.grad.length; i++) {
        const g = gate.data[i], s = sig[i], d = out.grad[i];
        up.grad[i] += d * g * s;
        gate.grad[i] += d * up.data[i] * s * (1 + g * (1 - s));
      }
    });
    return out;
  }

  /** (1, 1): mean over rows of logsumexp(logits[i]) - logits[i][targets[i]] */
  crossEntropy(logits: Mat, targets: number[]): Mat {
    const n = logits.rows, V = logits.cols;
    const out = new Mat(1, 1);
    const soft: Float64Array[] = [];
    for (let i = 0; i < n; i++) {
      const row = logits.data.subarray(i * V, (i + 1) * V);
      const mx = Math.max(...row);
      let z = 0;
      for (const x of row) z += Math.exp(x - mx);
      out.data[0] += (mx + Math.log(z) - row[targets[i]]) / n;
      soft.push(row.map((x) => Math.exp(x - mx) / z));
    }
    this.steps.push(() => {
      for (let i = 0; i < n; i++)
        for (let c = 0; c < V; c++)
          logits.grad[i * V + c] += (out.grad[0] * (soft[i][c] - (c === targets[i] ? 1 : 0))) / n;
    });
    return out;
  }
}

/** DESIGN 1b: one FocusLLM example (loss on x[s + l] only). */
export interface RefFocusExample {
  kind: 'focus';
  ids: number[];
  loss: 'continuation' | 'repetition';
  localStart: number;
  localSize: number;
  chunkSize: number;
  promptCap: number;
}

/** Mean next-token cross-entropy over ids[lossStart..] (default 1). */
export interface RefLmExample {
  kind: 'lm';
  ids: number[];
  lossStart?: number;
}

export type RefTrainExample = RefFocusExample | RefLmExample;

/** The chunk plan of a focus example, spelled out (also used to describe test cases). */
export function focusPlan(ex: RefFocusExample, bos: number): { chunks: number[][]; prompt: number[]; local: number[]; target: number } {
  const x = ex.ids, s = ex.localStart, l = ex.localSize, C = ex.chunkSize, N = x.length;
  if (!(l >= 1 && s >= (ex.loss === 'continuation' ? 1 : 0) && s + l < N && C >= 1 && ex.promptCap >= 1))
    throw new Error(`bad geometry: N ${N}, s ${s}, l ${l}, C ${C}, promptCap ${ex.promptCap} (${ex.loss})`);
  const t = Math.min(ex.promptCap, C, l);
  const prompt = withBos(x.slice(s + l - t, s + l), bos);
  const mem = ex.loss === 'continuation' ? x.slice(0, s) : x.slice();
  const chunks: number[][] = [];
  for (let b = 0; b < mem.length; b += C) chunks.push(mem.slice(b, b + C));
  return { chunks, prompt, local: withBos(x.slice(s, s + l), bos), target: x[s + l] };
}

type Proj = 'q' | 'k' | 'v' | 'o' | 'up' | 'down';
const ATTN: Proj[] = ['q', 'k', 'v', 'o'];

const projName = (l: number, p: Proj, candidate: boolean) =>
  `model.layers.${l}.${p === 'up' || p === 'down' ? 'mlp' : 'self_attn'}.${candidate ? 'beacon_' : ''}${p}_proj`;

/**
 * The training reference. Its weights are float64 copies of the checkpoint's
 * (perturbable, for finite differences), plus the trainable candidate tensors
 * the checkpoint lacks, created as copies of their base projections.
 */
export class TrainRef extends RefModel {
  /** every weight by checkpoint name, shape as in the checkpoint ((n) for vectors) */
  readonly weights = new Map<string, { shape: number[]; data: Float64Array }>();
  /** trainable tensors of params 'candidate', in layer order */
  readonly candidateNames: string[] = [];
  /** per layer, the projections whose candidate weights the candidate token uses */
  private candUsed: Set<Proj>[] = [];
  /** checkpoint tensors the model does not run with */
  private unused = new Set<string>(['model.beacon_embed_tokens.weight']);
  readonly bos: number;

  constructor(dir: string) {
    super(dir);
    const c = this.cfg;
    this.bos = c.bos_token_id ?? 1;
    for (const [k, v] of this.t) this.weights.set(k, { shape: v.shape.slice(), data: v.data.slice() });
    // Trainable: beacon_param, default q k v o ("mlp" = up and down; the gate
    // stays base). Used at the candidate token: trainable ones, and (as at
    // inference) present ones that beacon_param lists or that exist when
    // there is no beacon_param.
    const bp: string[] | undefined = c.beacon_param ?? undefined;
    const trainable = new Set(bp ?? ATTN);
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const used = new Set<Proj>();
      for (const p of [...ATTN, 'up', 'down'] as Proj[]) {
        const key = p === 'up' || p === 'down' ? 'mlp' : p;
        const cand = projName(l, p, true), base = projName(l, p, false);
        const present = this.weights.has(cand + '.weight');
        if (trainable.has(key) && !present) {
          this.weights.set(cand + '.weight', this.copy(base + '.weight'));
          if (this.weights.has(base + '.bias')) this.weights.set(cand + '.bias', this.copy(base + '.bias'));
        }
        if (trainable.has(key)) {
          this.candidateNames.push(cand + '.weight');
          if (this.weights.has(cand + '.bias')) this.candidateNames.push(cand + '.bias');
        }
        if (trainable.has(key) || (present && (!bp || bp.includes(key)))) used.add(p);
        if (present && bp && !bp.includes(key)) for (const e of ['.weight', '.bias']) this.unused.add(cand + e);
      }
      this.candUsed.push(used);
    }
  }

  private copy(name: string) {
    const w = this.weights.get(name);
    if (!w) throw new Error(`missing tensor ${name}`);
    return { shape: w.shape.slice(), data: w.data.slice() };
  }

  /**
   * params 'all': every base tensor of the checkpoint that the model runs
   * with, in file order; not beacon_embed_tokens (DESIGN 1: never used) nor
   * any candidate tensor (the lm loss never reads them: no gradient, so they
   * are not trained, as torch's AdamW skips a parameter whose grad is None).
   */
  allNames(): string[] {
    return [...this.t.keys()].filter((n) => !this.unused.has(n) && !n.includes('.beacon_'));
  }

  /** trainable tensors of the example's mode: focus trains the candidates, lm everything */
  trainableNames(ex: RefTrainExample): string[] {
    return ex.kind === 'lm' ? this.allNames() : this.candidateNames;
  }

  /** the example's loss (a forward only) */
  loss(ex: RefTrainExample): number {
    return this.run(new Tape(), this.leaves(), ex).data[0];
  }

  /** loss and gradient of every trainable tensor of the example's mode (flat, row-major) */
  lossAndGrad(ex: RefTrainExample): { loss: number; grads: Map<string, Float64Array> } {
    const tape = new Tape();
    const W = this.leaves();
    const loss = this.run(tape, W, ex);
    tape.backward(loss);
    const grads = new Map<string, Float64Array>();
    for (const n of this.trainableNames(ex)) grads.set(n, W.get(n)!.grad);
    return { loss: loss.data[0], grads };
  }

  /** one leaf Mat per weight (vectors as (1, n)), gradients zero */
  private leaves(): Map<string, Mat> {
    const W = new Map<string, Mat>();
    for (const [k, v] of this.weights) {
      const rows = v.shape.length > 1 ? v.shape[0] : 1;
      W.set(k, new Mat(rows, v.data.length / rows, v.data));
    }
    return W;
  }

  private run(tape: Tape, W: Map<string, Mat>, ex: RefTrainExample): Mat {
    const eps = this.cfg.rms_norm_eps ?? 1e-6;
    const head = this.cfg.tie_word_embeddings ? W.get('model.embed_tokens.weight')! : W.get('lm_head.weight')!;
    const logitsOf = (h: Mat) => tape.linear(tape.rmsnorm(h, W.get('model.norm.weight')!, eps), head, null);
    if (ex.kind === 'lm') {
      const n = ex.ids.length;
      if (n < 2) throw new Error('lm example: at least 2 tokens');
      const s0 = ex.lossStart ?? 1;
      if (!(s0 >= 1 && s0 < n)) throw new Error(`lm example: lossStart ${s0} outside 1..${n - 1}`);
      const h = this.sequence(tape, W, ex.ids, { pos0: 0, candidateLast: false }).h;
      return tape.crossEntropy(logitsOf(tape.rows(h, s0 - 1, n - 1)), ex.ids.slice(s0));
    }
    const plan = focusPlan(ex, this.bos);
    const nl = this.cfg.num_hidden_layers;
    const K: Mat[][] = Array.from({ length: nl }, () => []), V: Mat[][] = Array.from({ length: nl }, () => []);
    for (const chunk of plan.chunks) {
      // chunk ++ P at positions 0.., its last token the candidate; keep its pre-rotary K/V.
      const seq = [...chunk, ...plan.prompt];
      const r = this.sequence(tape, W, seq, { pos0: 0, candidateLast: true });
      for (let l = 0; l < nl; l++) {
        K[l].push(tape.rows(r.k[l], seq.length - 1, seq.length));
        V[l].push(tape.rows(r.v[l], seq.length - 1, seq.length));
      }
    }
    const k = plan.chunks.length;
    const prefix = { k: K.map((ks) => tape.cat(ks)), v: V.map((vs) => tape.cat(vs)) };
    const h = this.sequence(tape, W, plan.local, { pos0: k, prefix, candidateLast: false }).h;
    const n = plan.local.length;
    return tape.crossEntropy(logitsOf(tape.rows(h, n - 1, n)), [plan.target]);
  }

  /**
   * One sequence through every layer: token j at position pos0 + j; prefix
   * (per layer, pre-rotary keys and values, rotated here at 0..k-1) fully
   * visible; with candidateLast the last token uses the candidate projections.
   * Returns the last layer's output (n, dim) and each layer's pre-rotary K, V.
   */
  private sequence(
    tape: Tape,
    W: Map<string, Mat>,
    tokens: number[],
    o: { pos0: number; prefix?: { k: Mat[]; v: Mat[] }; candidateLast: boolean },
  ): { h: Mat; k: Mat[]; v: Mat[] } {
    const c = this.cfg;
    const nh = c.num_attention_heads, nkv = c.num_key_value_heads ?? nh, hd = this.hd, eps = c.rms_norm_eps ?? 1e-6;
    const n = tokens.length;
    const pos = tokens.map((_, j) => o.pos0 + j);
    const w = (name: string) => {
      const m = W.get(name);
      if (!m) throw new Error(`missing tensor ${name}`);
      return m;
    };
    const proj = (x: Mat, l: number, p: Proj) => {
      const base = projName(l, p, false);
      const y = tape.linear(x, w(base + '.weight'), W.get(base + '.bias') ?? null);
      if (!o.candidateLast || !this.candUsed[l].has(p)) return y;
      // The candidate row: its own weights; its bias, or the base one when it has none.
      const cand = projName(l, p, true);
      const yc = tape.linear(tape.rows(x, n - 1, n), w(cand + '.weight'), W.get(cand + '.bias') ?? W.get(base + '.bias') ?? null);
      return tape.cat([tape.rows(y, 0, n - 1), yc]);
    };
    let x = tape.embedding(w('model.embed_tokens.weight'), tokens);
    const ks: Mat[] = [], vs: Mat[] = [];
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const p = `model.layers.${l}.`;
      const h = tape.rmsnorm(x, w(p + 'input_layernorm.weight'), eps);
      const q = proj(h, l, 'q'), k = proj(h, l, 'k'), v = proj(h, l, 'v');
      ks.push(k);
      vs.push(v);
      let keys = tape.rope(k, nkv, hd, pos, this.invFreq), vals = v, key0 = 0;
      if (o.prefix) {
        const pk = o.prefix.k[l];
        const pp = Array.from({ length: pk.rows }, (_, i) => i);
        keys = tape.cat([tape.rope(pk, nkv, hd, pp, this.invFreq), keys]);
        vals = tape.cat([o.prefix.v[l], v]);
        key0 = pk.rows;
      }
      const att = tape.attention(tape.rope(q, nh, hd, pos, this.invFreq), keys, vals, nh, nkv, hd, key0);
      const x1 = tape.add(x, proj(att, l, 'o'));
      const h2 = tape.rmsnorm(x1, w(p + 'post_attention_layernorm.weight'), eps);
      const act = tape.swiglu(tape.linear(h2, w(p + 'mlp.gate_proj.weight'), null), proj(h2, l, 'up'));
      x = tape.add(x1, proj(act, l, 'down'));
    }
    return { h: x, k: ks, v: vs };
  }
}

/** Central finite difference of the loss in weight `name`, entry `i`. */
export function finiteDifference(ref: TrainRef, ex: RefTrainExample, name: string, i: number, h = 1e-5): number {
  const w = ref.weights.get(name)!.data;
  const x0 = w[i];
  w[i] = x0 + h;
  const up = ref.loss(ex);
  w[i] = x0 - h;
  const down = ref.loss(ex);
  w[i] = x0;
  return (up - down) / (2 * h);
}
