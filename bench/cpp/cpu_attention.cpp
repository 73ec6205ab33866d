// CPU attention throughput on the shapes FocusLLM runs (16 query heads, 4 KV
// heads of 64, as the 156M LLaMA), against the FMA peak measured in the same
// run.
//
//   bench_cpu_attention [--threads 1,2] [--isa best|all|generic|avx2|avx512]
//
// Cases: prefill (512 causal rows), decode (1 row over 576 cached keys), a
// FocusLLM chunk (2048 + 513 causal rows, no cache), the local sequence
// (2048 rows over 200 candidate prefix keys), and parallel candidate decoding
// (100 chunks x 2 single-row segments over 2048 cached keys, F16 cache).
// Flops count 4 * head_dim per (query head, visible key): q·k and p·v.
//   {"bench":"cpu_attention","isa":..,"threads":..,"case":..,"median_ms":..,"gflops":..,"frac_peak":..}
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/testing.h"
#include "core/error.h"
#include "cpu/ops.h"

using namespace focus;

namespace {

using Clock = std::chrono::steady_clock;

// "AMD EPYC, 2 cpus": the machine, for every JSON line (DESIGN.md, Measuring).
std::string machine() {
  std::FILE* f = std::fopen("/proc/cpuinfo", "r");
  std::string model = "unknown CPU";
  if (f) {
    char line[512];
    while (std::fgets(line, sizeof line, f))
      if (std::strncmp(line, "model name", 10) == 0) {
        const char* c = std::strchr(line, ':');
        if (c) {
          model = c + 1;
          while (!model.empty() && (model[0] == ' ' || model[0] == '\t')) model.erase(0, 1);
          while (!model.empty() && (model.back() == '\n' || model.back() == ' ')) model.pop_back();
        }
        break;
      }
    std::fclose(f);
  }
  return model + ", " + std::to_string(std::thread::hardware_concurrency()) + " cpus";
}

template <class F>
double median_seconds(F f) {
  f();
  std::vector<double> t;
  const auto start = Clock::now();
  while (t.size() < 5 || (std::chrono::duration<double>(Clock::now() - start).count() < 0.5 && t.size() < 31)) {
    const auto t0 = Clock::now();
    f();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Best of several short runs: other processes on the machine only slow it down.
double fma_peak_gflops(cpu::ThreadPool& pool) {
  const cpu::Kernels& K = cpu::kernels();
  const int64_t iters = 2000000;
  std::atomic<float> sink{0};
  double best = 0;
  for (int r = 0; r < 15; ++r) {
    const auto t0 = Clock::now();
    pool.run([&](int, int) { sink = sink + K.fma_loop(iters); });
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, double(iters) * K.fma_flops_per_iter * pool.size() / s * 1e-9);
  }
  return best;
}

struct Buf {
  std::vector<char> bytes;
  Buf(size_t n, DType t, ftest::Rng& rng) : bytes(n * dtype_size(t)) {
    for (size_t i = 0; i < n; ++i) store_from_f32(bytes.data(), t, i, rng.uniform());
  }
};

struct Case {
  std::string name;
  std::vector<AttnSegment> segs;
  std::vector<Buf> bufs;
  int rows = 0;
  double flops = 0;
};

constexpr int kHeads = 16, kKv = 4, kHd = 64, kKvd = kKv * kHd;

// Adds a segment of n_q rows after q_index cached keys (one layer, `t`), with
// n_prefix F32 prefix keys.
void add_segment(Case& c, int n_q, int q_index, int n_prefix, DType t, ftest::Rng& rng) {
  AttnSegment s{};
  s.q_row = c.rows;
  s.n_q = n_q;
  s.q_index = q_index;
  s.n_prefix = n_prefix;
  const size_t n_main = size_t(q_index + n_q) * kKvd;
  c.bufs.emplace_back(n_main, t, rng);
  s.k_main = c.bufs.back().bytes.data();
  c.bufs.emplace_back(n_main, t, rng);
  s.v_main = c.bufs.back().bytes.data();
  s.main_dtype = int32_t(t);
  if (n_prefix) {
    c.bufs.emplace_back(size_t(n_prefix) * kKvd, DType::F32, rng);
    s.k_prefix = c.bufs.back().bytes.data();
    c.bufs.emplace_back(size_t(n_prefix) * kKvd, DType::F32, rng);
    s.v_prefix = c.bufs.back().bytes.data();
  }
  s.prefix_dtype = int32_t(DType::F32);
  c.segs.push_back(s);
  c.rows += n_q;
  for (int i = 0; i < n_q; ++i) c.flops += 4.0 * kHd * kHeads * (n_prefix + q_index + i + 1);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> threads = {1, 2};
  std::string isa_arg = "best";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--threads") {
      threads.clear();
      for (const char* p = argv[i + 1]; *p;) {
        threads.push_back(std::atoi(p));
        while (*p && *p != ',') ++p;
        if (*p == ',') ++p;
      }
    } else if (a == "--isa") {
      isa_arg = argv[i + 1];
    } else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  std::vector<cpu::Isa> isas;
  for (cpu::Isa i : {cpu::Isa::Generic, cpu::Isa::Avx2, cpu::Isa::Avx512})
    if (cpu::isa_supported(i) && (isa_arg == "all" || isa_arg == cpu::isa_name(i) ||
                                  (isa_arg == "best" && i == cpu::best_isa())))
      isas.push_back(i);

  const std::string mach = machine();
  ftest::Rng rng(5);
  std::vector<Case> cases(5);
  cases[0].name = "prefill 512 causal, F32 cache";
  add_segment(cases[0], 512, 0, 0, DType::F32, rng);
  cases[1].name = "decode 1 row over 576 keys, F32 cache";
  add_segment(cases[1], 1, 575, 0, DType::F32, rng);
  cases[2].name = "chunk 2048+513 causal";
  add_segment(cases[2], 2561, 0, 0, DType::F32, rng);
  cases[3].name = "local 2048 rows over 200 candidates";
  add_segment(cases[3], 2048, 0, 200, DType::F32, rng);
  cases[4].name = "candidates: 100 chunks x 2 rows over 2048 keys, F16 cache";
  for (int k = 0; k < 100; ++k) {
    // As the runner lays out a FocusLLM step: the previous token (a row after
    // the cache) and the new candidate (one key further) share the chunk's cache.
    add_segment(cases[4], 1, 2049, 0, DType::F16, rng);
    AttnSegment s = cases[4].segs.back();
    s.q_row = cases[4].rows++;
    s.q_index = 2048;
    cases[4].segs.push_back(s);
    cases[4].flops += 4.0 * kHd * kHeads * 2049;
  }

  for (int nt : threads) {
    cpu::ThreadPool pool(nt);
    for (cpu::Isa isa : isas) {
      cpu::set_isa(isa);
      const double peak = fma_peak_gflops(pool);
      std::printf("{\"bench\":\"cpu_fma_peak\",\"machine\":\"%s\",\"isa\":\"%s\",\"threads\":%d,\"gflops\":%.1f}\n", mach.c_str(),
                  cpu::isa_name(isa), nt, peak);
      for (Case& c : cases) {
        AttnArgs a;
        a.segs = a.segs_host = c.segs.data();
        a.n_seg = int(c.segs.size());
        a.n_rows = c.rows;
        a.n_heads = kHeads;
        a.n_kv_heads = kKv;
        a.head_dim = kHd;
        a.scale = 0.125f;
        std::vector<float> q(size_t(c.rows) * kHeads * kHd), out(q.size());
        for (float& x : q) x = rng.uniform();
        const double s = median_seconds([&] { cpu::attention(pool, out.data(), q.data(), a); });
        const double gflops = c.flops / s * 1e-9;
        std::printf(
            "{\"bench\":\"cpu_attention\",\"machine\":\"%s\",\"isa\":\"%s\",\"threads\":%d,\"case\":\"%s\",\"median_ms\":%.3f,"
            "\"gflops\":%.1f,\"frac_peak\":%.3f}\n",
            mach.c_str(), cpu::isa_name(isa), nt, c.name.c_str(), s * 1e3, gflops, gflops / peak);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
