// The CUDA backend's ops against the CPU backend's (the oracle) or exact host
// conversions, on random data of odd sizes, BF16 and F16 activations, with
// outputs poisoned (NaN bytes) and guard elements after them, so that an
// unwritten or overwritten element fails. Plus: out-of-memory handling,
// weight upload bit-exactness, and the sampling kernels (argmax ties, top-k /
// top-p distributions over many draws). The whole-model comparison is in
// cuda_model_test.cu.
//
// Skipped (exit 77) without a usable device. FOCUSLLM_TEST_SMALL=1 shrinks
// the sizes (for compute-sanitizer runs); FOCUSLLM_TEST_ONLY=rms_norm,sampling
// runs only the named groups (those of main()).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../../cuda/backend_cuda.h"
#include "../../cuda/common.cuh"
#include "../../cuda/ops.cuh"
#include "common/cuda_testing.h"
#include "common/testing.h"
#include "core/error.h"
#include "core/safetensors.h"

using focus::DType;
using focus::cuda::CudaBackend;
using namespace ftest::cu;

namespace {

const bool kSmall = std::getenv("FOCUSLLM_TEST_SMALL") != nullptr;

bool selected(const std::string& group) {
  const char* only = std::getenv("FOCUSLLM_TEST_ONLY");
  if (!only || !*only) return true;
  const std::string list = std::string(",") + only + ",";
  return list.find("," + group + ",") != std::string::npos;
}

// Tolerance of a 16-bit output against the float32 CPU op on the same inputs:
// one rounding of the output (2^-9 / 2^-12 relative) plus float-order noise,
// measured as max|err| / max|ref|.
double tol(DType t) { return t == DType::BF16 ? 8e-3 : 1.5e-3; }

void test_rms_norm(CudaBackend& cb, focus::Backend& cpu, DType t, ftest::Rng& rng) {
  for (int n : {1, 3, 17, 1000})
    for (int dim : {16, 64, 100, 4096}) {
      if (kSmall && n * dim > 100000) continue;
      const std::string what = str("rms_norm ", dtype_name(t), " n=", n, " dim=", dim);
      auto x = random_vec(rng, size_t(n) * dim, t, 3.0f);
      HostWeight w(rng, {dim}, DType::F32, t, 0.5f, 1.0f);
      std::vector<float> ref(x.size());
      cpu.rms_norm(ref.data(), x.data(), w.load(cpu), n, 1e-5f);
      focus::Weight gw = w.load(cb);
      PoisonedOut out(cb, x.size(), t);
      DevBuf dx(cb, x.size() * 2);
      put(cb, dx.p, x, t);
      cb.rms_norm(out.p(), dx.p, gw, n, 1e-5f);
      out.check(what, ref, tol(t));
      cb.rms_norm(dx.p, dx.p, gw, n, 1e-5f);  // in place
      check_close(what + " in place", get(cb, dx.p, x.size(), t), ref, tol(t));
      cb.release_weight(gw);
    }
}

void test_rope(CudaBackend& cb, focus::Backend& cpu, DType t, ftest::Rng& rng) {
  for (int head_dim : {16, 64, 128}) {
    std::vector<double> inv(size_t(head_dim / 2));
    for (int i = 0; i < head_dim / 2; ++i) inv[size_t(i)] = std::pow(10000.0, -2.0 * i / head_dim);
    cb.set_rope(inv, head_dim);
    cpu.set_rope(inv, head_dim);
    for (int n : {1, 17, 300}) {
      // Positions up to 500K: angles of 1e5+ radians are where float angles fail.
      std::vector<int32_t> pos(static_cast<size_t>(n));
      for (int i = 0; i < n; ++i) pos[size_t(i)] = i == 0 ? 0 : i == 1 ? 499999 : rng.below(500000);
      std::vector<float> tref(size_t(n) * head_dim);
      cpu.rope_table(tref.data(), pos.data(), n);
      DevBuf dpos(cb, pos.size() * 4);
      cb.upload(dpos.p, pos.data(), pos.size() * 4);
      PoisonedOut table(cb, tref.size(), DType::F32);
      cb.rope_table(table.as<float>(), dpos.as<int32_t>(), n);
      table.check(str("rope_table head_dim=", head_dim, " n=", n, " (positions to 500K)"), tref, 1e-6);
      for (int heads : {1, 3, 32}) {
        const std::string what = str("rope ", dtype_name(t), " head_dim=", head_dim, " heads=", heads, " n=", n);
        auto x = random_vec(rng, size_t(n) * heads * head_dim, t, 2.0f);
        std::vector<float> ref = x;
        cpu.rope(ref.data(), n, heads, tref.data());
        DevBuf dx(cb, x.size() * 2);
        put(cb, dx.p, x, t);
        cb.rope(dx.p, n, heads, table.as<float>());
        check_close(what, get(cb, dx.p, x.size(), t), ref, tol(t));
      }
    }
  }
}

// kv_store writes each row to its own destination, converting to the
// destination's dtype; everything else must stay untouched.
void test_kv_store(CudaBackend& cb, DType t, ftest::Rng& rng) {
  const DType other = t == DType::BF16 ? DType::F16 : DType::BF16;
  for (DType dt : {t, DType::F32, other})
    for (int n : {1, 17, 300})
      for (int kv_dim : {16, 100, 1024}) {
        const std::string what = str("kv_store ", dtype_name(t), " -> ", dtype_name(dt), " n=", n, " kv_dim=", kv_dim);
        const int layers = 3, layer = 2, slots = n + 5;
        const size_t des = focus::dtype_size(dt), pool = size_t(layers) * slots * kv_dim;
        auto k = random_vec(rng, size_t(n) * kv_dim, t, 4.0f), v = random_vec(rng, size_t(n) * kv_dim, t, 4.0f);
        DevBuf dk(cb, k.size() * 2), dv(cb, v.size() * 2), pk(cb, pool * des), pv(cb, pool * des);
        put(cb, dk.p, k, t);
        put(cb, dv.p, v, t);
        poison(cb, pk.p, pk.bytes);
        poison(cb, pv.p, pv.bytes);
        std::vector<int> slot(static_cast<size_t>(slots));
        for (int i = 0; i < slots; ++i) slot[size_t(i)] = i;
        for (int i = slots - 1; i > 0; --i) std::swap(slot[size_t(i)], slot[size_t(rng.below(i + 1))]);
        std::vector<focus::KvDst> dst(static_cast<size_t>(n));
        for (int i = 0; i < n; ++i)
          dst[size_t(i)] = focus::KvDst{pk.as<char>() + size_t(slot[size_t(i)]) * kv_dim * des,
                                        pv.as<char>() + size_t(slot[size_t(i)]) * kv_dim * des,
                                        int64_t(slots) * kv_dim, int32_t(dt), 0};
        DevBuf ddst(cb, dst.size() * sizeof(focus::KvDst));
        cb.upload(ddst.p, dst.data(), dst.size() * sizeof(focus::KvDst));
        cb.kv_store(dk.p, dv.p, ddst.as<focus::KvDst>(), n, kv_dim, layer);
        bool ok = true;
        for (int kvi = 0; kvi < 2 && ok; ++kvi) {
          const std::vector<float>& src = kvi ? v : k;
          std::vector<uint8_t> got(pool * des);
          cb.download(got.data(), kvi ? pv.p : pk.p, got.size());
          std::vector<uint8_t> want(got.size(), 0xff);
          for (int i = 0; i < n; ++i)
            for (int j = 0; j < kv_dim; ++j)
              focus::store_from_f32(want.data(), dt,
                                    (size_t(layer) * slots + slot[size_t(i)]) * kv_dim + j,
                                    src[size_t(i) * kv_dim + j]);
          ok = got == want;
        }
        ftest::check(ok, what + " (exact, other rows and layers untouched)");
      }
}

void test_swiglu(CudaBackend& cb, focus::Backend& cpu, DType t, ftest::Rng& rng) {
  for (int64_t n : {int64_t(1), int64_t(7), int64_t(8), int64_t(1000), int64_t(8 * 12345 + 3), int64_t(1) << 20}) {
    if (kSmall && n > 100000) continue;
    const std::string what = str("swiglu ", dtype_name(t), " n=", n);
    auto g = random_vec(rng, size_t(n), t, 6.0f), u = random_vec(rng, size_t(n), t, 2.0f);
    std::vector<float> ref(static_cast<size_t>(n));
    cpu.swiglu(ref.data(), g.data(), u.data(), n);
    DevBuf dg(cb, size_t(n) * 2), du(cb, size_t(n) * 2);
    put(cb, dg.p, g, t);
    put(cb, du.p, u, t);
    PoisonedOut out(cb, size_t(n), t);
    cb.swiglu(out.p(), dg.p, du.p, n);
    out.check(what, ref, tol(t));
    cb.swiglu(dg.p, dg.p, du.p, n);  // out aliases gate, as the runner calls it
    check_close(what + " in place", get(cb, dg.p, size_t(n), t), ref, tol(t));
  }
}

// Embedding rows are copies of the uploaded (converted) table: exact.
void test_embedding_gather(CudaBackend& cb, DType t, ftest::Rng& rng) {
  for (DType ft : {DType::F32, DType::F16, DType::BF16})
    for (int cols : {16, 100, 4096}) {
      const int vocab = kSmall ? 50 : 1000;
      HostWeight table(rng, {vocab, cols}, ft, ft, 1.0f, 0.0f);
      focus::Weight gw = table.load(cb);
      for (int n : {1, 17, 300}) {
        std::vector<int32_t> ids(static_cast<size_t>(n));
        for (int i = 0; i < n; ++i) ids[size_t(i)] = i == 0 ? 0 : i == 1 ? vocab - 1 : rng.below(vocab);
        DevBuf dids(cb, ids.size() * 4);
        cb.upload(dids.p, ids.data(), ids.size() * 4);
        PoisonedOut out(cb, size_t(n) * cols, t);
        cb.embedding(out.p(), gw, dids.as<int32_t>(), n);
        std::vector<float> want(size_t(n) * cols);
        for (int i = 0; i < n; ++i)
          for (int j = 0; j < cols; ++j)
            want[size_t(i) * cols + j] = round_to(table.values[size_t(ids[size_t(i)]) * cols + j], t);
        out.check(str("embedding ", dtype_name(ft), " table -> ", dtype_name(t), " cols=", cols, " n=", n), want, 0.0);
      }
      // The launcher also converts on the fly from a table kept in its file
      // type (the backend never needs it: its tables are act_dtype), and
      // gives an id out of range a NaN row instead of reading wild memory.
      if (ft != t) {
        DevBuf raw(cb, table.file.size());
        cb.upload(raw.p, table.file.data(), table.file.size());
        const int n = 5;
        const std::vector<int32_t> ids{3, vocab - 1, 0, vocab, -1};
        DevBuf dids(cb, ids.size() * 4);
        cb.upload(dids.p, ids.data(), ids.size() * 4);
        PoisonedOut out(cb, size_t(n) * cols, t);
        focus::cuda::embedding(out.p(), t, raw.p, ft, vocab, cols, dids.as<int32_t>(), n, cb.stream());
        std::vector<float> got = get(cb, out.p(), size_t(n) * cols, t);
        bool ok = true;
        for (int i = 0; i < n; ++i)
          for (int j = 0; j < cols; ++j) {
            const float g = got[size_t(i) * cols + j];
            if (i >= 3 ? !std::isnan(g) : g != round_to(table.values[size_t(ids[size_t(i)]) * cols + j], t)) ok = false;
          }
        ftest::check(ok, str("embedding launcher converting ", dtype_name(ft), " -> ", dtype_name(t), " cols=", cols,
                             ", ids out of range give NaN rows"));
      }
      // gather_rows: activation rows, same type.
      const int n = 77;
      std::vector<int32_t> rows(static_cast<size_t>(n));
      for (int i = 0; i < n; ++i) rows[size_t(i)] = rng.below(vocab);
      DevBuf drows(cb, rows.size() * 4);
      cb.upload(drows.p, rows.data(), rows.size() * 4);
      PoisonedOut out(cb, size_t(n) * cols, t);
      cb.gather_rows(out.p(), gw.data, drows.as<int32_t>(), n, cols);
      std::vector<float> want(size_t(n) * cols);
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < cols; ++j) want[size_t(i) * cols + j] = round_to(table.values[size_t(rows[size_t(i)]) * cols + j], t);
      out.check(str("gather_rows ", dtype_name(t), " dim=", cols), want, 0.0);
      cb.release_weight(gw);
    }
}

