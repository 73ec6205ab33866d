// Tensor-core GEMM for every projection and the MLP: out = x · wᵀ (+ bias),
// 16-bit inputs, float32 accumulation. Launchers only; the kernels are in
// gemm_mma.cu (mma.sync, sm_80+), gemm_sm90.cu (wgmma + TMA, in builds for
// sm_90a: CMake FOCUSLLM_CUDA_ARCHS containing "90a"), gemm.cu (the host-side
// plan, the fallback and the split-K reduction) and gemm_cublaslt.cu (the
// optional cuBLASLt route). gemm_impl.cuh has the kernel list and the plan.
// Environment: FOCUSLLM_GEMM_NO_WGMMA=1 keeps sm_90a builds on mma.sync.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace focus::cuda {

enum class GemmEpilogue {
  Store,     // out = acc (+ bias), in `dtype`
  Add,       // out += acc (+ bias), in `dtype` (the fused residual add)
  StoreF32,  // out = acc (+ bias), float32 (logits)
};

// Row-major operands: x (m, k), w (n, k) [output features x input features,
// as in the checkpoint, rows dense: k elements apart], out (m, n). Rows
// [split, m) use the second weight (w2, bias2): the candidate projections, in
// the same launch. w2 = nullptr (split is then ignored) or split = m means a
// plain GEMM; split = 0 means every row uses w2. out must not overlap x or w.
//
// The fast paths want k % 8 == 0, ldx % 8 == 0 and 16-byte aligned x, w, w2;
// anything else runs a slower but exact fallback. m = 0 is a no-op.
struct GemmArgs {
  const void* x = nullptr;  // (m, k), rows ldx apart
  int64_t ldx = 0;          // elements between rows of x (>= k)
  const void* w = nullptr;  // (n, k)
  const void* bias = nullptr;  // (n) or nullptr
  const void* w2 = nullptr;    // (n, k) or nullptr
  const void* bias2 = nullptr;  // (n) or nullptr
  int split = 0;             // in [0, m] when w2 is set
  void* out = nullptr;       // (m, n), rows ldo apart
  int64_t ldo = 0;           // elements between rows of out (>= n)
  int m = 0, n = 0, k = 0;
  GemmEpilogue epilogue = GemmEpilogue::Store;
  DType dtype = DType::BF16;  // of x, w, bias and (unless StoreF32) out: BF16 or F16
  // Optional float32 scratch for split-K on skinny problems (few output tiles,
  // long k: decode and candidate rows), which then run on every SM. Allocate
  // kGemmWorkspaceBytes once per stream; without it (or when too small for a
  // problem) the GEMM runs unsplit: same result, less parallelism. It must
  // not be used by anything else while the stream runs the GEMM.
  void* workspace = nullptr;  // 16-byte aligned
  size_t workspace_bytes = 0;
};

// Enough for every split-K plan of the LLaMA-7B/13B shapes with m <= 256.
constexpr size_t kGemmWorkspaceBytes = size_t(32) << 20;

// Throws focus::Error on bad arguments or launch failure.
void gemm(const GemmArgs& a, cudaStream_t stream);

// Whether this build holds the sm_90a (wgmma) kernels for the current device
// and the driver can encode their tensor maps; asks the device once (a
// synchronous probe launch), then remembers. The backend asks at construction.
bool gemm_sm90_available();

}  // namespace focus::cuda
