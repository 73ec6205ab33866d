// The Hopper GEMM kernels (Wgmma128x128, Wgmma128x256 of gemm_impl.cuh):
// TMA loads into 128-byte-swizzled shared memory, wgmma on the tensor cores,
// an mbarrier pipeline between them. Compiled in for sm_90a targets only
// (wgmma and setmaxnreg do not exist on plain sm_90); elsewhere the kernels are
// empty and gemm_sm90_available() says so, so the plan never picks them.
//
// One block of 384 threads computes a 128 x BN tile of out:
//   - warpgroup 0 is the producer: one thread issues, per k step of 64, a TMA
//     copy of the x tile (128, 64) and of the w tile (BN, 64) into a
//     STAGES-deep ring, completing on that stage's "full" mbarrier with the
//     byte count; TMA zero-fills everything past m, n and k;
//   - warpgroups 1 and 2 are the consumers, 64 rows of the tile each: wait on
//     "full", issue 4 wgmma m64nBNk16 (k = 64) reading both operands from
//     shared memory, wait for them, then arrive on the stage's "empty"
//     mbarrier so that the producer may refill it;
//   - shared memory rows are 64 elements = 128 bytes, stored by TMA with the
//     128-byte swizzle (16-byte chunk c of row r at chunk c ^ (r % 8)), which
//     is the layout the wgmma descriptors below describe (K-major, 8-row
//     groups 1024 bytes apart). Both x (m, k) and w (n, k) are K-major, so
//     neither operand is transposed.
// The epilogue runs straight from the accumulators (gemm_device.cuh).
#include <cuda.h>  // CUtensorMap and its enums (types only: the encoder comes through the runtime)
#include <cudaTypedefs.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "gemm_device.cuh"

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FOCUS_GEMM_SM90A 1
#else
#define FOCUS_GEMM_SM90A 0
#endif

namespace focus::cuda {

namespace {

using namespace gemm_detail;

// The kernel parameters: tensor maps by value (__grid_constant__: TMA reads
// them from the parameter space), then the common block.
struct Sm90Params {
  CUtensorMap tx;   // x (m, k), box (128 rows, 64)
  CUtensorMap tw;   // w (n, k), box (BN rows, 64)
  CUtensorMap tw2;  // w2, same
  GemmParams g;
};

// ---- kernels -------------------------------------------------------------------

// The PTX wrappers exist in the sm_90a device pass only (and in the host pass,
// which compiles no device code): other targets have no use for them.
#if !defined(__CUDA_ARCH__) || FOCUS_GEMM_SM90A

__device__ __forceinline__ uint32_t smem_addr(const void* p) { return uint32_t(__cvta_generic_to_shared(p)); }

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
// Makes the initialised barriers visible to the other threads and to TMA.
__device__ __forceinline__ void mbar_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
// One arrival that also announces `bytes` of TMA traffic on this phase.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Waits until the phase with this parity has completed. A pipeline that can
// never complete (a bug) must not hang the process: after ~2^34 cycles
// (seconds; real waits are microseconds) the block traps, the launch fails and
// the error reaches the host as an exception.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  long long start = 0;
  for (uint32_t spin = 0;; ++spin) {
    uint32_t done = 0;
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
    if (done) return;
    if (spin % 256 == 255) {
      const long long now = clock64();
      if (start == 0) start = now;
      else if (now - start > (1ll << 34)) __trap();
    }
  }
}

// TMA: the box at (c0 = column, c1 = row) of the tensor map -> shared memory
// at dst, completing `bar`'s transaction count.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, int c0, int c1, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];\n" ::"r"(
          dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1)
      : "memory");
}

