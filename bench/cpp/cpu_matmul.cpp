// CPU matmul throughput on the 156M LLaMA's shapes (hidden 1024, 4 KV heads
// of 64, intermediate 2816, vocabulary 32000), F16/BF16/F32 weights, m = 1
// (decode) and 512 (prefill), 1 and all threads; against two rooflines
// measured in the same run: the FMA peak (register-only FMA loop on every
// thread) and the read bandwidth (a streaming sum over the DRAM-sized buffer
// below).
//
//   bench_cpu_matmul [--threads 1,2] [--isa best|all|generic|avx2|avx512] [--m 1,512] [--peak-only 1]
//
// One JSON object per line:
//   {"bench":"cpu_fma_peak","isa":..,"threads":..,"gflops":..}
//   {"bench":"cpu_read_bw","threads":..,"gbps":..}            (best of the runs)
//   {"bench":"cpu_matmul","isa":..,"threads":..,"m":..,"n":..,"k":..,"dtype":..,
//    "weights":"cache"|"dram","median_ms":..,"gflops":..,"best_gflops":..,"frac_peak":..,
//    "weight_gbps":..,"frac_bw":..}
// gflops, frac_peak and weight_gbps come from the median time; the peak is the
// best of 20 short runs (interference only lowers it).
// m = 1 is timed twice: "cache", the same matrix every run (a 2 MiB matrix then
// sits in L2/L3: what a microbenchmark usually reports), and "dram", a run
// through copies of it laid end to end over more bytes than the last-level
// cache (max(256 MiB, 2 x LLC), at most a quarter of RAM), so that every run
// reads its weights from memory as a real decode step does. m = 512 reuses
// each weight element 512 times and is timed on one copy ("cache").
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

#include "common/bench_util.h"
#include "common/testing.h"
#include "core/error.h"
#include "cpu/ops.h"

using namespace focus;

namespace {

using ftest::bench::machine;
using ftest::bench::parse_list;
using ftest::bench::Timing;

// Median and best time of f() after two warm-up calls: at least 5 runs and ~0.5 s.
template <class F>
Timing time_runs(F f) {
  return ftest::bench::time_runs(f, 2, 51);
}

// Bytes that cannot stay in any cache: twice the last-level cache, at least
// 256 MiB, at most a quarter of physical memory.
size_t dram_bytes() {
  size_t b = size_t(256) << 20;
#ifdef _SC_LEVEL3_CACHE_SIZE
  const long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
  if (llc > 0) b = std::max(b, 2 * size_t(llc));
#endif
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) b = std::min(b, size_t(pages) * size_t(page) / 4);
  return b;
}

double read_gbps(cpu::ThreadPool& pool, size_t bytes) {
  const size_t n = bytes / 4 / 1024 * 1024;  // floats, a multiple of the 64-float blocks
  std::vector<float> buf(n, 1.0f);
  std::atomic<double> sink{0};
  const double s = time_runs([&] {
    pool.parallel_for(int64_t(n / 64), 1, [&](int64_t b, int64_t e) {
      float acc[16] = {0};
      for (int64_t i = b * 64; i < e * 64; i += 16)
        for (int j = 0; j < 16; ++j) acc[j] += buf[size_t(i + j)];
      float t = 0;
      for (float a : acc) t += a;
      sink = sink + t;
    });
  }).best;
  return double(n) * 4 / s * 1e-9;
}

struct Shape {
  int n, k;
  const char* what;
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> threads = {1, 2}, ms = {1, 512};
  std::string isa_arg = "best";
  bool peak_only = false;  // --peak-only 1: the roofline lines only (for other suites' fractions)
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--threads") threads = parse_list(argv[i + 1]);
    else if (a == "--m") ms = parse_list(argv[i + 1]);
    else if (a == "--isa") isa_arg = argv[i + 1];
    else if (a == "--peak-only") peak_only = std::string(argv[i + 1]) == "1";
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  std::vector<cpu::Isa> isas;
  if (isa_arg == "best") {
    isas.push_back(cpu::best_isa());
  } else if (isa_arg == "all") {
    for (cpu::Isa i : {cpu::Isa::Generic, cpu::Isa::Avx2, cpu::Isa::Avx512})
      if (cpu::isa_supported(i)) isas.push_back(i);
  } else {
    cpu::Isa i;
    if (!cpu::parse_isa(isa_arg.c_str(), &i) || !cpu::isa_supported(i)) {
      std::fprintf(stderr, "--isa %s: not a supported level here\n", isa_arg.c_str());
      return 2;
    }
    isas.push_back(i);
  }

