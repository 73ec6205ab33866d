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
// Several matmuls at once, each as matmul() computes it (the same bits): with
// every m <= 8 (the GEMV regime) as one parallel region over all their
// output rows, otherwise one after another. No job may read another's output.
struct MatmulJob {
  float* out;
  const float* x;
  int m;
  const Weight* w;
  const Weight* bias;  // may be null or empty
};
void matmul_group(ThreadPool& pool, const MatmulJob* jobs, int n_jobs, bool accumulate);

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

// ---- training: backward ops -------------------------------------------------
// Each *_backward sits beside its forward (same file) and ADDS into the
// gradient buffers it is given (the llm.c convention: the caller zeroes them
// once per step); a null gradient pointer means "not wanted". All gradients
// are float32. test/cpp/train_ops_test.cpp checks each against a scalar
// float64 oracle and against finite differences of the forward.

namespace focus::cpu {

// out (m, N) = or += a (m, K) float32, row stride lda, · b (K, N) of b_dtype
// (F32/F16/BF16), row stride ldb elements; out has row stride ldo. The "NN"
// GEMM of the backward: dX = dY · W and dW = dYᵀ · X (with dYᵀ materialised).
void matmul_nn(ThreadPool& pool, float* out, int64_t ldo, const float* a, int64_t lda, int m, const void* b,
               DType b_dtype, int64_t ldb, int K, int N, bool accumulate);

// out (cols, rows) = xᵀ for x (rows, cols) float32.
void transpose(ThreadPool& pool, float* out, const float* x, int rows, int cols);

// Gradients of out (m, w.rows) = x (m, w.cols) · wᵀ (+ bias):
//   dx (m, w.cols) += dout · w,  dw (w.rows, w.cols) += doutᵀ · x,  dbias (w.rows) += Σ_rows dout.
// dw and dbias are float32 whatever w.dtype is (trainable weights are float32
// master copies; a frozen weight gets dw = null).
void matmul_backward(ThreadPool& pool, float* dx, float* dw, float* dbias, const float* dout, const float* x, int m,
                     const Weight& w);

// Gradients of out (n, dim) = x / rms(x) * w, dim = w.rows (rms recomputed from x):
//   dx (n, dim) += ..., dw (dim) += Σ_rows dout * x / rms(x).
void rms_norm_backward(ThreadPool& pool, float* dx, float* dw, const float* dout, const float* x, const Weight& w,
                       int n, float eps);

// Gradient of rope(): the rotation is orthogonal, so d (n, n_heads * head_dim)
// is rotated in place by minus the angles of `table` (the same table rope() used).
void rope_backward(ThreadPool& pool, float* d, int n, int n_heads, int head_dim, const float* table);

// Gradients of out (n) = silu(gate) * up:
//   dgate += dout * up * silu'(gate),  dup += dout * silu(gate).
void swiglu_backward(ThreadPool& pool, float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n);

// Gradient of embedding(): dtable (vocab, dim) += dout (n, dim) rows scattered to ids.
void embedding_backward(ThreadPool& pool, float* dtable, const float* dout, const int32_t* ids, int n, int dim);

// Cross-entropy of rows of logits (n, V) float32 against targets:
//   losses[i] = logsumexp(logits[i]) - logits[i][targets[i]]   (accumulated in double)
//   dlogits[i] = (softmax(logits[i]) - onehot(targets[i])) * weights[i]   (written, not added;
//   dlogits may alias logits). targets out of [0, V) throw.
void cross_entropy(ThreadPool& pool, float* dlogits, double* losses, const float* logits, const int32_t* targets,
                   const float* weights, int n, int V);

// One AdamW update of n elements (see AdamWStep in core/backend.h), float32.
void adamw(ThreadPool& pool, float* w, const float* g, float* m, float* v, int64_t n, const AdamWStep& s);
// Σ x² in double.
double sum_squares(ThreadPool& pool, const float* x, int64_t n);

// Attention for training, over contiguous float32 keys and values. One entry per
// sequence: its queries are rows [q_row, q_row + n_q) of q/out, its keys rows
// [key_row, key_row + n_keys) of k/v (rotated already), and query i sees its
// keys [0, q_key0 + i] (everything before q_key0 - a constant cache or the
// candidate prefix - fully, its own keys causally). q_key0 + n_q <= n_keys.
using focus::TrainAttnSeq;  // core/backend.h
// out (n_rows, n_heads * head_dim) = softmax(q kᵀ * scale) v;
// lse (n_rows, n_heads) = log Σ_j exp(scale q·k_j), kept for the backward.
// k, v: (total keys, n_kv_heads * head_dim).
void attention_train_forward(ThreadPool& pool, float* out, float* lse, const float* q, const float* k,
                             const float* v, const TrainAttnSeq* seqs, int n_seq, int n_heads, int n_kv_heads,
                             int head_dim, float scale);
// dq (n_rows, q_dim) +=, dk and dv (total keys, kv_dim) += (any may be null), from
// dout and the forward's out and lse (the probabilities are recomputed, not stored).
void attention_train_backward(ThreadPool& pool, float* dq, float* dk, float* dv, const float* dout,
                              const float* out, const float* lse, const float* q, const float* k, const float* v,
                              const TrainAttnSeq* seqs, int n_seq, int n_heads, int n_kv_heads, int head_dim,
                              float scale);

}  // namespace focus::cpu
