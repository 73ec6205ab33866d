// Inside the GEMM (gemm.cuh): the kernels on offer, the plan that picks one,
// and the parameter block every kernel takes. gemm.cu, gemm_mma.cu,
// gemm_sm90.cu, the GEMM test and the benchmark include this; the rest of the
// backend only sees gemm.cuh.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "gemm.cuh"

namespace focus::cuda {

// The kernels. Tests and the benchmark force each one; gemm() picks through
// gemm_plan().
enum class GemmKernel : int {
  Simt,          // CUDA cores, any shape and alignment: the fallback
  Mma16x64,      // mma.sync m16n8k16 + ldmatrix + cp.async (sm_80+), block tile BM x BN
  Mma32x64,
  Mma64x128,
  Mma128x128,
  Mma128x256,
  Wgmma128x128,  // wgmma + TMA + mbarrier pipeline (sm_90a builds on sm_90 devices)
  Wgmma128x256,
  Count
};

// Static shape of a kernel. Every tensor-core kernel reads k in steps of 64
// (128 bytes of 16-bit elements: one swizzle row of shared memory).
struct GemmTile {
  int bm, bn, bk;
  int warps_m, warps_n;  // warp grid of the mma.sync kernels (warp tile bm/warps_m x bn/warps_n)
  int stages;            // shared-memory pipeline depth
  int threads;
  int smem_bytes;        // dynamic shared memory per block
};

constexpr int gemm_stage_bytes(int bm, int bn) { return (bm + bn) * 64 * 2; }

constexpr GemmTile gemm_tile(GemmKernel k) {
  // Stage counts: enough loads in flight to cover memory latency (more for the
  // skinny tiles, which are bandwidth-bound), within 99 KB of shared memory
  // (the sm_86/89 limit) for everything but the 128x256 tiles.
  switch (k) {
    case GemmKernel::Simt: return {64, 64, 16, 1, 1, 1, 256, 0};
    case GemmKernel::Mma16x64: return {16, 64, 64, 1, 4, 6, 128, 6 * gemm_stage_bytes(16, 64)};
    case GemmKernel::Mma32x64: return {32, 64, 64, 1, 4, 4, 128, 4 * gemm_stage_bytes(32, 64)};
    case GemmKernel::Mma64x128: return {64, 128, 64, 2, 2, 4, 128, 4 * gemm_stage_bytes(64, 128)};
    case GemmKernel::Mma128x128: return {128, 128, 64, 2, 4, 3, 256, 3 * gemm_stage_bytes(128, 128)};
    case GemmKernel::Mma128x256: return {128, 256, 64, 2, 4, 3, 256, 3 * gemm_stage_bytes(128, 256)};
    // One producer warpgroup (TMA) + two consumer warpgroups (64 rows each);
    // +1 KB: the 1024-byte alignment the 128-byte swizzle needs, and the
    // mbarriers.
    case GemmKernel::Wgmma128x128: return {128, 128, 64, 2, 1, 5, 384, 5 * gemm_stage_bytes(128, 128) + 2048};
    case GemmKernel::Wgmma128x256: return {128, 256, 64, 2, 1, 4, 384, 4 * gemm_stage_bytes(128, 256) + 2048};
    default: return {0, 0, 0, 0, 0, 0, 0, 0};
  }
}

const char* gemm_kernel_name(GemmKernel k);

// How a GEMM runs: the kernel and the split-K factor (> 1 needs
// splits * m * n * 4 bytes of workspace).
struct GemmPlan {
  GemmKernel kernel = GemmKernel::Simt;
  int splits = 1;
};

// The host-side choice from (m, n, k), the alignment and the device.
GemmPlan gemm_plan(const GemmArgs& a);
// Whether `k` can run `a` on the current device; if not, why (alignment,
// shared memory, architecture, build).
bool gemm_kernel_usable(GemmKernel k, const GemmArgs& a, std::string* why);
// Checks the arguments (throws focus::Error) and runs `a` with `plan`; throws
// when the plan is not usable for them. gemm() = gemm_run(a, gemm_plan(a)).
void gemm_run(const GemmArgs& a, const GemmPlan& plan, cudaStream_t stream);

// ---- between the GEMM's own files -------------------------------------------

// The parameter block of every GEMM kernel. Row tiles never straddle the row
// split: M tiles [0, tiles_lo) cover rows [0, split) with (w, bias), the rest
// cover [split, m) with (w2, bias2).
struct GemmParams {
  const void* x;  // (m, k), rows ldx apart
  int64_t ldx;
  const void* w;      // (n, k)
  const void* bias;   // (n) or null
  const void* w2;     // (n, k); = w when there is no split
  const void* bias2;  // (n) or null
  void* out;          // (m, n), rows ldo apart
  int64_t ldo;
  float* partial;  // split-K: (splits, m, n) float32 sums, no bias; null: the kernel finishes the epilogue
  int m, n, k;
  int split;
  int tiles_lo, tiles_m, tiles_n;  // M tiles below the split, M tiles in all, N tiles
  int k_tiles_per_split;           // k tiles (of the kernel's bk) per blockIdx.z
  int splits;
  GemmEpilogue epilogue;
  int out_pairs;  // 1: out takes 2-element stores (ldo even, out aligned to 2 elements)
};

// Launchers of each file (arguments already checked by gemm_run).
void gemm_mma_launch(GemmKernel k, DType dtype, const GemmParams& p, cudaStream_t stream);     // gemm_mma.cu
void gemm_sm90_launch(GemmKernel k, DType dtype, const GemmParams& p, cudaStream_t stream);    // gemm_sm90.cu
// gemm_sm90_available(): gemm.cuh.

#ifdef FOCUSLLM_WITH_CUBLASLT
// `a` through cuBLASLt (gemm_cublaslt.cu); false, with nothing enqueued, when
// cuBLASLt declines it (row split, bias with float32 output, no algorithm).
bool gemm_cublaslt(const GemmArgs& a, cudaStream_t stream);
#endif

}  // namespace focus::cuda