  const Shape shapes[] = {{1024, 1024, "q/o proj"}, {256, 1024, "k/v proj"}, {2816, 1024, "gate/up"},
                          {1024, 2816, "down"},     {32000, 1024, "lm_head"}};
  const DType dtypes[] = {DType::F16, DType::BF16, DType::F32};
  const std::string mach = machine();
  ftest::Rng rng(1);
  const size_t stream = dram_bytes();
  std::vector<char> arena;  // copies of one weight matrix end to end, for the "dram" runs (filled on first use)

  for (int nt : threads) {
    cpu::ThreadPool pool(nt);
    const double bw = read_gbps(pool, stream);
    std::printf("{\"bench\":\"cpu_read_bw\",\"machine\":\"%s\",\"threads\":%d,\"bytes\":%zu,\"gbps\":%.2f}\n",
                mach.c_str(), nt, stream, bw);
    for (cpu::Isa isa : isas) {
      cpu::set_isa(isa);
      const double peak = ftest::bench::fma_peak_gflops(pool, 20);
      std::printf("{\"bench\":\"cpu_fma_peak\",\"machine\":\"%s\",\"isa\":\"%s\",\"threads\":%d,\"gflops\":%.1f}\n",
                  mach.c_str(), cpu::isa_name(isa), nt, peak);
      std::fflush(stdout);
      if (peak_only) continue;
      for (DType t : dtypes)
        for (const Shape& sh : shapes) {
          const size_t bytes = size_t(sh.n) * sh.k * dtype_size(t);
          const size_t pitch = (bytes + 4095) / 4096 * 4096;  // copies start on page boundaries
          const int copies = int(std::max<size_t>(2, stream / pitch));
          if (arena.size() < copies * pitch + 128) arena.resize(copies * pitch + 128);
          // Every copy 16 bytes off the 64-byte grid, where bench/random-model.ts's
          // safetensors files put their tensors (the header's length decides it).
          char* base = arena.data() + (64 - reinterpret_cast<uintptr_t>(arena.data()) % 64) % 64 + 16;
          for (size_t i = 0; i < size_t(sh.n) * sh.k; ++i) store_from_f32(base, t, i, rng.uniform());
          for (int c = 1; c < copies; ++c) std::memcpy(base + c * pitch, base, bytes);
          for (int m : ms)
            for (const char* from : {"cache", "dram"}) {
              const bool dram = from[0] == 'd';
              if (dram && m > 8) continue;  // the GEMM reuses each element m times: memory does not bound it
              std::vector<float> x(size_t(m) * sh.k), out(size_t(m) * sh.n);
              for (float& v : x) v = rng.uniform();
              int next = 0;
              const Timing tm = time_runs([&] {
                Weight w;
                w.data = base + (dram ? size_t(next++ % copies) * pitch : 0);
                w.dtype = t;
                w.rows = sh.n;
                w.cols = sh.k;
                w.name = sh.what;
                cpu::matmul(pool, out.data(), x.data(), m, w, nullptr, false);
              });
              const double s = tm.median, flop = 2.0 * m * sh.n * sh.k;
              const double gflops = flop / s * 1e-9, best = flop / tm.best * 1e-9, gbps = double(bytes) / s * 1e-9;
              std::printf(
                  "{\"bench\":\"cpu_matmul\",\"machine\":\"%s\",\"isa\":\"%s\",\"threads\":%d,\"m\":%d,\"n\":%d,\"k\":%d,\"dtype\":\"%s\","
                  "\"what\":\"%s\",\"weights\":\"%s\",\"median_ms\":%.4f,\"gflops\":%.2f,\"best_gflops\":%.2f,\"frac_peak\":%.3f,"
                  "\"weight_gbps\":%.2f,\"frac_bw\":%.3f}\n",
                  mach.c_str(), cpu::isa_name(isa), nt, m, sh.n, sh.k, dtype_name(t), sh.what, from, s * 1e3, gflops, best,
                  gflops / peak, gbps, gbps / bw);
              std::fflush(stdout);
            }
        }
    }
  }
  return 0;
}
