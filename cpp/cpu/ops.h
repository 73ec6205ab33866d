// CPU ops: float32 activations, F32/F16/BF16 weights and caches. Each op splits
// its work over the pool and runs the kernels of the active instruction set
// (isa.h); test/cpp/common/reference.h holds the scalar oracles they are tested
// against.
#pragma once

#include <cstdint>

#include "../core/backend.h"
#include "isa.h"
#include "thread_pool.h"

namespace focus::cpu {

// out (m, N) = or += x (m, K) float32 · wᵀ (+ bias), w (N, K) of w.dtype read
// in place (may be unaligned), bias (N) of any dtype or null/empty.
void matmul(ThreadPool& pool, float* out, const float* x, int m, const Weight& w, const Weight* bias, bool accumulate);

// out (n_rows, n_heads * head_dim) = softmax(q kᵀ * scale) v over the
// segments of `a` (see AttnSegment in backend.h).
void attention(ThreadPool& pool, float* out, const float* q, const AttnArgs& a);

// out (n, dim) = x / rms(x) * w, dim = w.rows; out may alias x.
void rms_norm(ThreadPool& pool, float* out, const float* x, const Weight& w, int n, float eps);
// table (n, head_dim) = cos | sin of pos[i] * inv_freq (head_dim/2), angles in double.
void rope_table(ThreadPool& pool, float* table, const int32_t* pos, int n, const double* inv_freq, int head_dim);
// Rotates x (n, n_heads * head_dim) in place with table (n, head_dim).
void rope(ThreadPool& pool, float* x, int n, int n_heads, int head_dim, const float* table);
// Writes k, v rows (n, kv_dim) to dst[i] at `layer`, converting to dst[i].dtype.
void kv_store(ThreadPool& pool, const float* k, const float* v, const KvDst* dst, int n, int kv_dim, int layer);
// out (n) = silu(gate) * up; out may alias gate.
void swiglu(ThreadPool& pool, float* out, const float* gate, const float* up, int64_t n);
// out (n, table.cols) = table[ids[i]]; ids out of range throw.
void embedding(ThreadPool& pool, float* out, const Weight& table, const int32_t* ids, int n);
// out (n, dim) = x[rows[i]]
void gather_rows(ThreadPool& pool, float* out, const float* x, const int32_t* rows, int n, int dim);
// out (rows): one token per logits row (see SampleParams in core/backend.h).
void sample(ThreadPool& pool, int32_t* out, const float* logits, int rows, int vocab, const SampleParams& p,
            const float* uniforms);

// Converts n elements of type t to float32 and back (round to nearest even).
void to_f32(float* out, const void* src, DType t, int64_t n);
void from_f32(void* out, const float* src, DType t, int64_t n);

}  // namespace focus::cpu
