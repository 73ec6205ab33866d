// The forward and backward of training examples, as Backend op calls.
//
// FocusLLM example (DESIGN 1b), in four phases:
//   1. chunks: every chunk's ordinary tokens (chunk ++ P without its last
//      token) run through Model::run into a float32 KV pool. They use only
//      frozen base weights, so their keys and values are constants: no
//      activations are kept and no backward runs over them.
//   2. candidates: the k candidate rows (P's last token on top of each chunk's
//      cache) run with the candidate projections; their pre-rotary keys and
//      values per layer are the candidate KVs. Activations kept (k rows).
//   3. local: withBos(x[s:s+l]) over the k candidate KVs (rotated at 0..k-1)
//      and causally over itself; the loss is the cross-entropy of x[s+l] at
//      its last row. Full backward (input gradients through frozen layers),
//      which yields the gradients of the candidate KVs.
//   4. candidates, backward: those KV gradients enter each layer of phase 2's
//      rows; the weight gradients of the candidate projections come out.
// LM example: one causal sequence, mean cross-entropy over its next tokens
// from ids[loss_start] on (a prompt before it is context only), a full
// backward with every weight gradient.
//
// A row set (phase 2, 3 or the LM sequence) runs layer by layer; attention
// keys of each sequence are assembled per layer as [constant cache | prefix |
// own rows] (TrainAttnSeq). Activations are kept per layer, or with
// `recompute` only each layer's input is kept and the layer's forward runs
// again during the backward.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "error.h"
#include "train.h"

namespace focus {

namespace {

// One layer's weights as a row set sees them (base or candidate projections).
struct LayerView {
  const Weight *attn_norm, *ffn_norm, *q, *k, *v, *o, *bq, *bk, *bv, *bo, *gate, *up, *down;
};

LayerView view(const LayerWeights& L, bool cand) {
  if (cand)
    return {&L.attn_norm, &L.ffn_norm, &L.cq,     &L.ck,   &L.cv,  &L.co,  &L.cbq,
            &L.cbk,       &L.cbv,      &L.cbo,    &L.w_gate, &L.c_up, &L.c_down};
  return {&L.attn_norm, &L.ffn_norm, &L.wq,     &L.wk,   &L.wv,  &L.wo,  &L.bq,
          &L.bk,        &L.bv,       &L.bo,     &L.w_gate, &L.w_up, &L.w_down};
}

// Where a sequence's attention keys come from, per layer: a constant cache
// (no gradient), then a prefix of candidate KVs (pre-rotary keys, rotated at
// 0..n_prefix-1, gradients wanted), then its own rows.
struct KeySource {
  const float* k_const = nullptr;  // layer 0; rows contiguous (kv_dim)
  const float* v_const = nullptr;
  int64_t const_layer_stride = 0;  // elements
  int n_const = 0;
  int n_prefix = 0;  // rows of the row set's prefix arrays
};

// A set of rows that run through the layers together.
struct RowSet {
  int n = 0;
  std::vector<int32_t> ids;      // (n)
  std::vector<int32_t> pos;      // (n) rotary positions
  bool cand = false;             // rows use the candidate projections
  std::vector<TrainAttnSeq> seqs;
  std::vector<KeySource> src;    // per sequence
  int64_t total_keys = 0;
  // Prefix KVs (all sequences with a prefix share them): (n_layers, n_prefix, kv_dim)
  const float* prefix_k = nullptr;
  const float* prefix_v = nullptr;
  int n_prefix = 0;
  // Outputs of the forward for candidate rows: pre-rotary keys and values,
  // (n_layers, n, kv_dim); inputs of the backward: their gradients.
  float* cand_k = nullptr;
  float* cand_v = nullptr;
  const float* d_cand_k = nullptr;
  const float* d_cand_v = nullptr;
  // Outputs of the backward: gradients of the prefix KVs, (n_layers, n_prefix, kv_dim).
  float* d_prefix_k = nullptr;
  float* d_prefix_v = nullptr;
};

// One layer's activations for n rows.
struct Acts {
  float *x_in, *h1, *q, *k, *v, *att, *lse, *x_mid, *h2, *gate, *up, *act;
};

}  // namespace

// Logits rows per block of the LM head: (256, vocab) floats (1024 measured
// no faster on the 156M shape).
constexpr int kHeadRows = 256;

struct Trainer::Graph {
  Trainer& T;
  Model& M;
  Backend& be;
  const ModelConfig& c;
  const int dim, qd, kvd, inter, hd;
  TrainArena& arena;
  AttnArgs shape;

