// The GEMM (cuda/gemm.cuh) against a float64 host reference computed from the
// same rounded 16-bit inputs: many shapes (m from 1 to 1000, the test models'
// small n and k, the LLaMA-7B projections), every epilogue, bias on and off,
// the row split at 0, inside a tile and at m, BF16 and F16, padded leading
// dimensions; then every kernel forced on its own (the plan only picks some
// of them per shape), split-K, the fallback on odd k and misaligned pointers,
// and the argument checks.
//
// Outputs are poisoned first (NaN bytes): an unwritten element fails; the
// columns between n and ldo must stay poisoned; the padding of x between k
// and ldx is NaN, so reading it fails too. Add starts from random contents
// that the reference adds.
//
// Skipped (exit 77) without a device. FOCUSLLM_TEST_SMALL=1 keeps only small
// problems (for compute-sanitizer runs).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../../cuda/common.cuh"
#include "../../cuda/gemm_impl.cuh"
#include "common/testing.h"
#include "core/dtype.h"
#include "core/error.h"

using focus::DType;
using focus::str;
using namespace focus::cuda;

namespace {

const bool kSmall = std::getenv("FOCUSLLM_TEST_SMALL") != nullptr;

uint16_t to16(float f, DType t) { return t == DType::BF16 ? focus::f32_to_bf16(f) : focus::f32_to_f16(f); }
float from16(uint16_t h, DType t) { return t == DType::BF16 ? focus::bf16_to_f32(h) : focus::f16_to_f32(h); }

// Device memory for a scope; `offset` bytes into the allocation (misalignment tests).
struct DevBuf {
  char* base = nullptr;
  size_t offset = 0;
  explicit DevBuf(size_t bytes, size_t off = 0) : offset(off) {
    CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&base), std::max<size_t>(bytes + off, 16)));
  }
  ~DevBuf() { cudaFree(base); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  void* p() const { return base + offset; }
};

// A 16-bit matrix (rows, cols) with row stride ld: host values as float (exactly
// representable in the type), its device copy; padding columns hold NaN.
struct Mat {
  int rows = 0, cols = 0;
  int64_t ld = 0;
  std::vector<float> v;  // (rows, cols) dense
  std::unique_ptr<DevBuf> dev;
  Mat(ftest::Rng& rng, int r, int c, int64_t ld_, DType t, float scale, size_t misalign = 0)
      : rows(r), cols(c), ld(ld_), v(size_t(r) * size_t(c)) {
    std::vector<uint16_t> raw(size_t(r) * size_t(ld), 0xFFFF);
    for (int i = 0; i < r; ++i)
      for (int j = 0; j < c; ++j) {
        const uint16_t h = to16(rng.uniform(-scale, scale), t);
        raw[size_t(i) * size_t(ld) + size_t(j)] = h;
        v[size_t(i) * size_t(c) + size_t(j)] = from16(h, t);
      }
    dev = std::make_unique<DevBuf>(raw.size() * 2, misalign);
    CUDA_CHECK(cudaMemcpy(dev->p(), raw.data(), raw.size() * 2, cudaMemcpyHostToDevice));
  }
  const float* row(int i) const { return v.data() + size_t(i) * size_t(cols); }
};

// The weights of one (n, k, dtype): w, w2 (n, k), bias, bias2 (n). Weights
// are scaled by 1/sqrt(k) so that sums stay O(1), like the bias and the Add
// contents: a wrong or missing term of any of them is a visible error.
struct Weights {
  int n, k;
  DType t;
  Mat w, w2, b, b2;
  Weights(ftest::Rng& rng, int n_, int k_, DType t_, size_t misalign = 0)
      : n(n_), k(k_), t(t_),
        w(rng, n_, k_, k_, t_, 1.0f / std::sqrt(float(k_)), misalign),
        w2(rng, n_, k_, k_, t_, 1.0f / std::sqrt(float(k_)), misalign),
        b(rng, 1, n_, n_, t_, 0.5f),
        b2(rng, 1, n_, n_, t_, 0.5f) {}
};

