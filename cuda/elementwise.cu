// Element-wise CUDA ops: embedding gather (with conversion), row gather,
// SwiGLU, dtype conversion. The CPU versions are in cpp/cpu/elementwise.cpp.
//
// All of these are memory-bound: the fast paths move 16 bytes per thread
// (8 half-precision elements) when sizes and addresses allow, and fall back
// to one element per thread otherwise.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "common.cuh"
#include "ops.cuh"

namespace focus::cuda {

namespace {

// ---- kernels -------------------------------------------------------------------

constexpr int kThreads = 256;

__device__ __forceinline__ bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// One block per output row. out (n, cols) D, src (src_rows, cols) S.
template <class S, class D>
__global__ void gather_kernel(D* __restrict__ out, const S* __restrict__ src, int64_t src_rows, int64_t cols,
                              const int32_t* __restrict__ ids) {
  const int64_t r = blockIdx.x;
  const int64_t id = ids[r];
  D* o = out + r * cols;
  if (id < 0 || id >= src_rows) {
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) o[j] = from_float<D>(NAN);
    return;
  }
  const S* s = src + id * cols;
  if constexpr (std::is_same_v<S, D>) {
    // Same type: a plain copy, 16 bytes at a time when rows allow it.
    constexpr int kVec = 16 / sizeof(S);
    if (cols % kVec == 0 && aligned16(o) && aligned16(s)) {
      const uint4* s4 = reinterpret_cast<const uint4*>(s);
      uint4* o4 = reinterpret_cast<uint4*>(o);
      for (int64_t j = threadIdx.x; j < cols / kVec; j += blockDim.x) o4[j] = s4[j];
      return;
    }
  }
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) o[j] = from_float<D>(to_float(s[j]));
}

template <class T>
__device__ __forceinline__ float silu_mul(float g, float u) {
  // expf, not __expf: the CPU reference uses std::exp; the op is memory-bound.
  return g / (1.0f + expf(-g)) * u;
}

// out (n) = silu(gate) * up, grid-stride. With kVec = 8 each step handles 8
// elements through 16-byte loads (n % 8 == 0 and aligned pointers).
template <class T, int kVec>
__global__ void swiglu_kernel(T* out, const T* gate, const T* up, int64_t n) {
  const int64_t steps = n / kVec;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < steps; i += stride) {
    if constexpr (kVec == 1) {
      out[i] = from_float<T>(silu_mul<T>(to_float(gate[i]), to_float(up[i])));
    } else {
      // Both loads are issued before any use, and before the store: out may
      // alias gate, which is fine since each thread reads its own 16 bytes first.
      uint4 g4 = reinterpret_cast<const uint4*>(gate)[i];
      const uint4 u4 = reinterpret_cast<const uint4*>(up)[i];
      T* g = reinterpret_cast<T*>(&g4);
      const T* u = reinterpret_cast<const T*>(&u4);
#pragma unroll
      for (int j = 0; j < kVec; ++j) g[j] = from_float<T>(silu_mul<T>(to_float(g[j]), to_float(u[j])));
      reinterpret_cast<uint4*>(out)[i] = g4;
    }
  }
}

// dst (n) D = src (n) S, grid-stride, one element per thread-step. Used at
// weight-load time only, where the PCIe copy is the bottleneck.
template <class S, class D>
__global__ void convert_kernel(D* __restrict__ dst, const S* __restrict__ src, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    dst[i] = from_float<D>(to_float(src[i]));
}

// ---- launchers -----------------------------------------------------------------

bool host_aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Blocks of a grid-stride launch over `work` items: enough to fill any GPU
// many times over, few enough to keep the grid small.
int grid_for(int64_t work) { return int(std::min<int64_t>(std::max<int64_t>(ceil_div(work, kThreads), 1), 1 << 16)); }

template <class D, class S>
void launch_gather(void* out, const void* src, int64_t src_rows, int64_t cols, const int32_t* ids, int n,
                   cudaStream_t stream) {
  // Few threads for narrow rows: a block per row must not idle 200 threads.
  const int threads = cols >= 1024 ? kThreads : cols >= 256 ? 128 : 32;
  gather_kernel<S, D><<<n, threads, 0, stream>>>(static_cast<D*>(out), static_cast<const S*>(src), src_rows, cols,
                                                 ids);
  CUDA_CHECK_LAUNCH();
}

