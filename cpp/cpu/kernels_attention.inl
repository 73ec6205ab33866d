// Attention kernel for one work item (included by kernels_impl.h inside the
// level's namespace): the query vectors of n_rows rows × the `group` query
// heads of each KV head in the item, over the prefix keys and the causal part
// of the main keys. The softmax is online: each query vector keeps its
// running max m and sum l and rescales its output accumulator by
// e^(m_old - m_new) when the max grows, so no score buffer larger than one
// block of KB keys is ever needed, whatever the sequence length.
//
// Two paths:
// - several rows (prefill, chunks, the local sequence), blocked_rows(): per
//   block the keys are converted to float32 once for all query vectors and
//   transposed to (head_dim, KB), so that scores are broadcast-FMAs over KB
//   keys in registers; values stay row major (KB, head_dim) for p·v. kQG query
//   vectors go through a block together so each load feeds kQG FMAs.
// - one row (decode, candidates), direct_row(): too few query vectors to pay
//   for the transpose; cache rows are read in place and dotted directly.

constexpr int kKB = 4 * W;  // keys per block: 4 accumulator vectors per query vector
constexpr int kDirectQ = 4;  // query vectors per pass of the single-row path

static inline int round_up(int x, int a) { return (x + a - 1) / a * a; }

static size_t attention_scratch(int nqv, int hd) {
  const size_t hdp = size_t(round_up(hd, W));
  // Qs, O: (nqv, hdp); m, l: nqv; Kb, Vb: (KB, hdp); Kt: (hdp, KB); S: (kDirectQ, KB)
  return 2 * size_t(nqv) * hdp + 2 * size_t(nqv) + 2 * size_t(kKB) * hdp + hdp * kKB + kDirectQ * kKB + 4 * W;
}

// Query vectors that go through a key block together in the blocked path:
// each key or value load then feeds kQG FMAs, and kQG * 4 accumulators keep
// both FMA pipes busy (12+ independent chains are needed at 4 cycles of
// latency). AVX-512 has 32 registers for that, AVX2 and SSE 16.
constexpr int kQG = W == 16 ? 4 : 2;

// NV vectors (from the same column) of the outputs o[q] of kQG query vectors:
// o[q] = o[q] * alpha[q] + sum_j p[q][j] * v[j], j < n.
template <int NV>
static inline void pv_group(float* const* o, const float* alpha, const float* const* p, const float* vb, int hdp,
                            int n) {
  vf acc[kQG][NV];
#pragma GCC unroll 4
  for (int q = 0; q < kQG; ++q)
#pragma GCC unroll 4
    for (int c = 0; c < NV; ++c) acc[q][c] = vmul(vload(o[q] + c * W), vset1(alpha[q]));
  for (int j = 0; j < n; ++j) {
    const float* vr = vb + int64_t(j) * hdp;
    vf pj[kQG];
#pragma GCC unroll 4
    for (int q = 0; q < kQG; ++q) pj[q] = vset1(p[q][j]);
#pragma GCC unroll 4
    for (int c = 0; c < NV; ++c) {
      const vf v = vload(vr + c * W);
#pragma GCC unroll 4
      for (int q = 0; q < kQG; ++q) acc[q][c] = vfma(pj[q], v, acc[q][c]);
    }
  }
#pragma GCC unroll 4
  for (int q = 0; q < kQG; ++q)
#pragma GCC unroll 4
    for (int c = 0; c < NV; ++c) vstore(o[q] + c * W, acc[q][c]);
}

// Online-softmax update of one query vector's scores s (KB, masked beyond
// `limit` in place): returns alpha = e^(m_old - m_new), leaves p in s.
static inline float softmax_block(float* s, int limit, float* m, float* l) {
  for (int j = limit; j < kKB; ++j) s[j] = -__builtin_inff();
  vf mx = vload(s);
#pragma GCC unroll 4
  for (int c = 1; c < kKB / W; ++c) mx = vmax(mx, vload(s + c * W));
  const float bmax = vhmax(mx);
  const float mnew = *m > bmax ? *m : bmax;
  const float alpha = sc_exp(*m - mnew);  // m_old = -inf on the first block: 0
  const vf vm = vset1(mnew);
  vf sum = vzero();
#pragma GCC unroll 4
  for (int c = 0; c < kKB / W; ++c) {
    const vf p = vexp(vsub(vload(s + c * W), vm));  // masked: e^-inf = 0
    vstore(s + c * W, p);
    sum = vadd(sum, p);
  }
  *l = *l * alpha + vhsum(sum);
  *m = mnew;
  return alpha;
}