  explicit Graph(Trainer& t)
      : T(t), M(*t.model_), be(M.backend()), c(M.config()), dim(c.hidden_size), qd(c.q_dim()), kvd(c.kv_dim()),
        inter(c.intermediate_size), hd(c.head_dim), arena(*t.arena_) {
    shape.n_heads = c.n_heads;
    shape.n_kv_heads = c.n_kv_heads;
    shape.head_dim = hd;
    shape.scale = float(1.0 / std::sqrt(double(hd)));
  }

  size_t acts_floats(int n) const {
    return size_t(n) * (4 * size_t(dim) + 2 * size_t(qd) + 2 * size_t(kvd) + size_t(c.n_heads) + 3 * size_t(inter));
  }
  Acts carve(float* p, int n) const {
    Acts a;
    auto take = [&](size_t per_row) {
      float* r = p;
      p += size_t(n) * per_row;
      return r;
    };
    a.x_in = take(dim), a.h1 = take(dim), a.q = take(qd), a.k = take(kvd), a.v = take(kvd), a.att = take(qd);
    a.lse = take(c.n_heads), a.x_mid = take(dim), a.h2 = take(dim), a.gate = take(inter), a.up = take(inter);
    a.act = take(inter);
    return a;
  }

  // K and V (total keys, kv_dim) of layer l for every sequence of R.
  void assemble(const RowSet& R, int l, const Acts& A, float* K, float* V, const float* ptable) {
    for (size_t s = 0; s < R.seqs.size(); ++s) {
      const TrainAttnSeq& q = R.seqs[s];
      const KeySource& src = R.src[s];
      float* kd = K + q.key_row * kvd;
      float* vd = V + q.key_row * kvd;
      const size_t row = size_t(kvd) * 4;
      if (src.n_const) {
        be.copy(kd, src.k_const + l * src.const_layer_stride, src.n_const * row);
        be.copy(vd, src.v_const + l * src.const_layer_stride, src.n_const * row);
        kd += int64_t(src.n_const) * kvd, vd += int64_t(src.n_const) * kvd;
      }
      if (src.n_prefix) {
        be.copy(kd, R.prefix_k + int64_t(l) * R.n_prefix * kvd, src.n_prefix * row);
        be.copy(vd, R.prefix_v + int64_t(l) * R.n_prefix * kvd, src.n_prefix * row);
        be.rope(kd, src.n_prefix, c.n_kv_heads, ptable);
        kd += int64_t(src.n_prefix) * kvd, vd += int64_t(src.n_prefix) * kvd;
      }
      be.copy(kd, A.k + int64_t(q.q_row) * kvd, size_t(q.n_q) * row);
      be.copy(vd, A.v + int64_t(q.q_row) * kvd, size_t(q.n_q) * row);
    }
  }

