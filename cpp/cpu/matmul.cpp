// CPU matmul: out (m, N) = x (m, K) · wᵀ, w (N, K) in F32/F16/BF16.
// Work is split over output features; each worker converts a panel of weight
// rows to float32 once and reuses it for every input row.
#include <algorithm>
#include <vector>

#include "ops.h"

namespace focus::cpu {

namespace {

// 16 independent lanes: the compiler turns the inner loop into vector FMAs
// without reassociating a single sum.
inline float dot(const float* a, const float* b, int K) {
  float acc[16] = {0};
  int k = 0;
  for (; k + 16 <= K; k += 16)
    for (int j = 0; j < 16; ++j) acc[j] += a[k + j] * b[k + j];
  float s = 0;
  for (; k < K; ++k) s += a[k] * b[k];
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

}  // namespace

void matmul(ThreadPool& pool, float* out, const float* x, int m, const Weight& w, const Weight* bias, bool accumulate) {
  const int N = int(w.rows), K = int(w.cols);
  const size_t es = dtype_size(w.dtype);
  std::vector<float> bf;
  if (bias && !bias->empty()) {
    bf.resize(size_t(N));
    to_f32(bf.data(), bias->data, bias->dtype, N);
  }
  constexpr int kPanel = 8;  // weight rows converted together
  pool.parallel_for((N + kPanel - 1) / kPanel, 1, [&](int64_t pb, int64_t pe) {
    std::vector<float> panel(size_t(kPanel) * K);
    for (int64_t p = pb; p < pe; ++p) {
      const int n0 = int(p) * kPanel, nn = std::min(kPanel, N - n0);
      for (int j = 0; j < nn; ++j)
        to_f32(panel.data() + size_t(j) * K, static_cast<const char*>(w.data) + int64_t(n0 + j) * K * int64_t(es),
               w.dtype, K);
      for (int r = 0; r < m; ++r) {
        const float* xr = x + int64_t(r) * K;
        float* o = out + int64_t(r) * N + n0;
        for (int j = 0; j < nn; ++j) {
          float v = dot(xr, panel.data() + size_t(j) * K, K);
          if (!bf.empty()) v += bf[size_t(n0 + j)];
          o[j] = accumulate ? o[j] + v : v;
        }
      }
    }
  });
}

}  // namespace focus::cpu
