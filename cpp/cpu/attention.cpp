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
  int seg, kv_head, kv_heads, q0, rows;
  int64_t cost;
};

// Query vectors per item: enough to amortise converting and transposing a key
// block (measured: 64 -> 128 took prefill attention from ~50% to ~59% of the
// FMA peak), small enough that long sequences still give many items.
constexpr int kQueryVectors = 128;

}  // namespace

void attention(ThreadPool& pool, float* out, const float* q, const AttnArgs& a) {
  FOCUS_CHECK(a.n_heads > 0 && a.n_kv_heads > 0 && a.n_heads % a.n_kv_heads == 0 && a.head_dim > 0,
              "attention: ", a.n_heads, " query heads cannot share ", a.n_kv_heads, " KV heads of dimension ",
              a.head_dim);
  FOCUS_CHECK(a.n_seg >= 0 && (a.n_seg == 0 || a.segs_host), "attention: missing segment table");
  const Kernels& K = kernels();
  const int hd = a.head_dim, G = a.n_heads / a.n_kv_heads, kvd = a.n_kv_heads * hd, qd = a.n_heads * hd;
  const int qb = std::max(1, kQueryVectors / G);

  // Single-row segments (decode, candidates): when there are many of them,
  // one item takes all KV heads, so each cache row is read whole and once;
  // with few (decode) one item per KV head keeps the threads busy.
  int single = 0;
  for (int s = 0; s < a.n_seg; ++s) single += a.segs_host[s].n_q == 1;
  const int heads_per_single = single >= 2 * pool.size() ? a.n_kv_heads : 1;

  std::vector<Item> items;
  int max_vectors = 1;
  for (int s = 0; s < a.n_seg; ++s) {
    const AttnSegment& sg = a.segs_host[s];
    FOCUS_CHECK(sg.n_q >= 0 && sg.q_index >= 0 && sg.n_prefix >= 0 && sg.q_row >= 0 && sg.q_row + sg.n_q <= a.n_rows,
                "attention: segment ", s, " (rows ", sg.q_row, "+", sg.n_q, ", q_index ", sg.q_index, ", prefix ",
                sg.n_prefix, ") does not fit ", a.n_rows, " query rows");
    const int hpi = sg.n_q == 1 ? heads_per_single : 1;
    for (int i = 0; i < sg.n_q; i += qb) {
      const int rows = std::min(qb, sg.n_q - i);
      const int64_t keys = int64_t(sg.n_prefix) + sg.q_index + i + rows;
      for (int g = 0; g < a.n_kv_heads; g += hpi) {
        const int nh = std::min(hpi, a.n_kv_heads - g);
        items.push_back({s, g, nh, i, rows, int64_t(rows) * nh * keys});
        max_vectors = std::max(max_vectors, rows * nh * G);
      }
    }
  }
  // Largest first; items that share a cache (a FocusLLM chunk's previous
  // token and its new candidate) get the same rank, so they stay adjacent and
  // the second finds the cache in L2/L3.
  {
    std::vector<int64_t> rank(items.size());
    std::vector<std::pair<const void*, int64_t>> group_cost;
    for (size_t i = 0; i < items.size(); ++i) {
      const void* cache = a.segs_host[items[i].seg].k_main;
      int64_t& best = rank[i] = items[i].cost;
      for (size_t j = i; j-- > 0 && j + 8 > i;)  // neighbours only: segments of one chunk are adjacent
        if (a.segs_host[items[j].seg].k_main == cache && items[j].kv_head == items[i].kv_head)
          best = rank[j] = std::max(rank[j], best);
    }
    std::vector<size_t> order(items.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return rank[x] > rank[y]; });
    std::vector<Item> sorted(items.size());
    for (size_t i = 0; i < order.size(); ++i) sorted[i] = items[order[i]];
    items.swap(sorted);
  }
  const size_t scratch = K.attention_scratch(max_vectors, hd);

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
    t.kv_heads = w.kv_heads;
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
