// Every CPU op against its scalar oracle (common/reference.h), on odd shapes,
// under every instruction-set level this machine supports; plus the thread
// pool and the ISA selection.
//
//   cmake --build build-cpu --target cpu_ops_test && ./build-cpu/cpu_ops_test
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/reference.h"
#include "common/op_checks.h"
#include "common/testing.h"
#include "core/error.h"
#include "cpu/ops.h"

using namespace focus;
using cpu::Isa;

namespace {

constexpr double kTol = 1e-5;  // max|ours - ref| / max|ref| for float32 paths
const DType kDtypes[] = {DType::F32, DType::F16, DType::BF16};

std::vector<Isa> g_levels;  // levels this machine supports

// A weight of (rows, cols) in `t`, placed off the 64-byte grid like a tensor
// in a memory map.
struct HostWeight {
  std::vector<char> bytes;
  Weight w;
  HostWeight(int64_t rows, int64_t cols, DType t, ftest::Rng& rng, float scale = 1.0f) {
    const size_t es = dtype_size(t), off = es == 2 ? 2 : 4;
    bytes.resize(size_t(rows * cols) * es + 64 + off);
    char* base = bytes.data() + ((64 - reinterpret_cast<uintptr_t>(bytes.data()) % 64) % 64) + off;
    for (int64_t i = 0; i < rows * cols; ++i) store_from_f32(base, t, size_t(i), rng.uniform() * scale);
    w.data = base;
    w.dtype = t;
    w.rows = rows;
    w.cols = cols;
    w.name = "test.weight";
  }
};

std::vector<float> random_vec(size_t n, ftest::Rng& rng, float scale = 1.0f) {
  std::vector<float> v(n);
  for (float& x : v) x = rng.uniform() * scale;
  return v;
}

using ftest::throws_error;
using ftest::Worst;

// ---- conversions ------------------------------------------------------------------

bool same_bits_or_nan(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::memcmp(&a, &b, 4) == 0;
}

bool is_nan16(uint16_t h, DType t) {
  return t == DType::F16 ? (h & 0x7c00) == 0x7c00 && (h & 0x3ff) : (h & 0x7f80) == 0x7f80 && (h & 0x7f);
}

void test_conversions() {
  // Every 16-bit pattern, at an odd length and offset: bit-identical to dtype.h.
  std::vector<uint16_t> all(65536 + 3);
  for (int i = 0; i < 65536; ++i) all[size_t(i) + 1] = uint16_t(i);
  // Random float bit patterns (all exponents: subnormals, overflow, ties) and specials.
  ftest::Rng rng(7);
  std::vector<float> fl(100003);
  for (float& f : fl) {
    uint32_t u = uint32_t(rng.next());
    std::memcpy(&f, &u, 4);
  }
  const float specials[] = {0.0f, -0.0f, 65504.0f, 65520.0f, 65519.99f, 1e-8f, 2.98e-8f, 5.96e-8f, 6.1e-5f,
                            INFINITY, -INFINITY, NAN, 1.0f + 1.0f / 256, 1.0f + 3.0f / 256, 3.3895e38f};
  std::memcpy(fl.data(), specials, sizeof specials);
  for (Isa isa : g_levels) {
    cpu::set_isa(isa);
    for (DType t : {DType::F16, DType::BF16}) {
      std::vector<float> got(65536);
      cpu::to_f32(got.data(), all.data() + 1, t, 65536);
      int bad = 0;
      for (int i = 0; i < 65536; ++i)
        bad += !same_bits_or_nan(got[size_t(i)], load_as_f32(all.data() + 1, t, size_t(i)));
      ftest::check(bad == 0, str(cpu::isa_name(isa), ": to_f32 from ", dtype_name(t), ", all 65536 values"),
                   str(bad, " differ"));
      std::vector<uint16_t> mine(fl.size() + 1), ref(fl.size());
      cpu::from_f32(mine.data() + 1, fl.data(), t, int64_t(fl.size()));
      ref::from_f32(ref.data(), fl.data(), t, int64_t(fl.size()));
      bad = 0;
      for (size_t i = 0; i < fl.size(); ++i)
        bad += is_nan16(ref[i], t) ? !is_nan16(mine[i + 1], t) : mine[i + 1] != ref[i];
      ftest::check(bad == 0, str(cpu::isa_name(isa), ": from_f32 to ", dtype_name(t), ", ", fl.size(), " values"),
                   str(bad, " differ"));
    }
  }
}

// ---- matmul -------------------------------------------------------------------------

void test_matmul(cpu::ThreadPool& p1, cpu::ThreadPool& p3) {
  const int ms[] = {1, 2, 3, 4, 5, 7, 8, 9, 17, 64, 130};  // GEMV up to 8 rows, packed GEMM from 9
  const int nk[][2] = {{1, 1}, {15, 33}, {33, 15}, {100, 257}, {257, 100}, {40, 64}};
  Worst worst;
  ftest::Rng rng(11);
  for (DType t : kDtypes)
    for (int bias_mode = 0; bias_mode < 3; ++bias_mode)  // none, F32 bias, bias of the weight's dtype
      for (int acc = 0; acc < 2; ++acc)
        for (int m : ms)
          for (auto& s : nk) {
            const int N = s[0], K = s[1];
            HostWeight w(N, K, t, rng);
            HostWeight b(N, 1, bias_mode == 2 ? t : DType::F32, rng);
            const Weight* bias = bias_mode ? &b.w : nullptr;
            const std::vector<float> x = random_vec(size_t(m) * K, rng);
            const std::vector<float> init = random_vec(size_t(m) * N, rng);
            std::vector<float> want = init;
            ref::matmul(want.data(), x.data(), m, w.w, bias, acc);
            const std::string name =
                str("matmul ", dtype_name(t), bias_mode ? " +bias" : "", acc ? " accumulate" : "");
            for (Isa isa : g_levels) {
              cpu::set_isa(isa);
              std::vector<float> got = init;
              cpu::matmul((m + N) % 2 ? p3 : p1, got.data(), x.data(), m, w.w, bias, acc);
              worst.add(isa, name, ftest::rel_err(got.data(), want.data(), got.size()),
                        str("m=", m, " N=", N, " K=", K));
            }
          }
  worst.report(kTol);

  // matmul_group (decode's fused q/k/v and gate/up): every job's output has
  // the bits its own matmul gives, whatever range of the shared region its
  // rows fall in; jobs of different shapes, biases, and an m = 0 job. Through
  // the backend's row-split group as well (candidate rows, another weight).
  for (DType t : kDtypes)
    for (int m : {1, 3, 8, 9})
      for (int acc = 0; acc < 2; ++acc) {
        const int K = 100;
        const int Ns[] = {257, 33, 1, 64};
        std::vector<std::unique_ptr<HostWeight>> ws, bs;
        std::vector<std::vector<float>> init;
        const std::vector<float> x = random_vec(size_t(m) * K, rng);
        for (int j = 0; j < 4; ++j) {
          ws.push_back(std::make_unique<HostWeight>(Ns[j], K, t, rng));
          bs.push_back(std::make_unique<HostWeight>(Ns[j], 1, t, rng));
          init.push_back(random_vec(size_t(m) * Ns[j], rng));
        }
        for (Isa isa : g_levels) {
          cpu::set_isa(isa);
          std::vector<std::vector<float>> want = init, got = init;
          std::vector<cpu::MatmulJob> jobs;
          for (int j = 0; j < 4; ++j) {
            const int mj = j == 2 ? 0 : m;
            const Weight* bias = j % 2 ? &bs[size_t(j)]->w : nullptr;
            cpu::matmul(p1, want[size_t(j)].data(), x.data(), mj, ws[size_t(j)]->w, bias, acc);
            jobs.push_back({got[size_t(j)].data(), x.data(), mj, &ws[size_t(j)]->w, bias});
          }
          cpu::matmul_group(p3, jobs.data(), 4, acc);
          bool same = true;
          for (int j = 0; j < 4; ++j)
            same = same && std::memcmp(got[size_t(j)].data(), want[size_t(j)].data(), want[size_t(j)].size() * 4) == 0;
          ftest::check(same, str(cpu::isa_name(isa), ": matmul_group ", dtype_name(t), " m=", m,
                                 acc ? " accumulate" : "", " gives each job's matmul bits"));
        }
      }
  {
    auto be = make_cpu_backend(3);
    const int m = 5, split = 3, K = 64;
    HostWeight a1(40, K, DType::F16, rng), a2(40, K, DType::F16, rng), g(72, K, DType::BF16, rng),
        ab(40, 1, DType::F32, rng);
    const Weight none;
    const std::vector<float> x = random_vec(size_t(m) * K, rng);
    std::vector<float> oa(size_t(m) * 40), og(size_t(m) * 72), wa = oa, wg = og;
    be->matmul_split(wa.data(), x.data(), m, split, a1.w, &ab.w, a2.w, &none, Epilogue::Store);
    be->matmul(wg.data(), x.data(), m, g.w, nullptr, Epilogue::Store);
    const Backend::SplitJob jobs[2] = {{oa.data(), &a1.w, &ab.w, &a2.w, &none}, {og.data(), &g.w, nullptr, &g.w, nullptr}};
    be->matmul_split_group(x.data(), m, split, jobs, 2, Epilogue::Store);
    ftest::check(oa == wa && og == wg, "backend matmul_split_group: the bits of matmul_split and matmul");
  }

  // Bad shapes are Errors, not crashes.
  HostWeight w(8, 4, DType::F32, rng), b(5, 1, DType::F32, rng);
  std::vector<float> x(16), out(32);
  ftest::check(throws_error([&] { cpu::matmul(p1, out.data(), x.data(), 2, w.w, &b.w, false); }),
               "matmul: a bias of the wrong length throws an Error");
  Weight empty;
  ftest::check(throws_error([&] { cpu::matmul(p1, out.data(), x.data(), 2, empty, nullptr, false); }),
               "matmul: an empty weight throws an Error");
}

// ---- attention ------------------------------------------------------------------

struct SegSpec {
  int n_q, q_index, n_prefix;
};

void test_attention(cpu::ThreadPool& p1, cpu::ThreadPool& p3) {
  // Plain causal; queries after a cache; prefix + cache; candidate-style single
  // queries; the very first token; a long segment over a long prefix (several
  // key blocks, the prefix/main boundary inside a block).
  const SegSpec specs[] = {{37, 0, 0}, {7, 50, 0}, {9, 20, 5}, {1, 70, 12}, {1, 0, 0}, {130, 3, 67}};
  struct Config {
    int hd, heads, kv;
    DType main, prefix;
  };
  std::vector<Config> configs;
  for (int hd : {16, 64, 128})
    for (auto hk : {std::make_pair(4, 4), std::make_pair(8, 2), std::make_pair(8, 1)})
      for (DType t : kDtypes) configs.push_back({hd, hk.first, hk.second, t, DType::F32});
  configs.push_back({20, 6, 3, DType::F16, DType::BF16});  // head_dim not a multiple of any vector width
  configs.push_back({16, 6, 2, DType::F32, DType::F16});   // GQA 3: an odd group in the single-row path
  configs.push_back({64, 8, 2, DType::F32, DType::F16});
  configs.push_back({128, 32, 8, DType::BF16, DType::BF16});

  Worst worst;
  ftest::Rng rng(23);
  constexpr int kLayers = 2, kLayer = 1;
  for (const Config& c : configs) {
    const int kvd = c.kv * c.hd, qd = c.heads * c.hd;
    std::vector<HostWeight> bufs;  // keep the caches alive
    bufs.reserve(4 * std::size(specs));
    std::vector<AttnSegment> segs;
    int rows = 0;
    for (const SegSpec& sp : specs) {
      AttnSegment s{};
      s.q_row = rows;
      s.n_q = sp.n_q;
      s.q_index = sp.q_index;
      s.n_prefix = sp.n_prefix;
      const int n_main = sp.q_index + sp.n_q;
      bufs.emplace_back(int64_t(kLayers) * n_main, kvd, c.main, rng, 2.0f);
      s.k_main = bufs.back().w.data;
      bufs.emplace_back(int64_t(kLayers) * n_main, kvd, c.main, rng);
      s.v_main = bufs.back().w.data;
      s.main_layer_stride = int64_t(n_main) * kvd;
      s.main_dtype = int32_t(c.main);
      if (sp.n_prefix) {
        // Keys: one layer, stride 0 (rotated anew per layer by the runner);
        // values: all layers.
        bufs.emplace_back(sp.n_prefix, kvd, c.prefix, rng, 2.0f);
        s.k_prefix = bufs.back().w.data;
        s.prefix_k_layer_stride = 0;
        bufs.emplace_back(int64_t(kLayers) * sp.n_prefix, kvd, c.prefix, rng);
        s.v_prefix = bufs.back().w.data;
        s.prefix_v_layer_stride = int64_t(sp.n_prefix) * kvd;
      }
      s.prefix_dtype = int32_t(c.prefix);
      segs.push_back(s);
      rows += sp.n_q;
    }
    AttnArgs a;
    a.segs = a.segs_host = segs.data();
    a.n_seg = int(segs.size());
    a.n_rows = rows;
    a.n_heads = c.heads;
    a.n_kv_heads = c.kv;
    a.head_dim = c.hd;
    a.layer = kLayer;
    a.scale = float(1.0 / std::sqrt(double(c.hd)));
    const std::vector<float> q = random_vec(size_t(rows) * qd, rng, 2.0f);
    std::vector<float> want(size_t(rows) * qd);
    ref::attention(want.data(), q.data(), a);
    const std::string where = str("hd=", c.hd, " heads=", c.heads, "/", c.kv, " cache ", dtype_name(c.main),
                                  " prefix ", dtype_name(c.prefix));
    for (Isa isa : g_levels) {
      cpu::set_isa(isa);
      for (cpu::ThreadPool* p : {&p1, &p3}) {
        std::vector<float> got(want.size(), NAN);
        cpu::attention(*p, got.data(), q.data(), a);
        worst.add(isa, str("attention, GQA ", c.heads / c.kv, ", ", p->size(), " threads"),
                  ftest::rel_err(got.data(), want.data(), got.size()), where);
      }
    }
  }
  worst.report(kTol);

  AttnArgs bad;
  bad.n_heads = 6;
  bad.n_kv_heads = 4;
  bad.head_dim = 16;
  std::vector<float> x(96);
  ftest::check(throws_error([&] { cpu::attention(p1, x.data(), x.data(), bad); }),
               "attention: heads not a multiple of KV heads throws an Error");
}

// ---- row-wise and element-wise ops ------------------------------------------------

void test_elementwise(cpu::ThreadPool& p1, cpu::ThreadPool& p3) {
  ftest::Rng rng(31);
  Worst worst;
  // RMSNorm, also in place (out == x).
  for (DType t : kDtypes)
    for (int n : {1, 3, 17})
      for (int dim : {1, 15, 64, 100, 1027}) {
        HostWeight w(dim, 1, t, rng);
        const std::vector<float> x = random_vec(size_t(n) * dim, rng, 3.0f);
        std::vector<float> want(x.size());
        ref::rms_norm(want.data(), x.data(), w.w, n, 1e-5f);
        for (Isa isa : g_levels) {
          cpu::set_isa(isa);
          std::vector<float> got = x;
          cpu::rms_norm(n > 1 ? p3 : p1, got.data(), got.data(), w.w, n, 1e-5f);
          worst.add(isa, "rms_norm (in place)", ftest::rel_err(got.data(), want.data(), got.size()),
                    str(dtype_name(t), " n=", n, " dim=", dim));
        }
      }

  // Rotary table: angles in double, so bit-identical to the oracle, up to
  // positions past 400K.
  for (int hd : {2, 16, 34, 64, 128}) {
    std::vector<double> inv(size_t(hd / 2));
    for (int i = 0; i < hd / 2; ++i) inv[size_t(i)] = 1.0 / std::pow(500000.0, 2.0 * i / hd);
    const std::vector<int32_t> pos = {0, 1, 2, 7, 4095, 131071, 400000, 524287, 1000003};
    const int n = int(pos.size());
    std::vector<float> want(size_t(n) * hd), got(want.size());
    ref::rope_table(want.data(), pos.data(), n, inv.data(), hd);
    cpu::rope_table(p3, got.data(), pos.data(), n, inv.data(), hd);
    ftest::check(std::memcmp(got.data(), want.data(), got.size() * 4) == 0,
                 str("rope_table head_dim ", hd, ", positions to 1000003: identical to the oracle"));
    // Rotary on (n, 3 heads).
    const std::vector<float> x = random_vec(size_t(n) * 3 * hd, rng);
    std::vector<float> want_x = x;
    ref::rope(want_x.data(), n, 3, hd, want.data());
    for (Isa isa : g_levels) {
      cpu::set_isa(isa);
      std::vector<float> got_x = x;
      cpu::rope(p3, got_x.data(), n, 3, hd, want.data());
      worst.add(isa, "rope", ftest::rel_err(got_x.data(), want_x.data(), x.size()), str("head_dim=", hd));
    }
  }

  // SwiGLU over the whole range of exp, also in place (out == gate).
  for (int64_t n : {1, 15, 4097, 9001}) {
    std::vector<float> g = random_vec(size_t(n), rng, 30.0f), u = random_vec(size_t(n), rng, 2.0f);
    const float extremes[] = {-100.0f, 100.0f, -88.5f, 88.5f, 1e-3f, -1e-30f, 0.0f};
    // (Not alone in an array: silu(-100) ~ -4e-42 is below float's normal
    // range, and the error is measured relative to the largest output.)
    for (size_t i = 0; i < std::size(extremes) && n >= 15; ++i) g[size_t(n) - 1 - i] = extremes[i];
    std::vector<float> want(static_cast<size_t>(n));
    ref::swiglu(want.data(), g.data(), u.data(), n);
    for (Isa isa : g_levels) {
      cpu::set_isa(isa);
      std::vector<float> got = g;
      cpu::swiglu(p3, got.data(), got.data(), u.data(), n);
      worst.add(isa, "swiglu (in place)", ftest::rel_err(got.data(), want.data(), got.size()), str("n=", n));
    }
  }
  worst.report(kTol);

  // Exact ops: KV store (mixed destination dtypes, layer offsets), embedding,
  // row gather.
  for (Isa isa : g_levels) {
    cpu::set_isa(isa);
    const int n = 7, kvd = 33, layer = 2, layers = 3;
    const std::vector<float> k = random_vec(size_t(n) * kvd, rng), v = random_vec(size_t(n) * kvd, rng);
    std::vector<std::vector<char>> mine(2 * n), theirs(2 * n);
    std::vector<KvDst> dm(n), dr(n);
    for (int r = 0; r < n; ++r) {
      const DType t = kDtypes[r % 3];
      for (int j = 0; j < 2; ++j) {
        mine[size_t(2 * r + j)].assign(size_t(layers * kvd) * dtype_size(t) + 2, 0);
        theirs[size_t(2 * r + j)] = mine[size_t(2 * r + j)];
      }
      dm[size_t(r)] = KvDst{mine[size_t(2 * r)].data() + 2, mine[size_t(2 * r + 1)].data() + 2, kvd, int32_t(t), 0};
      dr[size_t(r)] = KvDst{theirs[size_t(2 * r)].data() + 2, theirs[size_t(2 * r + 1)].data() + 2, kvd, int32_t(t), 0};
    }
    cpu::kv_store(p3, k.data(), v.data(), dm.data(), n, kvd, layer);
    ref::kv_store(k.data(), v.data(), dr.data(), n, kvd, layer);
    ftest::check(mine == theirs, str(cpu::isa_name(isa), ": kv_store, F32/F16/BF16 rows at layer 2: identical"));

    for (DType t : kDtypes)
      for (int dim : {1, 33, 100}) {
        HostWeight table(50, dim, t, rng);
        const std::vector<int32_t> ids = {0, 49, 3, 3, 17, 25, 1, 48, 12};
        std::vector<float> got(ids.size() * size_t(dim)), want(got.size());
        cpu::embedding(p3, got.data(), table.w, ids.data(), int(ids.size()));
        ref::embedding(want.data(), table.w, ids.data(), int(ids.size()));
        ftest::check(got == want, str(cpu::isa_name(isa), ": embedding ", dtype_name(t), " dim ", dim, ": identical"));
      }
  }
  {
    HostWeight table(50, 8, DType::F16, rng);
    std::vector<float> out(16);
    const int32_t ids[] = {3, 50};
    ftest::check(throws_error([&] { cpu::embedding(p1, out.data(), table.w, ids, 2); }),
                 "embedding: an id past the table throws an Error");
    const std::vector<float> x = random_vec(40 * 13, rng);
    const int32_t rows[] = {39, 0, 7, 7};
    std::vector<float> got(4 * 13), want(4 * 13);
    cpu::gather_rows(p3, got.data(), x.data(), rows, 4, 13);
    ref::gather_rows(want.data(), x.data(), rows, 4, 13);
    ftest::check(got == want, "gather_rows: identical");
  }
}

// ---- thread pool ------------------------------------------------------------------

void test_thread_pool() {
  bool cover_ok = true, dyn_ok = true;
  for (int threads : {1, 2, 3, 5}) {
    cpu::ThreadPool pool(threads);
    for (auto ng : {std::make_pair(0, 1), std::make_pair(1, 1), std::make_pair(7, 1), std::make_pair(100, 3),
                    std::make_pair(1000, 64), std::make_pair(5, 10)}) {
      std::vector<std::atomic<int>> hits(size_t(ng.first));
      pool.parallel_for(ng.first, ng.second, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
      });
      for (auto& h : hits) cover_ok &= h.load() == 1;
      std::vector<std::atomic<int>> dyn(size_t(ng.first));
      pool.parallel_chunks(ng.first, [&](int64_t i) { dyn[size_t(i)]++; });
      for (auto& h : dyn) dyn_ok &= h.load() == 1;
    }
  }
  ftest::check(cover_ok, "thread pool: parallel_for covers every index exactly once (1, 2, 3, 5 threads)");
  ftest::check(dyn_ok, "thread pool: parallel_chunks runs every index exactly once");

