// Plain scalar versions of every CPU op: the oracle the fast kernels are
// tested against (cpu_ops_test.cpp). Same arguments and meaning as the ops in
// cpp/cpu/ops.h, no threads, no SIMD, sums and softmax in double.
#pragma once

#include <cstdint>

#include "core/backend.h"

namespace focus::ref {

// out (m, N) = or += x (m, K) · wᵀ (+ bias), w (N, K) of any dtype.
void matmul(float* out, const float* x, int m, const Weight& w, const Weight* bias, bool accumulate);
// out (n_rows, n_heads * head_dim) = softmax(q kᵀ * scale) v per segment.
void attention(float* out, const float* q, const AttnArgs& a);
void rms_norm(float* out, const float* x, const Weight& w, int n, float eps);
void rope_table(float* table, const int32_t* pos, int n, const double* inv_freq, int head_dim);
void rope(float* x, int n, int n_heads, int head_dim, const float* table);
void kv_store(const float* k, const float* v, const KvDst* dst, int n, int kv_dim, int layer);
void swiglu(float* out, const float* gate, const float* up, int64_t n);
void embedding(float* out, const Weight& table, const int32_t* ids, int n);
void gather_rows(float* out, const float* x, const int32_t* rows, int n, int dim);
void to_f32(float* out, const void* src, DType t, int64_t n);
void from_f32(void* out, const float* src, DType t, int64_t n);

}  // namespace focus::ref
