// The training loss: cross-entropy of rows of logits against target tokens,
// with its gradient (the logits are read once for the max, once for the
// exponentials, and the gradient is written over them).
#include <algorithm>
#include <cmath>

#include "../core/error.h"
#include "ops.h"

namespace focus::cpu {

// Per row, with mx = max_j l_j (subtracted so that no exp overflows, whatever
// the logits' range) and S = Σ_j exp(l_j - mx):
//   loss = mx + log S - l_t,  dl_j = (exp(l_j - mx) / S - [j == t]) * weight.
// The exponentials come from the kernels' vectorised exp in chunks of kChunk,
// each chunk summed in float (a few dozen terms per lane) and the chunk sums
// in double: with V ~ 32K-128K terms one float sum would lose ~1e-4 of the
// loss. They are stored in dlogits on the way (float is plenty for a
// probability), then scaled in place, so dlogits may be logits itself.
// dlogits null = loss only (evaluation); weights null = 1.
void cross_entropy(ThreadPool& pool, float* dlogits, double* losses, const float* logits, const int32_t* targets,
                   const float* weights, int n, int V) {
  FOCUS_CHECK(n >= 0 && V > 0, "cross_entropy: bad shape (", n, ", ", V, ")");
  // All targets first: nothing is written (and aliased logits are intact)
  // when one is bad.
  for (int r = 0; r < n; ++r)
    FOCUS_CHECK(targets[r] >= 0 && targets[r] < V, "cross_entropy: target ", targets[r], " at row ", r,
                " is out of range (vocabulary of ", V, ")");
  const Kernels& K = kernels();
  constexpr int kChunk = 256;
  // A row of 32K logits is ~30 us: one row per part is worth a wake-up.
  pool.parallel_for(n, 1, [&](int64_t b, int64_t e) {
    float scratch[kChunk];
    for (int64_t r = b; r < e; ++r) {
      const float* l = logits + r * V;
      const int t = targets[r];
      const float lt = l[t];  // read before dlogits (maybe l) is overwritten
      float mx = l[0];
      for (int j = 1; j < V; ++j) mx = l[j] > mx ? l[j] : mx;
      float* d = dlogits ? dlogits + r * V : nullptr;
      double S = 0;
      for (int j = 0; j < V; j += kChunk) {
        const int c = std::min(kChunk, V - j);
        S += K.exp_sub_sum(d ? d + j : scratch, l + j, c, 1.0f, mx);
      }
      if (d) {
        const float wt = weights ? weights[r] : 1.0f;
        const float scale = float(double(wt) / S);
        for (int j = 0; j < V; ++j) d[j] *= scale;
        d[t] -= wt;
      }
      if (losses) losses[r] = double(mx) + std::log(S) - double(lt);
    }
  });
}

}  // namespace focus::cpu
