// Attention kernel for one work item (included by kernels_impl.h inside the
// level's namespace): n_rows query rows × `group` query heads that share one
// KV head, over the prefix keys and the causal part of the main keys.
//
// Keys are taken in blocks of KB. Per block the keys are converted to float32
// once for all query vectors of the item and transposed to (head_dim, KB), so
// that scores are broadcast-FMA over KB keys in registers; values stay row
// major (KB, head_dim) for the p·v accumulation. The softmax is online: each
// query vector keeps its running max m and sum l and rescales its output
// accumulator by e^(m_old - m_new) when the max grows, so no score buffer
// larger than a block is ever needed. Two query vectors go through a block
// together so each key/value load feeds two FMAs.

constexpr int kKB = 4 * W;  // keys per block: 4 accumulator vectors per query vector
constexpr int kDirectQ = 4;  // query vectors per pass of the single-row path

static inline int round_up(int x, int a) { return (x + a - 1) / a * a; }

static size_t attention_scratch(int nqv, int hd) {
  const size_t hdp = size_t(round_up(hd, W));
  // Qs, O: (nqv, hdp); m, l: nqv; Kb, Vb: (KB, hdp); Kt: (hdp, KB); S: (kDirectQ, KB)
  return 2 * size_t(nqv) * hdp + 2 * size_t(nqv) + 2 * size_t(kKB) * hdp + hdp * kKB + kDirectQ * kKB + 4 * W;
}

// o (NV vectors) of query vectors a, b: o = o*alpha + sum_j p[j] v[j], j < n.
template <int NV>
static inline void pv_pair(float* oa, float* ob, float alpha_a, float alpha_b, const float* pa, const float* pb,
                           const float* vb, int hdp, int n, bool has_b) {
  vf acc_a[NV], acc_b[NV];
#pragma GCC unroll 4
  for (int c = 0; c < NV; ++c) {
    acc_a[c] = vmul(vload(oa + c * W), vset1(alpha_a));
    acc_b[c] = has_b ? vmul(vload(ob + c * W), vset1(alpha_b)) : vzero();
  }
  if (has_b) {
    for (int j = 0; j < n; ++j) {
      const vf wa = vset1(pa[j]), wb = vset1(pb[j]);
      const float* vr = vb + int64_t(j) * hdp;
#pragma GCC unroll 4
      for (int c = 0; c < NV; ++c) {
        const vf v = vload(vr + c * W);
        acc_a[c] = vfma(wa, v, acc_a[c]);
        acc_b[c] = vfma(wb, v, acc_b[c]);
      }
    }
  } else {
    for (int j = 0; j < n; ++j) {
      const vf wa = vset1(pa[j]);
      const float* vr = vb + int64_t(j) * hdp;
#pragma GCC unroll 4
      for (int c = 0; c < NV; ++c) acc_a[c] = vfma(wa, vload(vr + c * W), acc_a[c]);
    }
  }
#pragma GCC unroll 4
  for (int c = 0; c < NV; ++c) {
    vstore(oa + c * W, acc_a[c]);
    if (has_b) vstore(ob + c * W, acc_b[c]);
  }
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

// Keys [0, n) of one range (prefix or main: one dtype T), rows `stride` bytes
// apart, for QN query vectors q (QN, hdp) with state o (QN, hdp), m, l.
template <int T, int QN>
static void direct_range(const float* q, const char* kbase, const char* vbase, int64_t stride, int n, int hd,
                         int hdp, float* o, float* m, float* l, float* sc) {
  for (int j0 = 0; j0 < n; j0 += kKB) {
    const int nk = n - j0 < kKB ? n - j0 : kKB;
    for (int j = 0; j < nk; ++j) {
      const char* kr = kbase + int64_t(j0 + j) * stride;
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
        const char* vr = vbase + int64_t(j0 + j) * stride;
        const vf vv = w == W ? vload_as<T>(vr, c) : vload_as_n<T>(vr, c, w);
#pragma GCC unroll 4
        for (int i = 0; i < QN; ++i) acc[i] = vfma(vset1(sc[i * kKB + j]), vv, acc[i]);
      }
#pragma GCC unroll 4
      for (int i = 0; i < QN; ++i) vstore(o + i * hdp + c, acc[i]);
    }
  }
}

template <int QN>
static void direct_range_t(int dtype, const float* q, const void* k, const void* v, int64_t stride_elems, int n,
                           int hd, int hdp, float* o, float* m, float* l, float* sc) {
  const char* kb = static_cast<const char*>(k);
  const char* vb = static_cast<const char*>(v);
  switch (dtype) {
    case kF32: direct_range<kF32, QN>(q, kb, vb, stride_elems * 4, n, hd, hdp, o, m, l, sc); break;
    case kF16: direct_range<kF16, QN>(q, kb, vb, stride_elems * 2, n, hd, hdp, o, m, l, sc); break;
    default: direct_range<kBF16, QN>(q, kb, vb, stride_elems * 2, n, hd, hdp, o, m, l, sc); break;
  }
}