// Weights of every file dtype land as exactly core/dtype.h's conversion,
// including chunk boundaries of the upload (the staging buffer is 32 MiB) and
// special values: signed zeros, subnormals, overflow to inf in F16.
void test_weight_upload(CudaBackend& cb, DType t, ftest::Rng& rng) {
  const int64_t n = kSmall ? 100003 : 20000003;
  for (DType ft : {DType::F32, DType::F16, DType::BF16}) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = rng.uniform(-3, 3) * std::pow(2.0f, float(rng.below(40) - 20));
    const float special[] = {0.0f, -0.0f, 1e-40f, -3e-39f, 65504.0f, 65519.0f, 65520.0f, -1e6f,
                             6e-8f, 3e-8f,  1e-30f, 3.0e38f, 1.0f + 1.0f / 256, 1.0f + 3.0f / 512};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; ++i) v[i * 7919] = special[i];
    std::vector<uint8_t> file(size_t(n) * focus::dtype_size(ft));
    for (int64_t i = 0; i < n; ++i) focus::store_from_f32(file.data(), ft, size_t(i), v[size_t(i)]);
    focus::TensorView tv = tensor_view("upload", ft, {n}, file);
    focus::Weight w = cb.load_weight(tv, "upload");
    std::vector<uint16_t> got(static_cast<size_t>(n)), want(static_cast<size_t>(n));
    cb.download(got.data(), w.data, got.size() * 2);
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      focus::store_from_f32(&h, t, 0, focus::load_as_f32(file.data(), ft, size_t(i)));
      want[size_t(i)] = h;
    }
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; ++i)
      if (got[size_t(i)] != want[size_t(i)] && bad++ == 0) first = i;
    ftest::check(bad == 0 && w.dtype == t && w.rows == n && w.cols == 1,
                 str("load_weight ", dtype_name(ft), " -> ", dtype_name(t), ", ", n, " elements, bit-exact"),
                 str(bad, " differ, first at ", first));
    cb.release_weight(w);
  }
}

