// The mma.sync GEMM kernels (sm_80 and later, including sm_90): out = x · wᵀ
// for the tile shapes Mma16x64 .. Mma128x256 of gemm_impl.cuh.
//
// One block computes a BM x BN tile of out, looping over k in steps of 64:
//   - cp.async copies the x tile (BM, 64) and the w tile (BN, 64) of step
//     kt + STAGES - 1 into shared memory while the tensor cores work on step
//     kt (a STAGES-deep ring), 16 bytes per copy, zero-filled past the tile's
//     rows, n and k: no bounds checks in the inner loop;
//   - each shared-memory row is 64 elements = 128 bytes = 8 chunks of 16
//     bytes, and chunk c of row r is stored at chunk c ^ (r % 8). ldmatrix
//     reads one chunk column from 8 consecutive rows at a time; the XOR puts
//     those 8 chunks in 8 different 16-byte bank groups (no bank conflicts),
//     and the cp.async writes of a row stay one contiguous 128-byte line;
//   - a warp owns a WM x WN sub-tile: MI = WM/16 x NI = WN/8 mma.m16n8k16
//     accumulators of 4 floats per thread, fed by ldmatrix.x4 (one 16x16 A
//     fragment, or the B fragments of two n8 tiles, per instruction).
// w (n, k) row-major is exactly the "col" B operand of mma (k contiguous per
// output feature), so neither operand needs a transpose.
#include <atomic>

#include "gemm_device.cuh"

namespace focus::cuda {

namespace {

using namespace gemm_detail;

// ---- kernels -------------------------------------------------------------------

__device__ __forceinline__ uint32_t smem_addr(const void* p) { return uint32_t(__cvta_generic_to_shared(p)); }

// 16-byte copy global -> shared, cached in L2 only; src_bytes = 0 reads
// nothing and writes 16 zero bytes.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most N of this thread's copy groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Four 8x8 16-bit matrices; lanes 8j..8j+7 give the row addresses of matrix j,
// and each thread receives (row lane/4, columns 2*(lane%4), +1) of each.
__device__ __forceinline__ void ldmatrix_x4(uint32_t addr, uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(addr));
}

// d (16x8 f32) += a (16x16, row) · b (16x8, col).
template <class T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);
template <>
__device__ __forceinline__ void mma_16816<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4],
                                                         const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
