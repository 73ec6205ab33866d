// CPU optimizer ops: AdamW and the squared norm used for gradient clipping.
#include <cmath>
#include <algorithm>
#include <vector>

#include "ops.h"

namespace focus::cpu {

void adamw(ThreadPool& pool, float* w, const float* g, float* m, float* v, int64_t n, const AdamWStep& s) {
  // Bias corrections in double: 1 - beta^t underflows float precision early.
  const double c1 = 1.0 - std::pow(double(s.beta1), double(s.t));
  const double c2 = 1.0 - std::pow(double(s.beta2), double(s.t));
  const float step = float(double(s.lr) / c1), inv_sqrt_c2 = float(1.0 / std::sqrt(c2));
  const float b1 = s.beta1, b2 = s.beta2, decay = s.lr * s.weight_decay, scale = s.grad_scale, eps = s.eps;
  pool.parallel_for(n, 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float gi = g[i] * scale;
      m[i] = b1 * m[i] + (1.0f - b1) * gi;
      v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
      // decoupled weight decay (AdamW): applied to the weight before the step
      w[i] -= decay * w[i] + step * m[i] / (std::sqrt(v[i]) * inv_sqrt_c2 + eps);
    }
  });
}

// Fixed blocks summed in order: the same result whatever the thread count or
// timing (a resumed run must reproduce the clipping of an uninterrupted one).
double sum_squares(ThreadPool& pool, const float* x, int64_t n) {
  constexpr int64_t kBlock = 1 << 15;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> part(size_t(std::max<int64_t>(blocks, 1)), 0.0);
  pool.parallel_chunks(blocks, [&](int64_t b) {
    double s = 0;
    for (int64_t i = b * kBlock; i < std::min(n, (b + 1) * kBlock); ++i) s += double(x[i]) * double(x[i]);
    part[size_t(b)] = s;
  });
  double total = 0;
  for (double p : part) total += p;
  return total;
}

}  // namespace focus::cpu