  cpu::ThreadPool pool(3);
  auto throws_msg = [&](auto f, const char* msg) {
    try {
      f();
    } catch (const std::runtime_error& e) {
      return std::string(e.what()) == msg;
    }
    return false;
  };
  // Slow chunks, so that the workers certainly take some; those throw.
  const auto caller = std::this_thread::get_id();
  ftest::check(throws_msg([&] {
                 pool.parallel_chunks(40, [&](int64_t) {
                   std::this_thread::sleep_for(std::chrono::milliseconds(2));
                   if (std::this_thread::get_id() != caller) throw std::runtime_error("worker");
                 });
               }, "worker"),
               "thread pool: an exception on a worker thread is rethrown to the caller");
  ftest::check(throws_msg([&] { pool.run([](int w, int) { if (w == 2) throw std::runtime_error("w2"); }); }, "w2"),
               "thread pool: an exception in run() is rethrown");
  ftest::check(throws_msg([&] { pool.run([](int w, int) { if (w == 0) throw std::runtime_error("w0"); }); }, "w0"),
               "thread pool: an exception in the first chunk is rethrown");
  // Every chunk throws: one exception comes back, the region still ends.
  ftest::check(throws_msg([&] { pool.parallel_chunks(1000, [](int64_t) { throw std::runtime_error("all"); }); }, "all"),
               "thread pool: a region where every chunk throws ends with one exception");
  std::atomic<int> ran{0};
  ftest::check(throws_msg([&] { pool.parallel_chunks(100000, [&](int64_t i) { ran++; if (i == 57) throw std::runtime_error("i57"); }); },
                          "i57") && ran.load() < 100000,
               "thread pool: an exception in a chunk is rethrown, later chunks are skipped");
  std::atomic<int> count{0};
  pool.run([&](int, int) { count++; });
  ftest::check(count.load() == 3, "thread pool: usable after exceptions");

