// Every training op of cpp/cpu/ops.h ("training: backward ops") against its
// float64 oracle (common/train_reference.h), on odd shapes, under every
// instruction-set level this machine supports, with 1 and 3 threads. Each
// oracle gradient is first proven against central differences of the oracle
// forward, so a wrong formula cannot hide in both the op and its oracle.
// Backward ops ADD into their gradients: the buffers are pre-filled with
// random values of the gradient's own size, and the check is init + grad.
//
//   cmake --build build-ops --target train_ops_test && ./build-ops/train_ops_test
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/op_checks.h"
#include "common/testing.h"
#include "common/train_reference.h"
#include "core/error.h"
#include "cpu/ops.h"

using namespace focus;
using cpu::Isa;

namespace {

constexpr double kTol = 1e-5;    // max|ours - ref| / max|ref|, float32 paths (16-bit weights convert exactly)
constexpr double kFdTol = 1e-6;  // oracle gradient vs central differences, all in double
const DType kDtypes[] = {DType::F32, DType::F16, DType::BF16};

std::vector<Isa> g_levels;  // levels this machine supports

using Vec = std::vector<float>;
using Dvec = std::vector<double>;

// A (rows, cols) matrix of type t placed off the 64-byte grid, like a tensor
// in a memory map; columns from `valid` on are NaN (row padding that an op
// must not read into its results).
struct HostWeight {
  std::vector<char> bytes;
  Weight w;
  HostWeight(int64_t rows, int64_t cols, DType t, ftest::Rng& rng, float scale = 1.0f, int64_t valid = -1) {
    const size_t es = dtype_size(t), off = es == 2 ? 2 : 4;
    bytes.resize(size_t(rows * cols) * es + 64 + off);
    char* base = bytes.data() + ((64 - reinterpret_cast<uintptr_t>(bytes.data()) % 64) % 64) + off;
    for (int64_t i = 0; i < rows * cols; ++i)
      store_from_f32(base, t, size_t(i), valid >= 0 && i % cols >= valid ? NAN : rng.uniform() * scale);
    w.data = base;
    w.dtype = t;
    w.rows = rows;
    w.cols = cols;
    w.name = "test.weight";
  }
  // The first `valid` columns of every row, as doubles.
  Dvec as_double(int64_t valid) const {
    Dvec d(size_t(w.rows * valid));
    for (int64_t r = 0; r < w.rows; ++r)
      for (int64_t c = 0; c < valid; ++c)
        d[size_t(r * valid + c)] = load_as_f32(w.data, w.dtype, size_t(r * w.cols + c));
    return d;
  }
};

Vec random_vec(size_t n, ftest::Rng& rng, float scale = 1.0f) {
  Vec v(n);
  for (float& x : v) x = rng.uniform() * scale;
  return v;
}

Dvec to_d(const Vec& v) { return Dvec(v.begin(), v.end()); }

double max_abs(const Dvec& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

// Random values as large as the gradient `g` about to be added to them (or
// as `scale`, when given), so that the check stays as sensitive as one
// against the bare gradient. Each has the sign of its gradient element: init
// + g never cancels (a one-element buffer would then measure the error
// against a near-zero sum).
Vec init_like(const Dvec& g, ftest::Rng& rng, double scale = 0) {
  double m = scale > 0 ? scale : max_abs(g);
  if (m == 0) m = 1;
  Vec v(g.size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(std::copysign(m * rng.uniform(0.5f, 1.0f), g[i]));
  return v;
}

Dvec abs_d(const Dvec& v) {
  Dvec a(v.size());
  for (size_t i = 0; i < v.size(); ++i) a[i] = std::fabs(v[i]);
  return a;
}

// init + g, rounded once.
Vec plus(const Vec& init, const Dvec& g) {
  Vec out(init.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = float(double(init[i]) + g[i]);
  return out;
}

double rel_err_d(const double* got, const double* ref, size_t n) {
  double md = 0, mr = 0;
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(got[i]) || std::isnan(ref[i])) return INFINITY;
    md = std::max(md, std::fabs(got[i] - ref[i]));
    mr = std::max(mr, std::fabs(ref[i]));
  }
  return mr == 0 ? (md == 0 ? 0 : INFINITY) : md / mr;
}

double dot(const Dvec& a, const Dvec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// max|fd - g| / max|g| over every entry of p, fd = the central difference of
// loss() as p[i] moves by ±h (p is restored).
double fd_error(Dvec& p, const Dvec& g, const std::function<double()>& loss) {
  constexpr double h = 1e-5;
  Dvec fd(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    const double x = p[i];
    p[i] = x + h;
    const double lp = loss();
    p[i] = x - h;
    const double lm = loss();
    p[i] = x;
    fd[i] = (lp - lm) / (2 * h);
  }
  return rel_err_d(fd.data(), g.data(), g.size());
}

void check_fd(const std::string& what, Dvec& p, const Dvec& g, const std::function<double()>& loss) {
  const double e = fd_error(p, g, loss);
  char buf[96];
  std::snprintf(buf, sizeof buf, " [rel err %.3g, tol %.3g]", e, kFdTol);
  ftest::check(e <= kFdTol, "oracle " + what + " = central differences of the forward" + buf);
}

using ftest::throws_error;
using ftest::Worst;

// The name suffix of a check whose call asked for only some of its
// gradients (mask bit i = gradient i; `all` = every bit).
const char* mode_name(int mask, int all) { return mask == all ? "" : " alone"; }

// ---- matmul -------------------------------------------------------------------------

void test_matmul_nn(cpu::ThreadPool& p1, cpu::ThreadPool& p3) {
  // GEMV-sized m and packed-GEMM m; K and N not multiples of any panel.
  const int ms[] = {1, 3, 8, 9, 17, 70, 300};
  const int kn[][2] = {{37, 129}, {129, 37}, {1, 1}, {16, 64}, {300, 5}};
  Worst worst;
  ftest::Rng rng(101);
  for (DType t : kDtypes)
    for (int acc = 0; acc < 2; ++acc)
      for (int m : ms)
        for (auto& s : kn) {
          const int K = s[0], N = s[1];
          const int64_t lda = K + 3, ldb = N + 5, ldo = N + 2;  // row padding everywhere
          Vec a = random_vec(size_t(m * lda), rng);
          for (int i = 0; i < m; ++i) std::fill(a.begin() + i * lda + K, a.begin() + (i + 1) * lda, NAN);
          HostWeight b(K, ldb, t, rng, 1.0f, N);
          const Vec init = random_vec(size_t(m * ldo), rng);
          Dvec ad(size_t(m) * K), prod(size_t(m) * N);
          for (int i = 0; i < m; ++i)
            for (int k = 0; k < K; ++k) ad[size_t(i * K + k)] = a[size_t(i * lda + k)];
          ref64::matmul_nn(prod.data(), ad.data(), b.as_double(N).data(), m, K, N);
          Vec want = init;
          for (int i = 0; i < m; ++i)
            for (int n = 0; n < N; ++n) {
              const size_t o = size_t(i * ldo + n);
              want[o] = float((acc ? double(init[o]) : 0.0) + prod[size_t(i * N + n)]);
            }
          const std::string name = str("matmul_nn, b ", dtype_name(t), acc ? ", accumulate" : "", ", strided");
          for (Isa isa : g_levels) {
            cpu::set_isa(isa);
            Vec got = init;
            cpu::matmul_nn((m + N) % 2 ? p3 : p1, got.data(), ldo, a.data(), lda, m, b.w.data, t, ldb, K, N, acc);
            // want has init's exact values in the padding: rel_err sees any write there.
            bool pad_ok = true;
            for (int i = 0; i < m; ++i)
              pad_ok &= std::memcmp(&got[size_t(i * ldo + N)], &init[size_t(i * ldo + N)], size_t(ldo - N) * 4) == 0;
            worst.add(isa, name, pad_ok ? ftest::rel_err(got.data(), want.data(), got.size()) : INFINITY,
                      str("m=", m, " K=", K, " N=", N));
          }
        }
  worst.report(kTol);
}

void test_transpose(cpu::ThreadPool& p3) {
  ftest::Rng rng(102);
  bool ok = true;
  for (auto rc : {std::make_pair(1, 1), std::make_pair(37, 129), std::make_pair(300, 5), std::make_pair(64, 64)}) {
    const int rows = rc.first, cols = rc.second;
    const Vec x = random_vec(size_t(rows) * cols, rng);
    Vec got(x.size(), NAN);
    cpu::transpose(p3, got.data(), x.data(), rows, cols);
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) ok &= got[size_t(c * rows + r)] == x[size_t(r * cols + c)];
  }
  ftest::check(ok, "transpose: (1,1), (37,129), (300,5), (64,64): identical");
}

void test_matmul_backward(cpu::ThreadPool& p1, cpu::ThreadPool& p3) {
  ftest::Rng rng(103);
  {
    const int m = 3, N = 5, K = 7;
    Dvec x = to_d(random_vec(m * K, rng)), w = to_d(random_vec(N * K, rng)), b = to_d(random_vec(N, rng));
    const Dvec R = to_d(random_vec(m * N, rng));
    Dvec dx(x.size()), dw(w.size()), db(b.size()), out(R.size());
    ref64::linear_backward(dx.data(), dw.data(), db.data(), R.data(), x.data(), w.data(), m, N, K);
    auto loss = [&] {
      ref64::linear(out.data(), x.data(), w.data(), b.data(), m, N, K);
      return dot(out, R);
    };
    check_fd("matmul_backward dx", x, dx, loss);
    check_fd("matmul_backward dw", w, dw, loss);
    check_fd("matmul_backward dbias", b, db, loss);
  }
  const int ms[] = {1, 3, 17, 70, 300};
  const int nk[][2] = {{37, 129}, {129, 37}, {1, 1}, {64, 16}};
  Worst worst;
  for (DType t : kDtypes)
    for (int m : ms)
      for (auto& s : nk) {
        const int N = s[0], K = s[1];
        HostWeight w(N, K, t, rng);
        const Vec x = random_vec(size_t(m) * K, rng), dout = random_vec(size_t(m) * N, rng);
        Dvec gx(x.size()), gw(size_t(N) * K), gb(static_cast<size_t>(N));
        ref64::linear_backward(gx.data(), gw.data(), gb.data(), to_d(dout).data(), to_d(x).data(),
                               w.as_double(K).data(), m, N, K);
        // Each gradient is a sum over m (or N) products that may cancel: with
        // 1 or 2 output elements max|g| can be far below what float sums are
        // accurate to (Σ|terms|). The init is as large as Σ|terms| (the same
        // oracle on absolute values), so the error is measured against it.
        Dvec sx(gx.size()), sw(gw.size()), sb(gb.size());
        ref64::linear_backward(sx.data(), sw.data(), sb.data(), abs_d(to_d(dout)).data(), abs_d(to_d(x)).data(),
                               abs_d(w.as_double(K)).data(), m, N, K);
        const Vec ix = init_like(gx, rng, max_abs(sx)), iw = init_like(gw, rng, max_abs(sw)),
                  ib = init_like(gb, rng, max_abs(sb));
        const Vec wx = plus(ix, gx), ww = plus(iw, gw), wb = plus(ib, gb);
        const std::string where = str("m=", m, " N=", N, " K=", K);
        for (int mask : {7, 1, 2, 4})
          for (Isa isa : g_levels) {
            cpu::set_isa(isa);
            Vec dx = ix, dw = iw, db = ib;
            cpu::matmul_backward((m + N) % 2 ? p3 : p1, mask & 1 ? dx.data() : nullptr, mask & 2 ? dw.data() : nullptr,
                                 mask & 4 ? db.data() : nullptr, dout.data(), x.data(), m, w.w);
            const std::string pre = str("matmul_backward, w ", dtype_name(t), ": ");
            if (mask & 1) worst.add(isa, pre + "dx" + mode_name(mask, 7), dx, wx, where);
            if (mask & 2) worst.add(isa, pre + "dw" + mode_name(mask, 7), dw, ww, where);
            if (mask & 4) worst.add(isa, pre + "dbias" + mode_name(mask, 7), db, wb, where);
          }
      }
  worst.report(kTol);
}

// ---- row-wise and element-wise ops ------------------------------------------------

void test_rms_norm_backward(cpu::ThreadPool& p1, cpu::ThreadPool& p3) {
  ftest::Rng rng(104);
  const double eps = 1e-5;
  {
    const int n = 3, dim = 7;
    Dvec x = to_d(random_vec(n * dim, rng, 3.0f)), w = to_d(random_vec(dim, rng));
    const Dvec R = to_d(random_vec(n * dim, rng));
    Dvec dx(x.size()), dw(w.size()), out(x.size());
    ref64::rms_norm_backward(dx.data(), dw.data(), R.data(), x.data(), w.data(), n, dim, eps);
    auto loss = [&] {
      ref64::rms_norm(out.data(), x.data(), w.data(), n, dim, eps);
      return dot(out, R);
    };
    check_fd("rms_norm_backward dx", x, dx, loss);
    check_fd("rms_norm_backward dw", w, dw, loss);
  }
  Worst worst;
  for (DType t : kDtypes)
    for (int n : {1, 3, 17, 70})
      for (int dim : {1, 15, 64, 100, 1027}) {
        HostWeight w(dim, 1, t, rng);
        const Vec x = random_vec(size_t(n) * dim, rng, 3.0f), dout = random_vec(x.size(), rng);
        Dvec gx(x.size()), gw(static_cast<size_t>(dim));
        ref64::rms_norm_backward(gx.data(), gw.data(), to_d(dout).data(), to_d(x).data(), w.as_double(1).data(), n,
                                 dim, eps);
        const Vec ix = init_like(gx, rng), iw = init_like(gw, rng);
        const Vec wx = plus(ix, gx), ww = plus(iw, gw);
        const std::string where = str(dtype_name(t), " n=", n, " dim=", dim);
        for (int mask : {3, 1, 2})
          for (Isa isa : g_levels) {
            cpu::set_isa(isa);
            Vec dx = ix, dw = iw;
            cpu::rms_norm_backward(n > 1 ? p3 : p1, mask & 1 ? dx.data() : nullptr, mask & 2 ? dw.data() : nullptr,
                                   dout.data(), x.data(), w.w, n, float(eps));
            if (mask & 1) worst.add(isa, str("rms_norm_backward: dx", mode_name(mask, 3)), dx, wx, where);
            if (mask & 2) worst.add(isa, str("rms_norm_backward: dw", mode_name(mask, 3)), dw, ww, where);
          }
      }
  worst.report(kTol);
}

void test_rope_backward(cpu::ThreadPool& p3) {
  ftest::Rng rng(105);
  auto make_table = [&](const std::vector<int32_t>& pos, int hd) {
    std::vector<double> inv(size_t(hd / 2));
    for (int i = 0; i < hd / 2; ++i) inv[size_t(i)] = 1.0 / std::pow(500000.0, 2.0 * i / hd);
    Vec table(pos.size() * size_t(hd));
    cpu::rope_table(p3, table.data(), pos.data(), int(pos.size()), inv.data(), hd);
    return table;
  };
  {
    const int n = 2, heads = 2, hd = 6;
    const Dvec table = to_d(make_table({3, 70001}, hd));
    Dvec x = to_d(random_vec(n * heads * hd, rng));
    const Dvec R = to_d(random_vec(x.size(), rng));
    Dvec g = R, out;
    ref64::rope_backward(g.data(), n, heads, hd, table.data());
    auto loss = [&] {
      out = x;
      ref64::rope(out.data(), n, heads, hd, table.data());
      return dot(out, R);
    };
    check_fd("rope_backward", x, g, loss);
  }
  Worst worst;
  const std::vector<int32_t> pos = {0, 1, 2, 7, 4095, 131071, 400000, 524287, 1000003};
  for (int hd : {2, 16, 34, 64, 128}) {
    const Vec table = make_table(pos, hd);
    const int n = int(pos.size()), heads = 3;
    const Vec d = random_vec(size_t(n) * heads * hd, rng);
    Dvec want_d = to_d(d);
    ref64::rope_backward(want_d.data(), n, heads, hd, to_d(table).data());
    const Vec want(want_d.begin(), want_d.end());
    for (Isa isa : g_levels) {
      cpu::set_isa(isa);
      Vec got = d;
      cpu::rope_backward(p3, got.data(), n, heads, hd, table.data());
      worst.add(isa, "rope_backward (in place)", got, want, str("head_dim=", hd));
    }
  }
  worst.report(kTol);
}

void test_swiglu_backward(cpu::ThreadPool& p1, cpu::ThreadPool& p3) {
  ftest::Rng rng(106);
  {
    Dvec gate = {-9.0, -3.0, -0.5, 0.0, 0.25, 1.0, 4.0, 12.0}, up = to_d(random_vec(gate.size(), rng, 2.0f));
    const Dvec R = to_d(random_vec(gate.size(), rng));
    Dvec dg(gate.size()), du(gate.size()), out(gate.size());
    ref64::swiglu_backward(dg.data(), du.data(), R.data(), gate.data(), up.data(), int64_t(gate.size()));
    auto loss = [&] {
      ref64::swiglu(out.data(), gate.data(), up.data(), int64_t(gate.size()));
      return dot(out, R);
    };
    check_fd("swiglu_backward dgate", gate, dg, loss);
    check_fd("swiglu_backward dup", up, du, loss);
  }
  Worst worst;
  for (int64_t n : {1, 15, 4097, 9001}) {
    Vec g = random_vec(size_t(n), rng, 30.0f), u = random_vec(size_t(n), rng, 2.0f), dout = random_vec(size_t(n), rng);
    // The ends of exp's range: silu' and silu must be 0 or 1-ish there, not NaN.
    const float extremes[] = {-100.0f, 100.0f, -88.5f, 88.5f, 1e-3f, -1e-30f, 0.0f};
    for (size_t i = 0; i < std::size(extremes) && n >= 15; ++i) g[size_t(n) - 1 - i] = extremes[i];
    Dvec gg(static_cast<size_t>(n)), gu(static_cast<size_t>(n));
    ref64::swiglu_backward(gg.data(), gu.data(), to_d(dout).data(), to_d(g).data(), to_d(u).data(), n);
    const Vec ig = init_like(gg, rng), iu = init_like(gu, rng);
    const Vec wg = plus(ig, gg), wu = plus(iu, gu);
    for (int mask : {3, 1, 2})
      for (Isa isa : g_levels) {
        cpu::set_isa(isa);
        Vec dg = ig, du = iu;
        cpu::swiglu_backward(n > 15 ? p3 : p1, mask & 1 ? dg.data() : nullptr, mask & 2 ? du.data() : nullptr,
                             dout.data(), g.data(), u.data(), n);
        if (mask & 1) worst.add(isa, str("swiglu_backward: dgate", mode_name(mask, 3)), dg, wg, str("n=", n));
        if (mask & 2) worst.add(isa, str("swiglu_backward: dup", mode_name(mask, 3)), du, wu, str("n=", n));
      }
  }
  worst.report(kTol);
}

void test_embedding_backward(cpu::ThreadPool& p1, cpu::ThreadPool& p3) {
  ftest::Rng rng(107);
  {
    const int vocab = 5, dim = 3;
    const std::vector<int32_t> ids = {1, 4, 1, 0};
    const int n = int(ids.size());
    Dvec table = to_d(random_vec(vocab * dim, rng));
    const Dvec R = to_d(random_vec(size_t(n) * dim, rng));
    Dvec g(table.size()), out(R.size());
    ref64::embedding_backward(g.data(), R.data(), ids.data(), n, dim, vocab);
    auto loss = [&] {
      ref64::embedding(out.data(), table.data(), ids.data(), n, dim);
      return dot(out, R);
    };
    check_fd("embedding_backward (repeated ids)", table, g, loss);
  }
  Worst worst;
  const int vocab = 50;
  for (int dim : {1, 33, 100, 1000})
    for (int n : {1, 3, 17, 70}) {  // 70 ids of 50: repeats for sure
      std::vector<int32_t> ids(static_cast<size_t>(n));
      for (int32_t& id : ids) id = rng.below(vocab);
      const Vec dout = random_vec(size_t(n) * dim, rng);
      Dvec g(size_t(vocab) * dim);
      ref64::embedding_backward(g.data(), to_d(dout).data(), ids.data(), n, dim, vocab);
      const Vec init = init_like(g, rng), want = plus(init, g);
      for (Isa isa : g_levels) {
        cpu::set_isa(isa);
        for (cpu::ThreadPool* p : {&p1, &p3}) {
          Vec got = init;
          cpu::embedding_backward(*p, got.data(), dout.data(), ids.data(), n, dim);
          worst.add(isa, str("embedding_backward, ", p->size(), " threads"),
                    ftest::rel_err(got.data(), want.data(), got.size()), str("n=", n, " dim=", dim));
        }
      }
    }
  worst.report(kTol);
  Vec table(8 * 4, 1.0f);
  const Vec before = table, dout(2 * 4, 1.0f);
  const int32_t ids[] = {3, -1};
  ftest::check(throws_error([&] { cpu::embedding_backward(p3, table.data(), dout.data(), ids, 2, 4); }) &&
                   table == before,
               "embedding_backward: a negative id throws an Error before anything is written");
}

// ---- loss -------------------------------------------------------------------------

void test_cross_entropy(cpu::ThreadPool& p1, cpu::ThreadPool& p3) {
  ftest::Rng rng(108);
  {
    const int n = 3, V = 7;
    Dvec logits = to_d(random_vec(n * V, rng, 3.0f));
    const std::vector<int32_t> targets = {6, 0, 3};
    const Dvec weights = {0.5, 1.0, 2.0};
    Dvec losses(n), g(logits.size());
    ref64::cross_entropy(losses.data(), g.data(), logits.data(), targets.data(), weights.data(), n, V);
    auto loss = [&] {
      ref64::cross_entropy(losses.data(), nullptr, logits.data(), targets.data(), weights.data(), n, V);
      return dot(losses, weights);
    };
    check_fd("cross_entropy dlogits (weighted)", logits, g, loss);
  }
  Worst worst;
  struct Case {
    int n, V;
    float scale;
  };
  std::vector<Case> cases;
  for (int n : {1, 3, 17, 70})
    for (int V : {1, 37, 1000, 32003}) cases.push_back({n, V, 5.0f});
  cases.push_back({3, 1000, 1e4f});   // exp(l) overflows float without the max subtraction
  cases.push_back({5, 37, 1e30f});    // and so does l - min(l) + anything
  for (const Case& c : cases) {
    const int n = c.n, V = c.V;
    const Vec logits = random_vec(size_t(n) * V, rng, c.scale);
    std::vector<int32_t> targets(static_cast<size_t>(n));
    for (int32_t& t : targets) t = rng.below(V);
    Vec weights = random_vec(size_t(n), rng);
    for (float& w : weights) w = std::fabs(w) * 2.0f;
    weights[0] = n > 1 ? 0.0f : weights[0];  // a masked-out row
    Dvec want_loss(static_cast<size_t>(n)), g(logits.size());
    ref64::cross_entropy(want_loss.data(), g.data(), to_d(logits).data(), targets.data(), to_d(weights).data(), n, V);
    const Vec want(g.begin(), g.end());
    const std::string where = str("n=", n, " V=", V, " logits x", c.scale);
    for (Isa isa : g_levels) {
      cpu::set_isa(isa);
      cpu::ThreadPool& p = n > 1 ? p3 : p1;
      // Written, not added: the buffer starts as NaN.
      Vec d(logits.size(), NAN);
      Dvec loss(size_t(n), NAN);
      auto loss_err = [&] { return rel_err_d(loss.data(), want_loss.data(), loss.size()); };
      cpu::cross_entropy(p, d.data(), loss.data(), logits.data(), targets.data(), weights.data(), n, V);
      worst.add(isa, "cross_entropy: dlogits", d, want, where);
      worst.add(isa, "cross_entropy: losses", loss_err(), where);
      // dlogits over the logits themselves.
      Vec inplace = logits;
      std::fill(loss.begin(), loss.end(), NAN);
      cpu::cross_entropy(p, inplace.data(), loss.data(), inplace.data(), targets.data(), weights.data(), n, V);
      worst.add(isa, "cross_entropy: dlogits in place", inplace, want, where);
      worst.add(isa, "cross_entropy: losses, dlogits in place", loss_err(), where);
      // Loss only.
      std::fill(loss.begin(), loss.end(), NAN);
      cpu::cross_entropy(p, nullptr, loss.data(), logits.data(), targets.data(), weights.data(), n, V);
      worst.add(isa, "cross_entropy: losses, no dlogits", loss_err(), where);
    }
  }
  worst.report(kTol);

  Vec logits = random_vec(2 * 10, rng);
  const Vec before = logits;
  double loss[2];
  const float weights[] = {1, 1};
  for (int32_t bad : {10, -1}) {
    const int32_t targets[] = {2, bad};
    ftest::check(throws_error([&] {
                   cpu::cross_entropy(p3, logits.data(), loss, logits.data(), targets, weights, 2, 10);
                 }) && logits == before,
                 str("cross_entropy: target ", bad, " of 10 throws an Error, the aliased logits untouched"));
  }
}

// ---- attention ------------------------------------------------------------------

// Entries from (n_q, n_keys, q_key0), query rows in reverse order of the
// entries (q_row need not grow with the entry), two unused key rows between
// sequences. Returns the number of query rows; *n_keys_total the key rows.
int make_seqs(std::vector<TrainAttnSeq>& seqs, const std::vector<std::array<int, 3>>& specs, int64_t* n_keys_total) {
  seqs.clear();
  int rows = 0;
  for (auto& s : specs) rows += s[0];
  int next_row = rows;
  int64_t key = 1;
  for (auto& s : specs) {
    next_row -= s[0];
    seqs.push_back(TrainAttnSeq{next_row, s[0], key, s[1], s[2]});
    key += s[1] + 2;
  }
  *n_keys_total = key;
  return rows;
}

void test_attention_train(cpu::ThreadPool& p1, cpu::ThreadPool& p3) {
  ftest::Rng rng(109);
  std::vector<TrainAttnSeq> seqs;
  int64_t nk = 0;
  {
    // Causal; a constant prefix with an unseen key at the end; a single query after a prefix.
    const int rows = make_seqs(seqs, {{3, 3, 0}, {2, 6, 3}, {1, 4, 3}}, &nk);
    const int heads = 4, kv = 2, hd = 8, qd = heads * hd, kvd = kv * hd;
    const double scale = 1.0 / std::sqrt(double(hd));
    Dvec q = to_d(random_vec(size_t(rows) * qd, rng, 2.0f)), k = to_d(random_vec(size_t(nk) * kvd, rng, 2.0f));
    Dvec v = to_d(random_vec(size_t(nk) * kvd, rng));
    const Dvec R = to_d(random_vec(size_t(rows) * qd, rng));
    Dvec dq(q.size()), dk(k.size()), dv(v.size()), out(q.size());
    ref64::attention_backward(dq.data(), dk.data(), dv.data(), R.data(), q.data(), k.data(), v.data(), seqs.data(),
                              int(seqs.size()), heads, kv, hd, scale);
    auto loss = [&] {
      ref64::attention(out.data(), nullptr, q.data(), k.data(), v.data(), seqs.data(), int(seqs.size()), heads, kv, hd,
                       scale);
      return dot(out, R);
    };
    check_fd("attention_train_backward dq", q, dq, loss);
    check_fd("attention_train_backward dk", k, dk, loss);
    check_fd("attention_train_backward dv", v, dv, loss);
  }
  // Plain causal; a constant prefix (q_key0 > 0); the first token; a
  // candidate-style single query after 8 keys; a long one with 2 unseen keys
  // at the end; 3 queries after 37 keys; 130 queries (several query blocks)
  // over 300 keys (more than one packed block of keys) with 10 unseen.
  const int rows = make_seqs(
      seqs, {{17, 17, 0}, {5, 12, 7}, {1, 1, 0}, {1, 9, 8}, {70, 75, 3}, {3, 40, 37}, {130, 300, 160}}, &nk);
  Worst worst;
  for (int hd : {8, 16, 64})
    for (auto hk : {std::make_pair(4, 2), std::make_pair(4, 1), std::make_pair(4, 4)}) {
      const int heads = hk.first, kv = hk.second, qd = heads * hd, kvd = kv * hd, ns = int(seqs.size());
      const float scale = float(1.0 / std::sqrt(double(hd)));
      const Vec q = random_vec(size_t(rows) * qd, rng, 2.0f), k = random_vec(size_t(nk) * kvd, rng, 2.0f);
      const Vec v = random_vec(size_t(nk) * kvd, rng), dout = random_vec(size_t(rows) * qd, rng);
      const Dvec qd64 = to_d(q), kd64 = to_d(k), vd64 = to_d(v);
      Dvec out(q.size()), lse(size_t(rows) * heads), gq(q.size()), gk(k.size()), gv(v.size());
      ref64::attention(out.data(), lse.data(), qd64.data(), kd64.data(), vd64.data(), seqs.data(), ns, heads, kv, hd,
                       scale);
      ref64::attention_backward(gq.data(), gk.data(), gv.data(), to_d(dout).data(), qd64.data(), kd64.data(),
                                vd64.data(), seqs.data(), ns, heads, kv, hd, scale);
      const Vec want_out(out.begin(), out.end()), want_lse(lse.begin(), lse.end());
      const Vec iq = init_like(gq, rng), ik = init_like(gk, rng), iv = init_like(gv, rng);
      const Vec wq = plus(iq, gq), wk = plus(ik, gk), wv = plus(iv, gv);
      const std::string where = str("head_dim=", hd, " heads=", heads, "/", kv);
      const std::string gqa = kv == heads ? "MHA" : str("GQA ", heads / kv);
      for (Isa isa : g_levels) {
        cpu::set_isa(isa);
        for (cpu::ThreadPool* p : {&p1, &p3}) {
          const std::string pre = str("attention_train, ", gqa, ", ", p->size(), " threads: ");
          Vec o(want_out.size(), NAN), l(want_lse.size(), NAN);
          cpu::attention_train_forward(*p, o.data(), l.data(), q.data(), k.data(), v.data(), seqs.data(), ns, heads,
                                       kv, hd, scale);
          worst.add(isa, pre + "out", o, want_out, where);
          worst.add(isa, pre + "lse", l, want_lse, where);
          for (int mask : {7, 1, 2, 4}) {
            Vec dq = iq, dk = ik, dv = iv;
            cpu::attention_train_backward(*p, mask & 1 ? dq.data() : nullptr, mask & 2 ? dk.data() : nullptr,
                                          mask & 4 ? dv.data() : nullptr, dout.data(), o.data(), l.data(), q.data(),
                                          k.data(), v.data(), seqs.data(), ns, heads, kv, hd, scale);
            if (mask & 1) worst.add(isa, pre + "dq" + mode_name(mask, 7), dq, wq, where);
            if (mask & 2) worst.add(isa, pre + "dk" + mode_name(mask, 7), dk, wk, where);
            if (mask & 4) worst.add(isa, pre + "dv" + mode_name(mask, 7), dv, wv, where);
          }
        }
      }
    }
  worst.report(kTol);

  Vec x(size_t(rows) * 4 * 8), l(size_t(rows) * 4);
  const TrainAttnSeq past[] = {{0, 4, 0, 6, 3}};  // q_key0 + n_q > n_keys
  ftest::check(throws_error([&] {
                 cpu::attention_train_forward(p3, x.data(), l.data(), x.data(), x.data(), x.data(), past, 1, 4, 2, 8,
                                              1.0f);
               }),
               "attention_train_forward: queries past their sequence's keys throw an Error");
  ftest::check(throws_error([&] {
                 cpu::attention_train_forward(p3, x.data(), l.data(), x.data(), x.data(), x.data(), seqs.data(), 1, 6,
                                              4, 8, 1.0f);
               }),
               "attention_train_forward: heads not a multiple of KV heads throw an Error");
}

}  // namespace

int main() {
  for (Isa i : {Isa::Generic, Isa::Avx2, Isa::Avx512}) {
    if (cpu::isa_supported(i)) g_levels.push_back(i);
    else ftest::skip(str("training op tests under ", cpu::isa_name(i)), "this build or CPU does not support it");
  }
  std::printf("levels tested:");
  for (Isa i : g_levels) std::printf(" %s", cpu::isa_name(i));
  std::printf("\n");
  try {
    cpu::ThreadPool p1(1), p3(3);
    test_matmul_nn(p1, p3);
    test_transpose(p3);
    test_matmul_backward(p1, p3);
    test_rms_norm_backward(p1, p3);
    test_rope_backward(p3);
    test_swiglu_backward(p1, p3);
    test_embedding_backward(p1, p3);
    test_cross_entropy(p1, p3);
    test_attention_train(p1, p3);
  } catch (const std::exception& e) {
    ftest::fail(str("unexpected exception: ", e.what()));
  }
  return ftest::finish();
}
