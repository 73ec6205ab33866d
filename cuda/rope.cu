// Rotary position embedding on the GPU; the CPU versions are rope_table and
// rope in cpp/cpu/elementwise.cpp.
//
// The table holds cos and sin per (row, frequency) once per micro-batch, so
// the double-precision angle work is done once and shared by the q and k
// rotations of every layer. Angles must be computed in double: at position
// 400K with inv_freq ~1 the angle is ~4e5 rad, where a float angle carries an
// absolute error of ~0.03 rad, far over the 16-bit activations' resolution.
#include <cstdint>

#include "common.cuh"
#include "ops.cuh"

namespace focus::cuda {

namespace {

// ---- kernels -------------------------------------------------------------------

constexpr int kThreads = 256;

// table (n, head_dim) float; one thread per (row, frequency).
__global__ void rope_table_kernel(float* __restrict__ table, const int32_t* __restrict__ pos, int n,
                                  const double* __restrict__ inv_freq, int half) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= int64_t(n) * half) return;
  const int64_t r = i / half;
  const int f = int(i % half);
  const double a = double(pos[r]) * inv_freq[f];
  double s, c;
  sincos(a, &s, &c);  // double: full range reduction, as std::cos/std::sin on the CPU
  float* t = table + r * (2 * half);
  t[f] = float(c);
  t[half + f] = float(s);
}

// x (n, n_heads * 2 * half) T rotated in place; one thread per (row, head,
// pair). Consecutive threads touch consecutive elements of both halves of a
// head, so the accesses coalesce.
template <class T>
__global__ void rope_kernel(T* __restrict__ x, int64_t n_pairs, int n_heads, int half,
                            const float* __restrict__ table) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n_pairs) return;
  const int64_t rh = i / half;  // row * n_heads + head
  const int p = int(i % half);
  const int64_t r = rh / n_heads;
  const float* cs = table + r * (2 * half);
  const float c = cs[p], s = cs[half + p];
  T* v = x + rh * (2 * half);
  const float a = to_float(v[p]), b = to_float(v[p + half]);
  v[p] = from_float<T>(a * c - b * s);
  v[p + half] = from_float<T>(b * c + a * s);
}

}  // namespace

// ---- launchers -----------------------------------------------------------------

void rope_table(float* table, const int32_t* pos, int n, const double* inv_freq, int head_dim, cudaStream_t stream) {
  FOCUS_CHECK(head_dim > 0 && head_dim % 2 == 0, "CUDA rope_table: head_dim must be even, got ", head_dim);
  FOCUS_CHECK(inv_freq != nullptr, "CUDA rope_table: no rotary frequencies (set_rope was not called)");
  if (n <= 0) return;
  const int half = head_dim / 2;
  const int64_t work = int64_t(n) * half;
  rope_table_kernel<<<ceil_div(work, kThreads), kThreads, 0, stream>>>(table, pos, n, inv_freq, half);
  CUDA_CHECK_LAUNCH();
}

void rope(void* x, int n, int n_heads, int head_dim, const float* table, DType dtype, cudaStream_t stream) {
  FOCUS_CHECK(head_dim > 0 && head_dim % 2 == 0, "CUDA rope: head_dim must be even, got ", head_dim);
  FOCUS_CHECK(dtype == DType::BF16 || dtype == DType::F16, "CUDA rope: activations must be BF16 or F16, got ",
              dtype_name(dtype));
  if (n <= 0 || n_heads <= 0) return;
  const int half = head_dim / 2;
  const int64_t pairs = int64_t(n) * n_heads * half;
  const int blocks = ceil_div(pairs, kThreads);
  if (dtype == DType::BF16)
    rope_kernel<__nv_bfloat16><<<blocks, kThreads, 0, stream>>>(static_cast<__nv_bfloat16*>(x), pairs, n_heads,
                                                                 half, table);
  else
    rope_kernel<__half><<<blocks, kThreads, 0, stream>>>(static_cast<__half*>(x), pairs, n_heads, half, table);
  CUDA_CHECK_LAUNCH();
}

}  // namespace focus::cuda