template <>
__device__ __forceinline__ void mma_16816<__half>(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Byte offset of 16-byte chunk c (0..7) of row r in a swizzled operand tile.
__device__ __forceinline__ uint32_t swz(int r, int c) { return uint32_t(r * 128 + ((c ^ (r & 7)) << 4)); }

// Blocks per SM the register allocation aims for: two 256-thread blocks of
// 128x128 fit an H100 SM's shared memory (2 x 96 KB), so cap those at 128
// registers; the 64x64-warp-tile 128x256 kernel needs ~200 registers, one block.
constexpr int mma_min_blocks(GemmKernel k) {
  return k == GemmKernel::Mma128x256 ? 1 : k == GemmKernel::Mma128x128 ? 2 : 3;
}

template <class T, GemmKernel K>
__global__ void __launch_bounds__(gemm_tile(K).threads, mma_min_blocks(K)) gemm_mma_kernel(const GemmParams p) {
  constexpr GemmTile t = gemm_tile(K);
  constexpr int BM = t.bm, BN = t.bn, BK = 64, STAGES = t.stages, THREADS = t.threads;
  constexpr int WM = BM / t.warps_m, WN = BN / t.warps_n;  // warp tile
  constexpr int MI = WM / 16, NI = WN / 8;                 // mma tiles per warp
  constexpr int A_BYTES = BM * BK * 2, STAGE_BYTES = (BM + BN) * BK * 2;
  static_assert(t.bk == BK, "one swizzle row (128 bytes) per k step");
  static_assert(THREADS == 32 * t.warps_m * t.warps_n, "thread count matches the warp grid");
  static_assert(WM % 16 == 0 && WN % 16 == 0, "ldmatrix.x4 loads 16 rows of A, or 16 columns of B, at once");
  static_assert((BM * 8) % THREADS == 0 && (BN * 8) % THREADS == 0, "every thread copies whole chunks");
  static_assert(STAGES >= 2 && STAGES * STAGE_BYTES == t.smem_bytes, "shared memory = the stage ring");

  extern __shared__ __align__(128) uint8_t smem[];
  const uint32_t smem0 = smem_addr(smem);

  int mt, nt;
  tile_coords(int(blockIdx.x), p.tiles_m, p.tiles_n, &mt, &nt);
  const TileRows rows = tile_rows(p, mt, BM);
  const T* __restrict__ x = static_cast<const T*>(p.x);
  const T* __restrict__ w = static_cast<const T*>(rows.seg ? p.w2 : p.w);
  const T* bias = static_cast<const T*>(rows.seg ? p.bias2 : p.bias);
  const int col0 = nt * BN;
  int kt0, kt1;
  k_tile_range(p, BK, &kt0, &kt1);
  const int nk = kt1 - kt0;

  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int warp_m = warp % t.warps_m, warp_n = warp / t.warps_m;

  // Copies k tile kt into stage s: x rows [row0, row0 + BM) and w rows
  // [col0, col0 + BN), 64 columns each. Chunk id -> (row id/8, chunk id%8):
  // 8 consecutive threads copy one 128-byte row segment (coalesced). k % 8 ==
  // 0 on this path, so a chunk is entirely inside k or entirely past it.
  auto load_tile = [&](int s, int kt) {
    const uint32_t sa = smem0 + uint32_t(s * STAGE_BYTES), sb = sa + A_BYTES;
    const int kc = kt * BK;
#pragma unroll
    for (int i = 0; i < BM * 8 / THREADS; ++i) {
      const int id = tid + i * THREADS, r = id >> 3, c = id & 7;
      const int gr = rows.row0 + r, gk = kc + c * 8;
      const bool ok = gr < rows.row_end && gk < p.k;
      cp_async_16(sa + swz(r, c), ok ? x + int64_t(gr) * p.ldx + gk : x, ok ? 16 : 0);
    }
#pragma unroll
    for (int i = 0; i < BN * 8 / THREADS; ++i) {
      const int id = tid + i * THREADS, r = id >> 3, c = id & 7;
      const int gn = col0 + r, gk = kc + c * 8;
      const bool ok = gn < p.n && gk < p.k;
      cp_async_16(sb + swz(r, c), ok ? w + int64_t(gn) * p.k + gk : w, ok ? 16 : 0);
    }
  };

  float acc[MI][NI][4];
#pragma unroll
  for (int mi = 0; mi < MI; ++mi)
#pragma unroll
    for (int ni = 0; ni < NI; ++ni)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[mi][ni][j] = 0.0f;

  // Prologue: STAGES - 1 tiles in flight. Every iteration commits exactly one
  // group (possibly empty), so "group i" is always k tile i and wait_group
  // counts stay uniform.
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < nk) load_tile(s, kt0 + s);
    cp_async_commit();
  }

  for (int i = 0; i < nk; ++i) {
    // Groups committed so far: STAGES - 1 + i; at most STAGES - 2 pending
    // means tile i has landed (for this thread); the barrier makes every
    // thread's copies visible, and tells that every warp is done with tile
    // i - 1, whose stage the prefetch below overwrites.
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    const int pf = i + STAGES - 1;
    if (pf < nk) load_tile(pf % STAGES, kt0 + pf);
    cp_async_commit();

    const uint32_t sa = smem0 + uint32_t((i % STAGES) * STAGE_BYTES), sb = sa + A_BYTES;
#pragma unroll
    for (int kk = 0; kk < BK / 16; ++kk) {
      uint32_t a[MI][4], b[NI][2];
      // A 16x16: matrices (rows 0-7 | 8-15) x (k 0-7 | 8-15) in the order of
      // the mma fragment a0..a3: lane -> row lane % 16, k chunk lane / 16.
#pragma unroll
      for (int mi = 0; mi < MI; ++mi) {
        const int r = warp_m * WM + mi * 16 + (lane & 15);
        ldmatrix_x4(sa + swz(r, kk * 2 + (lane >> 4)), a[mi][0], a[mi][1], a[mi][2], a[mi][3]);
      }
      // B for n tiles 2j, 2j+1: matrices (n 0-7, k 0-7), (n 0-7, k 8-15),
      // (n 8-15, k 0-7), (n 8-15, k 8-15) = b[2j][0], b[2j][1], b[2j+1][0],
      // b[2j+1][1]: lane -> n row lane % 8 + 8 * (lane / 16), k chunk (lane / 8) % 2.
#pragma unroll
      for (int j = 0; j < NI / 2; ++j) {
        const int r = warp_n * WN + j * 16 + (lane & 7) + ((lane >> 4) << 3);
        ldmatrix_x4(sb + swz(r, kk * 2 + ((lane >> 3) & 1)), b[2 * j][0], b[2 * j][1], b[2 * j + 1][0],
                    b[2 * j + 1][1]);
      }
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < NI; ++ni) mma_16816<T>(acc[mi][ni], a[mi], b[ni]);
    }
  }
  cp_async_wait<0>();  // only empty groups remain; leave none behind

  // Epilogue straight from the accumulators: thread (g = lane/4, q = lane%4)
  // holds rows g and g + 8, columns 2q and 2q + 1 of each 16x8 tile.
