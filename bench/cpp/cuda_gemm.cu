// The GEMM (cuda/gemm.cuh) on the LLaMA-2-7B projections (hidden 4096, 32
// heads of 128, intermediate 11008, vocabulary 32000; k/v projections of the
// GQA variant with 8 KV heads: n = 1024), for m = 1 and 64 (decode), 128
// (parallel candidate decoding of 64 chunks: rows [64, 128) use the
// candidate weights, one launch), 4096 and 16384 (ingest), each figure beside
// a ceiling measured in the same run (DESIGN section 6):
//   - the bf16 peak: the best TFLOP/s of an 8192^3 GEMM by each of our big
//     kernels and, in builds with FOCUSLLM_WITH_CUBLASLT, by cuBLASLt;
//   - bytes moved per second (w read once, x read, out written: read too for
//     Add), for the skinny shapes that reading w bounds.
// Per shape: the plan's choice ("impl": "focusllm"), cuBLASLt when compiled in
// (with ours / cuBLASLt time ratio), then every usable tensor-core kernel on
// its own ("impl": "kernel", for tuning the plan). Weights rotate through
// copies that together exceed the L2 cache, so that decode shapes read them
// from DRAM as in a real forward. Median of >= 10 runs after warm-up (CUDA
// events). One JSON object per line; without a device one line with
// "skipped" and exit 0.
//
//   bench_cuda_gemm [--reps N] [--no-kernels] [--peak-only]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../../cuda/common.cuh"
#include "../../cuda/gemm_impl.cuh"
#include "common/cuda_bench.cuh"
#include "core/error.h"

using focus::str;
using namespace focus::cuda;
using namespace ftest::bench;

namespace {

void line(const std::string& fields) { std::printf("{\"bench\": \"cuda_gemm\", %s}\n", fields.c_str()); }

void* dev_alloc(size_t bytes) {
  void* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, bytes));
  return p;
}

struct Shape {
  const char* name;
  int n, k;
  GemmEpilogue epi;
  bool candidate;  // has candidate weights (row split at m = 128)
};

// Buffers sized once for the largest problem.
struct Bench {
  int reps = 10;
  bool kernels = true;
  size_t l2 = 0;
  char* wpool = nullptr;  // weight copies, rotated
  size_t wpool_bytes = 0;
  void* x = nullptr;
  void* out = nullptr;
  void* ws = nullptr;
  Timer tm;

  // Weight copy i of a (n, k) matrix: copies together span >= 3x L2 when small.
  const void* weight(int n, int k, int i) const {
    const size_t bytes = (size_t(n) * k * 2 + 255) / 256 * 256;
    const size_t copies = std::max<size_t>(1, wpool_bytes / bytes);
    return wpool + (size_t(i) % copies) * bytes;
  }

  GemmArgs args(const Shape& s, int m, int split) const {
    GemmArgs a;
    a.x = x, a.ldx = s.k, a.out = out, a.ldo = s.n, a.m = m, a.n = s.n, a.k = s.k, a.epilogue = s.epi;
    a.dtype = focus::DType::BF16, a.workspace = ws, a.workspace_bytes = kGemmWorkspaceBytes;
    a.w = weight(s.n, s.k, 0);
    if (split < m) a.w2 = weight(s.n, s.k, 1), a.split = split;
    return a;
  }

  // Runs `run(a)` on rotating weights; median ms.
  template <class F>
  double time(GemmArgs a, F run) {
    return tm.median_ms(
        [&](int i) {
          a.w = weight(a.n, a.k, 2 * i);
          if (a.w2) a.w2 = weight(a.n, a.k, 2 * i + 1);
          run(a);
        },
        reps, 3);
  }
};

double tflops(int64_t m, int64_t n, int64_t k, double ms) { return 2.0 * m * n * k / (ms * 1e9); }

// Bytes a GEMM must move at least: w (twice with a split), x, out (twice for Add).
double min_bytes(const GemmArgs& a) {
  const double w = double(a.n) * a.k * 2 * (a.w2 ? 2 : 1);
  const double o = double(a.m) * a.n * (a.epilogue == GemmEpilogue::StoreF32 ? 4 : 2);
  return w + double(a.m) * a.k * 2 + o * (a.epilogue == GemmEpilogue::Add ? 2 : 1);
}