// wgmma shared-memory descriptor of a K-major operand in the 128-byte swizzle:
// start address >> 4 (bits 0-13), leading offset 16 B (unused by this layout,
// bits 16-29), stride offset 1024 B between 8-row groups (bits 32-45), base
// offset 0 (the ring is 1024-byte aligned), layout 1 = 128-byte swizzle (bits
// 62-63). Stepping k by 16 elements inside the 128-byte row adds 32 bytes to
// the start address; the hardware applies the swizzle to the final address.
__device__ __forceinline__ uint64_t smem_desc(uint32_t addr) {
  return uint64_t((addr & 0x3FFFF) >> 4) | (uint64_t(16 >> 4) << 16) | (uint64_t(1024 >> 4) << 32) |
         (uint64_t(1) << 62);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// Keeps the compiler from moving accumulator registers across the
// asynchronous wgmma (it cannot see that wgmma_wait() is what makes them valid).
template <int N>
__device__ __forceinline__ void fence_regs(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// Accumulator operand lists: m64nNk16 gives each thread N/2 floats.
#define FOCUS_F4(d, i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3])
#define FOCUS_F16(d, i) FOCUS_F4(d, i), FOCUS_F4(d, i + 4), FOCUS_F4(d, i + 8), FOCUS_F4(d, i + 12)
#define FOCUS_F64(d, i) FOCUS_F16(d, i), FOCUS_F16(d, i + 16), FOCUS_F16(d, i + 32), FOCUS_F16(d, i + 48)
#define FOCUS_WGMMA_D64                                                                  \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "             \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "    \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "    \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define FOCUS_WGMMA_D128                                                                                     \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "                                \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "                       \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "                       \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "                       \
  "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "                       \
  "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "                       \
  "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "           \
  "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}"
// d (64 x N, f32) += a (64 x 16, from desc da) · b (16 x N, from desc db), K-major both
// (transpose flags 0), scales 1. The scale-d predicate is always 1: the
// accumulators start at zero in registers.
#define FOCUS_WGMMA(N, TY, DREGS, IA, IB, IS, ...)                                                       \
  asm volatile("{\n .reg .pred p;\n setp.ne.b32 p, " IS ", 0;\n wgmma.mma_async.sync.aligned.m64n" #N \
               "k16.f32." TY "." TY " " DREGS ", " IA ", " IB ", p, 1, 1, 0, 0;\n}\n"                  \
               : __VA_ARGS__                                                                          \
               : "l"(da), "l"(db), "r"(1))

template <class T, int BN>
__device__ __forceinline__ void wgmma_64xBNx16(float (&d)[BN / 2], uint64_t da, uint64_t db) {
  constexpr bool bf16 = std::is_same<T, __nv_bfloat16>::value;
  if constexpr (BN == 128) {
    if constexpr (bf16) FOCUS_WGMMA(128, "bf16", FOCUS_WGMMA_D64, "%64", "%65", "%66", FOCUS_F64(d, 0));
    else FOCUS_WGMMA(128, "f16", FOCUS_WGMMA_D64, "%64", "%65", "%66", FOCUS_F64(d, 0));
  } else {
    static_assert(BN == 256, "wgmma tiles are 128 or 256 wide");
    if constexpr (bf16) {
      FOCUS_WGMMA(256, "bf16", FOCUS_WGMMA_D128, "%128", "%129", "%130", FOCUS_F64(d, 0), FOCUS_F64(d, 64));
    } else {
      FOCUS_WGMMA(256, "f16", FOCUS_WGMMA_D128, "%128", "%129", "%130", FOCUS_F64(d, 0), FOCUS_F64(d, 64));
    }
  }
}

#endif  // !defined(__CUDA_ARCH__) || FOCUS_GEMM_SM90A

constexpr GemmKernel wgmma_kernel_id(int bn) { return bn == 256 ? GemmKernel::Wgmma128x256 : GemmKernel::Wgmma128x128; }

template <class T, int BN>
__global__ void __launch_bounds__(384, 1) gemm_wgmma_kernel(const __grid_constant__ Sm90Params P) {
#if FOCUS_GEMM_SM90A
  constexpr GemmTile t = gemm_tile(wgmma_kernel_id(BN));
  constexpr int BM = 128, BK = 64, STAGES = t.stages;
  constexpr uint32_t A_BYTES = BM * BK * 2, B_BYTES = BN * BK * 2, STAGE_BYTES = A_BYTES + B_BYTES;
  static_assert(t.bm == BM && t.bn == BN && t.bk == BK && t.threads == 384, "tile table");
  static_assert(A_BYTES % 1024 == 0 && B_BYTES % 1024 == 0, "every operand tile 1024-byte aligned (swizzle atom)");
  static_assert(STAGES * STAGE_BYTES + 1024 + 16 * STAGES <= t.smem_bytes, "ring + alignment + barriers fit");
  const GemmParams& p = P.g;

  // The ring starts at the first 1024-byte boundary; the barriers follow it:
  // full[s] at bars + 8 s, empty[s] at bars + 8 (STAGES + s).
  extern __shared__ __align__(1024) uint8_t smem[];
  const uint32_t ring = (smem_addr(smem) + 1023u) & ~1023u;
  const uint32_t bars = ring + STAGES * STAGE_BYTES;
  auto full = [&](int s) { return bars + 8u * uint32_t(s); };
  auto empty = [&](int s) { return bars + 8u * uint32_t(STAGES + s); };
  auto stage_a = [&](int s) { return ring + uint32_t(s) * STAGE_BYTES; };

  int mt, nt;
  tile_coords(int(blockIdx.x), p.tiles_m, p.tiles_n, &mt, &nt);
  const TileRows rows = tile_rows(p, mt, BM);
  const int col0 = nt * BN;
  int kt0, kt1;
  k_tile_range(p, BK, &kt0, &kt1);
  const int nk = kt1 - kt0;
  const int warpgroup = int(threadIdx.x) / 128;

  if (threadIdx.x == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(full(s), 1);   // the producer's arrive.expect_tx (+ the TMA bytes)
      mbar_init(empty(s), 8);  // one arrival per consumer warp
    }
    mbar_init_fence();
  }
  __syncthreads();

  if (warpgroup == 0) {
    // Producer: a few registers are enough; give the rest to the consumers.
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n");
    if (threadIdx.x == 0) {
      const CUtensorMap* tw = rows.seg ? &P.tw2 : &P.tw;
      for (int i = 0; i < nk; ++i) {
        const int s = i % STAGES;
        // Use u = i / STAGES of stage s; wait until the consumers released use u - 1.
        if (i >= STAGES) mbar_wait(empty(s), uint32_t((i / STAGES - 1) & 1));
        mbar_arrive_expect_tx(full(s), STAGE_BYTES);  // full boxes, zero-filled ones included
        const int kc = (kt0 + i) * BK;
        tma_load_2d(stage_a(s), &P.tx, kc, rows.row0, full(s));
        tma_load_2d(stage_a(s) + A_BYTES, tw, kc, col0, full(s));
      }
    }
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n");
    const int cw = warpgroup - 1;  // rows [64 cw, 64 cw + 64) of the tile
    const int lane = int(threadIdx.x) % 32, warp = (int(threadIdx.x) / 32) % 4;
    float acc[BN / 2];
#pragma unroll
    for (int j = 0; j < BN / 2; ++j) acc[j] = 0.0f;

    for (int i = 0; i < nk; ++i) {
      const int s = i % STAGES;
      mbar_wait(full(s), uint32_t((i / STAGES) & 1));
      fence_regs(acc);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < BK / 16; ++kk) {
        const uint64_t da = smem_desc(stage_a(s) + uint32_t(cw * 64 * 128 + kk * 32));
        const uint64_t db = smem_desc(stage_a(s) + A_BYTES + uint32_t(kk * 32));
        wgmma_64xBNx16<T, BN>(acc, da, db);
      }
      wgmma_commit();
      // Keep one group in flight: wait for the previous k step's group only,
      // then hand its stage back to the producer, so that the tensor cores
      // run step i while step i + 1's operands are being waited for.
      wgmma_wait<1>();
      fence_regs(acc);
      if (i > 0 && lane == 0) mbar_arrive(empty((i - 1) % STAGES));
    }
    wgmma_wait<0>();
    fence_regs(acc);

    // Accumulator layout of m64nN: warp w of the warpgroup holds rows 16 w ..
    // 16 w + 15; for each 8-column slice j, registers 4j, 4j+1 are (row
    // lane/4, columns 8j + 2 (lane%4) + {0, 1}) and 4j+2, 4j+3 the same
    // columns 8 rows down (the mma.sync m16n8 layout, repeated along N).
    const T* bias = static_cast<const T*>(rows.seg ? p.bias2 : p.bias);
    const int r0 = rows.row0 + cw * 64 + warp * 16 + lane / 4;
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) {
      const int c = col0 + 8 * j + 2 * (lane % 4);
      if (c >= p.n) continue;
      if (r0 < rows.row_end) store_pair<T>(p, r0, c, acc[4 * j], acc[4 * j + 1], bias);
      if (r0 + 8 < rows.row_end) store_pair<T>(p, r0 + 8, c, acc[4 * j + 2], acc[4 * j + 3], bias);
    }
  }
