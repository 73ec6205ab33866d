// CPU attention over segments: each query sees the fully visible prefix keys
// and the causal part of its sequence's main keys. Work items are (segment,
// KV head, block of queries); the query heads that share a KV head are done
// together so each key row is converted and read once for all of them.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops.h"

namespace focus::cpu {

namespace {

inline float dot(const float* a, const float* b, int n) {
  float acc[16] = {0};
  int k = 0;
  for (; k + 16 <= n; k += 16)
    for (int j = 0; j < 16; ++j) acc[j] += a[k + j] * b[k + j];
  float s = 0;
  for (; k < n; ++k) s += a[k] * b[k];
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

struct Item {
  int seg, kv_head, q0, q1;  // queries [q0, q1) of the segment
};

}  // namespace

void attention(ThreadPool& pool, float* out, const float* q, const AttnArgs& a) {
  const int hd = a.head_dim, G = a.n_heads / a.n_kv_heads, kvd = a.n_kv_heads * hd, qd = a.n_heads * hd;
  constexpr int kQBlock = 16;
  std::vector<Item> items;
  for (int s = 0; s < a.n_seg; ++s)
    for (int g = 0; g < a.n_kv_heads; ++g)
      for (int i = 0; i < a.segs_host[s].n_q; i += kQBlock)
        items.push_back({s, g, i, std::min(a.segs_host[s].n_q, i + kQBlock)});

  pool.parallel_for(int64_t(items.size()), 1, [&](int64_t b, int64_t e) {
    std::vector<float> kf, vf, scores;
    for (int64_t it = b; it < e; ++it) {
      const Item& w = items[size_t(it)];
      const AttnSegment& s = a.segs[w.seg];
      const int n_keys = s.n_prefix + s.q_index + w.q1;  // keys the last query of the block sees
      // Keys and values of this KV head, converted to float32 once per item.
      kf.resize(size_t(n_keys) * hd);
      vf.resize(size_t(n_keys) * hd);
      auto load = [&](float* dst, const void* base, int64_t layer_stride, DType t, int row) {
        const size_t es = dtype_size(t);
        const char* p = static_cast<const char*>(base) + (int64_t(a.layer) * layer_stride + int64_t(row) * kvd +
                                                         int64_t(w.kv_head) * hd) * int64_t(es);
        to_f32(dst, p, t, hd);
      };
      for (int j = 0; j < s.n_prefix; ++j) {
        load(&kf[size_t(j) * hd], s.k_prefix, s.prefix_k_layer_stride, DType(s.prefix_dtype), j);
        load(&vf[size_t(j) * hd], s.v_prefix, s.prefix_v_layer_stride, DType(s.prefix_dtype), j);
      }
      for (int j = 0; j < s.q_index + w.q1; ++j) {
        load(&kf[size_t(s.n_prefix + j) * hd], s.k_main, s.main_layer_stride, DType(s.main_dtype), j);
        load(&vf[size_t(s.n_prefix + j) * hd], s.v_main, s.main_layer_stride, DType(s.main_dtype), j);
      }
      scores.resize(size_t(n_keys));
      for (int i = w.q0; i < w.q1; ++i) {
        const int visible = s.n_prefix + s.q_index + i + 1;
        const int row = s.q_row + i;
        for (int h = 0; h < G; ++h) {
          const int head = w.kv_head * G + h;
          const float* qv = q + int64_t(row) * qd + int64_t(head) * hd;
          float mx = -INFINITY;
          for (int j = 0; j < visible; ++j) {
            scores[size_t(j)] = dot(qv, &kf[size_t(j) * hd], hd) * a.scale;
            mx = std::max(mx, scores[size_t(j)]);
          }
          double sum = 0;
          for (int j = 0; j < visible; ++j) {
            scores[size_t(j)] = std::exp(scores[size_t(j)] - mx);
            sum += scores[size_t(j)];
          }
          float* o = out + int64_t(row) * qd + int64_t(head) * hd;
          std::fill(o, o + hd, 0.0f);
          for (int j = 0; j < visible; ++j) {
            const float p = scores[size_t(j)];
            const float* vr = &vf[size_t(j) * hd];
            for (int d = 0; d < hd; ++d) o[d] += p * vr[d];
          }
          const float inv = float(1.0 / sum);
          for (int d = 0; d < hd; ++d) o[d] *= inv;
        }
      }
    }
  });
}

}  // namespace focus::cpu