void test_memory(CudaBackend& cb) {
  const size_t free0 = cb.free_bytes();
  const size_t huge = free0 + (size_t(1) << 30);
  try {
    void* p = cb.alloc(huge, "a test allocation");
    cb.dealloc(p);
    ftest::fail("alloc of more than the free memory throws OutOfMemory");
  } catch (const focus::OutOfMemory& e) {
    const std::string msg = e.what();
    ftest::check(e.needed == huge && e.available > 0 && msg.find("a test allocation") != std::string::npos &&
                     msg.find("needs") != std::string::npos,
                 "alloc of more than the free memory throws OutOfMemory naming it", msg);
  }
  try {
    DevBuf small(cb, 1 << 20);
    poison(cb, small.p, small.bytes);
    cb.sync();
    ftest::pass("the device works after an OutOfMemory");
  } catch (const std::exception& e) {
    ftest::fail(std::string("the device works after an OutOfMemory: ") + e.what());
  }
  const size_t before = cb.allocated_bytes();
  {
    DevBuf a(cb, 3 << 20);
    ftest::check(cb.allocated_bytes() == before + (3 << 20) && cb.peak_bytes() >= before + (3 << 20),
                 "allocation counters follow alloc");
  }
  ftest::check(cb.allocated_bytes() == before, "allocation counters follow dealloc");
  try {
    focus::make_cuda_backend(4096);
    ftest::fail("make_cuda_backend(4096) throws");
  } catch (const focus::Error& e) {
    ftest::check(std::string(e.what()).find("does not exist") != std::string::npos,
                 "make_cuda_backend(4096) throws: device does not exist", e.what());
  }
}