// One GEMM to check.
struct Case {
  int m = 1;
  int split = -1;  // -1: no w2; else rows [split, m) use w2
  GemmEpilogue epi = GemmEpilogue::Store;
  bool bias = false;
  int ldo_pad = 0;
  int out_shift = 0;  // out starts this many elements into its allocation (pairs misaligned)
  bool workspace = true;
  GemmPlan plan;        // used when forced
  bool forced = false;  // gemm_run(plan) instead of gemm()
};

const char* epi_name(GemmEpilogue e) {
  return e == GemmEpilogue::Store ? "store" : e == GemmEpilogue::Add ? "add" : "f32";
}

std::string describe(const Weights& W, const Mat& x, const Case& c) {
  return str(focus::dtype_name(W.t), " m=", c.m, " n=", W.n, " k=", W.k, " ldx=", x.ld, " ldo=n+", c.ldo_pad,
             c.out_shift ? " out+1" : "", " ", epi_name(c.epi), c.bias ? " bias" : "",
             c.split < 0 ? "" : str(" split=", c.split), c.workspace ? "" : " no-workspace",
             c.forced ? str(" [", gemm_kernel_name(c.plan.kernel), " splitk=", c.plan.splits, "]") : "");
}

// Rows whose every column the reference checks: all of them up to 64 rows,
// else tile edges, the split's neighbours, the last rows and a few random ones.
std::vector<int> sample_rows(int m, int split, ftest::Rng& rng) {
  std::vector<int> r;
  if (m <= 64) {
    for (int i = 0; i < m; ++i) r.push_back(i);
    return r;
  }
  for (int i : {0, 1, 15, 16, 17, 31, 32, 63, 64, 65, 127, 128, 129, 255, 256, m - 2, m - 1}) r.push_back(i);
  if (split >= 0)
    for (int d = -2; d <= 1; ++d) r.push_back(split + d);
  for (int i = 0; i < 8; ++i) r.push_back(rng.below(m));
  std::sort(r.begin(), r.end());
  r.erase(std::unique(r.begin(), r.end()), r.end());
  r.erase(std::remove_if(r.begin(), r.end(), [&](int i) { return i < 0 || i >= m; }), r.end());
  return r;
}

struct Result {
  double err = 0;      // max|got - ref| / max|ref| over the sampled rows
  std::string defect;  // poison left, padding written, NaN, ...
};

