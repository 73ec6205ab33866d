// CPU ops: float32 activations, F32/F16/BF16 weights and caches. Each op is
// parallelised over the pool; reference.h holds the scalar oracles they are
// tested against.
#pragma once

#include <cstdint>

#include "../core/backend.h"
#include "thread_pool.h"

namespace focus::cpu {

// x (m, K) float32 times wᵀ, w (N, K) of w.dtype, into out (m, N).
void matmul(ThreadPool& pool, float* out, const float* x, int m, const Weight& w, const Weight* bias, bool accumulate);

void attention(ThreadPool& pool, float* out, const float* q, const AttnArgs& a);

void rms_norm(ThreadPool& pool, float* out, const float* x, const Weight& w, int n, float eps);
void rope_table(ThreadPool& pool, float* table, const int32_t* pos, int n, const double* inv_freq, int head_dim);
void rope(ThreadPool& pool, float* x, int n, int n_heads, int head_dim, const float* table);
void kv_store(ThreadPool& pool, const float* k, const float* v, const KvDst* dst, int n, int kv_dim, int layer);
void swiglu(ThreadPool& pool, float* out, const float* gate, const float* up, int64_t n);
void embedding(ThreadPool& pool, float* out, const Weight& table, const int32_t* ids, int n);
void gather_rows(ThreadPool& pool, float* out, const float* x, const int32_t* rows, int n, int dim);

// Converts n elements of type t to float32.
void to_f32(float* out, const void* src, DType t, int64_t n);
void from_f32(void* out, const float* src, DType t, int64_t n);

}  // namespace focus::cpu