  // A region started from inside a region runs inline.
  std::vector<std::atomic<int>> nested(64);
  pool.run([&](int w, int n) {
    pool.parallel_for(64, 1, [&](int64_t b, int64_t e) {
      if (w == 0)
        for (int64_t i = b; i < e; ++i) nested[size_t(i)]++;
    });
  });
  bool nested_ok = true;
  for (auto& h : nested) nested_ok &= h.load() == 1;
  ftest::check(nested_ok, "thread pool: a nested parallel_for runs inline and covers every index");

  // Workers that went to sleep (idle longer than the spin) still wake up and
  // take chunks.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::mutex ids_mu;
  std::vector<std::thread::id> ids;
  pool.parallel_chunks(40, [&](int64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::lock_guard<std::mutex> lock(ids_mu);
    if (std::find(ids.begin(), ids.end(), std::this_thread::get_id()) == ids.end())
      ids.push_back(std::this_thread::get_id());
  });
  ftest::check(ids.size() >= 2, str("thread pool: sleeping workers wake up and take chunks (", ids.size(),
                                    " of 3 threads took part)"));

  // Back-to-back regions, as in decode: the spin phase keeps them cheap.
  cpu::ThreadPool pool2(2);
  std::atomic<int64_t> sum{0};
  const int kRegions = 20000;
  auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < kRegions; ++r) pool2.run([&](int w, int) { sum += w + 1; });
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / kRegions;
  // Timing is printed, not asserted: other processes share these cores.
  ftest::check(sum.load() == int64_t(kRegions) * 3,
               str("thread pool: ", kRegions, " back-to-back regions all ran (", us, " us each)"));
}