#endif
}

// Writes 1 when this device runs the sm_90a image of this file.
__global__ void gemm_sm90_probe_kernel(int* out) { *out = FOCUS_GEMM_SM90A; }

// ---- launchers -----------------------------------------------------------------

// The driver's cuTensorMapEncodeTiled, or nullptr where the driver has none.
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder_or_null() {
  static std::once_flag once;
  static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
  std::call_once(once, [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) == cudaSuccess &&
        q == cudaDriverEntryPointSuccess)
      fn = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
    (void)cudaGetLastError();
  });
  return fn;
}

PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  PFN_cuTensorMapEncodeTiled_v12000 fn = tensor_map_encoder_or_null();
  FOCUS_CHECK(fn, "gemm: the CUDA driver has no cuTensorMapEncodeTiled");
  return fn;
}

// A 2-D tensor map over a (rows, cols) row-major matrix, rows ld elements
// apart, read in boxes of (box_rows, 64) with the 128-byte swizzle; reads
// past the matrix return zeros.
void make_tensor_map(CUtensorMap* map, DType dtype, const void* ptr, int64_t rows, int64_t cols, int64_t ld,
                     int box_rows) {
  const cuuint64_t dims[2] = {cuuint64_t(cols), cuuint64_t(rows)};
  const cuuint64_t strides[1] = {cuuint64_t(ld) * 2};  // bytes; a multiple of 16 (ld % 8 == 0)
  const cuuint32_t box[2] = {64, cuuint32_t(box_rows)};
  const cuuint32_t elem_strides[2] = {1, 1};
  const CUresult r = tensor_map_encoder()(
      map, dtype == DType::BF16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2,
      const_cast<void*>(ptr), dims, strides, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
      CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  FOCUS_CHECK(r == CUDA_SUCCESS, "gemm: cuTensorMapEncodeTiled failed (", int(r), ") for a ", rows, " x ", cols,
              " matrix, ld ", ld);
}

template <class T, int BN>
void launch(DType dtype, const GemmParams& g, cudaStream_t stream) {
  constexpr GemmTile t = gemm_tile(wgmma_kernel_id(BN));
  Sm90Params P;
  make_tensor_map(&P.tx, dtype, g.x, g.m, g.k, g.ldx, t.bm);
  make_tensor_map(&P.tw, dtype, g.w, g.n, g.k, g.k, BN);
  make_tensor_map(&P.tw2, dtype, g.w2, g.n, g.k, g.k, BN);
  P.g = g;
  static std::atomic<uint64_t> raised{0};  // bit d: shared-memory limit raised on device d
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  const uint64_t bit = dev < 64 ? uint64_t(1) << dev : 0;
  if (bit == 0 || (raised.load() & bit) == 0) {
    CUDA_CHECK(cudaFuncSetAttribute(gemm_wgmma_kernel<T, BN>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    t.smem_bytes));
    raised.fetch_or(bit);
  }
  const dim3 grid(unsigned(g.tiles_m) * unsigned(g.tiles_n), 1, unsigned(g.splits));
  gemm_wgmma_kernel<T, BN><<<grid, t.threads, t.smem_bytes, stream>>>(P);
  CUDA_CHECK_LAUNCH();
}

template <class T>
void launch_typed(GemmKernel k, DType dtype, const GemmParams& g, cudaStream_t stream) {
  switch (k) {
    case GemmKernel::Wgmma128x128: return launch<T, 128>(dtype, g, stream);
    case GemmKernel::Wgmma128x256: return launch<T, 256>(dtype, g, stream);
    default: FOCUS_CHECK(false, "gemm_sm90_launch: ", gemm_kernel_name(k), " is not a wgmma kernel");
  }
}

}  // namespace