Result run_case(const Weights& W, const Mat& x, const Case& c, void* workspace, ftest::Rng& rng) {
  const int m = c.m, n = W.n, k = W.k;
  const bool f32 = c.epi == GemmEpilogue::StoreF32;
  const size_t es = f32 ? 4 : 2;
  const int64_t ldo = n + c.ldo_pad;
  const size_t out_elems = size_t(std::max(m, 1)) * size_t(ldo);

  // Output: poison everywhere; Add: random old contents in the n columns.
  std::vector<uint8_t> out_raw(out_elems * es, 0xFF);
  std::vector<float> old(size_t(m) * size_t(n), 0.0f);
  if (c.epi == GemmEpilogue::Add)
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        const uint16_t h = to16(rng.uniform(-1.0f, 1.0f), W.t);
        std::memcpy(&out_raw[(size_t(i) * size_t(ldo) + size_t(j)) * 2], &h, 2);
        old[size_t(i) * size_t(n) + size_t(j)] = from16(h, W.t);
      }
  DevBuf out(out_raw.size(), size_t(c.out_shift) * es);
  CUDA_CHECK(cudaMemcpy(out.p(), out_raw.data(), out_raw.size(), cudaMemcpyHostToDevice));

  GemmArgs a;
  a.x = x.dev->p();
  a.ldx = x.ld;
  a.w = W.w.dev->p();
  a.bias = c.bias ? W.b.dev->p() : nullptr;
  if (c.split >= 0) {
    a.w2 = W.w2.dev->p();
    a.bias2 = c.bias ? W.b2.dev->p() : nullptr;
    a.split = c.split;
  }
  a.out = out.p();
  a.ldo = ldo;
  a.m = m;
  a.n = n;
  a.k = k;
  a.epilogue = c.epi;
  a.dtype = W.t;
  if (c.workspace) {
    a.workspace = workspace;
    a.workspace_bytes = kGemmWorkspaceBytes;
  }
  if (c.forced) gemm_run(a, c.plan, nullptr);
  else gemm(a, nullptr);
  CUDA_CHECK(cudaStreamSynchronize(nullptr));
  CUDA_CHECK(cudaGetLastError());
  CUDA_CHECK(cudaMemcpy(out_raw.data(), out.p(), out_raw.size(), cudaMemcpyDeviceToHost));

  Result res;
  auto got = [&](int i, int j) -> float {
    const size_t o = size_t(i) * size_t(ldo) + size_t(j);
    if (f32) {
      float f;
      std::memcpy(&f, &out_raw[o * 4], 4);
      return f;
    }
    uint16_t h;
    std::memcpy(&h, &out_raw[o * 2], 2);
    return from16(h, W.t);
  };
  // Every element: written and finite; every padding column: untouched.
  for (int i = 0; i < m && res.defect.empty(); ++i) {
    for (int j = 0; j < n; ++j)
      if (!std::isfinite(got(i, j))) {
        res.defect = str("element (", i, ", ", j, ") is ", got(i, j), " (unwritten or overflowed)");
        break;
      }
    for (int64_t j = n; j < ldo; ++j)
      for (size_t b = 0; b < es; ++b)
        if (out_raw[(size_t(i) * size_t(ldo) + size_t(j)) * es + b] != 0xFF) {
          res.defect = str("padding column ", j, " of row ", i, " was written");
          break;
        }
  }
  if (!res.defect.empty() || m == 0) return res;

  // Reference over the sampled rows, all columns, in parallel.
  const std::vector<int> rows = sample_rows(m, c.split, rng);
  std::vector<double> ref(rows.size() * size_t(n));
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t ri; (ri = next.fetch_add(1)) < rows.size();) {
      const int i = rows[ri];
      const bool second = c.split >= 0 && i >= c.split;
      const Mat& w = second ? W.w2 : W.w;
      const Mat& b = second ? W.b2 : W.b;
      const float* xr = x.row(i);
      for (int j = 0; j < n; ++j) {
        const float* wr = w.row(j);
        double s = 0;
        for (int kk = 0; kk < k; ++kk) s += double(xr[kk]) * double(wr[kk]);
        if (c.bias) s += double(b.v[size_t(j)]);
        if (c.epi == GemmEpilogue::Add) s += double(old[size_t(i) * size_t(n) + size_t(j)]);
        ref[ri * size_t(n) + size_t(j)] = s;
      }
    }
  };
  const unsigned threads = std::min<unsigned>(std::max(1u, std::thread::hardware_concurrency()), 16);
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads && double(rows.size()) * n * k > 4e6; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();

  double md = 0, mr = 0;
  for (size_t ri = 0; ri < rows.size(); ++ri)
    for (int j = 0; j < n; ++j) {
      const double r = ref[ri * size_t(n) + size_t(j)];
      md = std::max(md, std::fabs(double(got(rows[ri], j)) - r));
      mr = std::max(mr, std::fabs(r));
    }
  res.err = mr > 0 ? md / mr : md;
  return res;
}

// Tolerance of max|err| / max|ref|: the output's rounding (2^-9 bf16, 2^-12
// f16, relative to each element, so at most that relative to max|ref|) plus
// float32 accumulation noise; StoreF32 has only the latter.
double tolerance(DType t, GemmEpilogue e) {
  if (e == GemmEpilogue::StoreF32) return 1e-4;
  return t == DType::BF16 ? 6e-3 : 1.5e-3;
}

// A group of cases reported as one line (its worst case), plus a line per failure.
struct Group {
  std::string name;
  int count = 0, failed = 0;
  double worst = 0;  // err / tol
  std::string worst_what;
  void add(const std::string& what, const Result& r, double tol) {
    ++count;
    const bool ok = r.defect.empty() && r.err <= tol;
    if (!ok) {
      ++failed;
      const std::string why = r.defect.empty() ? str(" rel err ", r.err, " > tol ", tol) : ": " + r.defect;
      if (failed <= 20) ftest::fail(str(name, ": ", what, why));
    }
    if (r.err / tol >= worst) {
      worst = r.err / tol;
      worst_what = what;
    }
  }
  void error(const std::string& what, const std::exception& e) {
    ++count;
    if (++failed <= 20) ftest::fail(str(name, ": ", what, ": threw ", e.what()));
  }
  void finish() {
    if (failed == 0 && count > 0)
      ftest::pass(str(name, ": ", count, " cases, worst err/tol ", worst, " (", worst_what, ")"));
    else if (failed > 20)
      ftest::fail(str(name, ": ", failed, " of ", count, " cases failed (first 20 listed)"));
  }
};