// ---- ISA selection ----------------------------------------------------------------

void test_isa() {
  Isa x;
  ftest::check(cpu::parse_isa("avx2", &x) && x == Isa::Avx2 && !cpu::parse_isa("sse9", &x) && !cpu::parse_isa("", &x),
               "parse_isa: known names only");
  ftest::check(cpu::isa_from_env(nullptr) == cpu::best_isa() && cpu::isa_from_env("") == cpu::best_isa(),
               str("FOCUSLLM_CPU_ISA unset: the best level, ", cpu::isa_name(cpu::best_isa())));
  ftest::check(cpu::isa_from_env("generic") == Isa::Generic, "FOCUSLLM_CPU_ISA=generic forces the generic kernels");
  ftest::check(throws_error([] { cpu::isa_from_env("avx1024"); }), "FOCUSLLM_CPU_ISA=avx1024 is an Error");
  for (Isa i : {Isa::Avx2, Isa::Avx512}) {
    if (cpu::isa_supported(i)) {
      ftest::check(cpu::isa_from_env(cpu::isa_name(i)) == i, str("FOCUSLLM_CPU_ISA=", cpu::isa_name(i), " accepted"));
    } else {
      ftest::check(throws_error([&] { cpu::isa_from_env(cpu::isa_name(i)); }) &&
                       throws_error([&] { cpu::set_isa(i); }),
                   str(cpu::isa_name(i), " is not supported here: asking for it is an Error"));
    }
  }
  cpu::set_isa(cpu::best_isa());
  auto be = make_cpu_backend(2);
  ftest::check(be->description() == str("CPU, 2 threads, ", cpu::isa_name(cpu::best_isa())),
               str("backend description names the kernels: \"", be->description(), "\""));
}

}  // namespace

int main() {
  for (Isa i : {Isa::Generic, Isa::Avx2, Isa::Avx512}) {
    if (cpu::isa_supported(i)) g_levels.push_back(i);
    else ftest::skip(str("op tests under ", cpu::isa_name(i)), "this build or CPU does not support it");
  }
  std::printf("levels tested:");
  for (Isa i : g_levels) std::printf(" %s", cpu::isa_name(i));
  std::printf("\n");
  try {
    cpu::ThreadPool p1(1), p3(3);
    test_isa();
    test_conversions();
    test_matmul(p1, p3);
    test_attention(p1, p3);
    test_elementwise(p1, p3);
    test_thread_pool();
  } catch (const std::exception& e) {
    ftest::fail(str("unexpected exception: ", e.what()));
  }
  return ftest::finish();
}
