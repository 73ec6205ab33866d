// Matmul kernels (included by kernels_impl.h inside the level's namespace).
//
// Prefill: out (m, N) = x (m, K) · wᵀ as a packed GEMM. The caller packs a
// panel of NR weight rows (kc of their columns) once, transposed to (kc, NR)
// float32, and every MR-row tile of x runs against it: per k, NR/W vector
// loads of the panel and MR broadcasts of x feed MR*NR/W FMAs into
// accumulators that stay in registers.
//
// Decode: with m <= 8 rows each weight element is used at most eight times, so
// packing would cost more than it saves. The GEMV streams weight rows once,
// converting 16-bit values on the fly, and keeps R*m accumulators.

#if FOCUS_KERNEL_LEVEL == 2
constexpr int kMR = 8, kNR = 32;  // 16 zmm accumulators, 2 panel loads + 8 broadcasts per 16 FMAs
#elif FOCUS_KERNEL_LEVEL == 1
constexpr int kMR = 6, kNR = 16;  // 12 ymm accumulators of 16 registers
#else
constexpr int kMR = 4, kNR = 8;   // 8 accumulators: fits SSE2's 16 registers
#endif
constexpr int kNV = kNR / W;  // vectors per panel row

// ---- conversion of one row segment ---------------------------------------------

template <int T>
static void row_to_f32_t(float* out, const void* src, int64_t n) {
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    vstore(out + i, vload_as<T>(src, i));
    vstore(out + i + W, vload_as<T>(src, i + W));
  }
  for (; i + W <= n; i += W) vstore(out + i, vload_as<T>(src, i));
  if (i < n) vstore_n(out + i, vload_as_n<T>(src, i, int(n - i)), int(n - i));
}

static void row_to_f32(float* out, const void* src, int dtype, int64_t n) {
  switch (dtype) {
    case kF32: std::memcpy(out, src, size_t(n) * 4); break;
    case kF16: row_to_f32_t<kF16>(out, src, n); break;
    default: row_to_f32_t<kBF16>(out, src, n); break;
  }
}

// ---- packing --------------------------------------------------------------------

// panel (kc, kNR) = transpose of w (nn rows, kc columns), zero columns nn..kNR.
// Rows are converted with vector loads first; the transpose then moves float32
// values through a small buffer that stays in L1.
static void gemm_pack(float* panel, const void* w, int dtype, int64_t ldw, int nn, int kc) {
  constexpr int kChunk = 256;  // columns converted per pass: kNR * kChunk floats of buffer
  alignas(64) float rows[kNR * kChunk];
  const size_t es = dtype == kF32 ? 4 : 2;
  for (int k0 = 0; k0 < kc; k0 += kChunk) {
    const int kk = kc - k0 < kChunk ? kc - k0 : kChunk;
    for (int j = 0; j < nn; ++j)
      row_to_f32(rows + j * kChunk, static_cast<const char*>(w) + (int64_t(j) * ldw + k0) * int64_t(es), dtype, kk);
    for (int j = nn; j < kNR; ++j) std::memset(rows + j * kChunk, 0, sizeof(float) * size_t(kk));
    float* dst = panel + int64_t(k0) * kNR;
    // Transpose in strips of kNR columns of `dst` at a time; the compiler
    // keeps the strip in registers for fixed kNR.
    for (int k = 0; k < kk; ++k) {
#pragma GCC unroll 32
      for (int j = 0; j < kNR; ++j) dst[k * kNR + j] = rows[j * kChunk + k];
    }
  }
}

// panel (kc, kNR) = b (kc rows, nn <= kNR columns, row stride ldb, any dtype),
// columns nn..kNR zero: the packing of the "NN" GEMM of the backward (dX =
// dY · W, dW = dYᵀ · X), whose right operand is already (K, N) row-major, so
// no transpose is needed, only the conversion.
static void gemm_pack_nn(float* panel, const void* b, int dtype, int64_t ldb, int nn, int kc) {
  const size_t es = dtype == kF32 ? 4 : 2;
  for (int k = 0; k < kc; ++k) {
    float* dst = panel + int64_t(k) * kNR;
    row_to_f32(dst, static_cast<const char*>(b) + int64_t(k) * ldb * int64_t(es), dtype, nn);
    for (int j = nn; j < kNR; ++j) dst[j] = 0.0f;
  }
}

// ---- microkernel --------------------------------------------------------------