// The backend's GEMM wiring: row split between two weight sets in one
// launch, biases, the three epilogues, against the CPU matmul.
void test_matmul(CudaBackend& cb, focus::Backend& cpu, DType t, ftest::Rng& rng) {
  for (int m : {1, 17, 100})
    for (int nk : {0, 1}) {
      const int n = nk ? 96 : 64, k = nk ? 128 : 64;
      HostWeight w1(rng, {n, k}, DType::F32, t, 0.2f, 0.0f), w2(rng, {n, k}, DType::F32, t, 0.2f, 0.0f);
      HostWeight b1(rng, {n}, DType::F32, t, 1.0f, 0.0f), b2(rng, {n}, DType::F32, t, 1.0f, 0.0f);
      focus::Weight g1 = w1.load(cb), g2 = w2.load(cb), gb1 = b1.load(cb), gb2 = b2.load(cb);
      focus::Weight c1 = w1.load(cpu), c2 = w2.load(cpu), cb1 = b1.load(cpu), cb2 = b2.load(cpu);
      auto x = random_vec(rng, size_t(m) * k, t, 1.0f);
      auto init = random_vec(rng, size_t(m) * n, t, 1.0f);
      DevBuf dx(cb, x.size() * 2);
      put(cb, dx.p, x, t);
      for (int split : {0, m / 2, m})
        for (focus::Epilogue e : {focus::Epilogue::Store, focus::Epilogue::Add, focus::Epilogue::StoreF32}) {
          const bool f32 = e == focus::Epilogue::StoreF32;
          const DType ot = f32 ? DType::F32 : t;
          const std::string what = str("matmul_split ", dtype_name(t), " m=", m, " n=", n, " k=", k, " split=", split,
                                       e == focus::Epilogue::Add ? " Add" : f32 ? " StoreF32" : " Store");
          std::vector<float> ref = e == focus::Epilogue::Add ? init : std::vector<float>(init.size());
          cpu.matmul_split(ref.data(), x.data(), m, split, c1, &cb1, c2, &cb2, e);
          PoisonedOut out(cb, init.size(), ot);
          if (e == focus::Epilogue::Add) put(cb, out.p(), init, t);
          cb.matmul_split(out.p(), dx.p, m, split, g1, &gb1, g2, &gb2, e);
          out.check(what, ref, f32 ? 2e-3 : tol(t));
        }
      for (focus::Weight* w : {&g1, &g2, &gb1, &gb2}) cb.release_weight(*w);
    }
}

