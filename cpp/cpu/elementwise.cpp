// Row-wise and element-wise CPU ops: RMSNorm, rotary, KV stores, SwiGLU,
// embedding gather, row gather, dtype conversion. The per-row work runs in the
// active instruction set's kernels (kernels_elementwise.inl).
//
// Each op's gradient follows its forward (same name + _backward). Those are
// plain scalar loops: they stream a few arrays once, so memory, not the
// instruction set, bounds them.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../core/error.h"
#include "ops.h"

namespace focus::cpu {

static_assert(int(DType::F32) == 0 && int(DType::F16) == 1 && int(DType::BF16) == 2,
              "kernels use the DType values 0, 1, 2 (simd.h)");

void to_f32(float* out, const void* src, DType t, int64_t n) { kernels().to_f32(out, src, int(t), n); }

void from_f32(void* out, const float* src, DType t, int64_t n) { kernels().from_f32(out, src, int(t), n); }

void rms_norm(ThreadPool& pool, float* out, const float* x, const Weight& w, int n, float eps) {
  const Kernels& K = kernels();
  const int dim = int(w.rows * w.cols);
  std::vector<float> wf(static_cast<size_t>(dim));
  K.to_f32(wf.data(), w.data, int(w.dtype), dim);
  // Rows of ~1-8K elements: a few rows per part keep the wake-up worth it.
  pool.parallel_for(n, 8, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) K.rms_norm(out + r * dim, x + r * dim, wf.data(), dim, eps);
  });
}

// With inv = 1 / sqrt(mean(x²) + eps), y_j = x_j * inv * w_j, g = dout:
//   dx_j = inv * g_j w_j - x_j * inv³ / dim * Σ_k g_k w_k x_k
//   dw_j = Σ_rows g_j x_j inv
// Rows in parallel for dx (and each row's inv); then columns in parallel for
// dw, so every dw element is summed by one thread in row order (no races, and
// the same result whatever the thread count).
void rms_norm_backward(ThreadPool& pool, float* dx, float* dw, const float* dout, const float* x, const Weight& w,
                       int n, float eps) {
  const int64_t dim = w.rows * w.cols;
  if (n <= 0 || (!dx && !dw)) return;
  std::vector<float> wf(static_cast<size_t>(dim));
  kernels().to_f32(wf.data(), w.data, int(w.dtype), dim);
  std::vector<double> inv(static_cast<size_t>(n));
  pool.parallel_for(n, 8, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * dim;
      const float* gr = dout + r * dim;
      double ss = 0, gwx = 0;
      for (int64_t j = 0; j < dim; ++j) {
        ss += double(xr[j]) * xr[j];
        gwx += double(gr[j]) * wf[size_t(j)] * xr[j];
      }
      const double iv = 1.0 / std::sqrt(ss / double(dim) + double(eps));
      inv[size_t(r)] = iv;
      if (!dx) continue;
      // dx_j = inv * (g_j w_j - x_j * c), in double: the two terms nearly
      // cancel when one element dominates the row (dim = 1 at the extreme).
      const double c = iv * iv * gwx / double(dim);
      float* dr = dx + r * dim;
      for (int64_t j = 0; j < dim; ++j) dr[j] += float(iv * (double(gr[j]) * wf[size_t(j)] - double(xr[j]) * c));
    }
  });
  if (!dw) return;
  constexpr int64_t kCols = 64;  // a few cache lines of every row per part
  pool.parallel_for((dim + kCols - 1) / kCols, 4, [&](int64_t b, int64_t e) {
    const int64_t j0 = b * kCols, j1 = std::min(dim, e * kCols);
    for (int64_t r = 0; r < n; ++r) {
      const float* xr = x + r * dim;
      const float* gr = dout + r * dim;
      const float iv = float(inv[size_t(r)]);
      for (int64_t j = j0; j < j1; ++j) dw[j] += gr[j] * xr[j] * iv;
    }
  });
}

void rope_table(ThreadPool& pool, float* table, const int32_t* pos, int n, const double* inv_freq, int head_dim) {
  const int half = head_dim / 2;
  // Angles in double: positions reach 400K+, where a float angle is off by
  // more than a radian's worth of its last bit.
  pool.parallel_for(n, 64, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      float* t = table + r * head_dim;
      for (int i = 0; i < half; ++i) {
        const double ang = double(pos[r]) * inv_freq[i];
        t[i] = float(std::cos(ang));
        t[half + i] = float(std::sin(ang));
      }
    }
  });
}

void rope(ThreadPool& pool, float* x, int n, int n_heads, int head_dim, const float* table) {
  const Kernels& K = kernels();
  pool.parallel_for(n, 16, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r)
      K.rope(x + r * n_heads * head_dim, n_heads, head_dim, table + r * head_dim);
  });
}

// rope() maps each pair (a, b) = (x_i, x_{i+half}) to (a c - b s, b c + a s);
// its transpose, the gradient, is (a c + b s, b c - a s) with the same c, s
// (exactly the transpose of what the forward did, even where the float table
// has c² + s² != 1).
void rope_backward(ThreadPool& pool, float* d, int n, int n_heads, int head_dim, const float* table) {
  const int half = head_dim / 2;
  pool.parallel_for(n, 16, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* cs = table + r * head_dim;
      const float* sn = cs + half;
      for (int h = 0; h < n_heads; ++h) {
        float* lo = d + (r * n_heads + h) * head_dim;
        float* hi = lo + half;
        for (int i = 0; i < half; ++i) {
          const float a = lo[i], bb = hi[i];
          lo[i] = a * cs[i] + bb * sn[i];
          hi[i] = bb * cs[i] - a * sn[i];
        }
      }
    }
  });
}