// c (M, nn) (+)= a (M, kc) · b (kc, kNR), nn <= kNR.
template <int M>
static void gemm_micro(float* c, int64_t ldc, const float* a, int64_t lda, const float* b, int kc, int nn,
                       const float* bias, bool load_c) {
  vf acc[M][kNV];
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) acc[i][v] = vzero();
  for (int k = 0; k < kc; ++k) {
    vf bv[kNV];
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) bv[v] = vload(b + int64_t(k) * kNR + v * W);
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
      const vf av = vset1(a[i * lda + k]);
#pragma GCC unroll 4
      for (int v = 0; v < kNV; ++v) acc[i][v] = vfma(av, bv[v], acc[i][v]);
    }
  }
  for (int v = 0; v < kNV; ++v) {
    const int n = nn - v * W;
    if (n <= 0) break;
    const vf bias_v = !bias ? vzero() : n >= W ? vload(bias + v * W) : vload_n(bias + v * W, n);
    for (int i = 0; i < M; ++i) {
      float* cp = c + i * ldc + v * W;
      vf r = vadd(acc[i][v], bias_v);
      if (n >= W) {
        if (load_c) r = vadd(vload(cp), r);
        vstore(cp, r);
      } else {
        if (load_c) r = vadd(vload_n(cp, n), r);
        vstore_n(cp, r, n);
      }
    }
  }
}

template <int M>
static void gemm_rows(float* c, int64_t ldc, const float* a, int64_t lda, int m, const float* panel, int kc, int nn,
                      const float* bias, bool load_c) {
  int i = 0;
  for (; i + M <= m; i += M)
    gemm_micro<M>(c + int64_t(i) * ldc, ldc, a + int64_t(i) * lda, lda, panel, kc, nn, bias, load_c);
  if constexpr (M > 1)
    if (i < m) gemm_rows<M - 1>(c + int64_t(i) * ldc, ldc, a + int64_t(i) * lda, lda, m - i, panel, kc, nn, bias, load_c);
}

static void gemm_panel(float* c, int64_t ldc, const float* a, int64_t lda, int m, const float* panel, int kc, int nn,
                       const float* bias, bool load_c) {
  gemm_rows<kMR>(c, ldc, a, lda, m, panel, kc, nn, bias, load_c);
}

// ---- GEMV (m <= 8) ----------------------------------------------------------------

// out (M, n) (+)= x (M, K) · wᵀ, w (n, K) of dtype T. R weight rows at a time:
// R*M independent FMA chains hide the FMA latency, and R streams keep the
// hardware prefetchers busy.
// R: weight rows per block, R*M accumulators within the register file (32
// vector registers on AVX-512, 16 on AVX2/SSE), at least 4 rows for m = 1 so
// that enough FMA chains and memory streams are in flight.
template <int M>
constexpr int gemv_rows() {
  constexpr int acc = W == 16 ? 16 : 8;
  return M == 1 || acc / M >= 4 ? 4 : acc / M >= 1 ? acc / M : 1;
}

template <int T, int M>
static void gemv_t(float* out, int64_t ldo, const float* x, int64_t ldx, const void* w, int64_t K, int64_t n,
                   const float* bias, bool accumulate) {
  constexpr int R = gemv_rows<M>();
  constexpr int64_t es = T == kF32 ? 4 : 2;
  const char* wb = static_cast<const char*>(w);
  for (int64_t r = 0; r < n; r += R) {
    const int rr = n - r < R ? int(n - r) : R;
    const char* wr[R];
    for (int j = 0; j < R; ++j) wr[j] = wb + (r + (j < rr ? j : rr - 1)) * K * es;  // tail: repeat the last row
    vf acc[R][M];
#pragma GCC unroll 8
    for (int j = 0; j < R; ++j)
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i) acc[j][i] = vzero();
    // The next block of rows follows this one in memory (R*K*es bytes on):
    // prefetch it at the same offset. Hardware prefetchers stop at 4 KiB pages
    // and a 16-bit row of 1-2K features is shorter than that.
    const int64_t ahead = int64_t(R) * K * es;
    int64_t k = 0;
    for (; k + W <= K; k += W) {
#pragma GCC unroll 8
      for (int j = 0; j < R; ++j) __builtin_prefetch(wr[j] + k * es + ahead, 0, 0);
      vf xv[M];
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i) xv[i] = vload(x + i * ldx + k);
#pragma GCC unroll 8
      for (int j = 0; j < R; ++j) {
        const vf wv = vload_as<T>(wr[j], k);
#pragma GCC unroll 8
        for (int i = 0; i < M; ++i) acc[j][i] = vfma(wv, xv[i], acc[j][i]);
      }
    }
    if (k < K) {
      const int t = int(K - k);
      vf xv[M];
      for (int i = 0; i < M; ++i) xv[i] = vload_n(x + i * ldx + k, t);
      for (int j = 0; j < R; ++j) {
        const vf wv = vload_as_n<T>(wr[j], k, t);
        for (int i = 0; i < M; ++i) acc[j][i] = vfma(wv, xv[i], acc[j][i]);
      }
    }
    for (int j = 0; j < rr; ++j)
      for (int i = 0; i < M; ++i) {
        float s = vhsum(acc[j][i]);
        if (bias) s += bias[r + j];
        float* o = out + i * ldo + r + j;
        *o = accumulate ? *o + s : s;
      }
  }
}

