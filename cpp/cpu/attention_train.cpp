// CPU attention for training: forward (with the log-sum-exp of every query
// vector) and backward, over contiguous float32 keys and values (TrainAttnSeq
// in core/backend.h).
//
// Why materialised score blocks instead of the inference kernel's online
// softmax: the backward needs the probabilities again, and recomputing them
// from the kept log-sum-exp (as FlashAttention does) costs one more Q·Kᵀ but
// no O(T^2) memory. A block of kQB query rows of one head against all its
// visible keys is small (kQB x keys floats), so every product is a plain GEMM
// through the forward matmul's packed microkernel:
//   forward   S = Q Kᵀ,  P = exp(scale S - lse),  O = P V
//   backward  dP = dO Vᵀ,  dS = scale P (dP - rowsum(dO * O)),
//             dQ += dS K,  dK += dSᵀ Q,  dV += Pᵀ dO
// K and V are packed once per (sequence, KV head, query block) and reused by
// the `group` query heads that share them (GQA).
//
// Work split: the forward runs (sequence, KV head, query block) items in
// parallel; the backward runs (sequence, KV head) items, each over all its
// query blocks in order, so the dK/dV rows an item adds to are its own (key
// ranges of sequences do not overlap, heads are disjoint columns).
#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/error.h"
#include "ops.h"

