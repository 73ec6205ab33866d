#include "common/bench_util.h"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "cpu/ops.h"

namespace ftest::bench {

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

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += uint8_t(c) < 0x20 ? ' ' : c;
  }
  return o;
}

std::vector<int> parse_list(const char* s) {
  std::vector<int> v;
  for (const char* p = s; *p;) {
    v.push_back(std::atoi(p));
    while (*p && *p != ',') ++p;
    if (*p == ',') ++p;
  }
  return v;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double fma_peak_gflops(focus::cpu::ThreadPool& pool, int runs) {
  const focus::cpu::Kernels& K = focus::cpu::kernels();
  const int64_t iters = 2000000;
  std::atomic<float> sink{0};
  double best = 0;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = Clock::now();
    pool.run([&](int, int) { sink = sink + K.fma_loop(iters); });
    best = std::max(best, double(iters) * K.fma_flops_per_iter * pool.size() / seconds_since(t0) * 1e-9);
  }
  return best;
}

}  // namespace ftest::bench