  // One layer forward: x (n, dim) in place, activations to A.
  void layer_forward(const RowSet& R, int l, float* x, const Acts& A, const float* table, const float* ptable,
                     float* K, float* V) {
    const int n = R.n;
    const LayerView W = view(M.w_.layers[size_t(l)], R.cand);
    be.copy(A.x_in, x, size_t(n) * dim * 4);
    be.rms_norm(A.h1, x, *W.attn_norm, n, c.rms_norm_eps);
    be.matmul(A.q, A.h1, n, *W.q, W.bq, Epilogue::Store);
    be.matmul(A.k, A.h1, n, *W.k, W.bk, Epilogue::Store);
    be.matmul(A.v, A.h1, n, *W.v, W.bv, Epilogue::Store);
    if (R.cand_k) {  // the candidate KVs: keys before rotary
      be.copy(R.cand_k + int64_t(l) * n * kvd, A.k, size_t(n) * kvd * 4);
      be.copy(R.cand_v + int64_t(l) * n * kvd, A.v, size_t(n) * kvd * 4);
    }
    be.rope(A.q, n, c.n_heads, table);
    be.rope(A.k, n, c.n_kv_heads, table);
    assemble(R, l, A, K, V, ptable);
    be.attention_train_forward(A.att, A.lse, A.q, K, V, R.seqs.data(), int(R.seqs.size()), shape);
    be.matmul(x, A.att, n, *W.o, W.bo, Epilogue::Add);
    be.copy(A.x_mid, x, size_t(n) * dim * 4);
    be.rms_norm(A.h2, x, *W.ffn_norm, n, c.rms_norm_eps);
    be.matmul(A.gate, A.h2, n, *W.gate, nullptr, Epilogue::Store);
    be.matmul(A.up, A.h2, n, *W.up, nullptr, Epilogue::Store);
    be.swiglu(A.act, A.gate, A.up, int64_t(n) * inter);
    be.matmul(x, A.act, n, *W.down, nullptr, Epilogue::Add);
  }

  float* g(const Weight* w) const { return w && !w->empty() ? T.grad_of(*w) : nullptr; }
  // dx += dout · w, dw += doutᵀ · x, dbias += Σ dout (when trainable)
  void linear_backward(float* dx, const float* dout, const float* x, int n, const Weight* w, const Weight* b) {
    be.matmul_backward(dx, g(w), g(b), dout, x, n, *w);
  }

  // One layer backward: dx (n, dim) holds the gradient of the layer's output
  // and becomes that of its input. Scratch: B (see backward()).
  struct Back {
    float *dh, *dq, *dk, *dv, *datt, *dgate, *dup, *dact, *dK, *dV;
  };
  void layer_backward(const RowSet& R, int l, float* dx, const Acts& A, const float* table, const float* ptable,
                      float* K, float* V, const Back& B) {
    const int n = R.n;
    const LayerView W = view(M.w_.layers[size_t(l)], R.cand);
    // MLP: x_out = x_mid + down(swiglu(gate(h2), up(h2))), h2 = norm(x_mid)
    be.fill_zero(B.dact, size_t(n) * inter * 4);
    linear_backward(B.dact, dx, A.act, n, W.down, nullptr);
    be.fill_zero(B.dgate, size_t(n) * inter * 4);
    be.fill_zero(B.dup, size_t(n) * inter * 4);
    be.swiglu_backward(B.dgate, B.dup, B.dact, A.gate, A.up, int64_t(n) * inter);
    be.fill_zero(B.dh, size_t(n) * dim * 4);
    linear_backward(B.dh, B.dgate, A.h2, n, W.gate, nullptr);
    linear_backward(B.dh, B.dup, A.h2, n, W.up, nullptr);
    be.rms_norm_backward(dx, g(W.ffn_norm), B.dh, A.x_mid, *W.ffn_norm, n, c.rms_norm_eps);
    // attention: x_mid = x_in + o(attn(q, K, V)), q/k/v from h1 = norm(x_in)
    be.fill_zero(B.datt, size_t(n) * qd * 4);
    linear_backward(B.datt, dx, A.att, n, W.o, W.bo);
    assemble(R, l, A, K, V, ptable);
    be.fill_zero(B.dq, size_t(n) * qd * 4);
    be.fill_zero(B.dK, size_t(R.total_keys) * kvd * 4);
    be.fill_zero(B.dV, size_t(R.total_keys) * kvd * 4);
    be.attention_train_backward(B.dq, B.dK, B.dV, B.datt, A.att, A.lse, A.q, K, V, R.seqs.data(),
                                int(R.seqs.size()), shape);
    // Scatter the key/value gradients back to their sources.
    for (size_t s = 0; s < R.seqs.size(); ++s) {
      const TrainAttnSeq& q = R.seqs[s];
      const KeySource& src = R.src[s];
      const int64_t pk = q.key_row + src.n_const, own = pk + src.n_prefix;
      if (src.n_prefix && R.d_prefix_k) {
        // Gradient of the pre-rotary prefix keys: undo the rotation at 0..n_prefix-1.
        float* dpk = B.dK + pk * kvd;
        be.rope_backward(dpk, src.n_prefix, c.n_kv_heads, ptable);
        add(R.d_prefix_k + int64_t(l) * R.n_prefix * kvd, dpk, int64_t(src.n_prefix) * kvd);
        add(R.d_prefix_v + int64_t(l) * R.n_prefix * kvd, B.dV + pk * kvd, int64_t(src.n_prefix) * kvd);
      }
      be.copy(B.dk + int64_t(q.q_row) * kvd, B.dK + own * kvd, size_t(q.n_q) * kvd * 4);
      be.copy(B.dv + int64_t(q.q_row) * kvd, B.dV + own * kvd, size_t(q.n_q) * kvd * 4);
    }
    be.rope_backward(B.dq, n, c.n_heads, table);
    be.rope_backward(B.dk, n, c.n_kv_heads, table);
    if (R.d_cand_k) {  // the local rows' gradients of these rows' candidate KVs
      add(B.dk, R.d_cand_k + int64_t(l) * n * kvd, int64_t(n) * kvd);
      add(B.dv, R.d_cand_v + int64_t(l) * n * kvd, int64_t(n) * kvd);
    }
    be.fill_zero(B.dh, size_t(n) * dim * 4);
    linear_backward(B.dh, B.dq, A.h1, n, W.q, W.bq);
    linear_backward(B.dh, B.dk, A.h1, n, W.k, W.bk);
    linear_backward(B.dh, B.dv, A.h1, n, W.v, W.bv);
    be.rms_norm_backward(dx, g(W.attn_norm), B.dh, A.x_in, *W.attn_norm, n, c.rms_norm_eps);
  }

