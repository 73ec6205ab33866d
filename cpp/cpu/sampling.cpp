// Token sampling on the CPU (see SampleParams in core/backend.h): the rule of
// lib/sampling.ts (its reference, which says why it is written three times),
// with the weights in double; test/sampling.test.ts checks that both draw the
// same tokens from the same logits and uniforms. cuda/sampling.cu is the same
// rule on the GPU.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "ops.h"

namespace focus::cpu {

namespace {

int argmax_row(const float* l, int vocab) {
  int best = 0;
  for (int i = 1; i < vocab; ++i)
    if (l[i] > l[best]) best = i;
  return best;
}

int sample_row(const float* l, int vocab, const SampleParams& p, float u) {
  if (p.temperature == 0.0f) return argmax_row(l, vocab);
  const double mx = l[argmax_row(l, vocab)];
  const double inv_t = 1.0 / double(p.temperature);
  auto weight = [&](int i) { return std::exp((double(l[i]) - mx) * inv_t); };
  std::vector<uint8_t> keep(static_cast<size_t>(vocab), 1);
  const bool top_k = p.top_k > 0 && p.top_k < vocab;
  if (top_k || p.top_p < 1.0f) {
    // The kept set is a prefix of the order "descending logit, ties to the
    // lower index": top-k cuts it at k, top-p where its mass reaches top_p.
    auto before = [&](int a, int b) { return l[a] > l[b] || (l[a] == l[b] && a < b); };
    std::vector<int> idx(static_cast<size_t>(vocab));
    std::iota(idx.begin(), idx.end(), 0);
    const int k = top_k ? p.top_k : vocab;
    if (top_k) std::nth_element(idx.begin(), idx.begin() + (k - 1), idx.end(), before);
    int n_kept = k;
    if (p.top_p < 1.0f) {
      double total = 0;
      for (int i = 0; i < k; ++i) total += weight(idx[size_t(i)]);
      // Sort a growing prefix only as far as needed: the mass usually sits in
      // the first few tokens.
      int sorted = 0;
      double acc = 0;
      for (int i = 0; i < k; ++i) {
        if (i == sorted) {
          const int next = std::min(k, std::max(64, sorted * 8));
          std::partial_sort(idx.begin() + sorted, idx.begin() + next, idx.begin() + k, before);
          sorted = next;
        }
        acc += weight(idx[size_t(i)]);
        if (acc >= double(p.top_p) * total) {
          n_kept = i + 1;
          break;
        }
      }
    }
    std::fill(keep.begin(), keep.end(), 0);
    for (int i = 0; i < n_kept; ++i) keep[size_t(idx[size_t(i)])] = 1;
  }
  // The draw: inverse CDF over the kept tokens in index order.
  double total = 0;
  int last = 0;
  for (int i = 0; i < vocab; ++i)
    if (keep[size_t(i)]) total += weight(i), last = i;
  const double target = double(u) * total;
  double acc = 0;
  for (int i = 0; i < vocab; ++i) {
    if (!keep[size_t(i)]) continue;
    acc += weight(i);
    if (acc >= target) return i;
  }
  return last;
}

}  // namespace

void sample(ThreadPool& pool, int32_t* out, const float* logits, int rows, int vocab, const SampleParams& p,
            const float* uniforms) {
  pool.parallel_for(rows, 1, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) out[r] = sample_row(logits + r * vocab, vocab, p, uniforms[r]);
  });
}

}  // namespace focus::cpu
