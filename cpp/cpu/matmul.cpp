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
#include <cstdint>
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
  if (m <= kGemvRows) {
    const MatmulJob job{out, x, m, &w, bias};
    matmul_group(pool, &job, 1, accumulate);
    return;
  }
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

void matmul_group(ThreadPool& pool, const MatmulJob* jobs, int n_jobs, bool accumulate) {
  bool gemv = true;
  for (int j = 0; j < n_jobs; ++j) {
    check_matmul(jobs[j].out, jobs[j].x, jobs[j].m, *jobs[j].w, jobs[j].bias);
    gemv = gemv && jobs[j].m <= kGemvRows;
  }
  if (!gemv) {
    for (int j = 0; j < n_jobs; ++j) matmul(pool, jobs[j].out, jobs[j].x, jobs[j].m, *jobs[j].w, jobs[j].bias, accumulate);
    return;
  }
  const Kernels& K = kernels();
  // The GEMV: every job's output features in blocks of kRows (long sequential
  // weight streams), numbered across the jobs; the pool splits that numbering
  // into contiguous ranges, so a range may end one job and start the next.
  // Each row's sum is the kernel's, whatever range it falls in.
  constexpr int64_t kRows = 16;
  struct Part {
    int64_t first_block, N, Kd;
    const char* w;
    std::vector<float> bias;
  };
  std::vector<Part> parts(static_cast<size_t>(n_jobs));
  int64_t blocks = 0, min_k = INT64_MAX;
  for (int j = 0; j < n_jobs; ++j) {
    const Weight& w = *jobs[j].w;
    Part& p = parts[size_t(j)];
    p.first_block = blocks;
    p.N = w.rows;
    p.Kd = w.cols;
    p.w = static_cast<const char*>(w.data);
    if (jobs[j].bias && !jobs[j].bias->empty()) {
      p.bias.resize(size_t(p.N));
      K.to_f32(p.bias.data(), jobs[j].bias->data, int(jobs[j].bias->dtype), p.N);
    }
    if (jobs[j].m > 0) blocks += (p.N + kRows - 1) / kRows;
    min_k = std::min(min_k, p.Kd);
  }
  if (blocks == 0) return;
  const int64_t grain = std::max<int64_t>(1, kParallelMin / (kRows * min_k));
  // Guided ranges: each takes 1/(2 x threads) of what is left, down to the
  // grain, so the first ranges are long streams and the last ones short: a
  // thread that starts late, or a region's last microseconds, leave little
  // for the others to wait on.
  std::vector<int64_t> bounds{0};
  const int nt = pool.size();
  if (nt > 1 && blocks > grain) {
    for (int64_t left = blocks; left > 0;) {
      const int64_t take = std::min(left, std::max(grain, left / (2 * nt)));
      bounds.push_back(bounds.back() + take);
      left -= take;
    }
  } else {
    bounds.push_back(blocks);
  }
  auto range = [&](int64_t b, int64_t e) {
    int j = 0;
    while (j + 1 < n_jobs && parts[size_t(j) + 1].first_block <= b) ++j;
    for (; j < n_jobs && b < e; ++j) {
      const Part& p = parts[size_t(j)];
      const MatmulJob& job = jobs[j];
      if (job.m == 0) continue;
      const int64_t nb = (p.N + kRows - 1) / kRows;
      const int64_t lo = b - p.first_block, hi = std::min(nb, e - p.first_block);
      if (lo >= hi) continue;
      const int64_t n0 = lo * kRows, n1 = std::min(p.N, hi * kRows);
      const int64_t es = int64_t(dtype_size(job.w->dtype));
      K.gemv(job.out + n0, p.N, job.x, p.Kd, job.m, p.w + n0 * p.Kd * es, int(job.w->dtype), p.Kd, n1 - n0,
             p.bias.empty() ? nullptr : p.bias.data() + n0, accumulate);
      b = p.first_block + hi;
    }
  };
  if (bounds.size() == 2) {
    range(0, blocks);
    return;
  }
  pool.parallel_chunks(int64_t(bounds.size()) - 1,
                       [&](int64_t c) { range(bounds[size_t(c)], bounds[size_t(c) + 1]); });
}

// ---- backward ---------------------------------------------------------------------
//
// The backward's GEMMs have their right operand already (K, N) row-major:
// dX = dY · W (W is (N_out, K_in)) and dW = dYᵀ · X (X is (m, K_in), dYᵀ
// materialised). matmul_nn packs that operand without a transpose
// (gemm_pack_nn) and reuses the forward's microkernel. Work is split over
// NR-wide column panels, and over row blocks as well when there are too few
// panels to keep every thread busy (a panel is then packed once per row block).

