// KV cache stores on the GPU; the CPU version is kv_store in
// cpp/cpu/elementwise.cpp.
//
// Each token row has its own destination (KvDst, a device table written by
// the runner): a cache slot position, scratch, or a candidate slot. The
// destination's dtype is read on the device, so every row converts to
// whatever its destination holds. Note that the attention kernels read keys
// and values in the activation type only, so on CUDA every KV pool and
// candidate set must be of act_dtype(); the N-API binding refuses others and
// CudaBackend::attention checks the segment table on the host.
#include <cstdint>
#include <type_traits>

#include "common.cuh"
#include "ops.cuh"

namespace focus::cuda {

namespace {

// ---- kernels -------------------------------------------------------------------

template <class S, class D>
__device__ void store_row(D* __restrict__ dst, const S* __restrict__ src, int kv_dim) {
  if constexpr (std::is_same_v<S, D>) {
    // The common case (pool of act_dtype): 16-byte copies when aligned. The
    // destination address depends on the row, so alignment is checked here.
    constexpr int kVec = 16 / sizeof(S);
    if (kv_dim % kVec == 0 && (reinterpret_cast<uintptr_t>(dst) & 15u) == 0 &&
        (reinterpret_cast<uintptr_t>(src) & 15u) == 0) {
      const uint4* s4 = reinterpret_cast<const uint4*>(src);
      uint4* d4 = reinterpret_cast<uint4*>(dst);
      for (int j = threadIdx.x; j < kv_dim / kVec; j += blockDim.x) d4[j] = s4[j];
      return;
    }
  }
  for (int j = threadIdx.x; j < kv_dim; j += blockDim.x) dst[j] = from_float<D>(to_float(src[j]));
}

template <class S>
__device__ void store_any(void* dst, DType t, const S* src, int kv_dim) {
  switch (t) {
    case DType::F32: store_row(static_cast<float*>(dst), src, kv_dim); break;
    case DType::F16: store_row(static_cast<__half*>(dst), src, kv_dim); break;
    default: store_row(static_cast<__nv_bfloat16*>(dst), src, kv_dim); break;
  }
}

// One block per token row; k, v (n, kv_dim) S.
template <class S>
__global__ void kv_store_kernel(const S* __restrict__ k, const S* __restrict__ v, const KvDst* __restrict__ dst,
                                int kv_dim, int layer) {
  const int64_t r = blockIdx.x;
  const KvDst d = dst[r];
  const DType t = DType(d.dtype);
  // Byte offset of this layer: layer_stride is in elements of the destination.
  const int64_t off = int64_t(layer) * d.layer_stride * (t == DType::F32 ? 4 : 2);
  store_any(static_cast<char*>(d.k) + off, t, k + r * kv_dim, kv_dim);
  store_any(static_cast<char*>(d.v) + off, t, v + r * kv_dim, kv_dim);
}

}  // namespace

// ---- launchers -----------------------------------------------------------------

void kv_store(const void* k, const void* v, const KvDst* dst, int n, int kv_dim, int layer, DType dtype,
              cudaStream_t stream) {
  FOCUS_CHECK(dtype == DType::BF16 || dtype == DType::F16, "CUDA kv_store: activations must be BF16 or F16, got ",
              dtype_name(dtype));
  FOCUS_CHECK(kv_dim > 0 && layer >= 0, "CUDA kv_store: bad kv_dim ", kv_dim, " or layer ", layer);
  if (n <= 0) return;
  // kv_dim is 128..1024 (GQA) or up to 8192: 128 threads cover a row in one
  // 16-byte copy per thread for the common widths.
  const int threads = kv_dim >= 1024 ? 128 : kv_dim >= 256 ? 64 : 32;
  if (dtype == DType::BF16)
    kv_store_kernel<__nv_bfloat16><<<n, threads, 0, stream>>>(static_cast<const __nv_bfloat16*>(k),
                                                              static_cast<const __nv_bfloat16*>(v), dst, kv_dim,
                                                              layer);
  else
    kv_store_kernel<__half><<<n, threads, 0, stream>>>(static_cast<const __half*>(k), static_cast<const __half*>(v),
                                                       dst, kv_dim, layer);
  CUDA_CHECK_LAUNCH();
}

}  // namespace focus::cuda