void check_case(Group& g, const Weights& W, const Mat& x, const Case& c, void* ws, ftest::Rng& rng) {
  const std::string what = describe(W, x, c);
  try {
    g.add(what, run_case(W, x, c, ws, rng), tolerance(W.t, c.epi));
  } catch (const std::exception& e) {
    g.error(what, e);
    cudaGetLastError();  // a launch error must not leak into the next case
  }
}

std::vector<int> split_points(int m) {
  std::vector<int> s{-1, 0};
  if (m >= 2) s.push_back(std::min(m - 1, m / 2 + 5));  // inside a tile: never a multiple of 16 here
  s.push_back(m);
  return s;
}

// The plan's choices over the test models' and LLaMA-7B's shapes.
void test_shapes(DType t, void* ws, ftest::Rng& rng) {
  struct Shape {
    int n, k;
  };
  std::vector<Shape> shapes{{64, 64}, {160, 64}, {64, 160}, {512, 64}, {1000, 72}, {32, 64}};
  if (!kSmall) {
    shapes.push_back({4096, 4096});
    shapes.push_back({11008, 4096});
    shapes.push_back({4096, 11008});
  }
  const std::vector<int> ms = kSmall ? std::vector<int>{1, 17, 129} : std::vector<int>{1, 2, 3, 17, 64, 129, 1000};
  const GemmEpilogue epis[3] = {GemmEpilogue::Store, GemmEpilogue::Add, GemmEpilogue::StoreF32};
  int rot = 0;
  for (const Shape& s : shapes) {
    Group g{str("gemm ", focus::dtype_name(t), " n=", s.n, " k=", s.k)};
    Weights W(rng, s.n, s.k, t);
    const int max_m = ms.back();
    Mat x(rng, max_m, s.k, s.k, t, 1.0f), xpad(rng, max_m, s.k, s.k + 8, t, 1.0f);
    const bool big = int64_t(s.n) * s.k > 1000000;
    for (int m : ms) {
      if (!big && !kSmall) {
        // Every combination on the small shapes.
        for (int split : split_points(m))
          for (GemmEpilogue e : epis)
            for (bool bias : {false, true}) {
              ++rot;
              Case c;
              c.m = m, c.split = split, c.epi = e, c.bias = bias;
              c.ldo_pad = rot % 3 == 0 ? 3 : rot % 3 == 1 ? 0 : 8;
              c.out_shift = rot % 5 == 1;
              c.workspace = rot % 4 != 0;
              check_case(g, W, rot % 2 ? xpad : x, c, ws, rng);
            }
      } else {
        // One rotating combination per m on the big shapes (and in small mode).
        for (int rep = 0; rep < (big ? 1 : 2); ++rep) {
          ++rot;
          const std::vector<int> sp = split_points(m);
          Case c;
          c.m = m, c.split = sp[size_t(rot) % sp.size()], c.epi = epis[rot % 3], c.bias = rot % 2 == 0;
          c.ldo_pad = rot % 5 == 0 ? 1 : 0;
          c.out_shift = rot % 5 == 3;
          c.workspace = rot % 7 != 0;
          check_case(g, W, rot % 3 == 0 ? xpad : x, c, ws, rng);
        }
      }
    }
    g.finish();
  }
}

