// Helpers of the CUDA benchmark programs (bench/cpp/*.cu): CUDA-event timing,
// random bf16 data, a read-only bandwidth kernel. Header-only, for .cu files:
// test/cpp/common/*.cpp is compiled as C++ without nvcc. The kernels are
// static (one copy per program, no clash between translation units).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../../../cuda/common.cuh"
#include "common/bench_util.h"

namespace ftest::bench {

// ---- kernels ----------------------------------------------------------------------

// n bf16 values uniform in [-1, 1) (random data, never zeros: zeros run faster
// than real data on these chips).
static __global__ void fill_random_kernel(__nv_bfloat16* p, int64_t n, uint64_t seed) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint64_t x = seed + uint64_t(i) * 0x9e3779b97f4a7c15ull;
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 29;
    p[i] = __float2bfloat16(float(uint32_t(x) >> 8) * (1.0f / 8388608.0f) - 1.0f);
  }
}

// Reads n 16-byte words, four loads in flight per thread; one word out per
// block (sink: gridDim.x words) so the compiler cannot drop the loads.
static __global__ void read_only_kernel(const uint4* __restrict__ p, int64_t n, uint4* __restrict__ sink) {
  uint32_t acc = 0;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (; i + 3 * stride < n; i += 4 * stride) {
    const uint4 a = p[i], b = p[i + stride], c = p[i + 2 * stride], d = p[i + 3 * stride];
    acc ^= a.x ^ b.y ^ c.z ^ d.w ^ a.w ^ b.x ^ c.y ^ d.z;
  }
  for (; i < n; i += stride) acc ^= p[i].x ^ p[i].w;
  if (acc == 0x12345678u) sink[blockIdx.x] = make_uint4(acc, 0, 0, 0);  // practically never: no write traffic
}

// ---- host -------------------------------------------------------------------------

// Fills n bf16 values at p (device memory) on the default stream.
inline void fill_random(void* p, int64_t n, uint64_t seed) {
  fill_random_kernel<<<1024, 256>>>(static_cast<__nv_bfloat16*>(p), n, seed);
  CUDA_CHECK_LAUNCH();
}

// Times work on the default stream with a pair of CUDA events.
class Timer {
 public:
  Timer() {
    CUDA_CHECK(cudaEventCreate(&a_));
    CUDA_CHECK(cudaEventCreate(&b_));
  }
  ~Timer() {
    cudaEventDestroy(a_);
    cudaEventDestroy(b_);
  }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Median milliseconds of `reps` runs of f after `warm` untimed ones. f may
  // take the run's index (0, 1, ..., warm-ups first), to rotate its buffers.
  template <class F>
  double median_ms(F f, int reps, int warm) {
    for (int i = 0; i < warm; ++i) call(f, i);
    std::vector<float> t;
    for (int i = 0; i < reps; ++i) {
      CUDA_CHECK(cudaEventRecord(a_));
      call(f, warm + i);
      CUDA_CHECK(cudaEventRecord(b_));
      CUDA_CHECK(cudaEventSynchronize(b_));
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, a_, b_));
      t.push_back(ms);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  }

 private:
  template <class F>
  static void call(F& f, int i) {
    if constexpr (std::is_invocable_v<F&, int>) f(i);
    else f();
  }
  cudaEvent_t a_, b_;
};

}  // namespace ftest::bench
