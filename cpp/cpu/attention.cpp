// CPU attention over segments: each query sees the fully visible prefix keys
// and the causal part of its sequence's main keys (backend.h, AttnSegment).
//
// Work items are (segment, KV head, block of query rows); the query heads that
// share a KV head are done together, so each key row is converted once for
// all of them (kernel: kernels_attention.inl). Causal rows have unequal cost,
// and items of long segments cost more than those of candidates, so items are
// sorted by their cost (rows × keys seen) and handed out dynamically,
// largest first.
#include <algorithm>
#include <vector>

#include "../core/error.h"
#include "ops.h"

namespace focus::cpu {

namespace {

struct Item {
  int seg, kv_head, q0, rows;
  int64_t cost;
};

// Query vectors per item: enough to amortise converting a key block (~64),
// small enough that long sequences still give many items.
constexpr int kQueryVectors = 64;

}  // namespace

void attention(ThreadPool& pool, float* out, const float* q, const AttnArgs& a) {
  FOCUS_CHECK(a.n_heads > 0 && a.n_kv_heads > 0 && a.n_heads % a.n_kv_heads == 0 && a.head_dim > 0,
              "attention: ", a.n_heads, " query heads cannot share ", a.n_kv_heads, " KV heads of dimension ",
              a.head_dim);
  FOCUS_CHECK(a.n_seg >= 0 && (a.n_seg == 0 || a.segs_host), "attention: missing segment table");
  const Kernels& K = kernels();
  const int hd = a.head_dim, G = a.n_heads / a.n_kv_heads, kvd = a.n_kv_heads * hd, qd = a.n_heads * hd;
  const int qb = std::max(1, kQueryVectors / G);

  std::vector<Item> items;
  int max_rows = 0;
  for (int s = 0; s < a.n_seg; ++s) {
    const AttnSegment& sg = a.segs_host[s];
    FOCUS_CHECK(sg.n_q >= 0 && sg.q_index >= 0 && sg.n_prefix >= 0 && sg.q_row >= 0 && sg.q_row + sg.n_q <= a.n_rows,
                "attention: segment ", s, " (rows ", sg.q_row, "+", sg.n_q, ", q_index ", sg.q_index, ", prefix ",
                sg.n_prefix, ") does not fit ", a.n_rows, " query rows");
    for (int i = 0; i < sg.n_q; i += qb) {
      const int rows = std::min(qb, sg.n_q - i);
      const int64_t keys = int64_t(sg.n_prefix) + sg.q_index + i + rows;
      for (int g = 0; g < a.n_kv_heads; ++g) items.push_back({s, g, i, rows, int64_t(rows) * keys});
      max_rows = std::max(max_rows, rows);
    }
  }
  std::stable_sort(items.begin(), items.end(), [](const Item& x, const Item& y) { return x.cost > y.cost; });
  const size_t scratch = K.attention_scratch(max_rows * G, hd);

  pool.parallel_chunks(int64_t(items.size()), [&](int64_t it) {
    thread_local std::vector<float> buf;
    if (buf.size() < scratch) buf.resize(scratch);
    const Item& w = items[size_t(it)];
    const AttnSegment& s = a.segs[w.seg];
    const int64_t head_off = int64_t(w.kv_head) * hd;
    const int64_t pes = int64_t(dtype_size(DType(s.prefix_dtype))), mes = int64_t(dtype_size(DType(s.main_dtype)));
    AttnTask t;
    t.q = q + int64_t(s.q_row + w.q0) * qd + head_off * G;
    t.out = out + int64_t(s.q_row + w.q0) * qd + head_off * G;
    t.q_stride = qd;
    t.n_rows = w.rows;
    t.group = G;
    t.head_dim = hd;
    t.scale = a.scale;
    t.n_prefix = s.n_prefix;
    t.q_index = s.q_index + w.q0;
    t.kv_stride = kvd;
    t.prefix_dtype = s.prefix_dtype;
    t.main_dtype = s.main_dtype;
    t.k_prefix = t.v_prefix = nullptr;
    if (s.n_prefix > 0) {
      t.k_prefix = static_cast<const char*>(s.k_prefix) + (int64_t(a.layer) * s.prefix_k_layer_stride + head_off) * pes;
      t.v_prefix = static_cast<const char*>(s.v_prefix) + (int64_t(a.layer) * s.prefix_v_layer_stride + head_off) * pes;
    }
    t.k_main = static_cast<const char*>(s.k_main) + (int64_t(a.layer) * s.main_layer_stride + head_off) * mes;
    t.v_main = static_cast<const char*>(s.v_main) + (int64_t(a.layer) * s.main_layer_stride + head_off) * mes;
    K.attention(t, buf.data());
  });
}

}  // namespace focus::cpu