void matmul_nn(ThreadPool& pool, float* out, int64_t ldo, const float* a, int64_t lda, int m, const void* b,
               DType b_dtype, int64_t ldb, int K, int N, bool accumulate) {
  FOCUS_CHECK(m >= 0 && K >= 0 && N >= 0, "matmul_nn: negative size (", m, ", ", K, ", ", N, ")");
  if (m == 0 || N == 0) return;
  if (K == 0) {
    if (!accumulate)
      for (int i = 0; i < m; ++i) std::fill(out + int64_t(i) * ldo, out + int64_t(i) * ldo + N, 0.0f);
    return;
  }
  const Kernels& Kn = kernels();
  const int NR = Kn.gemm_nr;
  const int64_t es = int64_t(dtype_size(b_dtype));
  const char* bb = static_cast<const char*>(b);
  const int dt = int(b_dtype);
  const int64_t panels = (int64_t(N) + NR - 1) / NR;
  const int64_t groups = (panels + kPanels - 1) / kPanels;
  // Row blocks: enough (group, block) tasks for every thread, blocks of >= kMC rows.
  const int64_t want = 4 * int64_t(pool.size());
  const int64_t row_blocks =
      groups >= want ? 1 : std::max<int64_t>(1, std::min<int64_t>((m + kMC - 1) / kMC, (want + groups - 1) / groups));
  const int64_t rows_per = (m + row_blocks - 1) / row_blocks;
  const int64_t tasks = groups * row_blocks;
  const int64_t work = int64_t(m) * K * N;
  const int64_t grain = work < 8 * kParallelMin ? tasks : 1;
  pool.parallel_for(tasks, grain, [&](int64_t tb, int64_t te) {
    thread_local std::vector<float> packed;
    packed.resize(size_t(kKC) * NR * kPanels);
    for (int64_t t = tb; t < te; ++t) {
      const int64_t g = t / row_blocks, rb = t % row_blocks;
      const int r0 = int(rb * rows_per), r1 = int(std::min<int64_t>(m, (rb + 1) * rows_per));
      if (r0 >= r1) continue;
      const int64_t p0 = g * kPanels, p1 = std::min(panels, p0 + kPanels);
      for (int64_t k0 = 0; k0 < K; k0 += kKC) {
        const int kc = int(std::min<int64_t>(kKC, K - k0));
        for (int64_t p = p0; p < p1; ++p) {
          const int nn = int(std::min<int64_t>(NR, N - p * NR));
          Kn.gemm_pack_nn(packed.data() + size_t(p - p0) * kc * NR, bb + (k0 * ldb + p * NR) * es, dt, ldb, nn, kc);
        }
        for (int i0 = r0; i0 < r1; i0 += kMC) {
          const int mi = std::min(kMC, r1 - i0);
          for (int64_t p = p0; p < p1; ++p) {
            const int nn = int(std::min<int64_t>(NR, N - p * NR));
            Kn.gemm_panel(out + int64_t(i0) * ldo + p * NR, ldo, a + int64_t(i0) * lda + k0, lda, mi,
                          packed.data() + size_t(p - p0) * kc * NR, kc, nn, nullptr, k0 > 0 || accumulate);
          }
        }
      }
    }
  });
}

namespace {

// out (cols, rows) with row stride ldo = xᵀ, x (rows, cols). Column blocks
// of kB go to the threads; within one, kB x kB tiles stay in L1.
void transpose_ld(ThreadPool& pool, float* out, int64_t ldo, const float* x, int rows, int cols) {
  constexpr int kB = 32;
  const int64_t cb = (cols + kB - 1) / kB;
  pool.parallel_for(cb, std::max<int64_t>(1, kParallelMin / (int64_t(kB) * std::max(rows, 1))),
                    [&](int64_t b, int64_t e) {
                      for (int64_t c0 = b * kB; c0 < std::min<int64_t>(cols, e * kB); c0 += kB) {
                        const int c1 = int(std::min<int64_t>(cols, c0 + kB));
                        for (int r0 = 0; r0 < rows; r0 += kB) {
                          const int r1 = std::min(rows, r0 + kB);
                          for (int c = int(c0); c < c1; ++c) {
                            float* o = out + int64_t(c) * ldo;
                            for (int r = r0; r < r1; ++r) o[r] = x[int64_t(r) * cols + c];
                          }
                        }
                      }
                    });
}

}  // namespace

void transpose(ThreadPool& pool, float* out, const float* x, int rows, int cols) {
  transpose_ld(pool, out, rows, x, rows, cols);
}

void matmul_backward(ThreadPool& pool, float* dx, float* dw, float* dbias, const float* dout, const float* x, int m,
                     const Weight& w) {
  FOCUS_CHECK(w.data && w.rows > 0 && w.cols > 0 && w.rows <= INT32_MAX && w.cols <= INT32_MAX,
              "matmul_backward: weight ", w.name, " is empty or has a bad shape (", w.rows, ", ", w.cols, ")");
  FOCUS_CHECK(m >= 0, "matmul_backward: negative row count ", m);
  if (m == 0) return;
  const int N = int(w.rows), K = int(w.cols);
  // dx (m, K) += dout (m, N) · w (N, K)
  if (dx) matmul_nn(pool, dx, K, dout, N, m, w.data, w.dtype, K, N, K, true);
  // dw (N, K) += doutᵀ (N, m) · x (m, K)
  if (dw) {
    // doutᵀ with its rows padded by 16 floats: a row stride that is a
    // multiple of 4 KiB puts the microkernel's MR row streams in one L1 set.
    const int ld = m + 16;
    thread_local std::vector<float> dt;
    dt.resize(size_t(N) * size_t(ld));
    transpose_ld(pool, dt.data(), ld, dout, m, N);
    matmul_nn(pool, dw, K, dt.data(), ld, N, x, DType::F32, K, m, K, true);
  }
  if (dbias) {
    pool.parallel_for(N, 256, [&](int64_t b, int64_t e) {
      for (int i = 0; i < m; ++i) {
        const float* r = dout + int64_t(i) * N;
        for (int64_t j = b; j < e; ++j) dbias[j] += r[j];
      }
    });
  }
}

}  // namespace focus::cpu
