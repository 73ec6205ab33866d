#include "common/testing.h"

#include <sys/stat.h>

#include <cmath>
#include <cstdio>

namespace ftest {

namespace {
int g_pass = 0, g_fail = 0, g_skip = 0;
}

void pass(const std::string& what) {
  ++g_pass;
  std::printf("ok   %s\n", what.c_str());
}

void fail(const std::string& what) {
  ++g_fail;
  std::printf("FAIL %s\n", what.c_str());
}

void skip(const std::string& what, const std::string& why) {
  ++g_skip;
  std::printf("skip %s: %s\n", what.c_str(), why.c_str());
}

bool check(bool ok, const std::string& what, const std::string& detail) {
  if (ok) pass(what);
  else fail(detail.empty() ? what : what + " (" + detail + ")");
  return ok;
}

double rel_err(const float* got, const float* ref, size_t n) {
  double md = 0, mr = 0;
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(got[i]) || std::isnan(ref[i])) return INFINITY;
    md = std::fmax(md, std::fabs(double(got[i]) - double(ref[i])));
    mr = std::fmax(mr, std::fabs(double(ref[i])));
  }
  if (mr == 0) return md == 0 ? 0 : INFINITY;
  return md / mr;
}

bool greedy_is_clear(const float* row, size_t n, double tol) {
  double top = -INFINITY, second = -INFINITY, scale = 0;
  for (size_t i = 0; i < n; ++i) {
    const double v = row[i];
    if (v > top) second = top, top = v;
    else if (v > second) second = v;
    scale = std::fmax(scale, std::fabs(v));
  }
  return top - second > 2 * tol * scale;
}

bool check_close(const std::string& what, const float* got, const float* ref, size_t n, double tol) {
  double e = rel_err(got, ref, n);
  char buf[96];
  std::snprintf(buf, sizeof buf, " [rel err %.3g, tol %.3g]", e, tol);
  return check(e <= tol, what + buf);
}

int finish() {
  std::printf("%d passed, %d failed, %d skipped\n", g_pass, g_fail, g_skip);
  std::fflush(stdout);
  if (g_fail) return 1;
  if (g_pass == 0 && g_skip > 0) return 77;
  return 0;
}

std::string source_path(const std::string& rel) {
#ifdef FOCUSLLM_SOURCE_DIR
  std::string p = std::string(FOCUSLLM_SOURCE_DIR) + "/" + rel;
  struct stat st;
  if (::stat(p.c_str(), &st) == 0) return p;
#endif
  return rel;
}

}  // namespace ftest