// Every kernel on its own, with and without split-K, across tile edges.
void test_forced_kernels(DType t, void* ws, ftest::Rng& rng) {
  struct P {
    int m, n, k;
  };
  std::vector<P> probs{{1, 64, 64}, {17, 160, 64}, {129, 1000, 72}, {300, 264, 1024}, {47, 520, 640}};
  if (!kSmall) probs.push_back({257, 264, 4096});
  for (int ki = 0; ki < int(GemmKernel::Count); ++ki) {
    const GemmKernel kern = GemmKernel(ki);
    Group g{str("kernel ", gemm_kernel_name(kern), " ", focus::dtype_name(t))};
    int rot = ki;
    std::string why;
    {
      // Usability does not depend on the shape for aligned arguments.
      Weights W(rng, 64, 64, t);
      Mat x(rng, 1, 64, 64, t, 1.0f);
      GemmArgs a;
      a.x = x.dev->p(), a.ldx = 64, a.w = W.w.dev->p(), a.m = 1, a.n = 64, a.k = 64, a.dtype = t;
      if (!gemm_kernel_usable(kern, a, &why)) {
        ftest::skip(g.name, why);
        continue;
      }
    }
    for (const P& pr : probs) {
      Weights W(rng, pr.n, pr.k, t);
      Mat x(rng, pr.m, pr.k, pr.k + 8, t, 1.0f);
      for (int splits : {1, 3}) {
        if (splits > 1 && kern == GemmKernel::Simt) continue;
        for (int split : {-1, std::min(pr.m - 1, pr.m / 2 + 3)}) {
          ++rot;
          Case c;
          c.m = pr.m, c.split = split, c.bias = rot % 2 == 0;
          c.epi = rot % 3 == 0 ? GemmEpilogue::Store : rot % 3 == 1 ? GemmEpilogue::Add : GemmEpilogue::StoreF32;
          c.ldo_pad = rot % 4 == 0 ? 1 : 0;
          c.out_shift = rot % 4 == 2;
          c.forced = true;
          c.plan.kernel = kern;
          c.plan.splits = splits;
          check_case(g, W, x, c, ws, rng);
        }
      }
    }
    g.finish();
  }
}

// Odd k, odd ldx and misaligned pointers: the plan must fall back, correctly;
// forcing a tensor-core kernel on them must throw.
void test_fallback(DType t, void* ws, ftest::Rng& rng) {
  Group g{str("fallback ", focus::dtype_name(t))};
  struct P {
    int m, n, k, ldx_pad;
    size_t misalign_x, misalign_w;
  };
  for (const P& pr : std::vector<P>{{5, 70, 67, 0, 0, 0},
                                    {130, 33, 100, 1, 0, 0},
                                    {64, 128, 64, 0, 2, 0},
                                    {19, 96, 128, 0, 0, 2},
                                    {200, 300, 203, 2, 2, 2}}) {
    Weights W(rng, pr.n, pr.k, t, pr.misalign_w);
    Mat x(rng, pr.m, pr.k, pr.k + pr.ldx_pad, t, 1.0f, pr.misalign_x);
    for (int split : {-1, pr.m / 3}) {
      Case c;
      c.m = pr.m, c.split = split, c.bias = true, c.epi = split < 0 ? GemmEpilogue::Add : GemmEpilogue::Store;
      c.out_shift = split < 0;
      GemmArgs a;
      a.x = x.dev->p(), a.ldx = x.ld, a.w = W.w.dev->p(), a.m = pr.m, a.n = pr.n, a.k = pr.k, a.dtype = t;
      ftest::check(gemm_plan(a).kernel == GemmKernel::Simt,
                   str(g.name, ": plan falls back for ", describe(W, x, c)));
      check_case(g, W, x, c, ws, rng);
      bool threw = false;
      try {
        a.out = x.dev->p();  // never written: the check comes first
        a.ldo = pr.n;
        gemm_run(a, GemmPlan{GemmKernel::Mma64x128, 1}, nullptr);
      } catch (const focus::Error&) {
        threw = true;
      }
      ftest::check(threw, str(g.name, ": forcing mma64x128 on ", describe(W, x, c), " throws"));
    }
  }
  g.finish();
}

