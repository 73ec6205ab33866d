// The training loss: cross-entropy of rows of logits against target tokens,
// with its gradient, in one pass per row (the logits are read once for the
// max, once for the exponentials, and the gradient is written over them).
#include <algorithm>
#include <cmath>

#include "../core/error.h"
#include "ops.h"

namespace focus::cpu {

// Per row, with mx = max_j l_j (subtracted so that no exp overflows, whatever
// the logits' range) and S = Σ_j exp(l_j - mx):
//   loss = mx + log S - l_t,  dl_j = (exp(l_j - mx) / S - [j == t]) * weight.
// S is summed in double: with V ~ 32K-128K terms a float sum would lose ~1e-4
// of the loss's last digits. The exponentials are stored in dlogits on the way
// (float is plenty for a probability), then scaled in place, so dlogits may
// be logits itself. dlogits null = loss only (evaluation); weights null = 1.
void cross_entropy(ThreadPool& pool, float* dlogits, double* losses, const float* logits, const int32_t* targets,
                   const float* weights, int n, int V) {
  FOCUS_CHECK(n >= 0 && V > 0, "cross_entropy: bad shape (", n, ", ", V, ")");
  // All targets first: nothing is written (and aliased logits are intact)
  // when one is bad.
  for (int r = 0; r < n; ++r)
    FOCUS_CHECK(targets[r] >= 0 && targets[r] < V, "cross_entropy: target ", targets[r], " at row ", r,
                " is out of range (vocabulary of ", V, ")");
  // A row of 32K logits is ~100 us of exps: one row per part is worth it.
  pool.parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* l = logits + r * V;
      const int t = targets[r];
      const float lt = l[t];  // read before dlogits (maybe l) is overwritten
      float mx = l[0];
      for (int j = 1; j < V; ++j) mx = std::max(mx, l[j]);
      double S = 0;
      if (dlogits) {
        float* d = dlogits + r * V;
        for (int j = 0; j < V; ++j) {
          const float p = std::exp(l[j] - mx);
          d[j] = p;
          S += p;
        }
        const float wt = weights ? weights[r] : 1.0f;
        const float scale = float(double(wt) / S);
        for (int j = 0; j < V; ++j) d[j] *= scale;
        d[t] -= wt;
      } else {
        for (int j = 0; j < V; ++j) S += std::exp(l[j] - mx);
      }
      if (losses) losses[r] = double(mx) + std::log(S) - double(lt);
    }
  });
}

}  // namespace focus::cpu