const GemmKernel kTensorKernels[] = {GemmKernel::Mma16x64,   GemmKernel::Mma32x64,     GemmKernel::Mma64x128,
                                     GemmKernel::Mma128x128, GemmKernel::Mma128x256,   GemmKernel::Wgmma128x128,
                                     GemmKernel::Wgmma128x256};

// The bf16 peak: 8192^3 by each big kernel of ours (and cuBLASLt).
double measure_peak(Bench& b) {
  const Shape sq{"square", 8192, 8192, GemmEpilogue::Store, false};
  const int m = 8192;
  double peak = 0;
  for (GemmKernel k : {GemmKernel::Mma128x128, GemmKernel::Mma128x256, GemmKernel::Wgmma128x128,
                       GemmKernel::Wgmma128x256}) {
    GemmArgs a = b.args(sq, m, m);
    std::string why;
    if (!gemm_kernel_usable(k, a, &why)) {
      line(str("\"what\": \"peak\", \"impl\": \"focusllm\", \"kernel\": \"", gemm_kernel_name(k), "\", \"skipped\": \"",
               json_escape(why), "\""));
      continue;
    }
    const double ms = b.time(a, [&](const GemmArgs& g) { gemm_run(g, GemmPlan{k, 1}, nullptr); });
    const double tf = tflops(m, m, m, ms);
    peak = std::max(peak, tf);
    line(str("\"what\": \"peak\", \"impl\": \"focusllm\", \"kernel\": \"", gemm_kernel_name(k), "\", \"m\": ", m,
             ", \"n\": ", m, ", \"k\": ", m, ", \"ms\": ", ms, ", \"TFLOP_per_s\": ", tf));
  }
#ifdef FOCUSLLM_WITH_CUBLASLT
  {
    GemmArgs a = b.args(sq, m, m);
    bool ok = true;
    const double ms = b.time(a, [&](const GemmArgs& g) { ok = gemm_cublaslt(g, nullptr) && ok; });
    if (ok) {
      const double tf = tflops(m, m, m, ms);
      peak = std::max(peak, tf);
      line(str("\"what\": \"peak\", \"impl\": \"cublaslt\", \"m\": ", m, ", \"n\": ", m, ", \"k\": ", m,
               ", \"ms\": ", ms, ", \"TFLOP_per_s\": ", tf));
    } else {
      line("\"what\": \"peak\", \"impl\": \"cublaslt\", \"skipped\": \"cuBLASLt declined the problem\"");
    }
  }
#endif
  return peak;
}

