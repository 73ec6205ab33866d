// Helpers of the benchmark programs (bench/cpp/): the machine's name and
// string escaping for the JSON lines, wall-clock timing loops, option lists,
// the CPU's FMA peak.
// Plain C++ (the CUDA programs include it too); CUDA event timing is in
// common/cuda_bench.cuh.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace focus::cpu {
class ThreadPool;
}

namespace ftest::bench {

using Clock = std::chrono::steady_clock;

// "AMD EPYC, 2 cpus": the machine, for every JSON line (DESIGN.md, Measuring).
std::string machine();

inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// s as the inside of a JSON string: quotes and backslashes escaped, control
// characters (newlines, tabs) turned into spaces.
std::string json_escape(const std::string& s);

// "1,512" -> {1, 512}; an empty string gives no values.
std::vector<int> parse_list(const char* s);

// The middle value (the upper one of an even count); v must not be empty.
double median(std::vector<double> v);

struct Timing {
  double median, best;  // seconds
};

// Median and best time of f() after `warm` untimed calls: at least 5 runs,
// more while the runs so far took under 0.5 s, up to max_runs.
template <class F>
Timing time_runs(F f, int warm, size_t max_runs) {
  for (int i = 0; i < warm; ++i) f();
  std::vector<double> t;
  const auto start = Clock::now();
  while (t.size() < 5 || (seconds_since(start) < 0.5 && t.size() < max_runs)) {
    const auto t0 = Clock::now();
    f();
    t.push_back(seconds_since(t0));
  }
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t[0]};
}

// GFLOP/s of the current ISA's register-only FMA loop on every thread of
// `pool`: the best of `runs` short runs (other processes only slow it down).
double fma_peak_gflops(focus::cpu::ThreadPool& pool, int runs);

}  // namespace ftest::bench
