// Tensor-core GEMM for every projection and the MLP: out = x · wᵀ (+ bias),
// 16-bit inputs, float32 accumulation. Launchers only; kernels are in gemm.cu.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"

namespace focus::cuda {

enum class GemmEpilogue {
  Store,     // out = acc (+ bias), in `dtype`
  Add,       // out += acc (+ bias), in `dtype` (the fused residual add)
  StoreF32,  // out = acc (+ bias), float32 (logits)
};

// Row-major operands: x (m, k), w (n, k) [output features x input features,
// as in the checkpoint], out (m, n). Rows [split, m) use the second weight
// (w2, bias2): the candidate projections, in the same launch. split = m (or
// w2 = nullptr) means a plain GEMM.
struct GemmArgs {
  const void* x = nullptr;
  int64_t ldx = 0;  // elements between rows of x (>= k)
  const void* w = nullptr;
  const void* bias = nullptr;  // (n) or nullptr
  const void* w2 = nullptr;
  const void* bias2 = nullptr;
  int split = 0;
  void* out = nullptr;
  int64_t ldo = 0;  // elements between rows of out (>= n)
  int m = 0, n = 0, k = 0;
  GemmEpilogue epilogue = GemmEpilogue::Store;
  DType dtype = DType::BF16;  // of x, w, bias and (unless StoreF32) out: BF16 or F16
};

// Throws focus::Error on bad arguments or launch failure.
void gemm(const GemmArgs& a, cudaStream_t stream);

}  // namespace focus::cuda
