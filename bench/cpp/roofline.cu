// The two ceilings of this device, measured (DESIGN section 6: speed claims
// are ratios to numbers taken on the same machine in the same run):
//   - DRAM bandwidth: a large device-to-device copy (bytes read + written),
//     a read-only kernel (16-byte loads, several in flight), a memset;
//   - bf16 tensor-core rate: focusllm's GEMM on 8192^3 and, in builds with
//     FOCUSLLM_WITH_CUBLASLT, cuBLASLt on the same problem.
// One JSON object per line; the last line sums up. Random data, never zeros
// (zeros run faster than real data on these chips). Exit 77 without a device.
//
//   bench_roofline [--bytes N] [--gemm N] [--reps R]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../../cuda/common.cuh"
#include "../../cuda/gemm.cuh"
#include "common/cuda_bench.cuh"
#include "core/backend.h"
#include "core/error.h"

#ifdef FOCUSLLM_WITH_CUBLASLT
#include <cublasLt.h>
#endif

using focus::str;
using namespace ftest::bench;

namespace {

std::string g_device;

void line(const std::string& body) {
  std::printf("{\"bench\": \"roofline\", \"device\": \"%s\", %s}\n", json_escape(g_device).c_str(), body.c_str());
  std::fflush(stdout);
}

#ifdef FOCUSLLM_WITH_CUBLASLT
#define LT_CHECK(x)                                                                            \
  do {                                                                                         \
    cublasStatus_t s_ = (x);                                                                   \
    if (s_ != CUBLAS_STATUS_SUCCESS) throw focus::Error(str("cuBLASLt error ", int(s_), " in ", #x)); \
  } while (0)

// out (m, n) = x (m, k) · w (n, k)ᵀ, row-major, as focusllm's GEMM. cuBLASLt
// is column-major: the same bytes are C (n, m) = op(A) · B with A = w read as
// a (k, n) column-major matrix and op = transpose, B = x read as (k, m).
double cublaslt_ms(const void* x, const void* w, void* out, int m, int n, int k, int reps, Timer& tm) {
  cublasLtHandle_t h;
  LT_CHECK(cublasLtCreate(&h));
  cublasLtMatmulDesc_t op;
  LT_CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  LT_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  LT_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  cublasLtMatrixLayout_t la, lb, lc;
  LT_CHECK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, k, n, k));
  LT_CHECK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, k, m, k));
  LT_CHECK(cublasLtMatrixLayoutCreate(&lc, CUDA_R_16BF, n, m, n));
  const size_t ws_bytes = size_t(64) << 20;
  void* ws;
  CUDA_CHECK(cudaMalloc(&ws, ws_bytes));
  cublasLtMatmulPreference_t pref;
  LT_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
                                                sizeof ws_bytes));
  cublasLtMatmulHeuristicResult_t heur;
  int found = 0;
  LT_CHECK(cublasLtMatmulAlgoGetHeuristic(h, op, la, lb, lc, lc, pref, 1, &heur, &found));
  if (found == 0) throw focus::Error("cuBLASLt found no algorithm");
  const float alpha = 1.0f, beta = 0.0f;
  const double ms = tm.median_ms(
      [&] {
        LT_CHECK(cublasLtMatmul(h, op, &alpha, w, la, x, lb, &beta, out, lc, out, lc, &heur.algo, ws, ws_bytes, 0));
      },
      reps, 3);
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(lc);
  cublasLtMatmulDescDestroy(op);
  cublasLtDestroy(h);
  cudaFree(ws);
  return ms;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  size_t bytes = size_t(4) << 30;
  int g = 8192, reps = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--bytes")) bytes = size_t(std::atof(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--gemm")) g = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reps")) reps = std::max(1, std::atoi(argv[i + 1]));
  }
  const std::string why = focus::cuda_unavailable_reason();
  if (!why.empty()) {
    std::printf("{\"bench\": \"roofline\", \"skipped\": \"%s\"}\n", json_escape(why).c_str());
    return 77;
  }
  try {
    CUDA_CHECK(cudaSetDevice(0));
    cudaDeviceProp p;
    CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
    g_device = p.name;
    size_t free_b, total;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total));
    bytes = std::min(bytes, free_b / 4) / 16 * 16;  // two buffers, with room to spare
    Timer tm;

    // ---- DRAM ----
    void *src, *dst, *sink;
    CUDA_CHECK(cudaMalloc(&src, bytes));
    CUDA_CHECK(cudaMalloc(&dst, bytes));
    CUDA_CHECK(cudaMalloc(&sink, size_t(1) << 20));
    fill_random(src, int64_t(bytes / 2), 1);
    const double copy_ms =
        tm.median_ms([&] { CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0)); }, reps, 2);
    const double copy_gbs = 2.0 * double(bytes) / (copy_ms * 1e6);
    line(str("\"what\": \"dram_copy\", \"bytes\": ", bytes, ", \"ms\": ", copy_ms, ", \"GB_per_s\": ", copy_gbs,
             ", \"counted\": \"read + written\""));
    const int blocks = p.multiProcessorCount * 4;
    const double read_ms = tm.median_ms(
        [&] {
          read_only_kernel<<<blocks, 512>>>(static_cast<const uint4*>(src), int64_t(bytes / 16),
                                            static_cast<uint4*>(sink));
          CUDA_CHECK_LAUNCH();
        },
        reps, 2);
    const double read_gbs = double(bytes) / (read_ms * 1e6);
    line(str("\"what\": \"dram_read\", \"bytes\": ", bytes, ", \"ms\": ", read_ms, ", \"GB_per_s\": ", read_gbs));
    const double set_ms = tm.median_ms([&] { CUDA_CHECK(cudaMemsetAsync(dst, 0x5a, bytes, 0)); }, reps, 2);
    const double set_gbs = double(bytes) / (set_ms * 1e6);
    line(str("\"what\": \"dram_write\", \"bytes\": ", bytes, ", \"ms\": ", set_ms, ", \"GB_per_s\": ", set_gbs));
    CUDA_CHECK(cudaFree(src));
    CUDA_CHECK(cudaFree(dst));

    // ---- bf16 GEMM ----
    const size_t el = size_t(g) * g;
    void *x, *w, *out, *ws;
    CUDA_CHECK(cudaMalloc(&x, el * 2));
    CUDA_CHECK(cudaMalloc(&w, el * 2));
    CUDA_CHECK(cudaMalloc(&out, el * 2));
    CUDA_CHECK(cudaMalloc(&ws, focus::cuda::kGemmWorkspaceBytes));
    fill_random(x, int64_t(el), 2);
    fill_random(w, int64_t(el), 3);
    const double flop = 2.0 * double(g) * g * g;
    double best_tflops = 0;
    {
      focus::cuda::GemmArgs a;
      a.x = x, a.ldx = g, a.w = w, a.out = out, a.ldo = g, a.m = g, a.n = g, a.k = g;
      a.split = g, a.dtype = focus::DType::BF16;
      a.workspace = ws, a.workspace_bytes = focus::cuda::kGemmWorkspaceBytes;
      const double ms = tm.median_ms([&] { focus::cuda::gemm(a, 0); }, reps, 3);
      best_tflops = flop / (ms * 1e9);
      line(str("\"what\": \"gemm_bf16\", \"impl\": \"focusllm\", \"m\": ", g, ", \"n\": ", g, ", \"k\": ", g,
               ", \"ms\": ", ms, ", \"TFLOP_per_s\": ", flop / (ms * 1e9)));
    }