template <class D>
void gather_from(void* out, const void* src, DType src_dtype, int64_t src_rows, int64_t cols, const int32_t* ids,
                 int n, cudaStream_t stream) {
  switch (src_dtype) {
    case DType::F32: return launch_gather<D, float>(out, src, src_rows, cols, ids, n, stream);
    case DType::F16: return launch_gather<D, __half>(out, src, src_rows, cols, ids, n, stream);
    case DType::BF16: return launch_gather<D, __nv_bfloat16>(out, src, src_rows, cols, ids, n, stream);
  }
}

void check_act(DType t, const char* op) {
  FOCUS_CHECK(t == DType::BF16 || t == DType::F16, "CUDA ", op, ": activations must be BF16 or F16, got ",
              dtype_name(t));
}

template <class S, class D>
void launch_convert(void* dst, const void* src, int64_t n, cudaStream_t stream) {
  convert_kernel<S, D><<<grid_for(n), kThreads, 0, stream>>>(static_cast<D*>(dst), static_cast<const S*>(src), n);
  CUDA_CHECK_LAUNCH();
}

template <class S>
void convert_from(void* dst, DType dst_dtype, const void* src, int64_t n, cudaStream_t stream) {
  switch (dst_dtype) {
    case DType::F32: return launch_convert<S, float>(dst, src, n, stream);
    case DType::F16: return launch_convert<S, __half>(dst, src, n, stream);
    case DType::BF16: return launch_convert<S, __nv_bfloat16>(dst, src, n, stream);
  }
}

}  // namespace

void embedding(void* out, DType out_dtype, const void* table, DType table_dtype, int64_t table_rows, int64_t cols,
               const int32_t* ids, int n, cudaStream_t stream) {
  check_act(out_dtype, "embedding");
  if (n <= 0 || cols <= 0) return;
  if (out_dtype == DType::BF16)
    gather_from<__nv_bfloat16>(out, table, table_dtype, table_rows, cols, ids, n, stream);
  else
    gather_from<__half>(out, table, table_dtype, table_rows, cols, ids, n, stream);
}

void gather_rows(void* out, const void* x, const int32_t* rows, int n, int dim, DType dtype, cudaStream_t stream) {
  check_act(dtype, "gather_rows");
  if (n <= 0 || dim <= 0) return;
  // The runner's row indices are its own; no bound to check against.
  constexpr int64_t kAnyRow = INT64_MAX;
  if (dtype == DType::BF16)
    launch_gather<__nv_bfloat16, __nv_bfloat16>(out, x, kAnyRow, dim, rows, n, stream);
  else
    launch_gather<__half, __half>(out, x, kAnyRow, dim, rows, n, stream);
}

void swiglu(void* out, const void* gate, const void* up, int64_t n, DType dtype, cudaStream_t stream) {
  check_act(dtype, "swiglu");
  if (n <= 0) return;
  const bool vec = n % 8 == 0 && host_aligned16(out) && host_aligned16(gate) && host_aligned16(up);
  const int64_t work = vec ? n / 8 : n;
  auto go = [&](auto tag) {
    using T = decltype(tag);
    T* o = static_cast<T*>(out);
    const T* g = static_cast<const T*>(gate);
    const T* u = static_cast<const T*>(up);
    if (vec)
      swiglu_kernel<T, 8><<<grid_for(work), kThreads, 0, stream>>>(o, g, u, n);
    else
      swiglu_kernel<T, 1><<<grid_for(work), kThreads, 0, stream>>>(o, g, u, n);
    CUDA_CHECK_LAUNCH();
  };
  if (dtype == DType::BF16)
    go(__nv_bfloat16{});
  else
    go(__half{});
}

void convert(void* dst, DType dst_dtype, const void* src, DType src_dtype, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  switch (src_dtype) {
    case DType::F32: return convert_from<float>(dst, dst_dtype, src, n, stream);
    case DType::F16: return convert_from<__half>(dst, dst_dtype, src, n, stream);
    case DType::BF16: return convert_from<__nv_bfloat16>(dst, dst_dtype, src, n, stream);
  }
}

}  // namespace focus::cuda
