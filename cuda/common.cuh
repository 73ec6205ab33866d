// Shared CUDA helpers: error checks that throw (never exit), 16-bit type
// traits, small device utilities.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"
#include "core/error.h"

namespace focus::cuda {

// Throws focus::Error with file and line; OutOfMemory for allocation failures.
[[noreturn]] void throw_cuda_error(cudaError_t e, const char* expr, const char* file, int line);

#define CUDA_CHECK(expr)                                                                   \
  do {                                                                                     \
    cudaError_t err_ = (expr);                                                             \
    if (err_ != cudaSuccess) ::focus::cuda::throw_cuda_error(err_, #expr, __FILE__, __LINE__); \
  } while (0)

// Checks the last kernel launch.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

template <class T>
struct TypeOf;
template <>
struct TypeOf<__nv_bfloat16> {
  static constexpr DType value = DType::BF16;
};
template <>
struct TypeOf<__half> {
  static constexpr DType value = DType::F16;
};

__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(float x) { return x; }

template <class T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16(x); }
template <>
__device__ __forceinline__ __half from_float<__half>(float x) { return __float2half(x); }
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }

inline int ceil_div(int64_t a, int64_t b) { return int((a + b - 1) / b); }

}  // namespace focus::cuda