// ---- sampling ---------------------------------------------------------------------

void test_argmax(CudaBackend& cb, ftest::Rng& rng) {
  for (int vocab : {1, 7, 32000, 100000}) {
    const int rows = 6;
    std::vector<float> l(size_t(rows) * vocab);
    for (auto& x : l) x = rng.uniform(-5, 5);
    auto row = [&](int r) { return l.data() + size_t(r) * vocab; };
    if (vocab > 3) {
      row(1)[vocab / 2] = 9.0f, row(1)[vocab / 3] = 9.0f, row(1)[vocab - 1] = 9.0f;  // ties: lowest index
      row(2)[0] = NAN, row(2)[vocab - 1] = 100.0f, row(2)[1] = NAN;                  // NaN never wins
      row(5)[2] = INFINITY, row(5)[3] = INFINITY;
    }
    std::fill(row(3), row(3) + vocab, NAN);        // nothing: index 0
    std::fill(row(4), row(4) + vocab, -INFINITY);  // all -inf: index 0
    DevBuf dl(cb, l.size() * 4), dout(cb, rows * 4);
    cb.upload(dl.p, l.data(), l.size() * 4);
    focus::cuda::sample_argmax(dl.as<float>(), rows, vocab, dout.as<int32_t>(), cb.stream());
    std::vector<int32_t> got(rows);
    cb.download(got.data(), dout.p, rows * 4);
    bool ok = true;
    std::string detail;
    for (int r = 0; r < rows; ++r) {
      const int want = host_argmax(row(r), vocab);
      if (got[size_t(r)] != want) ok = false, detail += str("row ", r, ": got ", got[size_t(r)], ", want ", want, "; ");
    }
    ftest::check(ok, str("sample_argmax vocab=", vocab, " (ties, NaN, -inf, +inf rows)"), detail);
  }
}