// ---- single query row (decode, candidates) --------------------------------------
// With one query row the item has only `group` query vectors: too few to pay
// for converting and transposing every key. Instead each key row is read
// straight from the cache (converted on the fly) and dotted with up to
// kDirectQ query vectors at once, and each value row is read once per chunk
// of W dimensions for all of them.

// One head's slice of a cache row is short (128-256 bytes) and rows are a
// whole KV width apart, so the hardware prefetchers, which stop at each 4 KiB
// page, lose the stream; this prefetches keys kPrefetchRows ahead and the
// block's values during the score pass.
constexpr int kPrefetchRows = 16;

// Keys [0, nk) of rows kr + j*stride (dtype T; `left` rows exist from kr on),
// for QN query vectors q (QN, hdp) with state o (QN, hdp), m, l. pf_bytes of
// each row (from kr) are prefetched: all heads of the item on its first head.
template <int T, int QN>
static void direct_block(const float* q, const char* kr0, const char* vr0, int64_t stride, int nk, int left, int hd,
                         int hdp, float* o, float* m, float* l, float* sc, int pf_bytes) {
  for (int j = 0; j < nk; ++j) {
    const char* kr = kr0 + int64_t(j) * stride;
    const char* vr = vr0 + int64_t(j) * stride;
    const bool ahead = j + kPrefetchRows < left;
    for (int b = 0; b < pf_bytes; b += 64) {
      if (ahead) __builtin_prefetch(kr + kPrefetchRows * stride + b, 0, 3);
      __builtin_prefetch(vr + b, 0, 3);
    }
    vf acc[QN];
#pragma GCC unroll 4
    for (int i = 0; i < QN; ++i) acc[i] = vzero();
    int c = 0;
    for (; c + W <= hd; c += W) {
      const vf kv = vload_as<T>(kr, c);
#pragma GCC unroll 4
      for (int i = 0; i < QN; ++i) acc[i] = vfma(vload(q + i * hdp + c), kv, acc[i]);
    }
    if (c < hd) {  // q is zero-padded to hdp
      const vf kv = vload_as_n<T>(kr, c, hd - c);
#pragma GCC unroll 4
      for (int i = 0; i < QN; ++i) acc[i] = vfma(vload(q + i * hdp + c), kv, acc[i]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < QN; ++i) sc[i * kKB + j] = vhsum(acc[i]);
  }
  float alpha[QN];
  for (int i = 0; i < QN; ++i) alpha[i] = softmax_block(sc + i * kKB, nk, m + i, l + i);
  for (int c = 0; c < hdp; c += W) {
    const int w = hd - c < W ? hd - c : W;
    vf acc[QN];
#pragma GCC unroll 4
    for (int i = 0; i < QN; ++i) acc[i] = vmul(vload(o + i * hdp + c), vset1(alpha[i]));
    for (int j = 0; j < nk; ++j) {
      const char* vr = vr0 + int64_t(j) * stride;
      const vf vv = w == W ? vload_as<T>(vr, c) : vload_as_n<T>(vr, c, w);
#pragma GCC unroll 4
      for (int i = 0; i < QN; ++i) acc[i] = vfma(vset1(sc[i * kKB + j]), vv, acc[i]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < QN; ++i) vstore(o + i * hdp + c, acc[i]);
  }
}

template <int QN>
static void direct_block_t(int dtype, const float* q, const char* kr, const char* vr, int64_t stride, int nk,
                           int left, int hd, int hdp, float* o, float* m, float* l, float* sc, int pf) {
  switch (dtype) {
    case kF32: direct_block<kF32, QN>(q, kr, vr, stride, nk, left, hd, hdp, o, m, l, sc, pf); break;
    case kF16: direct_block<kF16, QN>(q, kr, vr, stride, nk, left, hd, hdp, o, m, l, sc, pf); break;
    default: direct_block<kBF16, QN>(q, kr, vr, stride, nk, left, hd, hdp, o, m, l, sc, pf); break;
  }
}

// The item's one row over prefix keys, then main keys [0, q_index]. Blocks
// of keys are the outer loop and the item's KV heads the inner one, so with
// several heads each cache row is read whole, once, front to back.
static void direct_row(const AttnTask& t, int hdp, const float* qs, float* o, float* m, float* l, float* sc) {
  const int G = t.group, hd = t.head_dim;
  for (int range = 0; range < 2; ++range) {
    const bool prefix = range == 0;
    const int n = prefix ? t.n_prefix : t.q_index + 1;
    const int dtype = prefix ? t.prefix_dtype : t.main_dtype;
    const char* kb = static_cast<const char*>(prefix ? t.k_prefix : t.k_main);
    const char* vb = static_cast<const char*>(prefix ? t.v_prefix : t.v_main);
    const int64_t es = dtype == kF32 ? 4 : 2, stride = t.kv_stride * es;
    for (int j0 = 0; j0 < n; j0 += kKB) {
      const int nk = n - j0 < kKB ? n - j0 : kKB;
      for (int g = 0; g < t.kv_heads; ++g) {
        const char* kr = kb + int64_t(j0) * stride + int64_t(g) * hd * es;
        const char* vr = vb + int64_t(j0) * stride + int64_t(g) * hd * es;
        for (int h0 = 0; h0 < G; h0 += kDirectQ) {
          const int qv = g * G + h0;
          const float* qq = qs + size_t(qv) * hdp;
          float* oo = o + size_t(qv) * hdp;
          const int pf = g == 0 && h0 == 0 ? int(t.kv_heads * hd * es) : 0;
          switch (G - h0 < kDirectQ ? G - h0 : kDirectQ) {
            case 1: direct_block_t<1>(dtype, qq, kr, vr, stride, nk, n - j0, hd, hdp, oo, m + qv, l + qv, sc, pf); break;
            case 2: direct_block_t<2>(dtype, qq, kr, vr, stride, nk, n - j0, hd, hdp, oo, m + qv, l + qv, sc, pf); break;
            case 3: direct_block_t<3>(dtype, qq, kr, vr, stride, nk, n - j0, hd, hdp, oo, m + qv, l + qv, sc, pf); break;
            default: direct_block_t<4>(dtype, qq, kr, vr, stride, nk, n - j0, hd, hdp, oo, m + qv, l + qv, sc, pf); break;
          }
        }
      }
    }
  }
}

// ---- several query rows (prefill, chunks) ------------------------------------------
// Keys converted and transposed once per block for all n_rows * group query
// vectors, which go through the block two at a time.
static void blocked_rows(const AttnTask& t, int hdp, const float* qs, float* o, float* mrun, float* lrun, float* kb,
                         float* vb, float* kt, float* sc) {
  const int G = t.group, hd = t.head_dim, nqv = t.n_rows * G;
  // Padding columns of the value rows are read by the p·v loop: keep them 0.
  std::memset(vb, 0, sizeof(float) * size_t(kKB) * hdp);
  const size_t es_p = t.prefix_dtype == kF32 ? 4 : 2, es_m = t.main_dtype == kF32 ? 4 : 2;
  const int first_main = t.n_prefix + t.q_index;  // keys every row sees
  const int n_total = first_main + t.n_rows;      // keys the last row sees
  for (int j0 = 0; j0 < n_total; j0 += kKB) {
    const int nk = n_total - j0 < kKB ? n_total - j0 : kKB;
    for (int j = 0; j < nk; ++j) {
      const int key = j0 + j;
      if (key < t.n_prefix) {
        const int64_t off = int64_t(key) * t.kv_stride * int64_t(es_p);
        row_to_f32(kb + size_t(j) * hdp, static_cast<const char*>(t.k_prefix) + off, t.prefix_dtype, hd);
        row_to_f32(vb + size_t(j) * hdp, static_cast<const char*>(t.v_prefix) + off, t.prefix_dtype, hd);
      } else {
        const int64_t off = int64_t(key - t.n_prefix) * t.kv_stride * int64_t(es_m);
        row_to_f32(kb + size_t(j) * hdp, static_cast<const char*>(t.k_main) + off, t.main_dtype, hd);
        row_to_f32(vb + size_t(j) * hdp, static_cast<const char*>(t.v_main) + off, t.main_dtype, hd);
      }
    }
    for (int d = 0; d < hd; ++d) {
      float* row = kt + size_t(d) * kKB;
      for (int j = 0; j < nk; ++j) row[j] = kb[size_t(j) * hdp + d];
      for (int j = nk; j < kKB; ++j) row[j] = 0.0f;
    }
    // Row i sees keys < first_main + i + 1; rows before i0 see none of this block.
    const int i0 = j0 - first_main > 0 ? j0 - first_main : 0;
    for (int q0 = i0 * G; q0 < nqv; q0 += kQG) {
      // The group's query vectors; a short last group repeats its last one
      // (computed twice, identically, but its softmax state updated once).
      const int nv = nqv - q0 < kQG ? nqv - q0 : kQG;
      const float* qr[kQG];
      for (int q = 0; q < kQG; ++q) qr[q] = qs + size_t(q0 + (q < nv ? q : nv - 1)) * hdp;
      // Scores of the group: (kQG, KB) = Qs · Ktᵀ.
      vf acc[kQG][kKB / W];
#pragma GCC unroll 4
      for (int q = 0; q < kQG; ++q)
#pragma GCC unroll 4
        for (int c = 0; c < kKB / W; ++c) acc[q][c] = vzero();
      for (int d = 0; d < hd; ++d) {
        const float* kr = kt + size_t(d) * kKB;
        vf k[kKB / W];
#pragma GCC unroll 4
        for (int c = 0; c < kKB / W; ++c) k[c] = vload(kr + c * W);
#pragma GCC unroll 4
        for (int q = 0; q < kQG; ++q) {
          const vf a = vset1(qr[q][d]);
#pragma GCC unroll 4
          for (int c = 0; c < kKB / W; ++c) acc[q][c] = vfma(a, k[c], acc[q][c]);
        }
      }
#pragma GCC unroll 4
      for (int q = 0; q < kQG; ++q)
#pragma GCC unroll 4
        for (int c = 0; c < kKB / W; ++c) vstore(sc + q * kKB + c * W, acc[q][c]);
      // Online softmax per query vector; rows see keys < first_main + row + 1.
      float alpha[kQG];
      float* op[kQG];
      const float* pp[kQG];
      int n = 0;
      for (int q = 0; q < kQG; ++q) {
        if (q < nv) {
          const int lim = first_main + (q0 + q) / G + 1 - j0;
          n = lim < nk ? lim : nk;  // >= 1 (rows from i0 on); grows with q
          alpha[q] = softmax_block(sc + q * kKB, n, mrun + q0 + q, lrun + q0 + q);
          op[q] = o + size_t(q0 + q) * hdp;
          pp[q] = sc + q * kKB;
        } else {
          alpha[q] = alpha[nv - 1];
          op[q] = op[nv - 1];
          pp[q] = pp[nv - 1];
        }
      }
      // p·v: masked keys have p = 0, so every vector of the group runs to the
      // last one's limit.
      int c = 0;
      for (; c + 4 * W <= hdp; c += 4 * W) {
        float* oc[kQG];
        for (int q = 0; q < kQG; ++q) oc[q] = op[q] + c;
        pv_group<4>(oc, alpha, pp, vb + c, hdp, n);
      }
      if (c < hdp) {
        float* oc[kQG];
        for (int q = 0; q < kQG; ++q) oc[q] = op[q] + c;
        switch ((hdp - c) / W) {
          case 3: pv_group<3>(oc, alpha, pp, vb + c, hdp, n); break;
          case 2: pv_group<2>(oc, alpha, pp, vb + c, hdp, n); break;
          default: pv_group<1>(oc, alpha, pp, vb + c, hdp, n); break;
        }
      }
    }
  }
}

static void attention(const AttnTask& t, float* scratch) {
  // Query vectors: row-major over (row, KV head, head of the group).
  const int G = t.group * t.kv_heads, hd = t.head_dim, hdp = round_up(hd, W), nqv = t.n_rows * G;
  float* qs = scratch;                  // (nqv, hdp) scaled queries
  float* o = qs + size_t(nqv) * hdp;    // (nqv, hdp) output accumulators
  float* mrun = o + size_t(nqv) * hdp;  // (nqv) running max
  float* lrun = mrun + nqv;             // (nqv) running sum
  float* kb = lrun + nqv;               // (KB, hdp) keys of the block
  float* vb = kb + size_t(kKB) * hdp;   // (KB, hdp) values of the block
  float* kt = vb + size_t(kKB) * hdp;   // (hdp, KB) keys, transposed
  float* sc = kt + size_t(hdp) * kKB;   // (kDirectQ, KB) scores of the current query vectors

  for (int i = 0; i < t.n_rows; ++i)
    for (int h = 0; h < G; ++h) {
      const float* qv = t.q + int64_t(i) * t.q_stride + int64_t(h) * hd;
      float* dst = qs + size_t(i * G + h) * hdp;
      for (int d = 0; d < hd; ++d) dst[d] = qv[d] * t.scale;
      for (int d = hd; d < hdp; ++d) dst[d] = 0.0f;
    }
  std::memset(o, 0, sizeof(float) * size_t(nqv) * hdp);
  for (int q = 0; q < nqv; ++q) {
    mrun[q] = -__builtin_inff();
    lrun[q] = 0.0f;
  }
  if (t.n_rows == 1) direct_row(t, hdp, qs, o, mrun, lrun, sc);
  else blocked_rows(t, hdp, qs, o, mrun, lrun, kb, vb, kt, sc);

  for (int i = 0; i < t.n_rows; ++i)
    for (int h = 0; h < G; ++h) {
      const int q = i * G + h;
      const float inv = 1.0f / lrun[q];
      const float* src = o + size_t(q) * hdp;
      float* dst = t.out + int64_t(i) * t.q_stride + int64_t(h) * hd;
      for (int d = 0; d < hd; ++d) dst[d] = src[d] * inv;
    }
}