void bench_shape(Bench& b, const Shape& s, int m, double peak) {
  const int split = s.candidate && m == 128 ? 64 : m;
  const GemmArgs a = b.args(s, m, split);
  const std::string head = str("\"shape\": \"", s.name, "\", \"m\": ", m, ", \"n\": ", s.n, ", \"k\": ", s.k,
                               ", \"split\": ", split, ", \"epilogue\": \"",
                               s.epi == GemmEpilogue::Add ? "add" : s.epi == GemmEpilogue::StoreF32 ? "f32" : "store",
                               "\"");
  auto report = [&](const std::string& impl, double ms, const std::string& extra) {
    const double tf = tflops(m, s.n, s.k, ms);
    line(str(head, ", \"impl\": \"", impl, "\"", extra, ", \"ms\": ", ms, ", \"TFLOP_per_s\": ", tf,
             ", \"frac_peak\": ", peak > 0 ? tf / peak : 0.0, ", \"GB_per_s\": ", min_bytes(a) / (ms * 1e6)));
  };

  const GemmPlan plan = gemm_plan(a);
  const double ours = b.time(a, [&](const GemmArgs& g) { gemm_run(g, plan, nullptr); });
  report("focusllm", ours, str(", \"kernel\": \"", gemm_kernel_name(plan.kernel), "\", \"splits\": ", plan.splits));
#ifdef FOCUSLLM_WITH_CUBLASLT
  {
    bool ok = true;
    const double ms = b.time(a, [&](const GemmArgs& g) { ok = gemm_cublaslt(g, nullptr) && ok; });
    if (ok) report("cublaslt", ms, str(", \"ours_over_cublaslt\": ", ours / ms));
    else line(str(head, ", \"impl\": \"cublaslt\", \"skipped\": \"declined (row split or no algorithm)\""));
  }
#endif
  if (!b.kernels) return;
  for (GemmKernel k : kTensorKernels) {
    if (k == plan.kernel && plan.splits == 1) continue;  // that is the plan's line
    if (!gemm_kernel_usable(k, a, nullptr)) continue;
    // Tiny tiles on big problems take long and teach nothing: skip them.
    if (m >= 4096 && (k == GemmKernel::Mma16x64 || k == GemmKernel::Mma32x64)) continue;
    const double ms = b.time(a, [&](const GemmArgs& g) { gemm_run(g, GemmPlan{k, 1}, nullptr); });
    report("kernel", ms, str(", \"kernel\": \"", gemm_kernel_name(k), "\", \"splits\": 1"));
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    int devices = 0;
    const cudaError_t e = cudaGetDeviceCount(&devices);
    if (e != cudaSuccess || devices == 0) {
      line(str("\"skipped\": \"", json_escape(e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device"), "\""));
      return 0;
    }
    bool peak_only = false;
    int reps = 10;
    bool kernels = true;
    for (int i = 1; i < argc; ++i) {
      if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::max(10, std::atoi(argv[++i]));
      else if (!std::strcmp(argv[i], "--no-kernels")) kernels = false;
      else if (!std::strcmp(argv[i], "--peak-only")) peak_only = true;
    }

    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    int clock_khz = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0));
    bool cublaslt = false;
#ifdef FOCUSLLM_WITH_CUBLASLT
    cublaslt = true;
#endif
    line(str("\"what\": \"device\", \"device\": \"", json_escape(prop.name),
             "\", \"cc\": ", prop.major * 10 + prop.minor, ", \"sms\": ", prop.multiProcessorCount,
             ", \"sm_clock_max_mhz\": ", clock_khz / 1000, ", \"l2_bytes\": ", prop.l2CacheSize,
             ", \"wgmma\": ", gemm_sm90_available() ? "true" : "false",
             ", \"cublaslt\": ", cublaslt ? "true" : "false"));

    Bench b;
    b.reps = reps;
    b.kernels = kernels;
    b.l2 = size_t(prop.l2CacheSize);
    // Weights: the biggest (32000 x 4096 bf16 = 262 MB) once, or the small
    // ones in copies spanning >= 3x L2 (and 2 for the split's second weight).
    b.wpool_bytes = std::max<size_t>(size_t(32000) * 4096 * 2 * 2 + 512, 4 * b.l2 + (64 << 20));
    b.wpool = static_cast<char*>(dev_alloc(b.wpool_bytes));
    fill_random(b.wpool, int64_t(b.wpool_bytes / 2), 1);
    const size_t x_elems = std::max<size_t>(size_t(16384) * 11008, size_t(8192) * 8192);
    b.x = dev_alloc(x_elems * 2);
    fill_random(b.x, int64_t(x_elems), 2);
    const size_t out_bytes = std::max<size_t>(size_t(16384) * 32000 * 4, size_t(16384) * 11008 * 2);
    b.out = dev_alloc(out_bytes);
    fill_random(b.out, int64_t(out_bytes / 2), 3);  // Add reads it
    b.ws = dev_alloc(kGemmWorkspaceBytes);
    CUDA_CHECK(cudaDeviceSynchronize());

    const double peak = measure_peak(b);
    line(str("\"what\": \"peak_bf16\", \"TFLOP_per_s\": ", peak,
             ", \"from\": \"best 8192^3 of our kernels", cublaslt ? " and cuBLASLt" : "", "\""));
    if (!peak_only) {
      const Shape shapes[] = {
          {"q_proj", 4096, 4096, GemmEpilogue::Store, true},       // = k/v of the MHA model
          {"kv_proj_gqa", 1024, 4096, GemmEpilogue::Store, true},  // 8 KV heads x 128
          {"o_proj", 4096, 4096, GemmEpilogue::Add, true},         // + residual
          {"gate_proj", 11008, 4096, GemmEpilogue::Store, false},  // no candidate variant
          {"up_proj", 11008, 4096, GemmEpilogue::Store, true},
          {"down_proj", 4096, 11008, GemmEpilogue::Add, true},  // + residual
          {"lm_head", 32000, 4096, GemmEpilogue::StoreF32, false},
      };
      for (int m : {1, 64, 128, 4096, 16384})
        for (const Shape& s : shapes) bench_shape(b, s, m, peak);
    }
    cudaFree(b.ws);
    cudaFree(b.out);
    cudaFree(b.x);
    cudaFree(b.wpool);
  } catch (const std::exception& ex) {
    line(str("\"error\": \"", json_escape(ex.what()), "\""));
    return 1;
  }
  return 0;
}