// Many draws of one distribution in one launch (the row repeated), against
// the probabilities of lib/sampling.ts's rule computed in double.
void test_sampling_distribution(CudaBackend& cb, ftest::Rng& rng) {
  struct Case {
    const char* name;
    float temperature;
    int top_k;
    float top_p;
    bool ties;
  } cases[] = {{"T=1", 1.0f, 0, 1.0f, false},        {"T=0.7 top-k 10", 0.7f, 10, 1.0f, false},
               {"T=1.3 top-p 0.8", 1.3f, 0, 0.8f, false}, {"T=1 top-k 20 top-p 0.9", 1.0f, 20, 0.9f, false},
               {"tied logits, top-k 7", 1.0f, 7, 1.0f, true}, {"tied logits, top-p 0.55", 1.0f, 0, 0.55f, true},
               {"tied logits, top-k 9 top-p 0.7", 0.8f, 9, 0.7f, true}};
  const int vocab = 50, draws = kSmall ? 20000 : 400000;
  for (const Case& c : cases) {
    std::vector<float> l(static_cast<size_t>(vocab));
    // Tied logits come from a small set of values, so cut-offs fall inside groups.
    for (auto& x : l) x = c.ties ? float(rng.below(6)) * 0.5f : rng.uniform(-3, 3);
    const std::vector<double> p = host_sample_probs(l, c.temperature, c.top_k, c.top_p);
    std::vector<float> all(size_t(draws) * vocab), u(static_cast<size_t>(draws));
    for (int r = 0; r < draws; ++r) std::copy(l.begin(), l.end(), all.begin() + size_t(r) * vocab);
    for (auto& x : u) x = float(rng.next() >> 40) / float(1 << 24);
    DevBuf dl(cb, all.size() * 4), du(cb, u.size() * 4), dout(cb, size_t(draws) * 4);
    cb.upload(dl.p, all.data(), all.size() * 4);
    cb.upload(du.p, u.data(), u.size() * 4);
    focus::cuda::SampleParams sp;
    sp.temperature = c.temperature, sp.top_k = c.top_k, sp.top_p = c.top_p;
    focus::cuda::sample(dl.as<float>(), draws, vocab, sp, du.as<float>(), dout.as<int32_t>(), cb.stream());
    std::vector<int32_t> got(static_cast<size_t>(draws));
    cb.download(got.data(), dout.p, got.size() * 4);
    std::vector<double> count(static_cast<size_t>(vocab));
    bool in_range = true;
    for (int32_t g : got)
      if (g < 0 || g >= vocab) in_range = false;
      else count[size_t(g)] += 1;
    double worst = 0;
    bool outside = false;
    for (int i = 0; i < vocab; ++i) {
      const double f = count[size_t(i)] / draws, sd = std::sqrt(p[size_t(i)] * (1 - p[size_t(i)]) / draws);
      if (p[size_t(i)] == 0 && count[size_t(i)] > 0) outside = true;
      worst = std::max(worst, std::fabs(f - p[size_t(i)]) / (5 * sd + 2e-4));
    }
    ftest::check(in_range && !outside && worst <= 1.0,
                 str("sample ", c.name, ": ", draws, " draws match the kept set and its probabilities"),
                 str("in range ", in_range, ", drawn outside the set ", outside, ", worst deviation ", worst,
                     " of the allowed 5 sd"));

    // The same distribution through evenly spread uniforms: the inverse CDF
    // in index order, token by token (rounding may move a boundary draw).
    const int r2 = 10000;
    std::vector<float> ue(static_cast<size_t>(r2));
    for (int i = 0; i < r2; ++i) ue[size_t(i)] = (float(i) + 0.5f) / float(r2);
    cb.upload(du.p, ue.data(), ue.size() * 4);
    focus::cuda::sample(dl.as<float>(), r2, vocab, sp, du.as<float>(), dout.as<int32_t>(), cb.stream());
    cb.download(got.data(), dout.p, size_t(r2) * 4);
    int mismatch = 0;
    for (int i = 0; i < r2; ++i) {
      double acc = 0;
      int want = -1;
      for (int j = 0; j < vocab && want < 0; ++j)
        if (p[size_t(j)] > 0 && (acc += p[size_t(j)]) >= double(ue[size_t(i)])) want = j;
      mismatch += got[size_t(i)] != want;
    }
    ftest::check(mismatch <= r2 / 500, str("sample ", c.name, ": inverse CDF in index order"),
                 str(mismatch, " of ", r2, " draws differ"));
  }
  // Temperature 0 is argmax; a large vocabulary with top-k + top-p stays in its set.
  const int vocab2 = 32000, rows2 = kSmall ? 50 : 2000;
  std::vector<float> l(size_t(rows2) * vocab2), u(static_cast<size_t>(rows2));
  for (auto& x : l) x = rng.uniform(-8, 8);
  for (auto& x : u) x = float(rng.next() >> 40) / float(1 << 24);
  DevBuf dl(cb, l.size() * 4), du(cb, u.size() * 4), dout(cb, size_t(rows2) * 4);
  cb.upload(dl.p, l.data(), l.size() * 4);
  cb.upload(du.p, u.data(), u.size() * 4);
  focus::cuda::SampleParams sp;
  sp.temperature = 0.9f, sp.top_k = 40, sp.top_p = 0.9f;
  focus::cuda::sample(dl.as<float>(), rows2, vocab2, sp, du.as<float>(), dout.as<int32_t>(), cb.stream());
  std::vector<int32_t> got(static_cast<size_t>(rows2));
  cb.download(got.data(), dout.p, got.size() * 4);
  int bad = 0;
  for (int r = 0; r < rows2; ++r) {
    const std::vector<float> row(l.begin() + size_t(r) * vocab2, l.begin() + size_t(r + 1) * vocab2);
    const int g = got[size_t(r)];
    if (g < 0 || g >= vocab2 || host_sample_probs(row, sp.temperature, sp.top_k, sp.top_p)[size_t(g)] == 0) ++bad;
  }
  ftest::check(bad == 0, str("sample vocab 32000 top-k 40 top-p 0.9: ", rows2, " rows drawn inside their sets"),
               str(bad, " outside"));
  sp.temperature = 0.0f;
  focus::cuda::sample(dl.as<float>(), rows2, vocab2, sp, du.as<float>(), dout.as<int32_t>(), cb.stream());
  cb.download(got.data(), dout.p, got.size() * 4);
  bad = 0;
  for (int r = 0; r < rows2; ++r) bad += got[size_t(r)] != host_argmax(l.data() + size_t(r) * vocab2, vocab2);
  ftest::check(bad == 0, "sample with temperature 0 is argmax", str(bad, " rows differ"));
}

}  // namespace

