// Helpers of the CUDA test programs (header-only: test/cpp/common/*.cpp is
// also built without CUDA). Device buffers through the Backend interface,
// NaN poisoning with guard elements, 16-bit conversions, host references of
// the sampling rules.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "common/testing.h"
#include "core/backend.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/safetensors.h"

namespace ftest::cu {

using focus::DType;
using focus::dtype_name;
using focus::str;

// x rounded to the nearest value of type t (what an upload in t keeps).
inline float round_to(float x, DType t) {
  uint8_t b[4];
  focus::store_from_f32(b, t, 0, x);
  return focus::load_as_f32(b, t, 0);
}

// n values uniform in [-scale, scale], representable in t, so that the CPU
// (float32) and the device (t) start from the very same numbers.
inline std::vector<float> random_vec(Rng& rng, size_t n, DType t, float scale) {
  std::vector<float> v(n);
  for (auto& x : v) x = round_to(rng.uniform(-scale, scale), t);
  return v;
}

// Backend memory owned for a scope.
struct DevBuf {
  focus::Backend* be;
  void* p;
  size_t bytes;
  DevBuf(focus::Backend& b, size_t n) : be(&b), p(b.alloc(n, "test buffer")), bytes(n) {}
  ~DevBuf() { be->dealloc(p); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(p);
  }
};

// 0xff bytes: NaN in F32, F16 and BF16 alike.
inline void poison(focus::Backend& be, void* p, size_t bytes) {
  std::vector<uint8_t> ff(bytes, 0xff);
  be.upload(p, ff.data(), bytes);
  be.sync();
}

inline void put(focus::Backend& be, void* dst, const std::vector<float>& v, DType t) {
  std::vector<uint8_t> raw(v.size() * focus::dtype_size(t));
  for (size_t i = 0; i < v.size(); ++i) focus::store_from_f32(raw.data(), t, i, v[i]);
  be.upload(dst, raw.data(), raw.size());
  be.sync();
}

inline std::vector<float> get(focus::Backend& be, const void* src, size_t n, DType t) {
  std::vector<uint8_t> raw(n * focus::dtype_size(t));
  be.download(raw.data(), src, raw.size());
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = focus::load_as_f32(raw.data(), t, i);
  return v;
}

inline bool check_close(const std::string& what, const std::vector<float>& got, const std::vector<float>& ref,
                        double tol) {
  if (got.size() != ref.size()) return ftest::check(false, what, str(got.size(), " values, expected ", ref.size()));
  return ftest::check_close(what, got.data(), ref.data(), got.size(), tol);
}

// An output buffer of n elements of t followed by kGuard guard elements, all
// poisoned: an element the op does not write stays NaN and fails the
// comparison; a write past the end shows in the guard.
struct PoisonedOut {
  static constexpr size_t kGuard = 64;
  DevBuf buf;
  size_t n;
  DType t;
  PoisonedOut(focus::Backend& be, size_t n_, DType t_)
      : buf(be, (n_ + kGuard) * focus::dtype_size(t_)), n(n_), t(t_) {
    poison(be, buf.p, buf.bytes);
  }
  void* p() const { return buf.p; }
  template <class T>
  T* as() const {
    return buf.as<T>();
  }
  void check(const std::string& what, const std::vector<float>& ref, double tol) const {
    std::vector<uint8_t> raw(buf.bytes);
    buf.be->download(raw.data(), buf.p, raw.size());
    const size_t es = focus::dtype_size(t);
    if (!std::all_of(raw.begin() + long(n * es), raw.end(), [](uint8_t b) { return b == 0xff; })) {
      ftest::fail(what + ": wrote past the end of its output");
      return;
    }
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = focus::load_as_f32(raw.data(), t, i);
    check_close(what, v, ref, tol);
  }
};

inline focus::TensorView tensor_view(const std::string& name, DType t, std::vector<int64_t> shape,
                                     const std::vector<uint8_t>& bytes) {
  focus::TensorView v;
  v.name = name;
  v.file = "(test data)";
  v.dtype_name = dtype_name(t);
  v.dtype_supported = true;
  v.dtype = t;
  v.shape = std::move(shape);
  v.data = bytes.data();
  v.nbytes = bytes.size();
  return v;
}

// A weight as a checkpoint would hold it: `file` in file_dtype, whose values
// (offset + uniform(-scale, scale)) are also representable in `round`.
struct HostWeight {
  std::vector<float> values;
  std::vector<uint8_t> file;
  std::vector<int64_t> shape;
  DType file_dtype;
  HostWeight(Rng& rng, std::vector<int64_t> shape_, DType file_dtype_, DType round, float scale, float offset)
      : shape(std::move(shape_)), file_dtype(file_dtype_) {
    const int64_t n = std::accumulate(shape.begin(), shape.end(), int64_t(1), std::multiplies<int64_t>());
    values.resize(size_t(n));
    file.resize(size_t(n) * focus::dtype_size(file_dtype));
    for (int64_t i = 0; i < n; ++i) {
      const float x = round_to(round_to(offset + rng.uniform(-scale, scale), round), file_dtype);
      values[size_t(i)] = x;
      focus::store_from_f32(file.data(), file_dtype, size_t(i), x);
    }
  }
  HostWeight(const HostWeight&) = delete;
  focus::Weight load(focus::Backend& be) const {
    return be.load_weight(tensor_view("test weight", file_dtype, shape, file), "test weight");
  }
};

// lib/sampling.ts argmax: the first strictly greater value wins; NaN never does.
inline int host_argmax(const float* l, int n) {
  int best = 0;
  float bv = -INFINITY;
  for (int i = 0; i < n; ++i)
    if (l[i] > bv) bv = l[i], best = i;
  return best;
}

// Probability of each token under lib/sampling.ts's rule (temperature > 0):
// top-k by logit (stable: ties to the lower index), softmax / temperature,
// then the smallest prefix of the probability order (stable) reaching top_p.
inline std::vector<double> host_sample_probs(const std::vector<float>& l, float temperature, int top_k, float top_p) {
  const int n = int(l.size());
  std::vector<int> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  if (top_k > 0 && top_k < n) {
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return l[size_t(a)] > l[size_t(b)]; });
    idx.resize(size_t(top_k));
  }
  double mx = -INFINITY;
  for (int i : idx) mx = std::max(mx, double(l[size_t(i)]));
  std::vector<double> p(idx.size());
  double sum = 0;
  for (size_t j = 0; j < idx.size(); ++j) sum += p[j] = std::exp((double(l[size_t(idx[j])]) - mx) / temperature);
  std::vector<size_t> keep(idx.size());
  std::iota(keep.begin(), keep.end(), size_t(0));
  if (top_p < 1) {
    std::stable_sort(keep.begin(), keep.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
    double acc = 0;
    size_t m = 0;
    while (m < keep.size()) {
      acc += p[keep[m++]] / sum;
      if (acc >= double(top_p)) break;
    }
    keep.resize(m);
  }
  double kept = 0;
  for (size_t j : keep) kept += p[j];
  std::vector<double> out(size_t(n), 0.0);
  for (size_t j : keep) out[size_t(idx[j])] = p[j] / kept;
  return out;
}

}  // namespace ftest::cu
