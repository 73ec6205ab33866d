// The training's compute-bound CPU ops on the 156M LLaMA's shapes (hidden
// 1024, 16 query heads / 4 KV heads of 64, intermediate 2816): the forward
// matmul, its backward (dX = dY·W and dW = dYᵀ·X through matmul_nn), and the
// training attention forward and backward (causal, T tokens), each as GFLOP/s
// and as a fraction of the FMA peak measured in the same run.
//
//   bench_cpu_train_gemm [--threads 2] [--tokens 1024]
//
// One JSON object per line:
//   {"bench":"cpu_train_gemm","op":..,"threads":..,"tokens":..,"median_ms":..,"gflops":..,"frac_peak":..}
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "common/bench_util.h"
#include "common/testing.h"
#include "cpu/ops.h"

using namespace focus;
using namespace ftest::bench;

int main(int argc, char** argv) {
  std::vector<int> threads = {2}, token_list = {1024};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--threads") threads = parse_list(argv[i + 1]);
    else if (a == "--tokens") token_list = parse_list(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  const std::string mach = machine();
  ftest::Rng rng(5);
  const int dim = 1024, inter = 2816, nh = 16, nkv = 4, hd = 64;
  for (int nt : threads) {
    cpu::ThreadPool pool(nt);
    const double peak = fma_peak_gflops(pool, 20);
    for (int T : token_list) {
      auto report = [&](const char* op, double flop, const Timing& tm) {
        const double gf = flop / tm.median * 1e-9;
        std::printf("{\"bench\":\"cpu_train_gemm\",\"machine\":\"%s\",\"op\":\"%s\",\"threads\":%d,\"tokens\":%d,"
                    "\"median_ms\":%.3f,\"gflops\":%.1f,\"frac_peak\":%.3f,\"fma_peak_gflops\":%.1f}\n",
                    json_escape(mach).c_str(), op, nt, T, tm.median * 1e3, gf, gf / peak, peak);
        std::fflush(stdout);
      };
      auto randv = [&](size_t n) {
        std::vector<float> v(n);
        for (float& x : v) x = rng.uniform() - 0.5f;
        return v;
      };
      // gate/up shape: (T, dim) · (inter, dim)ᵀ
      std::vector<float> x = randv(size_t(T) * dim), w = randv(size_t(inter) * dim), y(size_t(T) * inter);
      std::vector<float> dy = randv(size_t(T) * inter), dx(size_t(T) * dim), dw(size_t(inter) * dim);
      Weight W{w.data(), DType::F32, inter, dim, "w"};
      const double mm = 2.0 * T * dim * inter;
      report("matmul forward (x·Wᵀ)", mm, time_runs([&] { cpu::matmul(pool, y.data(), x.data(), T, W, nullptr, false); }, 1, 5));
      report("matmul dX (dY·W)", mm, time_runs([&] { cpu::matmul_backward(pool, dx.data(), nullptr, nullptr, dy.data(), x.data(), T, W); }, 1, 5));
      report("matmul dW (dYᵀ·X)", mm, time_runs([&] { cpu::matmul_backward(pool, nullptr, dw.data(), nullptr, dy.data(), x.data(), T, W); }, 1, 5));
      // causal attention over T tokens
      std::vector<float> q = randv(size_t(T) * nh * hd), k = randv(size_t(T) * nkv * hd), v = randv(size_t(T) * nkv * hd);
      std::vector<float> o(q.size()), lse(size_t(T) * nh), dout = randv(q.size()), dq(q.size()), dk(k.size()), dv(v.size());
      cpu::TrainAttnSeq seq{0, T, 0, T, 0};
      const float scale = 1.0f / std::sqrt(float(hd));
      const double att = 4.0 * nh * hd * (double(T) * (T + 1) / 2);  // QKᵀ and PV, causal
      report("attention forward", att, time_runs([&] {
               cpu::attention_train_forward(pool, o.data(), lse.data(), q.data(), k.data(), v.data(), &seq, 1, nh, nkv, hd, scale);
             }, 1, 5));
      // backward: recomputed QKᵀ, dP, dQ, dK, dV = 5 products (2.5x the forward's)
      report("attention backward (5 products)", 2.5 * att, time_runs([&] {
               cpu::attention_train_backward(pool, dq.data(), dk.data(), dv.data(), dout.data(), o.data(), lse.data(), q.data(),
                                             k.data(), v.data(), &seq, 1, nh, nkv, hd, scale);
             }, 1, 5));
    }
  }
  return 0;
}