#pragma unroll
  for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
    for (int ni = 0; ni < NI; ++ni) {
      const int c = col0 + warp_n * WN + ni * 8 + (lane & 3) * 2;
      if (c >= p.n) continue;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = rows.row0 + warp_m * WM + mi * 16 + (lane >> 2) + h * 8;
        if (r < rows.row_end) store_pair<T>(p, r, c, acc[mi][ni][2 * h], acc[mi][ni][2 * h + 1], bias);
      }
    }
  }
}

// ---- launchers -----------------------------------------------------------------

template <class T, GemmKernel K>
void launch(const GemmParams& p, cudaStream_t stream) {
  constexpr GemmTile t = gemm_tile(K);
  // Above 48 KB a kernel must opt in to dynamic shared memory, once per device.
  static std::atomic<uint64_t> raised{0};  // bit d: done on device d
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  const uint64_t bit = dev < 64 ? uint64_t(1) << dev : 0;
  if (bit == 0 || (raised.load() & bit) == 0) {
    CUDA_CHECK(cudaFuncSetAttribute(gemm_mma_kernel<T, K>, cudaFuncAttributeMaxDynamicSharedMemorySize, t.smem_bytes));
    raised.fetch_or(bit);
  }
  const dim3 grid(unsigned(p.tiles_m) * unsigned(p.tiles_n), 1, unsigned(p.splits));
  gemm_mma_kernel<T, K><<<grid, t.threads, t.smem_bytes, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

template <class T>
void launch_typed(GemmKernel k, const GemmParams& p, cudaStream_t stream) {
  switch (k) {
    case GemmKernel::Mma16x64: return launch<T, GemmKernel::Mma16x64>(p, stream);
    case GemmKernel::Mma32x64: return launch<T, GemmKernel::Mma32x64>(p, stream);
    case GemmKernel::Mma64x128: return launch<T, GemmKernel::Mma64x128>(p, stream);
    case GemmKernel::Mma128x128: return launch<T, GemmKernel::Mma128x128>(p, stream);
    case GemmKernel::Mma128x256: return launch<T, GemmKernel::Mma128x256>(p, stream);
    default: FOCUS_CHECK(false, "gemm_mma_launch: ", gemm_kernel_name(k), " is not an mma.sync kernel");
  }
}

}  // namespace

void gemm_mma_launch(GemmKernel k, DType dtype, const GemmParams& p, cudaStream_t stream) {
  if (dtype == DType::BF16) launch_typed<__nv_bfloat16>(k, p, stream);
  else launch_typed<__half>(k, p, stream);
}

}  // namespace focus::cuda