void gemm_sm90_launch(GemmKernel k, DType dtype, const GemmParams& g, cudaStream_t stream) {
  if (dtype == DType::BF16) launch_typed<__nv_bfloat16>(k, dtype, g, stream);
  else launch_typed<__half>(k, dtype, g, stream);
}

bool gemm_sm90_available() {
  static std::mutex mu;
  static std::map<int, bool> cache;
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(dev);
  if (it != cache.end()) return it->second;
  int major = 0, minor = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
  bool ok = false;
  // FOCUSLLM_GEMM_NO_WGMMA=1: keep to the mma.sync kernels (a way around a
  // wgmma problem without rebuilding).
  const char* off = std::getenv("FOCUSLLM_GEMM_NO_WGMMA");
  // The wgmma kernels read their operands through tensor maps: without the
  // driver's encoder, every GEMM stays on mma.sync.
  if (major == 9 && minor == 0 && !(off && *off && std::strcmp(off, "0") != 0) && tensor_map_encoder_or_null()) {
    // Which image of this file the device runs is the loader's choice: ask it.
    // Synchronous, once per device.
    int* d = nullptr;
    int h = 0;
    CUDA_CHECK(cudaMalloc(&d, sizeof(int)));
    gemm_sm90_probe_kernel<<<1, 1>>>(d);
    const cudaError_t launched = cudaGetLastError();  // no image for this device: not available
    const cudaError_t copied = launched == cudaSuccess ? cudaMemcpy(&h, d, sizeof(int), cudaMemcpyDeviceToHost)
                                                       : launched;
    cudaFree(d);
    if (copied != cudaSuccess && copied != cudaErrorNoKernelImageForDevice && copied != cudaErrorInvalidDeviceFunction)
      throw_cuda_error(copied, "gemm_sm90_probe_kernel", __FILE__, __LINE__);
    ok = copied == cudaSuccess && h == 1;
  }
  cache[dev] = ok;
  return ok;
}

}  // namespace focus::cuda