int main() {
  const std::string why = focus::cuda_unavailable_reason();
  if (!why.empty()) {
    ftest::skip("CUDA backend ops", why);
    return ftest::finish();
  }
  try {
    std::unique_ptr<focus::Backend> cpu = focus::make_cpu_backend(2);
    ftest::Rng rng(20261128);
    for (DType t : {DType::BF16, DType::F16}) {
      CudaBackend cb(0);
      cb.configure(t);
      ftest::check(cb.act_dtype() == t, str("configure(", dtype_name(t), ") picks ", dtype_name(t), " activations"));
      auto guarded = [&](const char* what, auto&& f) {
        if (!selected(what)) return;
        try {
          f();
        } catch (const std::exception& e) {
          ftest::fail(str(what, " ", dtype_name(t), ": ", e.what()));
        }
      };
      guarded("rms_norm", [&] { test_rms_norm(cb, *cpu, t, rng); });
      guarded("rope", [&] { test_rope(cb, *cpu, t, rng); });
      guarded("kv_store", [&] { test_kv_store(cb, t, rng); });
      guarded("swiglu", [&] { test_swiglu(cb, *cpu, t, rng); });
      guarded("embedding", [&] { test_embedding_gather(cb, t, rng); });
      guarded("weights", [&] { test_weight_upload(cb, t, rng); });
      guarded("matmul", [&] { test_matmul(cb, *cpu, t, rng); });
      if (t == DType::BF16) {
        guarded("memory", [&] { test_memory(cb); });
        guarded("argmax", [&] { test_argmax(cb, rng); });
        guarded("sampling", [&] { test_sampling_distribution(cb, rng); });
      }
    }
    CudaBackend f32ckpt(0);
    f32ckpt.configure(DType::F32);
    ftest::check(f32ckpt.act_dtype() == DType::BF16, "an F32 checkpoint runs with BF16 activations");
  } catch (const std::exception& e) {
    ftest::fail(std::string("CUDA ops: ") + e.what());
  }
  return ftest::finish();
}
