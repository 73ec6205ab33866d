#include "common/reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace focus::ref {

namespace {

inline const char* byte_ptr(const void* p) { return static_cast<const char*>(p); }

// Element (row, col) of a weight as double.
inline double weight_at(const Weight& w, int64_t row, int64_t col) {
  return load_as_f32(w.data, w.dtype, size_t(row * w.cols + col));
}

// Key or value row `row` of a cache at `layer`, this head's slice, as doubles.
void cache_row(std::vector<double>& dst, const void* base, DType t, int64_t layer_stride, int layer, int64_t row,
               int kv_dim, int64_t head_off, int head_dim) {
  const int64_t first = int64_t(layer) * layer_stride + row * kv_dim + head_off;
  dst.resize(size_t(head_dim));
  for (int d = 0; d < head_dim; ++d) dst[size_t(d)] = load_as_f32(base, t, size_t(first + d));
}

}  // namespace

void matmul(float* out, const float* x, int m, const Weight& w, const Weight* bias, bool accumulate) {
  const int64_t N = w.rows, K = w.cols;
  for (int i = 0; i < m; ++i)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += double(x[i * K + k]) * weight_at(w, n, k);
      if (bias && !bias->empty()) s += load_as_f32(bias->data, bias->dtype, size_t(n));
      float& o = out[i * N + n];
      o = accumulate ? float(double(o) + s) : float(s);
    }
}

void attention(float* out, const float* q, const AttnArgs& a) {
  const int hd = a.head_dim, G = a.n_heads / a.n_kv_heads, kvd = a.n_kv_heads * hd, qd = a.n_heads * hd;
  std::vector<double> kr, vr, scores, acc(static_cast<size_t>(hd));
  for (int si = 0; si < a.n_seg; ++si) {
    const AttnSegment& s = a.segs_host[si];
    for (int i = 0; i < s.n_q; ++i) {
      const int row = s.q_row + i;
      const int n_main = s.q_index + i + 1;  // causal: main keys 0..q_index+i
      const int n_keys = s.n_prefix + n_main;
      for (int head = 0; head < a.n_heads; ++head) {
        const int64_t head_off = int64_t(head / G) * hd;
        const float* qv = q + int64_t(row) * qd + int64_t(head) * hd;
        scores.assign(size_t(n_keys), 0.0);
        double mx = -INFINITY;
        for (int t = 0; t < n_keys; ++t) {
          if (t < s.n_prefix)
            cache_row(kr, s.k_prefix, DType(s.prefix_dtype), s.prefix_k_layer_stride, a.layer, t, kvd, head_off, hd);
          else
            cache_row(kr, s.k_main, DType(s.main_dtype), s.main_layer_stride, a.layer, t - s.n_prefix, kvd, head_off,
                      hd);
          double dot = 0;
          for (int d = 0; d < hd; ++d) dot += double(qv[d]) * kr[size_t(d)];
          scores[size_t(t)] = dot * double(a.scale);
          mx = std::fmax(mx, scores[size_t(t)]);
        }
        double sum = 0;
        for (double& sc : scores) {
          sc = std::exp(sc - mx);
          sum += sc;
        }
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int t = 0; t < n_keys; ++t) {
          if (t < s.n_prefix)
            cache_row(vr, s.v_prefix, DType(s.prefix_dtype), s.prefix_v_layer_stride, a.layer, t, kvd, head_off, hd);
          else
            cache_row(vr, s.v_main, DType(s.main_dtype), s.main_layer_stride, a.layer, t - s.n_prefix, kvd, head_off,
                      hd);
          for (int d = 0; d < hd; ++d) acc[size_t(d)] += scores[size_t(t)] * vr[size_t(d)];
        }
        float* o = out + int64_t(row) * qd + int64_t(head) * hd;
        for (int d = 0; d < hd; ++d) o[d] = float(acc[size_t(d)] / sum);
      }
    }
  }
}

void rms_norm(float* out, const float* x, const Weight& w, int n, float eps) {
  const int64_t dim = w.rows * w.cols;
  for (int r = 0; r < n; ++r) {
    double ss = 0;
    for (int64_t j = 0; j < dim; ++j) ss += double(x[r * dim + j]) * x[r * dim + j];
    const double inv = 1.0 / std::sqrt(ss / double(dim) + double(eps));
    for (int64_t j = 0; j < dim; ++j) out[r * dim + j] = float(double(x[r * dim + j]) * inv * weight_at(w, j, 0));
  }
}

void rope_table(float* table, const int32_t* pos, int n, const double* inv_freq, int head_dim) {
  const int half = head_dim / 2;
  for (int r = 0; r < n; ++r)
    for (int i = 0; i < half; ++i) {
      const double ang = double(pos[r]) * inv_freq[i];
      table[r * head_dim + i] = float(std::cos(ang));
      table[r * head_dim + half + i] = float(std::sin(ang));
    }
}

void rope(float* x, int n, int n_heads, int head_dim, const float* table) {
  const int half = head_dim / 2;
  for (int r = 0; r < n; ++r)
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + (int64_t(r) * n_heads + h) * head_dim;
      const float* cs = table + int64_t(r) * head_dim;
      for (int i = 0; i < half; ++i) {
        const double a = v[i], b = v[i + half], c = cs[i], s = cs[half + i];
        v[i] = float(a * c - b * s);
        v[i + half] = float(b * c + a * s);
      }
    }
}

void kv_store(const float* k, const float* v, const KvDst* dst, int n, int kv_dim, int layer) {
  for (int r = 0; r < n; ++r) {
    const DType t = DType(dst[r].dtype);
    const int64_t base = int64_t(layer) * dst[r].layer_stride;
    for (int j = 0; j < kv_dim; ++j) {
      store_from_f32(dst[r].k, t, size_t(base + j), k[int64_t(r) * kv_dim + j]);
      store_from_f32(dst[r].v, t, size_t(base + j), v[int64_t(r) * kv_dim + j]);
    }
  }
}

void swiglu(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i];
    out[i] = float(g / (1.0 + std::exp(-g)) * double(up[i]));
  }
}

void embedding(float* out, const Weight& table, const int32_t* ids, int n) {
  for (int r = 0; r < n; ++r)
    for (int64_t j = 0; j < table.cols; ++j) out[r * table.cols + j] = float(weight_at(table, ids[r], j));
}

void gather_rows(float* out, const float* x, const int32_t* rows, int n, int dim) {
  for (int r = 0; r < n; ++r)
    for (int j = 0; j < dim; ++j) out[int64_t(r) * dim + j] = x[int64_t(rows[r]) * dim + j];
}

void to_f32(float* out, const void* src, DType t, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = load_as_f32(src, t, size_t(i));
}

void from_f32(void* out, const float* src, DType t, int64_t n) {
  for (int64_t i = 0; i < n; ++i) store_from_f32(out, t, size_t(i), src[i]);
}

}  // namespace focus::ref
