// CPU training element-wise ops, on the 156M LLaMA's shapes (hidden 1024,
// 16 heads of 64, intermediate 2816, vocabulary 32000) for 512 tokens: each
// backward beside its forward, and cross_entropy. These ops stream a few
// arrays once, so the figure to read is the bandwidth they reach (bytes each
// element moves, over the median time).
//
//   bench_cpu_train_ops [--threads 1,2] [--tokens 512]
//
// One JSON object per line:
//   {"bench":"cpu_train_op","op":..,"isa":..,"threads":..,"tokens":..,"elements":..,
//    "median_ms":..,"ns_per_element":..,"gbps":..}
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "common/bench_util.h"
#include "common/testing.h"
#include "cpu/ops.h"

using namespace focus;

int main(int argc, char** argv) {
  std::vector<int> threads = {1, 2}, token_list = {512};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--threads") threads = ftest::bench::parse_list(argv[i + 1]);
    else if (a == "--tokens") token_list = ftest::bench::parse_list(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  const int dim = 1024, heads = 16, hd = 64, inter = 2816, vocab = 32000;
  const std::string mach = ftest::bench::json_escape(ftest::bench::machine());
  ftest::Rng rng(1);
  for (int n : token_list) {
    const int64_t big = int64_t(n) * std::max<int64_t>(inter, vocab);
    std::vector<float> a(static_cast<size_t>(big)), b(static_cast<size_t>(big)), c(static_cast<size_t>(big)), d(static_cast<size_t>(big)), e(static_cast<size_t>(big));
    for (float* v : {a.data(), b.data(), c.data()})
      for (int64_t i = 0; i < big; ++i) v[i] = rng.uniform(-4.0f, 4.0f);
    std::vector<uint16_t> wb(static_cast<size_t>(dim), 0x3f80);  // BF16 ones
    Weight w;
    w.data = wb.data();
    w.dtype = DType::BF16;
    w.rows = dim;
    w.cols = 1;
    std::vector<float> table(size_t(n) * hd), dw(static_cast<size_t>(dim)), dtable(size_t(vocab) * dim);
    std::vector<int32_t> pos(static_cast<size_t>(n)), ids(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      pos[size_t(i)] = i;
      ids[size_t(i)] = rng.below(vocab);
    }
    std::vector<double> inv(size_t(hd / 2)), losses(static_cast<size_t>(n));
    for (int i = 0; i < hd / 2; ++i) inv[size_t(i)] = 1.0 / std::pow(10000.0, 2.0 * i / hd);
    for (int t : threads) {
      cpu::ThreadPool pool(t);
      cpu::rope_table(pool, table.data(), pos.data(), n, inv.data(), hd);
      auto run = [&](const char* op, int64_t elements, int bytes_per_element, auto f) {
        const double s = ftest::bench::time_runs(f, 2, 51).median;
        std::printf(
            "{\"bench\":\"cpu_train_op\",\"machine\":\"%s\",\"op\":\"%s\",\"isa\":\"%s\",\"threads\":%d,"
            "\"tokens\":%d,\"elements\":%lld,\"median_ms\":%.4f,\"ns_per_element\":%.3f,\"gbps\":%.2f}\n",
            mach.c_str(), op, cpu::cpu_isa_name(), t, n, static_cast<long long>(elements), s * 1e3,
            s * 1e9 / double(elements), double(elements) * bytes_per_element / s * 1e-9);
        std::fflush(stdout);
      };
      const int64_t nd = int64_t(n) * dim, ni = int64_t(n) * inter, nv = int64_t(n) * vocab;
      run("rms_norm", nd, 8, [&] { cpu::rms_norm(pool, d.data(), a.data(), w, n, 1e-5f); });
      run("rms_norm_backward", nd, 24,
          [&] { cpu::rms_norm_backward(pool, d.data(), dw.data(), b.data(), a.data(), w, n, 1e-5f); });
      run("rope", nd, 8, [&] { cpu::rope(pool, d.data(), n, heads, hd, table.data()); });
      run("rope_backward", nd, 8, [&] { cpu::rope_backward(pool, d.data(), n, heads, hd, table.data()); });
      run("swiglu", ni, 12, [&] { cpu::swiglu(pool, d.data(), a.data(), b.data(), ni); });
      run("swiglu_backward", ni, 28,
          [&] { cpu::swiglu_backward(pool, d.data(), e.data(), c.data(), a.data(), b.data(), ni); });
      run("embedding_backward", nd, 12,
          [&] { cpu::embedding_backward(pool, dtable.data(), b.data(), ids.data(), n, dim); });
      run("cross_entropy", nv, 16, [&] {
        cpu::cross_entropy(pool, d.data(), losses.data(), a.data(), ids.data(), nullptr, n, vocab);
      });
    }
  }
  return 0;
}