  // dst += src (n floats, host memory on the CPU backend)
  static void add(float* dst, const float* src, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
  }

  // The whole row set: forward from the embeddings to x (n, dim) after the last layer.
  struct Run {
    float* x = nullptr;      // (n, dim) final hidden states
    float* store = nullptr;  // activations: every layer's, or layer inputs only (recompute)
    float* table = nullptr;
    float* ptable = nullptr;
    float *K = nullptr, *V = nullptr;
  };
  Run forward(const RowSet& R, RunControl* ctl) {
    const int n = R.n;
    Run r;
    r.x = arena.take(size_t(n) * dim, "training activations");
    r.table = arena.take(size_t(n) * hd, "rotary table");
    r.ptable = arena.take(size_t(std::max(R.n_prefix, 1)) * hd, "rotary table");
    r.K = arena.take(size_t(R.total_keys) * kvd, "attention keys");
    r.V = arena.take(size_t(R.total_keys) * kvd, "attention values");
    be.rope_table(r.table, R.pos.data(), n);
    if (R.n_prefix) {
      std::vector<int32_t> pp(size_t(R.n_prefix));
      for (int j = 0; j < R.n_prefix; ++j) pp[size_t(j)] = j;
      be.rope_table(r.ptable, pp.data(), R.n_prefix);
    }
    be.embedding(r.x, M.w_.embed, R.ids.data(), n);
    const size_t per = acts_floats(n);
    if (T.recompute_) {
      r.store = arena.take(size_t(c.n_layers) * n * dim + per, "training activations (layer inputs)");
    } else {
      r.store = arena.take(size_t(c.n_layers) * per, "training activations");
    }
    for (int l = 0; l < c.n_layers; ++l) {
      if (ctl && ctl->cancel.load()) throw Cancelled();
      const Acts A = acts_of(r, n, l);
      layer_forward(R, l, r.x, A, r.table, r.ptable, r.K, r.V);
      if (T.recompute_) be.copy(r.store + size_t(l) * n * dim, A.x_in, size_t(n) * dim * 4);
    }
    return r;
  }
  Acts acts_of(const Run& r, int n, int l) const {
    if (T.recompute_) return carve(r.store + size_t(c.n_layers) * n * dim, n);
    return carve(r.store + size_t(l) * acts_floats(n), n);
  }