// The item's one row: prefix keys, then main keys [0, q_index], for the query
// vectors [q0, q0 + QN).
template <int QN>
static void direct_group(const AttnTask& t, int hdp, const float* qs, float* o, float* m, float* l, float* sc) {
  if (t.n_prefix > 0)
    direct_range_t<QN>(t.prefix_dtype, qs, t.k_prefix, t.v_prefix, t.kv_stride, t.n_prefix, t.head_dim, hdp, o, m, l,
                       sc);
  direct_range_t<QN>(t.main_dtype, qs, t.k_main, t.v_main, t.kv_stride, t.q_index + 1, t.head_dim, hdp, o, m, l, sc);
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
    for (int qa = i0 * G; qa < nqv; qa += 2) {
      const int qb = qa + 1;
      const bool has_b = qb < nqv;
      // Scores of the pair: (2, KB) = Qs[qa,qb] · Ktᵀ.
      vf sa[kKB / W], sb[kKB / W];
#pragma GCC unroll 4
      for (int c = 0; c < kKB / W; ++c) sa[c] = sb[c] = vzero();
      const float* qra = qs + size_t(qa) * hdp;
      const float* qrb = qs + size_t(has_b ? qb : qa) * hdp;
      for (int d = 0; d < hd; ++d) {
        const vf a = vset1(qra[d]), b = vset1(qrb[d]);
        const float* kr = kt + size_t(d) * kKB;
#pragma GCC unroll 4
        for (int c = 0; c < kKB / W; ++c) {
          const vf k = vload(kr + c * W);
          sa[c] = vfma(a, k, sa[c]);
          sb[c] = vfma(b, k, sb[c]);
        }
      }
#pragma GCC unroll 4
      for (int c = 0; c < kKB / W; ++c) {
        vstore(sc + c * W, sa[c]);
        vstore(sc + kKB + c * W, sb[c]);
      }
      const int lim_a = first_main + qa / G + 1 - j0, lim_b = first_main + (has_b ? qb : qa) / G + 1 - j0;
      const int na = lim_a < nk ? lim_a : nk, nb = lim_b < nk ? lim_b : nk;  // >= 1: rows from i0 on
      const float alpha_a = softmax_block(sc, na, mrun + qa, lrun + qa);
      const float alpha_b = has_b ? softmax_block(sc + kKB, nb, mrun + qb, lrun + qb) : 0.0f;
      // p·v: the pair shares every value load; b sees at least as many keys as a.
      float* oa = o + size_t(qa) * hdp;
      float* ob = o + size_t(has_b ? qb : qa) * hdp;
      const int n = has_b ? nb : na;
      int c = 0;
      for (; c + 4 * W <= hdp; c += 4 * W)
        pv_pair<4>(oa + c, ob + c, alpha_a, alpha_b, sc, sc + kKB, vb + c, hdp, n, has_b);
      switch ((hdp - c) / W) {
        case 3: pv_pair<3>(oa + c, ob + c, alpha_a, alpha_b, sc, sc + kKB, vb + c, hdp, n, has_b); break;
        case 2: pv_pair<2>(oa + c, ob + c, alpha_a, alpha_b, sc, sc + kKB, vb + c, hdp, n, has_b); break;
        case 1: pv_pair<1>(oa + c, ob + c, alpha_a, alpha_b, sc, sc + kKB, vb + c, hdp, n, has_b); break;
        default: break;
      }
    }
  }
}

static void attention(const AttnTask& t, float* scratch) {
  const int G = t.group, hd = t.head_dim, hdp = round_up(hd, W), nqv = t.n_rows * G;
  float* qs = scratch;                          // (nqv, hdp) scaled queries
  float* o = qs + size_t(nqv) * hdp;            // (nqv, hdp) output accumulators
  float* mrun = o + size_t(nqv) * hdp;          // (nqv) running max
  float* lrun = mrun + nqv;                     // (nqv) running sum
  float* kb = lrun + nqv;                       // (KB, hdp) keys of the block
  float* vb = kb + size_t(kKB) * hdp;           // (KB, hdp) values of the block
  float* kt = vb + size_t(kKB) * hdp;           // (hdp, KB) keys, transposed
  float* sc = kt + size_t(hdp) * kKB;           // (kDirectQ, KB) scores of the current query vectors

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
  if (t.n_rows == 1) {
    for (int q0 = 0; q0 < nqv; q0 += kDirectQ) {
      float *qq = qs + size_t(q0) * hdp, *oo = o + size_t(q0) * hdp;
      switch (nqv - q0 < kDirectQ ? nqv - q0 : kDirectQ) {
        case 1: direct_group<1>(t, hdp, qq, oo, mrun + q0, lrun + q0, sc); break;
        case 2: direct_group<2>(t, hdp, qq, oo, mrun + q0, lrun + q0, sc); break;
        case 3: direct_group<3>(t, hdp, qq, oo, mrun + q0, lrun + q0, sc); break;
        default: direct_group<4>(t, hdp, qq, oo, mrun + q0, lrun + q0, sc); break;
      }
    }
  } else {
    blocked_rows(t, hdp, qs, o, mrun, lrun, kb, vb, kt, sc);
  }

  for (int i = 0; i < t.n_rows; ++i)
    for (int h = 0; h < G; ++h) {
      const int q = i * G + h;
      const float inv = 1.0f / lrun[q];
      const float* src = o + size_t(q) * hdp;
      float* dst = t.out + int64_t(i) * t.q_stride + int64_t(h) * hd;
      for (int d = 0; d < hd; ++d) dst[d] = src[d] * inv;
    }
}
