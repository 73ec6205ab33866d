// Buffers that start at any byte, through the scalar dtype helpers
// (core/dtype.h) and the reference oracle (common/reference.cpp), compiled
// with UBSan's alignment check made fatal (tests.cmake). A KV destination at
// byte offset 2 (cpu_ops_test does that on purpose) once took a misaligned
// float store in ref::kv_store: undefined behaviour, and a trap here.
#include <cstring>
#include <string>
#include <vector>

#include "common/reference.h"
#include "common/testing.h"
#include "core/dtype.h"

using focus::DType;

namespace {

const DType kDtypes[] = {DType::F32, DType::F16, DType::BF16};

std::string name(DType t) { return focus::dtype_name(t); }

// What a round trip through dtype t gives.
float rounded(float x, DType t) {
  if (t == DType::F32) return x;
  return t == DType::F16 ? focus::f16_to_f32(focus::f32_to_f16(x)) : focus::bf16_to_f32(focus::f32_to_bf16(x));
}

void check_helpers(ftest::Rng& rng) {
  const int n = 37;
  for (DType t : kDtypes)
    for (int off : {1, 2, 3}) {
      std::vector<char> buf(size_t(n) * focus::dtype_size(t) + 8, 0);
      std::vector<float> want(n);
      bool same = true;
      for (int i = 0; i < n; ++i) {
        const float x = rng.uniform() * 4 - 2;
        focus::store_from_f32(buf.data() + off, t, size_t(i), x);
        want[size_t(i)] = rounded(x, t);
      }
      for (int i = 0; i < n; ++i) same = same && focus::load_as_f32(buf.data() + off, t, size_t(i)) == want[size_t(i)];
      ftest::check(same, name(t) + " at byte offset " + std::to_string(off) + ": store_from_f32 / load_as_f32 round trip");
    }
}

void check_reference_ops(ftest::Rng& rng) {
  // ref::kv_store into rows of every dtype that start 2 bytes into their buffers.
  const int n = 6, kvd = 33, layer = 1, layers = 2;
  std::vector<float> k(size_t(n) * kvd), v(size_t(n) * kvd);
  for (float& x : k) x = rng.uniform();
  for (float& x : v) x = rng.uniform();
  std::vector<std::vector<char>> bufs(2 * n);
  std::vector<focus::KvDst> dst(n);
  for (int r = 0; r < n; ++r) {
    const DType t = kDtypes[r % 3];
    for (int j = 0; j < 2; ++j) bufs[size_t(2 * r + j)].assign(size_t(layers * kvd) * focus::dtype_size(t) + 2, 0);
    dst[size_t(r)] = focus::KvDst{bufs[size_t(2 * r)].data() + 2, bufs[size_t(2 * r + 1)].data() + 2, kvd, int32_t(t), 0};
  }
  focus::ref::kv_store(k.data(), v.data(), dst.data(), n, kvd, layer);
  bool same = true;
  for (int r = 0; r < n; ++r) {
    const DType t = kDtypes[r % 3];
    for (int j = 0; j < kvd; ++j) {
      const size_t at = size_t(layer * kvd + j), src = size_t(r * kvd + j);
      same = same && focus::load_as_f32(dst[size_t(r)].k, t, at) == rounded(k[src], t);
      same = same && focus::load_as_f32(dst[size_t(r)].v, t, at) == rounded(v[src], t);
    }
  }
  ftest::check(same, "ref::kv_store into rows at byte offset 2 (F32, F16, BF16)");

  // ref::to_f32 / from_f32 on buffers at an odd byte.
  for (DType t : kDtypes) {
    const int m = 19;
    std::vector<float> src(m), back(m), want(m);
    for (int i = 0; i < m; ++i) src[size_t(i)] = rng.uniform() * 8 - 4, want[size_t(i)] = rounded(src[size_t(i)], t);
    std::vector<char> buf(size_t(m) * focus::dtype_size(t) + 1);
    focus::ref::from_f32(buf.data() + 1, src.data(), t, m);
    focus::ref::to_f32(back.data(), buf.data() + 1, t, m);
    ftest::check(back == want, name(t) + " at byte offset 1: ref::from_f32 / to_f32 round trip");
  }
}

}  // namespace

int main() {
  ftest::Rng rng(11);
  check_helpers(rng);
  check_reference_ops(rng);
  return ftest::finish();
}
