// Row-wise and element-wise CPU ops: RMSNorm, rotary, KV stores, SwiGLU,
// embedding gather, row gather, dtype conversion. The per-row work runs in the
// active instruction set's kernels (kernels_elementwise.inl).
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

void gather_rows(ThreadPool& pool, float* out, const float* x, const int32_t* rows, int n, int dim) {
  (void)pool;  // a few rows of memcpy: not worth a wake-up
  for (int r = 0; r < n; ++r) std::memcpy(out + int64_t(r) * dim, x + int64_t(rows[r]) * dim, size_t(dim) * 4);
}

}  // namespace focus::cpu