  // dx (n, dim): gradient of the final hidden states in, of the embeddings out.
  void backward(const RowSet& R, Run& r, float* dx, RunControl* ctl) {
    const int n = R.n;
    Back B;
    B.dh = arena.take(size_t(n) * dim, "training gradients");
    B.dq = arena.take(size_t(n) * qd, "training gradients");
    B.datt = arena.take(size_t(n) * qd, "training gradients");
    B.dk = arena.take(size_t(n) * kvd, "training gradients");
    B.dv = arena.take(size_t(n) * kvd, "training gradients");
    B.dgate = arena.take(size_t(n) * inter, "training gradients");
    B.dup = arena.take(size_t(n) * inter, "training gradients");
    B.dact = arena.take(size_t(n) * inter, "training gradients");
    B.dK = arena.take(size_t(R.total_keys) * kvd, "training gradients");
    B.dV = arena.take(size_t(R.total_keys) * kvd, "training gradients");
    float* xtmp = T.recompute_ ? arena.take(size_t(n) * dim, "training activations") : nullptr;
    for (int l = c.n_layers - 1; l >= 0; --l) {
      if (ctl && ctl->cancel.load()) throw Cancelled();
      const Acts A = acts_of(r, n, l);
      if (T.recompute_) {  // run the layer again from its kept input
        be.copy(xtmp, r.store + size_t(l) * n * dim, size_t(n) * dim * 4);
        layer_forward(R, l, xtmp, A, r.table, r.ptable, r.K, r.V);
      }
      layer_backward(R, l, dx, A, r.table, r.ptable, r.K, r.V, B);
    }
    if (float* ge = g(&M.w_.embed)) be.embedding_backward(ge, dx, R.ids.data(), n, dim);
  }

  // Final norm + lm_head + cross-entropy over rows [r0, r0 + nr) of x, with
  // per-row targets and gradient weights; writes dx for those rows. Returns
  // the losses' sum.
  double head(const float* x, float* dx, int r0, int nr, const int32_t* targets, const float* weights) {
    const int kBlock = kHeadRows;
    const int V = c.vocab_size;
    float* h = arena.take(size_t(std::min(nr, kBlock)) * dim, "logits input");
    float* dh = arena.take(size_t(std::min(nr, kBlock)) * dim, "logits input");
    float* logits = arena.take(size_t(std::min(nr, kBlock)) * V, "logits");
    std::vector<double> losses(size_t(std::min(nr, kBlock)));
    double sum = 0;
    for (int b = 0; b < nr; b += kBlock) {
      const int m = std::min(kBlock, nr - b);
      const float* xb = x + int64_t(r0 + b) * dim;
      be.rms_norm(h, xb, M.w_.norm, m, c.rms_norm_eps);
      be.matmul(logits, h, m, M.w_.lm_head, nullptr, Epilogue::StoreF32);
      be.cross_entropy(logits, losses.data(), logits, targets + b, weights + b, m, V);
      for (int i = 0; i < m; ++i) sum += losses[size_t(i)];
      be.fill_zero(dh, size_t(m) * dim * 4);
      be.matmul_backward(dh, g(&M.w_.lm_head), nullptr, logits, h, m, M.w_.lm_head);
      be.rms_norm_backward(dx + int64_t(r0 + b) * dim, g(&M.w_.norm), dh, xb, M.w_.norm, m, c.rms_norm_eps);
    }
    return sum;
  }

