// A minimal test harness for the standalone C++ test programs.
//
// Each program checks things, then returns ftest::finish(), which prints the
// closing line "N passed, N failed, N skipped" and exits 0 when nothing failed,
// 1 when something did, and 77 (ctest's SKIP_RETURN_CODE) when everything was
// skipped (for example: no GPU). A skipped check always prints its reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ftest {

void pass(const std::string& what);
void fail(const std::string& what);
void skip(const std::string& what, const std::string& why);
// Records a pass or failure with `what` and, on failure, `detail`.
bool check(bool ok, const std::string& what, const std::string& detail = "");
// max|got - ref| / max|ref| (0 when both are all zero); NaN anywhere -> inf.
double rel_err(const float* got, const float* ref, size_t n);
// Checks rel_err(got, ref) <= tol and reports the error either way.
bool check_close(const std::string& what, const float* got, const float* ref, size_t n, double tol);
// Whether row's top two values are further apart than 2 x tol of its largest
// magnitude: only then is its greedy token defined at that (relative) tolerance.
bool greedy_is_clear(const float* row, size_t n, double tol);
int finish();

// Path of a file under the source tree (FOCUSLLM_SOURCE_DIR, or the working
// directory when run from the repository root).
std::string source_path(const std::string& rel);

// Deterministic pseudo-random numbers for test data.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9e3779b97f4a7c15ull + 1) {}
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  float uniform(float lo = -1.0f, float hi = 1.0f) { return lo + (hi - lo) * float(next() >> 40) / float(1 << 24); }
  int below(int n) { return int(next() % uint64_t(n)); }
};

}  // namespace ftest
