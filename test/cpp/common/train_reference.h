// Float64 oracles of the training ops (cpp/cpu/ops.h, "training: backward
// ops"): each forward and its analytic gradient, scalar, everything in double
// so that a central difference of the forward can prove the gradient
// (train_ops_test.cpp). Shapes are contiguous (no strides). Unlike the ops,
// the backward oracles WRITE their gradients (=); the tests add them to the
// pre-filled buffers themselves.
#pragma once

#include <cstdint>

#include "core/backend.h"

namespace focus::ref64 {

// out (m, N) = a (m, K) · b (K, N)
void matmul_nn(double* out, const double* a, const double* b, int m, int K, int N);

// out (m, N) = x (m, K) · wᵀ + bias, w (N, K), bias (N) or null.
void linear(double* out, const double* x, const double* w, const double* bias, int m, int N, int K);
// dx (m, K) = dout · w, dw (N, K) = doutᵀ · x, dbias (N) = Σ_rows dout.
void linear_backward(double* dx, double* dw, double* dbias, const double* dout, const double* x, const double* w,
                     int m, int N, int K);

// out (n, dim) = x / sqrt(mean(x²) + eps) * w
void rms_norm(double* out, const double* x, const double* w, int n, int dim, double eps);
void rms_norm_backward(double* dx, double* dw, const double* dout, const double* x, const double* w, int n, int dim,
                       double eps);

// Rotate-half rotary with table (n, head_dim) = cos | sin; the backward
// applies the transpose in place.
void rope(double* x, int n, int n_heads, int head_dim, const double* table);
void rope_backward(double* d, int n, int n_heads, int head_dim, const double* table);

// out = silu(gate) * up
void swiglu(double* out, const double* gate, const double* up, int64_t n);
void swiglu_backward(double* dgate, double* dup, const double* dout, const double* gate, const double* up, int64_t n);

// out (n, dim) = table[ids]; dtable (vocab, dim) = the scatter of dout.
void embedding(double* out, const double* table, const int32_t* ids, int n, int dim);
void embedding_backward(double* dtable, const double* dout, const int32_t* ids, int n, int dim, int vocab);

// losses[i] = logsumexp(logits[i]) - logits[i][t_i];
// dlogits[i] = (softmax(logits[i]) - onehot(t_i)) * weights[i] (dlogits may be null).
void cross_entropy(double* losses, double* dlogits, const double* logits, const int32_t* targets,
                   const double* weights, int n, int V);

// Training attention over TrainAttnSeq entries (see core/backend.h):
// out (rows, n_heads * head_dim), lse (rows, n_heads) (null = not wanted).
void attention(double* out, double* lse, const double* q, const double* k, const double* v, const TrainAttnSeq* seqs,
               int n_seq, int n_heads, int n_kv_heads, int head_dim, double scale);
// dq, dk, dv = the gradients (the probabilities recomputed from q, k). Rows
// of dq, dk and dv no query or key of `seqs` touches are left as they are.
void attention_backward(double* dq, double* dk, double* dv, const double* dout, const double* q, const double* k,
                        const double* v, const TrainAttnSeq* seqs, int n_seq, int n_heads, int n_kv_heads,
                        int head_dim, double scale);

}  // namespace focus::ref64
