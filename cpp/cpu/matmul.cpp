// CPU matmul: out (m, N) = x (m, K) · wᵀ, w (N, K) in F32/F16/BF16, read in
// place from the memory map.
//
// Two regimes (kernels: kernels_gemm.inl):
// - m <= kGemvRows (decode): a streaming GEMV; each thread takes a contiguous
//   range of output features and reads its weight rows exactly once.
// - larger m (prefill): a packed GEMM. Each thread owns a contiguous range of
//   NR-wide column panels; for each block of kKC input features it packs
//   kPanels panels to float32 (kKC * NR * kPanels floats, sized for L2) and
//   runs all rows of x against them, kMC rows at a time so the slice of x
//   being reused stays in L2 as well. Every weight element is converted once.
#include <algorithm>
#include <vector>

#include "../core/error.h"
#include "ops.h"

namespace focus::cpu {

namespace {

constexpr int kGemvRows = 8;  // the GEMV kernel handles up to 8 rows of x (bench: faster than packing up to 8)
constexpr int kKC = 256;      // input features per packed block
constexpr int kPanels = 8;    // panels packed together (256 columns at NR = 32)
constexpr int kMC = 96;       // rows of x per pass over the packed panels

// Weights of at least this many elements are split across threads; below it
// the wake-up of the pool costs more than the work.
constexpr int64_t kParallelMin = 1 << 15;

void check_matmul(const float* out, const float* x, int m, const Weight& w, const Weight* bias) {
  FOCUS_CHECK(m >= 0, "matmul: negative row count ", m);
  FOCUS_CHECK(w.data && w.rows > 0 && w.cols > 0 && w.rows <= INT32_MAX && w.cols <= INT32_MAX,
              "matmul: weight ", w.name, " is empty or has a bad shape (", w.rows, ", ", w.cols, ")");
  FOCUS_CHECK(m == 0 || (out && x), "matmul: null input or output for weight ", w.name);
  if (bias && !bias->empty())
    FOCUS_CHECK(bias->rows * bias->cols == w.rows, "matmul: bias ", bias->name, " has ", bias->rows * bias->cols,
                " elements, weight ", w.name, " has ", w.rows, " rows");
}

}  // namespace

void matmul(ThreadPool& pool, float* out, const float* x, int m, const Weight& w, const Weight* bias, bool accumulate) {
  check_matmul(out, x, m, w, bias);
  if (m == 0) return;
  const Kernels& K = kernels();
  const int64_t N = w.rows, Kd = w.cols;
  const int64_t es = int64_t(dtype_size(w.dtype));
  const char* wb = static_cast<const char*>(w.data);
  const int dt = int(w.dtype);

  std::vector<float> bias_f;
  if (bias && !bias->empty()) {
    bias_f.resize(size_t(N));
    K.to_f32(bias_f.data(), bias->data, int(bias->dtype), N);
  }
  const float* bf = bias_f.empty() ? nullptr : bias_f.data();

  if (m <= kGemvRows) {
    // Contiguous ranges of 16 output features: long sequential weight streams.
    constexpr int64_t kRows = 16;
    const int64_t blocks = (N + kRows - 1) / kRows;
    const int64_t grain = std::max<int64_t>(1, kParallelMin / (kRows * Kd));
    pool.parallel_for(blocks, grain, [&](int64_t b, int64_t e) {
      const int64_t n0 = b * kRows, n1 = std::min(N, e * kRows);
      K.gemv(out + n0, N, x, Kd, m, wb + n0 * Kd * es, dt, Kd, n1 - n0, bf ? bf + n0 : nullptr, accumulate);
    });
    return;
  }

  const int NR = K.gemm_nr;
  const int64_t panels = (N + NR - 1) / NR;
  const int64_t grain = std::max<int64_t>(1, 8 * kParallelMin / (int64_t(NR) * Kd * m));  // >= 256K FMAs a part
  pool.parallel_for(panels, grain, [&](int64_t pb, int64_t pe) {
    thread_local std::vector<float> packed;
    packed.resize(size_t(kKC) * NR * kPanels);
    for (int64_t p0 = pb; p0 < pe; p0 += kPanels) {
      const int64_t p1 = std::min(pe, p0 + kPanels);
      for (int64_t k0 = 0; k0 < Kd; k0 += kKC) {
        const int kc = int(std::min<int64_t>(kKC, Kd - k0));
        for (int64_t p = p0; p < p1; ++p) {
          const int nn = int(std::min<int64_t>(NR, N - p * NR));
          K.gemm_pack(packed.data() + size_t(p - p0) * kc * NR, wb + (p * NR * Kd + k0) * es, dt, Kd, nn, kc);
        }
        for (int i0 = 0; i0 < m; i0 += kMC) {
          const int mi = std::min(kMC, m - i0);
          for (int64_t p = p0; p < p1; ++p) {
            const int nn = int(std::min<int64_t>(NR, N - p * NR));
            K.gemm_panel(out + int64_t(i0) * N + p * NR, N, x + int64_t(i0) * Kd + k0, Kd, mi,
                         packed.data() + size_t(p - p0) * kc * NR, kc, nn, k0 == 0 && bf ? bf + p * NR : nullptr,
                         k0 > 0 || accumulate);
          }
        }
      }
    }
  });
}

}  // namespace focus::cpu