#ifdef FOCUSLLM_WITH_CUBLASLT
    try {
      const double ms = cublaslt_ms(x, w, out, g, g, g, reps, tm);
      best_tflops = std::max(best_tflops, flop / (ms * 1e9));
      line(str("\"what\": \"gemm_bf16\", \"impl\": \"cublaslt\", \"m\": ", g, ", \"n\": ", g, ", \"k\": ", g,
               ", \"ms\": ", ms, ", \"TFLOP_per_s\": ", flop / (ms * 1e9)));
    } catch (const std::exception& e) {
      line(str("\"what\": \"gemm_bf16\", \"impl\": \"cublaslt\", \"error\": \"", json_escape(e.what()), "\""));
    }
#endif
    CUDA_CHECK(cudaFree(x));
    CUDA_CHECK(cudaFree(w));
    CUDA_CHECK(cudaFree(out));
    CUDA_CHECK(cudaFree(ws));
    CUDA_CHECK(cudaFree(sink));
    line(str("\"what\": \"summary\", \"dram_GB_per_s\": ", std::max({copy_gbs, read_gbs, set_gbs}),
             ", \"bf16_TFLOP_per_s\": ", best_tflops, ", \"sms\": ", p.multiProcessorCount,
             ", \"memory_bytes\": ", total));
  } catch (const std::exception& e) {
    std::printf("{\"bench\": \"roofline\", \"device\": \"%s\", \"error\": \"%s\"}\n", json_escape(g_device).c_str(),
                json_escape(e.what()).c_str());
    return 1;
  }
  return 0;
}
