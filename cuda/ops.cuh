// Launchers of the CUDA backend's row-wise and element-wise ops, and of the
// sampling kernels. Each pairs with the CPU op of the same name
// (cpp/cpu/elementwise.cpp); kernels are private to their .cu file.
//
// Conventions, as in core/backend.h: row-major, every pointer is device
// memory, `dtype` is the activation type (BF16 or F16) unless an argument
// says otherwise, float32 arithmetic inside. Launchers enqueue on `stream`,
// return at once, and throw focus::Error on bad arguments or launch failure.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "core/backend.h"
#include "core/dtype.h"

namespace focus::cuda {

// ---- elementwise.cu --------------------------------------------------------

// out (n, cols) in out_dtype = table[ids[i]] converted; table (table_rows,
// cols) in table_dtype. An id outside [0, table_rows) yields a NaN row (the
// runner validates ids; NaN makes a slip visible instead of reading wild).
void embedding(void* out, DType out_dtype, const void* table, DType table_dtype, int64_t table_rows, int64_t cols,
               const int32_t* ids, int n, cudaStream_t stream);

// out (n, dim) = x[rows[i]], same dtype.
void gather_rows(void* out, const void* x, const int32_t* rows, int n, int dim, DType dtype, cudaStream_t stream);

// out (n) = silu(gate) * up; out may alias gate (or up).
void swiglu(void* out, const void* gate, const void* up, int64_t n, DType dtype, cudaStream_t stream);

// dst (n) in dst_dtype = src (n) in src_dtype, round to nearest even (the
// same bits as core/dtype.h's scalar conversions for finite values).
void convert(void* dst, DType dst_dtype, const void* src, DType src_dtype, int64_t n, cudaStream_t stream);

// ---- norm.cu -----------------------------------------------------------------

// out (n, dim) = x / sqrt(mean(x²) + eps) * w; w (dim). out may alias x.
void rms_norm(void* out, const void* x, const void* w, int n, int dim, float eps, DType dtype, cudaStream_t stream);

// ---- rope.cu -----------------------------------------------------------------

// table (n, head_dim) float32: cos(pos[i] * inv_freq[j]) for j < head_dim/2,
// then the sines; angles in double (positions reach 400K+, where a float
// angle is off by tens of radians' worth of ulps). inv_freq (head_dim/2) double.
void rope_table(float* table, const int32_t* pos, int n, const double* inv_freq, int head_dim, cudaStream_t stream);

// Rotates x (n, n_heads * head_dim) in place, rotate-half (HF LLaMA): dim j
// pairs with dim j + head_dim/2, row i uses table row i.
void rope(void* x, int n, int n_heads, int head_dim, const float* table, DType dtype, cudaStream_t stream);

// ---- kv_store.cu -------------------------------------------------------------

// Writes rows k, v (n, kv_dim) in `dtype` to dst[i].k/.v + layer *
// dst[i].layer_stride, converting to dst[i].dtype (F32, F16 or BF16). dst is a
// device table; its dtypes are read on the device, so nothing is checked here.
void kv_store(const void* k, const void* v, const KvDst* dst, int n, int kv_dim, int layer, DType dtype,
              cudaStream_t stream);

// ---- sampling.cu -------------------------------------------------------------
// Token choice on device logits (rows, vocab) float32, one token per row, with
// the semantics of lib/sampling.ts: NaN logits never win; ties go to the
// lowest index.

// out (rows) = index of the largest logit of each row (0 when a row has no
// finite or infinite number at all).
void sample_argmax(const float* logits, int rows, int vocab, int32_t* out, cudaStream_t stream);

struct SampleParams {
  float temperature = 1.0f;  // > 0; probabilities are softmax(logits / temperature)
  int top_k = 0;             // keep the top_k most likely tokens (0 or >= vocab: all)
  float top_p = 1.0f;        // then the smallest most-likely set whose mass reaches top_p, in (0, 1]
};

// out (rows): one draw per row from the distribution `p` leaves, using the
// caller's uniform number uniforms[row] in [0, 1) (the caller's seeded
// generator keeps runs reproducible). Token order inside the kept set is the
// logit order with ties broken by the lower index, as the TypeScript sampler
// sorts. temperature == 0 means argmax.
void sample(const float* logits, int rows, int vocab, const SampleParams& p, const float* uniforms, int32_t* out,
            cudaStream_t stream);

}  // namespace focus::cuda