namespace focus::cpu {

namespace {

constexpr int kQB = 64;  // query rows per block

struct Shape {
  int n_heads, n_kv, hd, group, NR;
  int64_t q_stride, kv_stride;
  float scale;
};

void check_seqs(const TrainAttnSeq* seqs, int n_seq, int n_heads, int n_kv_heads, int head_dim) {
  FOCUS_CHECK(n_heads > 0 && n_kv_heads > 0 && head_dim > 0 && n_heads % n_kv_heads == 0,
              "attention_train: bad head counts (", n_heads, " heads, ", n_kv_heads, " KV heads, head_dim ", head_dim,
              ")");
  for (int s = 0; s < n_seq; ++s) {
    const TrainAttnSeq& q = seqs[s];
    FOCUS_CHECK(q.n_q >= 0 && q.q_row >= 0 && q.key_row >= 0 && q.q_key0 >= 0 && q.q_key0 + q.n_q <= q.n_keys,
                "attention_train: sequence ", s, " has queries past its keys (q_key0 ", q.q_key0, ", n_q ", q.n_q,
                ", n_keys ", q.n_keys, ")");
  }
}

// Per-thread scratch, grown as needed (never shrinks).
struct Scratch {
  std::vector<float> kt, knn, vt, vnn, s, p, tr, qnn;
  static float* get(std::vector<float>& v, size_t n) {
    if (v.size() < n) v.resize(n);
    return v.data();
  }
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

// Packs rows [0, nk) of a (rows, hd) head slice (row stride ld) as panels for
// C = A · Xᵀ (transposed panels, gemm_pack): panel j covers rows j*NR.. and is
// (hd, NR).
void pack_t(const Kernels& K, float* dst, const float* x, int64_t ld, int nk, int hd, int NR) {
  for (int j = 0; j * NR < nk; ++j)
    K.gemm_pack(dst + int64_t(j) * hd * NR, x + int64_t(j) * NR * ld, 0, ld, std::min(NR, nk - j * NR), hd);
}
// Packs rows [0, nk) of a (rows, hd) head slice as panels for C = A · X (no
// transpose, gemm_pack_nn): panel c covers columns c*NR.. and is (nk, NR).
void pack_nn(const Kernels& K, float* dst, const float* x, int64_t ld, int nk, int hd, int NR) {
  for (int c = 0; c * NR < hd; ++c)
    K.gemm_pack_nn(dst + int64_t(c) * nk * NR, x + c * NR, 0, ld, std::min(NR, hd - c * NR), nk);
}
// C (m, ncols) (+)= A (m, kc) · panels, panels from pack_t (kc = their hd) or pack_nn (kc <= their nk).
void gemm_panels(const Kernels& K, float* c, int64_t ldc, const float* a, int64_t lda, int m, const float* panels,
                 int64_t panel_rows, int kc, int ncols, int NR, bool load_c) {
  for (int j = 0; j * NR < ncols; ++j)
    K.gemm_panel(c + j * NR, ldc, a, lda, m, panels + int64_t(j) * panel_rows * NR, kc, std::min(NR, ncols - j * NR),
                 nullptr, load_c);
}

inline int round_up(int x, int a) { return (x + a - 1) / a * a; }

// Scores of query rows [i0, i0 + qb) of head hq against the seq's first nk keys
// (panels kt), then the probabilities P (qb, nkp) with the causal mask:
// forward (lse == null: computes lse_out) or backward (uses lse).
void probabilities(const Kernels& K, const Shape& sh, const TrainAttnSeq& sq, const float* q, int hq, int i0, int qb,
                   int nk, int nkp, const float* kt, float* P, const float* lse, float* lse_out) {
  const float* qa = q + (int64_t(sq.q_row) + i0) * sh.q_stride + int64_t(hq) * sh.hd;
  gemm_panels(K, P, nkp, qa, sh.q_stride, qb, kt, sh.hd, sh.hd, nk, sh.NR, false);
  for (int i = 0; i < qb; ++i) {
    float* row = P + int64_t(i) * nkp;
    const int vis = sq.q_key0 + i0 + i + 1;
    const int64_t li = (int64_t(sq.q_row) + i0 + i) * sh.n_heads + hq;
    if (!lse) {
      float mx = row[0];
      for (int j = 1; j < vis; ++j) mx = std::max(mx, row[j]);
      const float shift = mx * sh.scale;
      const float sum = K.exp_sub_sum(row, row, vis, sh.scale, shift);
      const float inv = 1.0f / sum;
      for (int j = 0; j < vis; ++j) row[j] *= inv;
      lse_out[li] = shift + std::log(sum);
    } else {
      K.exp_sub_sum(row, row, vis, sh.scale, lse[li]);
    }
    std::fill(row + vis, row + nkp, 0.0f);
  }
}

}  // namespace

void attention_train_forward(ThreadPool& pool, float* out, float* lse, const float* q, const float* k,
                             const float* v, const TrainAttnSeq* seqs, int n_seq, int n_heads, int n_kv_heads,
                             int head_dim, float scale) {
  check_seqs(seqs, n_seq, n_heads, n_kv_heads, head_dim);
  const Kernels& K = kernels();
  const Shape sh{n_heads, n_kv_heads, head_dim, n_heads / n_kv_heads, K.gemm_nr, int64_t(n_heads) * head_dim,
                 int64_t(n_kv_heads) * head_dim, scale};
  struct Item {
    int seq, h, i0;
  };
  std::vector<Item> items;
  for (int s = 0; s < n_seq; ++s)
    for (int i0 = 0; i0 < seqs[s].n_q; i0 += kQB)
      for (int h = 0; h < n_kv_heads; ++h) items.push_back({s, h, i0});
  pool.parallel_for(int64_t(items.size()), 1, [&](int64_t b, int64_t e) {
    Scratch& S = scratch();
    for (int64_t it = b; it < e; ++it) {
      const Item& I = items[size_t(it)];
      const TrainAttnSeq& sq = seqs[I.seq];
      const int qb = std::min(kQB, sq.n_q - I.i0);
      const int nk = sq.q_key0 + I.i0 + qb;  // keys the block's last query sees
      const int nkp = round_up(nk, sh.NR), hdp = round_up(sh.hd, sh.NR);
      const float* kh = k + sq.key_row * sh.kv_stride + int64_t(I.h) * sh.hd;
      const float* vh = v + sq.key_row * sh.kv_stride + int64_t(I.h) * sh.hd;
      float* kt = Scratch::get(S.kt, size_t(nkp) * sh.hd);
      float* vnn = Scratch::get(S.vnn, size_t(nk) * hdp);
      float* P = Scratch::get(S.p, size_t(qb) * nkp);
      pack_t(K, kt, kh, sh.kv_stride, nk, sh.hd, sh.NR);
      pack_nn(K, vnn, vh, sh.kv_stride, nk, sh.hd, sh.NR);
      for (int g = 0; g < sh.group; ++g) {
        const int hq = I.h * sh.group + g;
        probabilities(K, sh, sq, q, hq, I.i0, qb, nk, nkp, kt, P, nullptr, lse);
        float* o = out + (int64_t(sq.q_row) + I.i0) * sh.q_stride + int64_t(hq) * sh.hd;
        gemm_panels(K, o, sh.q_stride, P, nkp, qb, vnn, nk, nk, sh.hd, sh.NR, false);
      }
    }
  });
}

void attention_train_backward(ThreadPool& pool, float* dq, float* dk, float* dv, const float* dout,
                              const float* out, const float* lse, const float* q, const float* k, const float* v,
                              const TrainAttnSeq* seqs, int n_seq, int n_heads, int n_kv_heads, int head_dim,
                              float scale) {
  check_seqs(seqs, n_seq, n_heads, n_kv_heads, head_dim);
  const Kernels& K = kernels();
  const Shape sh{n_heads, n_kv_heads, head_dim, n_heads / n_kv_heads, K.gemm_nr, int64_t(n_heads) * head_dim,
                 int64_t(n_kv_heads) * head_dim, scale};
  const int64_t n_items = int64_t(n_seq) * n_kv_heads;
  pool.parallel_for(n_items, 1, [&](int64_t b, int64_t e) {
    Scratch& S = scratch();
    for (int64_t it = b; it < e; ++it) {
      const TrainAttnSeq& sq = seqs[it / n_kv_heads];
      const int h = int(it % n_kv_heads);
      if (sq.n_q == 0) continue;
      const float* kh = k + sq.key_row * sh.kv_stride + int64_t(h) * sh.hd;
      const float* vh = v + sq.key_row * sh.kv_stride + int64_t(h) * sh.hd;
      float* dkh = dk ? dk + sq.key_row * sh.kv_stride + int64_t(h) * sh.hd : nullptr;
      float* dvh = dv ? dv + sq.key_row * sh.kv_stride + int64_t(h) * sh.hd : nullptr;
      const int hdp = round_up(sh.hd, sh.NR);
      for (int i0 = 0; i0 < sq.n_q; i0 += kQB) {
        const int qb = std::min(kQB, sq.n_q - i0);
        const int nk = sq.q_key0 + i0 + qb;
        const int nkp = round_up(nk, sh.NR), qbp = round_up(qb, sh.NR);
        float* kt = Scratch::get(S.kt, size_t(nkp) * sh.hd);    // K panels for Q Kᵀ
        float* vt = Scratch::get(S.vt, size_t(nkp) * sh.hd);    // V panels for dO Vᵀ
        float* knn = Scratch::get(S.knn, size_t(nk) * hdp);     // K panels for dS K
        float* P = Scratch::get(S.p, size_t(qb) * nkp);
        float* dP = Scratch::get(S.s, size_t(qb) * nkp);
        float* tr = Scratch::get(S.tr, size_t(nkp) * qbp);      // Pᵀ or dSᵀ (nk, qb)
        float* qnn = Scratch::get(S.qnn, size_t(qb) * hdp);     // Q or dO panels for ·ᵀ products
        pack_t(K, kt, kh, sh.kv_stride, nk, sh.hd, sh.NR);
        pack_t(K, vt, vh, sh.kv_stride, nk, sh.hd, sh.NR);
        if (dq) pack_nn(K, knn, kh, sh.kv_stride, nk, sh.hd, sh.NR);
        for (int g = 0; g < sh.group; ++g) {
          const int hq = h * sh.group + g;
          const int64_t r0 = (int64_t(sq.q_row) + i0) * sh.q_stride + int64_t(hq) * sh.hd;
          const float* dO = dout + r0;
          const float* O = out + r0;
          probabilities(K, sh, sq, q, hq, i0, qb, nk, nkp, kt, P, lse, nullptr);
          // dV += Pᵀ dO
          if (dvh) {
            for (int i = 0; i < qb; ++i)
              for (int j = 0; j < nk; ++j) tr[int64_t(j) * qb + i] = P[int64_t(i) * nkp + j];
            pack_nn(K, qnn, dO, sh.q_stride, qb, sh.hd, sh.NR);
            gemm_panels(K, dvh, sh.kv_stride, tr, qb, nk, qnn, qb, qb, sh.hd, sh.NR, true);
          }
          // dP = dO Vᵀ;  dS = scale P (dP - D)
          gemm_panels(K, dP, nkp, dO, sh.q_stride, qb, vt, sh.hd, sh.hd, nk, sh.NR, false);
          for (int i = 0; i < qb; ++i) {
            const float* dor = dO + int64_t(i) * sh.q_stride;
            const float* orow = O + int64_t(i) * sh.q_stride;
            float D = 0;
            for (int d = 0; d < sh.hd; ++d) D += dor[d] * orow[d];
            float* ds = dP + int64_t(i) * nkp;
            const float* pr = P + int64_t(i) * nkp;
            const int vis = sq.q_key0 + i0 + i + 1;
            for (int j = 0; j < vis; ++j) ds[j] = scale * pr[j] * (ds[j] - D);
            std::fill(ds + vis, ds + nk, 0.0f);
          }
          // dQ += dS K
          if (dq) gemm_panels(K, dq + r0, sh.q_stride, dP, nkp, qb, knn, nk, nk, sh.hd, sh.NR, true);
          // dK += dSᵀ Q
          if (dkh) {
            for (int i = 0; i < qb; ++i)
              for (int j = 0; j < nk; ++j) tr[int64_t(j) * qb + i] = dP[int64_t(i) * nkp + j];
            pack_nn(K, qnn, q + r0, sh.q_stride, qb, sh.hd, sh.NR);
            gemm_panels(K, dkh, sh.kv_stride, tr, qb, nk, qnn, qb, qb, sh.hd, sh.NR, true);
          }
        }
      }
    }
  });
}

}  // namespace focus::cpu