// m = 1 (decode, 16-bit weights): one weight row at a time, four accumulators along k, so the
// whole matrix is read as one sequential stream (the prefetcher's best case)
// with a software prefetch kAhead bytes on to cross 4 KiB pages early
// (measured: 1-2 KiB ahead 37, 4-8 KiB ahead 42 GB/s on one thread).
template <int T>
static void gemv_1(float* out, const float* x, const void* w, int64_t K, int64_t n, const float* bias,
                   bool accumulate) {
  constexpr int64_t es = T == kF32 ? 4 : 2, kAhead = 4096;
  const char* wb = static_cast<const char*>(w);
  for (int64_t r = 0; r < n; ++r) {
    const char* wr = wb + r * K * es;
    vf a0 = vzero(), a1 = vzero(), a2 = vzero(), a3 = vzero();
    int64_t k = 0;
    for (; k + 4 * W <= K; k += 4 * W) {
#pragma GCC unroll 4
      for (int64_t b = 0; b < 4 * W * es; b += 64) __builtin_prefetch(wr + k * es + kAhead + b, 0, 0);
      a0 = vfma(vload_as<T>(wr, k), vload(x + k), a0);
      a1 = vfma(vload_as<T>(wr, k + W), vload(x + k + W), a1);
      a2 = vfma(vload_as<T>(wr, k + 2 * W), vload(x + k + 2 * W), a2);
      a3 = vfma(vload_as<T>(wr, k + 3 * W), vload(x + k + 3 * W), a3);
    }
    for (; k + W <= K; k += W) a0 = vfma(vload_as<T>(wr, k), vload(x + k), a0);
    if (k < K) a1 = vfma(vload_as_n<T>(wr, k, int(K - k)), vload_n(x + k, int(K - k)), a1);
    float s = vhsum(vadd(vadd(a0, a1), vadd(a2, a3)));
    if (bias) s += bias[r];
    out[r] = accumulate ? out[r] + s : s;
  }
}

template <int T>
static void gemv_m(float* out, int64_t ldo, const float* x, int64_t ldx, int m, const void* w, int64_t K, int64_t n,
                   const float* bias, bool accumulate) {
  switch (m) {
    case 1:
      // F32 rows are twice as long in bytes: four row streams at once read
      // them faster than one (bench_cpu_matmul, DRAM-resident weights: 26-31
      // against 21-24 GB/s on one thread, 49-60 against 42-48 on two, where
      // one stream stays best for 16-bit rows).
      if (T == kF32) gemv_t<T, 1>(out, ldo, x, ldx, w, K, n, bias, accumulate);
      else gemv_1<T>(out, x, w, K, n, bias, accumulate);
      break;
    case 2: gemv_t<T, 2>(out, ldo, x, ldx, w, K, n, bias, accumulate); break;
    case 3: gemv_t<T, 3>(out, ldo, x, ldx, w, K, n, bias, accumulate); break;
    case 4: gemv_t<T, 4>(out, ldo, x, ldx, w, K, n, bias, accumulate); break;
    case 5: gemv_t<T, 5>(out, ldo, x, ldx, w, K, n, bias, accumulate); break;
    case 6: gemv_t<T, 6>(out, ldo, x, ldx, w, K, n, bias, accumulate); break;
    case 7: gemv_t<T, 7>(out, ldo, x, ldx, w, K, n, bias, accumulate); break;
    default: gemv_t<T, 8>(out, ldo, x, ldx, w, K, n, bias, accumulate); break;
  }
}

static void gemv(float* out, int64_t ldo, const float* x, int64_t ldx, int m, const void* w, int dtype, int64_t K,
                 int64_t n, const float* bias, bool accumulate) {
  switch (dtype) {
    case kF32: gemv_m<kF32>(out, ldo, x, ldx, m, w, K, n, bias, accumulate); break;
    case kF16: gemv_m<kF16>(out, ldo, x, ldx, m, w, K, n, bias, accumulate); break;
    default: gemv_m<kBF16>(out, ldo, x, ldx, m, w, K, n, bias, accumulate); break;
  }
}