  double lm(const TrainExample& e, RunControl* ctl) {
    const int N = int(e.ids.size());
    RowSet R;
    R.n = N;
    R.ids = e.ids;
    R.pos.resize(size_t(N));
    for (int i = 0; i < N; ++i) R.pos[size_t(i)] = i;
    R.seqs.push_back({0, N, 0, N, 0});
    R.src.push_back({});
    R.total_keys = N;
    Run r = forward(R, ctl);
    mark("lm forward");
    float* dx = arena.take(size_t(N) * dim, "training gradients", true);
    const int s0 = e.loss_start, nr = N - s0;  // rows s0-1 .. N-2 predict ids[s0 .. N-1]
    std::vector<float> w(size_t(nr), e.weight / float(nr));
    const double loss = head(r.x, dx, s0 - 1, nr, e.ids.data() + s0, w.data()) / double(nr);
    mark("lm head + loss");
    backward(R, r, dx, ctl);
    mark("lm backward");
    return loss;
  }

  // Arena bytes a row set's forward + backward takes (the take() calls of
  // forward(), backward() and the caller's dx), 64 bytes of alignment each.
  size_t rowset_bytes(int n, int64_t keys, int n_prefix) const {
    const size_t N = size_t(n), K = size_t(keys), L = size_t(c.n_layers), a = 64;
    size_t f = 0;
    f += N * dim + N * hd + size_t(std::max(n_prefix, 1)) * hd + 2 * K * kvd;      // x, tables, K, V
    f += T.recompute_ ? L * N * dim + acts_floats(n) : L * acts_floats(n);          // activations
    f += 2 * N * dim + 2 * N * qd + 2 * N * kvd + 3 * N * inter + 2 * K * kvd;     // backward scratch
    f += (T.recompute_ ? N * dim : 0) + N * dim;                                    // xtmp, dx
    return f * 4 + 20 * a;
  }
  size_t head_bytes(int nr) const {
    const size_t m = size_t(std::min(nr, kHeadRows));
    return (2 * m * dim + m * size_t(c.vocab_size)) * 4 + 3 * 64;
  }
  size_t example_bytes(const TrainExample& e) const {
    const int N = int(e.ids.size());
    if (e.kind == TrainExample::Kind::Lm) return rowset_bytes(N, N, 0) + head_bytes(N - 1);
    const int mem = e.repetition ? N : e.s;
    const int k = (mem + e.chunk - 1) / e.chunk;
    const int local = e.l + 1;  // withBos may add one
    const int prompt = std::min({e.prompt_cap, e.chunk, e.l}) + 1;
    const size_t ckv = size_t(c.n_layers) * std::max(k, 1) * kvd;
    return 4 * ckv * 4 + 4 * 64 + rowset_bytes(k, int64_t(mem) + int64_t(k) * prompt, 0) +
           rowset_bytes(local, k + local, k) + head_bytes(1);
  }

  // FOCUSLLM_TRAIN_PROFILE=1: each phase's wall time on stderr.
  const bool profile = std::getenv("FOCUSLLM_TRAIN_PROFILE") != nullptr;
  std::chrono::steady_clock::time_point t_last = std::chrono::steady_clock::now();
  void mark(const char* phase) {
    if (!profile) return;
    be.sync();
    const auto now = std::chrono::steady_clock::now();
    std::fprintf(stderr, "train profile: %-22s %9.2f ms\n", phase,
                 std::chrono::duration<double, std::milli>(now - t_last).count());
    t_last = now;
  }

