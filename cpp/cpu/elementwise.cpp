// Row-wise and element-wise CPU ops: RMSNorm, rotary, KV stores, SwiGLU,
// embedding gather, row gather, dtype conversion.
#include <cmath>
#include <cstring>
#include <vector>

#include "ops.h"

namespace focus::cpu {

void to_f32(float* out, const void* src, DType t, int64_t n) {
  if (t == DType::F32) {
    std::memcpy(out, src, size_t(n) * 4);
  } else if (t == DType::BF16) {
    const uint16_t* s = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(s[i]);
  } else {
    const uint16_t* s = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(s[i]);
  }
}

void from_f32(void* out, const float* src, DType t, int64_t n) {
  if (t == DType::F32) {
    std::memcpy(out, src, size_t(n) * 4);
  } else if (t == DType::BF16) {
    uint16_t* d = static_cast<uint16_t*>(out);
    for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
  } else {
    uint16_t* d = static_cast<uint16_t*>(out);
    for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
  }
}

void rms_norm(ThreadPool& pool, float* out, const float* x, const Weight& w, int n, float eps) {
  const int dim = int(w.rows);
  pool.parallel_for(n, 16, [&](int64_t b, int64_t e) {
    std::vector<float> wf(static_cast<size_t>(dim));
    to_f32(wf.data(), w.data, w.dtype, dim);
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * dim;
      float* o = out + r * dim;
      // Sum of squares in double: dim is up to 8K and the reference is exact.
      double ss = 0;
      for (int j = 0; j < dim; ++j) ss += double(xr[j]) * xr[j];
      const float inv = float(1.0 / std::sqrt(ss / dim + double(eps)));
      for (int j = 0; j < dim; ++j) o[j] = xr[j] * inv * wf[size_t(j)];
    }
  });
}

void rope_table(ThreadPool& pool, float* table, const int32_t* pos, int n, const double* inv_freq, int head_dim) {
  const int half = head_dim / 2;
  pool.parallel_for(n, 64, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      float* t = table + r * head_dim;
      for (int i = 0; i < half; ++i) {
        const double a = double(pos[r]) * inv_freq[i];
        t[i] = float(std::cos(a));
        t[half + i] = float(std::sin(a));
      }
    }
  });
}

void rope(ThreadPool& pool, float* x, int n, int n_heads, int head_dim, const float* table) {
  const int half = head_dim / 2;
  pool.parallel_for(n, 16, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* cs = table + r * head_dim;
      const float* sn = cs + half;
      for (int h = 0; h < n_heads; ++h) {
        float* v = x + (r * n_heads + h) * head_dim;
        for (int i = 0; i < half; ++i) {
          const float a = v[i], b2 = v[i + half];
          v[i] = a * cs[i] - b2 * sn[i];
          v[i + half] = b2 * cs[i] + a * sn[i];
        }
      }
    }
  });
}

void kv_store(ThreadPool& pool, const float* k, const float* v, const KvDst* dst, int n, int kv_dim, int layer) {
  pool.parallel_for(n, 32, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const KvDst& d = dst[r];
      const DType t = DType(d.dtype);
      const int64_t off = int64_t(layer) * d.layer_stride * int64_t(dtype_size(t));
      from_f32(static_cast<char*>(d.k) + off, k + r * kv_dim, t, kv_dim);
      from_f32(static_cast<char*>(d.v) + off, v + r * kv_dim, t, kv_dim);
    }
  });
}

void swiglu(ThreadPool& pool, float* out, const float* gate, const float* up, int64_t n) {
  pool.parallel_for(n, 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float g = gate[i];
      out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  });
}

void embedding(ThreadPool& pool, float* out, const Weight& table, const int32_t* ids, int n) {
  const int64_t dim = table.cols;
  const size_t es = dtype_size(table.dtype);
  pool.parallel_for(n, 8, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r)
      to_f32(out + r * dim, static_cast<const char*>(table.data) + int64_t(ids[r]) * dim * int64_t(es), table.dtype,
             dim);
  });
}

void gather_rows(ThreadPool& pool, float* out, const float* x, const int32_t* rows, int n, int dim) {
  (void)pool;
  for (int r = 0; r < n; ++r) std::memcpy(out + int64_t(r) * dim, x + int64_t(rows[r]) * dim, size_t(dim) * 4);
}

}  // namespace focus::cpu