void kv_store(ThreadPool& pool, const float* k, const float* v, const KvDst* dst, int n, int kv_dim, int layer) {
  const Kernels& K = kernels();
  pool.parallel_for(n, 32, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const KvDst& d = dst[r];
      const int64_t off = int64_t(layer) * d.layer_stride * int64_t(dtype_size(DType(d.dtype)));
      K.from_f32(static_cast<char*>(d.k) + off, k + r * kv_dim, d.dtype, kv_dim);
      K.from_f32(static_cast<char*>(d.v) + off, v + r * kv_dim, d.dtype, kv_dim);
    }
  });
}

void swiglu(ThreadPool& pool, float* out, const float* gate, const float* up, int64_t n) {
  const Kernels& K = kernels();
  constexpr int64_t kBlock = 4096;  // elements per part, a multiple of every vector width
  pool.parallel_for((n + kBlock - 1) / kBlock, 4, [&](int64_t b, int64_t e) {
    const int64_t i0 = b * kBlock, i1 = std::min(n, e * kBlock);
    K.swiglu(out + i0, gate + i0, up + i0, i1 - i0);
  });
}

// silu(g) = g σ(g), silu'(g) = σ(g) (1 + g (1 - σ(g))). exp(-g) comes from
// the kernels' vectorised exp (5x faster than std::exp here), a chunk at a
// time on the stack; it clamps its argument, so for g below about -88 σ is a
// tiny positive number and both terms are ~0, never NaN.
void swiglu_backward(ThreadPool& pool, float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n) {
  if (!dgate && !dup) return;
  const Kernels& K = kernels();
  constexpr int64_t kBlock = 4096;  // elements per part
  constexpr int kChunk = 256;       // exp(-g) buffered on the stack
  pool.parallel_for((n + kBlock - 1) / kBlock, 4, [&](int64_t b, int64_t e) {
    const int64_t i1 = std::min(n, e * kBlock);
    float ex[kChunk];
    for (int64_t i0 = b * kBlock; i0 < i1; i0 += kChunk) {
      const int c = int(std::min<int64_t>(kChunk, i1 - i0));
      K.exp_sub_sum(ex, gate + i0, c, -1.0f, 0.0f);
      for (int j = 0; j < c; ++j) ex[j] = 1.0f / (1.0f + ex[j]);  // σ(g)
      const float* g = gate + i0;
      const float* d = dout + i0;
      if (dgate) {
        const float* u = up + i0;
        float* dg = dgate + i0;
        for (int j = 0; j < c; ++j) dg[j] += d[j] * u[j] * (ex[j] * (1.0f + g[j] * (1.0f - ex[j])));
      }
      if (dup) {
        float* du = dup + i0;
        for (int j = 0; j < c; ++j) du[j] += d[j] * (g[j] * ex[j]);
      }
    }
  });
}

void embedding(ThreadPool& pool, float* out, const Weight& table, const int32_t* ids, int n) {
  const Kernels& K = kernels();
  const int64_t dim = table.cols;
  const int64_t es = int64_t(dtype_size(table.dtype));
  for (int r = 0; r < n; ++r)
    FOCUS_CHECK(ids[r] >= 0 && ids[r] < table.rows, "embedding: token id ", ids[r], " at row ", r,
                " is out of range (", table.name, " has ", table.rows, " rows)");
  pool.parallel_for(n, 16, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r)
      K.to_f32(out + r * dim, static_cast<const char*>(table.data) + int64_t(ids[r]) * dim * es, int(table.dtype), dim);
  });
}

// Scatter-add. Repeated ids make rows of dtable collide, so the split is over
// columns: each part adds its slice of every dout row, in row order (no races,
// and the same sums whatever the thread count). Only negative ids can be
// caught here (the vocabulary size is not an argument); the forward
// embedding() has checked the same ids against the table already.
void embedding_backward(ThreadPool& pool, float* dtable, const float* dout, const int32_t* ids, int n, int dim) {
  for (int r = 0; r < n; ++r)
    FOCUS_CHECK(ids[r] >= 0, "embedding_backward: token id ", ids[r], " at row ", r, " is out of range");
  constexpr int64_t kCols = 64;
  pool.parallel_for((dim + kCols - 1) / kCols, 1, [&](int64_t b, int64_t e) {
    const int64_t j0 = b * kCols, j1 = std::min<int64_t>(dim, e * kCols);
    for (int r = 0; r < n; ++r) {
      float* dst = dtable + int64_t(ids[r]) * dim;
      const float* src = dout + int64_t(r) * dim;
      for (int64_t j = j0; j < j1; ++j) dst[j] += src[j];
    }
  });
}

void gather_rows(ThreadPool& pool, float* out, const float* x, const int32_t* rows, int n, int dim) {
  (void)pool;  // a few rows of memcpy: not worth a wake-up
  for (int r = 0; r < n; ++r) std::memcpy(out + int64_t(r) * dim, x + int64_t(rows[r]) * dim, size_t(dim) * 4);
}

}  // namespace focus::cpu