  double focus(const TrainExample& e, RunControl* ctl) {
    const std::vector<int32_t>& x = e.ids;
    const int bos = c.bos_token_id;
    auto with_bos = [&](int b, int en) {
      std::vector<int32_t> y;
      if (b >= en || x[size_t(b)] != bos) y.push_back(bos);
      y.insert(y.end(), x.begin() + b, x.begin() + en);
      return y;
    };
    const int t = std::min({e.prompt_cap, e.chunk, e.l});
    const std::vector<int32_t> P = with_bos(e.s + e.l - t, e.s + e.l);
    const int mem = e.repetition ? int(x.size()) : e.s;
    const int k = (mem + e.chunk - 1) / e.chunk;
    const int np = int(P.size());

    // 1. chunks (constants): chunk ++ P[:-1] into a float32 pool
    // The chunks' caches: the trainer's pool, grown when this example needs more.
    if (!T.pool_ || T.pool_->n_slot() < k || T.pool_->capacity() < e.chunk + np) {
      const int slots = std::max({k, 1, T.pool_ ? T.pool_->n_slot() : 0});
      const int cap = std::max(e.chunk + np, T.pool_ ? T.pool_->capacity() : 0);
      T.pool_.reset();
      T.pool_ = std::make_unique<KvPool>(M.backend_ptr(), c, slots, cap, DType::F32);
    }
    KvPool& pool = *T.pool_;
    std::fill(pool.length.begin(), pool.length.end(), 0);
    std::vector<SeqRun> runs(static_cast<size_t>(k));
    for (int i = 0; i < k; ++i) {
      SeqRun& sr = runs[size_t(i)];
      sr.tokens.assign(x.begin() + int64_t(i) * e.chunk, x.begin() + std::min(mem, (i + 1) * e.chunk));
      sr.tokens.insert(sr.tokens.end(), P.begin(), P.end() - 1);
      sr.pool = &pool;
      sr.slot = i;
    }
    if (k > 0) {
      if (ctl && ctl->cancel.load()) throw Cancelled();
      M.run(runs);  // (not ctl: its counters count examples' tokens here)
    }
    mark("chunks (inference)");

    // 2. candidate rows
    RowSet Cr;
    Cr.n = k;
    Cr.cand = true;
    int64_t key = 0;
    for (int i = 0; i < k; ++i) {
      const int nc = int(runs[size_t(i)].tokens.size());
      Cr.ids.push_back(P.back());
      Cr.pos.push_back(nc);
      Cr.seqs.push_back({i, 1, key, nc + 1, nc});
      KeySource src;
      src.k_const = static_cast<const float*>(pool.k()) + pool.offset(i, 0, 0);
      src.v_const = static_cast<const float*>(pool.v()) + pool.offset(i, 0, 0);
      src.const_layer_stride = int64_t(pool.capacity()) * kvd;
      src.n_const = nc;
      Cr.src.push_back(src);
      key += nc + 1;
    }
    Cr.total_keys = key;
    const size_t ckv = size_t(c.n_layers) * std::max(k, 1) * kvd;
    Cr.cand_k = arena.take(ckv, "candidate KVs");
    Cr.cand_v = arena.take(ckv, "candidate KVs");
    Run rc;
    if (k > 0) rc = forward(Cr, ctl);
    mark("candidates forward");

    // 3. local sequence over the candidates
    RowSet Lr;
    Lr.ids = with_bos(e.s, e.s + e.l);
    Lr.n = int(Lr.ids.size());
    for (int i = 0; i < Lr.n; ++i) Lr.pos.push_back(k + i);
    Lr.seqs.push_back({0, Lr.n, 0, k + Lr.n, k});
    KeySource ls;
    ls.n_prefix = k;
    Lr.src.push_back(ls);
    Lr.total_keys = k + Lr.n;
    Lr.prefix_k = Cr.cand_k;
    Lr.prefix_v = Cr.cand_v;
    Lr.n_prefix = k;
    float* dck = arena.take(ckv, "candidate KV gradients", true);
    float* dcv = arena.take(ckv, "candidate KV gradients", true);
    Lr.d_prefix_k = dck;
    Lr.d_prefix_v = dcv;
    Run rl = forward(Lr, ctl);
    mark("local forward");
    float* dx = arena.take(size_t(Lr.n) * dim, "training gradients", true);
    const int32_t target = x[size_t(e.s + e.l)];
    const double loss = head(rl.x, dx, Lr.n - 1, 1, &target, &e.weight);
    backward(Lr, rl, dx, ctl);
    mark("local backward");

    // 4. candidate rows, backward: only through the KVs the local rows read
    if (k > 0) {
      Cr.d_cand_k = dck;
      Cr.d_cand_v = dcv;
      float* dxc = arena.take(size_t(k) * dim, "training gradients", true);
      backward(Cr, rc, dxc, ctl);
    }
    mark("candidates backward");
    return loss;
  }
};

void Trainer::validate(const std::vector<TrainExample>& ex) const {
  const ModelConfig& c = model_->config();
  FOCUS_CHECK(!ex.empty(), "accumulate: no examples");
  for (size_t i = 0; i < ex.size(); ++i) {
    const TrainExample& e = ex[i];
    const std::string w = str("example ", i, ": ");
    const int64_t N = int64_t(e.ids.size());
    FOCUS_CHECK(N >= 2, w, "ids needs at least 2 tokens, got ", N);
    FOCUS_CHECK(N <= INT32_MAX / 2, w, "ids is too long (", N, " tokens)");
    for (int64_t j = 0; j < N; ++j)
      FOCUS_CHECK(e.ids[size_t(j)] >= 0 && e.ids[size_t(j)] < c.vocab_size, w, "token id ", e.ids[size_t(j)],
                  " at index ", j, " is out of range (vocabulary size ", c.vocab_size, ")");
    FOCUS_CHECK(std::isfinite(e.weight), w, "weight must be a finite number, got ", e.weight);
    if (e.kind == TrainExample::Kind::Lm) {
      FOCUS_CHECK(all_, w, "an lm example needs a trainer with params 'all' (the candidate projections do not "
                           "take part in causal LM training)");
      FOCUS_CHECK(e.loss_start >= 1 && e.loss_start < N, w, "lossStart must be in 1..", N - 1,
                  " (the first scored token of ids), got ", e.loss_start);
      continue;
    }
    FOCUS_CHECK(!all_, w, "focus examples train the candidate projections: create the trainer with params "
                          "'candidate' (params 'all' trains with lm examples)");
    FOCUS_CHECK(e.l >= 1, w, "localSize must be >= 1, got ", e.l);
    FOCUS_CHECK(e.s >= (e.repetition ? 0 : 1), w, "localStart must be >= ", e.repetition ? 0 : 1, " for the ",
                e.repetition ? "repetition" : "continuation", " loss, got ", e.s);
    FOCUS_CHECK(int64_t(e.s) + e.l < N, w, "localStart + localSize (", int64_t(e.s) + e.l,
                ") must be below the ids' length ", N, " (the target is ids[localStart + localSize])");
    FOCUS_CHECK(e.chunk >= 1, w, "chunkSize must be >= 1, got ", e.chunk);
    FOCUS_CHECK(e.prompt_cap >= 1, w, "promptCap must be >= 1, got ", e.prompt_cap);
  }
}

size_t Trainer::example_bytes(const TrainExample& e) const {
  validate({e});
  Graph G(const_cast<Trainer&>(*this));
  size_t pool = 0;
  if (e.kind == TrainExample::Kind::Focus) {
    const int mem = e.repetition ? int(e.ids.size()) : e.s;
    const int k = (mem + e.chunk - 1) / e.chunk;
    pool = KvPool::bytes_needed(model_->config(), std::max(k, 1), e.chunk + std::min({e.prompt_cap, e.chunk, e.l}) + 1,
                                DType::F32);
  }
  return G.example_bytes(e) + pool;
}

std::vector<double> Trainer::accumulate(const std::vector<TrainExample>& ex, RunControl* ctl) {
  model_->check_files();  // frozen weights are read from the memory maps (see MappedFile)
  validate(ex);
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<double> losses;
  for (const TrainExample& e : ex) {
    if (ctl && ctl->cancel.load()) throw Cancelled();
    Graph G(*this);
    arena_->reset();
    arena_->reserve(G.example_bytes(e));
    losses.push_back(e.kind == TrainExample::Kind::Lm ? G.lm(e, ctl) : G.focus(e, ctl));
    if (ctl) ctl->tokens_done += int64_t(e.ids.size());
  }
  return losses;
}

}  // namespace focus
