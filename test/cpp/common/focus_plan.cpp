#include "common/focus_plan.h"

#include <algorithm>

#include "core/error.h"

namespace ftest {

void check_focus_params(const FocusParams& p) {
  FOCUS_CHECK(p.local_window >= 1 && p.chunk_size >= 1 && p.prompt_cap >= 1 && p.min_chunked_length >= 1,
              "focus options must be positive integers");
  FOCUS_CHECK(p.min_chunked_length > p.local_window, "focus option min_chunked_length (", p.min_chunked_length,
              ") must be larger than local_window (", p.local_window, ")");
}

std::vector<int32_t> with_bos(std::vector<int32_t> x, int32_t bos) {
  if (x.empty() || x[0] != bos) x.insert(x.begin(), bos);
  return x;
}

FocusPlan plan_ingest(const std::vector<int32_t>& x, const std::optional<FocusParams>& params, int32_t bos) {
  FOCUS_CHECK(!x.empty(), "cannot ingest an empty input");
  const int L = int(x.size());
  FocusPlan plan;
  if (!params || L < params->min_chunked_length) {
    plan.local = with_bos(x, bos);
    return plan;
  }
  const FocusParams& p = *params;
  check_focus_params(p);
  plan.native = false;
  // min_chunked_length > local_window, so M >= 1: at least one chunk.
  const int M = L - p.local_window;
  const int t = std::min({p.prompt_cap, p.chunk_size, p.local_window});
  plan.memory = M;
  plan.prompt = with_bos(std::vector<int32_t>(x.end() - t, x.end()), bos);
  for (int b = 0; b < M; b += p.chunk_size)
    plan.chunks.emplace_back(x.begin() + b, x.begin() + std::min(b + p.chunk_size, M));
  plan.local = with_bos(std::vector<int32_t>(x.begin() + M, x.end()), bos);
  return plan;
}

int chunk_count(int length, const FocusParams& p) {
  if (length < p.min_chunked_length) return 0;
  return (length - p.local_window + p.chunk_size - 1) / p.chunk_size;
}

}  // namespace ftest