// Same inputs, same bits: the split-K reduction sums in a fixed order.
void test_deterministic(DType t, void* ws, ftest::Rng& rng) {
  const int m = 3, n = 512, k = 2048;
  Weights W(rng, n, k, t);
  Mat x(rng, m, k, k, t, 1.0f);
  DevBuf o1(size_t(m) * n * 4), o2(size_t(m) * n * 4);
  GemmArgs a;
  a.x = x.dev->p(), a.ldx = k, a.w = W.w.dev->p(), a.m = m, a.n = n, a.k = k, a.ldo = n, a.dtype = t;
  a.epilogue = GemmEpilogue::StoreF32, a.workspace = ws, a.workspace_bytes = kGemmWorkspaceBytes;
  const GemmPlan plan = gemm_plan(a);
  a.out = o1.p();
  gemm(a, nullptr);
  a.out = o2.p();
  gemm(a, nullptr);
  std::vector<float> h1(size_t(m) * n), h2(h1.size());
  CUDA_CHECK(cudaMemcpy(h1.data(), o1.p(), h1.size() * 4, cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaMemcpy(h2.data(), o2.p(), h2.size() * 4, cudaMemcpyDeviceToHost));
  ftest::check(std::memcmp(h1.data(), h2.data(), h1.size() * 4) == 0,
               str("gemm ", focus::dtype_name(t), " m=3 n=512 k=2048 (", gemm_kernel_name(plan.kernel),
                   " split-K x", plan.splits, ") is bitwise repeatable"));
}

void test_argument_checks(void* ws) {
  DevBuf buf(1 << 20);
  auto base = [&] {
    GemmArgs a;
    a.x = buf.p(), a.ldx = 64, a.w = buf.p(), a.out = buf.p(), a.ldo = 64, a.m = 4, a.n = 64, a.k = 64;
    return a;
  };
  struct Bad {
    const char* what;
    void (*edit)(GemmArgs&);
  };
  const Bad bad[] = {
      {"null x", [](GemmArgs& a) { a.x = nullptr; }},
      {"null w", [](GemmArgs& a) { a.w = nullptr; }},
      {"null out", [](GemmArgs& a) { a.out = nullptr; }},
      {"F32 dtype", [](GemmArgs& a) { a.dtype = DType::F32; }},
      {"ldx < k", [](GemmArgs& a) { a.ldx = 63; }},
      {"ldo < n", [](GemmArgs& a) { a.ldo = 63; }},
      {"m < 0", [](GemmArgs& a) { a.m = -1; }},
      {"n = 0", [](GemmArgs& a) { a.n = 0; }},
      {"k = 0", [](GemmArgs& a) { a.k = 0; }},
      {"split > m", [](GemmArgs& a) { a.w2 = a.w, a.split = 5; }},
      {"split < 0", [](GemmArgs& a) { a.w2 = a.w, a.split = -1; }},
      {"bias2 without w2", [](GemmArgs& a) { a.bias2 = a.w; }},
  };
  for (const Bad& b : bad) {
    GemmArgs a = base();
    b.edit(a);
    bool threw = false;
    try {
      gemm(a, nullptr);
    } catch (const focus::Error&) {
      threw = true;
    }
    ftest::check(threw, str("gemm throws focus::Error on ", b.what));
  }
  // m = 0: nothing runs, nothing is written, null pointers allowed.
  std::vector<uint8_t> ff(256, 0xFF), back(256);
  CUDA_CHECK(cudaMemcpy(buf.p(), ff.data(), ff.size(), cudaMemcpyHostToDevice));
  GemmArgs a = base();
  a.m = 0;
  a.x = nullptr;
  bool ok = true;
  try {
    gemm(a, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
  } catch (const std::exception&) {
    ok = false;
  }
  CUDA_CHECK(cudaMemcpy(back.data(), buf.p(), back.size(), cudaMemcpyDeviceToHost));
  ftest::check(ok && back == ff, "gemm with m = 0 is a no-op");
  (void)ws;
}

}  // namespace

int main() {
  int devices = 0;
  const cudaError_t e = cudaGetDeviceCount(&devices);
  if (e != cudaSuccess || devices == 0) {
    ftest::skip("CUDA GEMM", e != cudaSuccess ? str("no CUDA device: ", cudaGetErrorString(e)) : "no CUDA device");
    return ftest::finish();
  }
  try {
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s (sm_%d%d, %d SMs); wgmma kernels %s\n", prop.name, prop.major, prop.minor,
                prop.multiProcessorCount, gemm_sm90_available() ? "available" : "not available in this build");
    DevBuf ws(kGemmWorkspaceBytes);
    ftest::Rng rng(20261129);
    test_argument_checks(ws.p());
    for (DType t : {DType::BF16, DType::F16}) {
      test_shapes(t, ws.p(), rng);
      test_forced_kernels(t, ws.p(), rng);
      test_fallback(t, ws.p(), rng);
      test_deterministic(t, ws.p(), rng);
    }
  } catch (const std::exception& ex) {
    ftest::fail(str("CUDA GEMM test aborted: ", ex.what()));
  }
  return ftest::finish();
}
