// CPU attention throughput on the shapes FocusLLM runs (16 query heads, 4 KV
// heads of 64, as the 156M LLaMA), against the FMA peak measured in the same
// run.
//
//   bench_cpu_attention [--threads 1,2] [--isa best|all|generic|avx2|avx512]
//
// Cases: prefill (512 causal rows), decode (1 row over 576 cached keys), a
// FocusLLM chunk (2048 + 513 causal rows, no cache), the local sequence
// (2048 rows over 200 candidate prefix keys), and parallel candidate decoding
// (100 chunks x 2 single-row segments over 2048 cached keys, F16 cache).
// Flops count 4 * head_dim per (query head, visible key): q·k and p·v.
//   {"bench":"cpu_attention","isa":..,"threads":..,"case":..,"median_ms":..,"gflops":..,"frac_peak":..}
#include <cstdio>
#include <string>
#include <vector>

#include "common/bench_util.h"
#include "common/testing.h"
#include "core/error.h"
#include "cpu/ops.h"

using namespace focus;

namespace {

using ftest::bench::machine;

struct Buf {
  std::vector<char> bytes;
  Buf(size_t n, DType t, ftest::Rng& rng) : bytes(n * dtype_size(t)) {
    for (size_t i = 0; i < n; ++i) store_from_f32(bytes.data(), t, i, rng.uniform());
  }
};

struct Case {
  std::string name;
  std::vector<AttnSegment> segs;
  std::vector<Buf> bufs;
  int rows = 0;
  double flops = 0;
};

constexpr int kHeads = 16, kKv = 4, kHd = 64, kKvd = kKv * kHd;

// Adds a segment of n_q rows after q_index cached keys (one layer, `t`), with
// n_prefix F32 prefix keys.
void add_segment(Case& c, int n_q, int q_index, int n_prefix, DType t, ftest::Rng& rng) {
  AttnSegment s{};
  s.q_row = c.rows;
  s.n_q = n_q;
  s.q_index = q_index;
  s.n_prefix = n_prefix;
  const size_t n_main = size_t(q_index + n_q) * kKvd;
  c.bufs.emplace_back(n_main, t, rng);
  s.k_main = c.bufs.back().bytes.data();
  c.bufs.emplace_back(n_main, t, rng);
  s.v_main = c.bufs.back().bytes.data();
  s.main_dtype = int32_t(t);
  if (n_prefix) {
    c.bufs.emplace_back(size_t(n_prefix) * kKvd, DType::F32, rng);
    s.k_prefix = c.bufs.back().bytes.data();
    c.bufs.emplace_back(size_t(n_prefix) * kKvd, DType::F32, rng);
    s.v_prefix = c.bufs.back().bytes.data();
  }
  s.prefix_dtype = int32_t(DType::F32);
  c.segs.push_back(s);
  c.rows += n_q;
  for (int i = 0; i < n_q; ++i) c.flops += 4.0 * kHd * kHeads * (n_prefix + q_index + i + 1);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> threads = {1, 2};
  std::string isa_arg = "best";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--threads") {
      threads = ftest::bench::parse_list(argv[i + 1]);
    } else if (a == "--isa") {
      isa_arg = argv[i + 1];
    } else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  std::vector<cpu::Isa> isas;
  for (cpu::Isa i : {cpu::Isa::Generic, cpu::Isa::Avx2, cpu::Isa::Avx512})
    if (cpu::isa_supported(i) && (isa_arg == "all" || isa_arg == cpu::isa_name(i) ||
                                  (isa_arg == "best" && i == cpu::best_isa())))
      isas.push_back(i);

  const std::string mach = machine();
  ftest::Rng rng(5);
  std::vector<Case> cases(5);
  cases[0].name = "prefill 512 causal, F32 cache";
  add_segment(cases[0], 512, 0, 0, DType::F32, rng);
  cases[1].name = "decode 1 row over 576 keys, F32 cache";
  add_segment(cases[1], 1, 575, 0, DType::F32, rng);
  cases[2].name = "chunk 2048+513 causal";
  add_segment(cases[2], 2561, 0, 0, DType::F32, rng);
  cases[3].name = "local 2048 rows over 200 candidates";
  add_segment(cases[3], 2048, 0, 200, DType::F32, rng);
  cases[4].name = "candidates: 100 chunks x 2 rows over 2048 keys, F16 cache";
  for (int k = 0; k < 100; ++k) {
    // As the runner lays out a FocusLLM step: the previous token (a row after
    // the cache) and the new candidate (one key further) share the chunk's cache.
    add_segment(cases[4], 1, 2049, 0, DType::F16, rng);
    AttnSegment s = cases[4].segs.back();
    s.q_row = cases[4].rows++;
    s.q_index = 2048;
    cases[4].segs.push_back(s);
    cases[4].flops += 4.0 * kHd * kHeads * 2049;
  }

  for (int nt : threads) {
    cpu::ThreadPool pool(nt);
    for (cpu::Isa isa : isas) {
      cpu::set_isa(isa);
      const double peak = ftest::bench::fma_peak_gflops(pool, 15);
      std::printf("{\"bench\":\"cpu_fma_peak\",\"machine\":\"%s\",\"isa\":\"%s\",\"threads\":%d,\"gflops\":%.1f}\n", mach.c_str(),
                  cpu::isa_name(isa), nt, peak);
      for (Case& c : cases) {
        AttnArgs a;
        a.segs = a.segs_host = c.segs.data();
        a.n_seg = int(c.segs.size());
        a.n_rows = c.rows;
        a.n_heads = kHeads;
        a.n_kv_heads = kKv;
        a.head_dim = kHd;
        a.scale = 0.125f;
        std::vector<float> q(size_t(c.rows) * kHeads * kHd), out(q.size());
        for (float& x : q) x = rng.uniform();
        // Median of >= 5 runs (~0.5 s, at most 31) after one warm-up.
        const double s = ftest::bench::time_runs([&] { cpu::attention(pool, out.data(), q.data(), a); }, 1, 31).median;
        const double gflops = c.flops / s * 1e-9;
        std::printf(
            "{\"bench\":\"cpu_attention\",\"machine\":\"%s\",\"isa\":\"%s\",\"threads\":%d,\"case\":\"%s\",\"median_ms\":%.3f,"
            "\"gflops\":%.1f,\"frac_peak\":%.3f}\n",
            mach.c_str(), cpu::isa_name(isa), nt, c.name.c_str(), s * 1e3, gflops, gflops / peak);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
