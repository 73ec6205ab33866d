// The CUDA attention kernels (cuda/attention.cuh) against a float64 host
// reference of cpp/cpu/attention.cpp's semantics, computed from the same
// 16-bit inputs: decode and prefill segments, GQA, candidate prefixes, layer
// strides, shared caches, split-KV, unaligned buffers, f16 and bf16.
//
// Two ways to run it:
//  - in a CUDA build: cuda_attention_test; without a usable device the kernel
//    cases are skipped (the argument checks still run) and it exits 77, so
//    ctest reports it skipped;
//  - on any machine, no GPU: the same kernel sources compiled as C++ with
//    FOCUS_ATTN_EMULATE against the CPU emulator of their warp-level
//    primitives (cuda/attention_emulator.cuh); only the CUDA headers needed:
//      g++ -std=c++17 -O2 -U_FORTIFY_SOURCE -Wno-attributes -fno-strict-aliasing -x c++
//        -DFOCUS_ATTN_EMULATE -Icpp -Icuda -Itest/cpp -I/usr/local/cuda/include
//        test/cpp/cuda_attention_test.cu test/cpp/common/testing.cpp cpp/core/util.cpp
//        -o attn_emu && ./attn_emu       (one command; FOCUS_EMU_ALL=1 adds the big cases, ~40 s)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/testing.h"
#include "core/dtype.h"
#include "core/error.h"

#ifdef FOCUS_ATTN_EMULATE
#include "../../cuda/attention_emulator.cuh"
#undef __launch_bounds__
#define __launch_bounds__(...)
#define threadIdx (::focus::cuda::attn::emu::thread_idx())
#define blockIdx (::focus::cuda::attn::emu::block_idx())
#include "../../cuda/attention.cu"
#include "../../cuda/attention_decode.cu"
#include "../../cuda/attention_prefill.cu"
#undef threadIdx
#undef blockIdx
#else
#include "../../cuda/attention.cuh"
#include "../../cuda/common.cuh"
#endif

using focus::AttnArgs;
using focus::AttnSegment;
using focus::DType;

namespace {

// ---- device memory (host memory under the emulator) --------------------------

#ifdef FOCUS_ATTN_EMULATE
void* dev_alloc(size_t n) { return std::malloc(n ? n : 1); }
void dev_free(void* p) { std::free(p); }
void h2d(void* d, const void* h, size_t n) { std::memcpy(d, h, n); }
void d2h(void* h, const void* d, size_t n) { std::memcpy(h, d, n); }
void dev_sync() {}
std::string device_unavailable() { return ""; }
#else
void* dev_alloc(size_t n) {
  void* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, n ? n : 1));
  return p;
}
void dev_free(void* p) { cudaFree(p); }
void h2d(void* d, const void* h, size_t n) { CUDA_CHECK(cudaMemcpy(d, h, n, cudaMemcpyHostToDevice)); }
void d2h(void* h, const void* d, size_t n) { CUDA_CHECK(cudaMemcpy(h, d, n, cudaMemcpyDeviceToHost)); }
void dev_sync() { CUDA_CHECK(cudaDeviceSynchronize()); }
std::string device_unavailable() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) return std::string("no usable CUDA device: ") + cudaGetErrorString(e);
  if (n == 0) return "no CUDA device";
  return "";
}
#endif

// Device buffers freed at the end of a case.
struct Arena {
  std::vector<void*> ptrs;
  ~Arena() {
    for (void* p : ptrs) dev_free(p);
  }
  void* alloc(size_t n) {
    ptrs.push_back(dev_alloc(n));
    return ptrs.back();
  }
};

constexpr uint16_t kNaN16 = 0xFFFF;  // NaN in both bf16 and f16

float to_f32(uint16_t h, DType t) { return t == DType::BF16 ? focus::bf16_to_f32(h) : focus::f16_to_f32(h); }
uint16_t from_f32(float f, DType t) { return t == DType::BF16 ? focus::f32_to_bf16(f) : focus::f32_to_f16(f); }

// ---- cases --------------------------------------------------------------------

struct SegSpec {
  int n_q, q_index, n_prefix;
  int share = -1;  // >= 0: same main keys (and prefix) as that earlier segment, like a chunk's two decode tokens
};

struct Case {
  std::string name;
  int n_heads, n_kv_heads, head_dim;
  std::vector<SegSpec> segs;
  DType dtype = DType::BF16;
  int layer = 0, n_layers = 1;  // layer > 0: keys at non-zero layer strides
  float q_amp = 1.0f;           // larger: peakier softmax
  bool ramp = false;            // scores rise with the key index: the running max moves every tile
  int misalign = 0;             // elements added to every key/value start (1: 2-byte, 2: 4-byte alignment)
  bool big = false;             // skipped by the emulator (too slow there)
};

// One key buffer: (n_layers, rows, kv_dim) at `stride` elements per layer.
struct KeyBuf {
  std::vector<uint16_t> k, v;
  int64_t k_stride = 0, v_stride = 0;
  int off = 0;  // element offset of row 0
  const void* dk = nullptr;
  const void* dv = nullptr;
  float k_at(int layer, int row, int col, int kvd, DType t) const {
    return to_f32(k[size_t(off + layer * k_stride + int64_t(row) * kvd + col)], t);
  }
  float v_at(int layer, int row, int col, int kvd, DType t) const {
    return to_f32(v[size_t(off + layer * v_stride + int64_t(row) * kvd + col)], t);
  }
};

// Rows [0, rows) of `layer` random (K column 0 ramped when asked); every other
// element NaN, so that reading a key that does not exist poisons the output.
KeyBuf make_keys(Arena& ar, ftest::Rng& rng, const Case& c, int rows, int cap, bool k_stride0) {
  const int kvd = c.n_kv_heads * c.head_dim;
  KeyBuf b;
  b.off = c.misalign;
  b.v_stride = int64_t(cap) * kvd + 8;  // padded: layers are not back to back
  b.k_stride = k_stride0 ? 0 : b.v_stride;
  const size_t n = size_t(b.off) + size_t(c.n_layers) * size_t(b.v_stride) + 8;
  b.k.assign(n, kNaN16);
  b.v.assign(n, kNaN16);
  for (int r = 0; r < rows; ++r)
    for (int e = 0; e < kvd; ++e) {
      float kv = rng.uniform();
      if (c.ramp && e % c.head_dim == 0) kv = 3.0f * float(r) / float(rows);
      b.k[size_t(b.off + c.layer * b.k_stride + int64_t(r) * kvd + e)] = from_f32(kv, c.dtype);
      b.v[size_t(b.off + c.layer * b.v_stride + int64_t(r) * kvd + e)] = from_f32(rng.uniform(), c.dtype);
    }
  void* dk = ar.alloc(n * 2);
  void* dv = ar.alloc(n * 2);
  h2d(dk, b.k.data(), n * 2);
  h2d(dv, b.v.data(), n * 2);
  b.dk = static_cast<uint16_t*>(dk) + b.off;  // row 0 of layer 0
  b.dv = static_cast<uint16_t*>(dv) + b.off;
  b.off = b.off;
  return b;
}

void run_case(const Case& c, uint64_t seed) {
  Arena ar;
  ftest::Rng rng(seed);
  const int hd = c.head_dim, kvd = c.n_kv_heads * hd, qd = c.n_heads * hd, G = c.n_heads / c.n_kv_heads;
  const int ns = int(c.segs.size());

  // Rows: segments in reverse order, an uncovered row after every other one.
  std::vector<int> q_row(static_cast<size_t>(ns));
  int n_rows = 0;
  for (int i = ns - 1; i >= 0; --i) {
    q_row[size_t(i)] = n_rows;
    n_rows += c.segs[size_t(i)].n_q + (i % 2 == 0 ? 1 : 0);
  }
  std::vector<char> covered(static_cast<size_t>(n_rows), 0);

  // Keys: each unshared segment gets its own main (and prefix) buffers.
  std::vector<int> owner(static_cast<size_t>(ns));
  std::vector<int> rows_needed(static_cast<size_t>(ns), 0);
  for (int i = 0; i < ns; ++i) {
    const SegSpec& s = c.segs[size_t(i)];
    owner[size_t(i)] = s.share >= 0 ? owner[size_t(s.share)] : i;
    int& r = rows_needed[size_t(owner[size_t(i)])];
    r = std::max(r, s.q_index + s.n_q);
  }
  std::vector<KeyBuf> mains(static_cast<size_t>(ns)), prefixes(static_cast<size_t>(ns));
  for (int i = 0; i < ns; ++i) {
    if (owner[size_t(i)] != i) continue;
    const SegSpec& s = c.segs[size_t(i)];
    mains[size_t(i)] = make_keys(ar, rng, c, rows_needed[size_t(i)], rows_needed[size_t(i)] + 3, false);
    // Prefix keys like the runner's rotated scratch: the same rows for every layer (stride 0).
    if (s.n_prefix > 0) prefixes[size_t(i)] = make_keys(ar, rng, c, s.n_prefix, s.n_prefix + 2, true);
  }
  std::vector<AttnSegment> segs(static_cast<size_t>(ns));
  for (int i = 0; i < ns; ++i) {
    const SegSpec& s = c.segs[size_t(i)];
    const KeyBuf& m = mains[size_t(owner[size_t(i)])];
    const KeyBuf& p = prefixes[size_t(owner[size_t(i)])];
    AttnSegment& g = segs[size_t(i)];
    g = AttnSegment{};
    g.q_row = q_row[size_t(i)];
    g.n_q = s.n_q;
    g.q_index = s.q_index;
    g.n_prefix = s.n_prefix;
    g.k_main = m.dk;
    g.v_main = m.dv;
    g.main_layer_stride = m.v_stride;
    g.main_dtype = int32_t(c.dtype);
    if (s.n_prefix > 0) {
      g.k_prefix = p.dk;
      g.v_prefix = p.dv;
      g.prefix_k_layer_stride = p.k_stride;
      g.prefix_v_layer_stride = p.v_stride;
      g.prefix_dtype = int32_t(c.dtype);
    }
    for (int j = 0; j < s.n_q; ++j) covered[size_t(g.q_row + j)] = 1;
  }
  void* dsegs = ar.alloc(segs.size() * sizeof(AttnSegment));
  h2d(dsegs, segs.data(), segs.size() * sizeof(AttnSegment));

  std::vector<uint16_t> q(size_t(n_rows) * qd);
  for (size_t i = 0; i < q.size(); ++i) {
    float x = c.q_amp * rng.uniform();
    if (c.ramp && i % size_t(hd) == 0) x = 2.0f * c.q_amp;
    q[i] = from_f32(x, c.dtype);
  }
  void* dq = ar.alloc(q.size() * 2 + 16);
  void* dout = ar.alloc(q.size() * 2 + 16);
  h2d(dq, q.data(), q.size() * 2);
  std::vector<uint16_t> out(q.size(), kNaN16);  // poison
  h2d(dout, out.data(), out.size() * 2);

  AttnArgs a;
  a.segs = static_cast<const AttnSegment*>(dsegs);
  a.segs_host = segs.data();
  a.n_seg = ns;
  a.n_rows = n_rows;
  a.n_heads = c.n_heads;
  a.n_kv_heads = c.n_kv_heads;
  a.head_dim = hd;
  a.layer = c.layer;
  a.scale = float(1.0 / std::sqrt(double(hd)));

  focus::cuda::AttnLaunch l;
  l.args = &a;
  l.out = dout;
  l.q = dq;
  l.dtype = c.dtype;
  l.workspace_bytes = focus::cuda::attention_workspace_bytes(a);
  l.workspace = ar.alloc(l.workspace_bytes);
  {
    std::vector<unsigned char> junk(l.workspace_bytes, 0xFF);  // stale partials must not leak in
    h2d(l.workspace, junk.data(), junk.size());
  }
  focus::cuda::attention(l, nullptr);
  dev_sync();
  d2h(out.data(), dout, out.size() * 2);

  // float64 reference for the covered rows; uncovered rows must be untouched.
  std::vector<float> got, ref;
  bool untouched = true;
  for (int i = 0; i < ns; ++i) {
    const SegSpec& s = c.segs[size_t(i)];
    const KeyBuf& m = mains[size_t(owner[size_t(i)])];
    const KeyBuf& p = prefixes[size_t(owner[size_t(i)])];
    const int max_keys = s.n_prefix + s.q_index + s.n_q;
    std::vector<float> kf(size_t(max_keys) * hd), vf(kf.size());  // one KV head, as float
    std::vector<double> sc(static_cast<size_t>(max_keys)), o(static_cast<size_t>(hd));
    std::vector<float> got_seg(size_t(s.n_q) * qd), ref_seg(got_seg.size());
    for (int g = 0; g < c.n_kv_heads; ++g) {
      for (int j = 0; j < max_keys; ++j)
        for (int e = 0; e < hd; ++e) {
          const bool pre = j < s.n_prefix;
          const KeyBuf& b = pre ? p : m;
          const int r = pre ? j : j - s.n_prefix;
          kf[size_t(j) * hd + e] = b.k_at(c.layer, r, g * hd + e, kvd, c.dtype);
          vf[size_t(j) * hd + e] = b.v_at(c.layer, r, g * hd + e, kvd, c.dtype);
        }
      for (int qi = 0; qi < s.n_q; ++qi)
        for (int h = g * G; h < (g + 1) * G; ++h) {
          const int row = q_row[size_t(i)] + qi, n_keys = s.n_prefix + s.q_index + qi + 1;
          const uint16_t* qv = &q[size_t(row) * qd + size_t(h) * hd];
          double mx = -INFINITY, sum = 0;
          for (int j = 0; j < n_keys; ++j) {
            double d = 0;
            for (int e = 0; e < hd; ++e) d += double(to_f32(qv[e], c.dtype)) * kf[size_t(j) * hd + e];
            sc[size_t(j)] = d * a.scale;
            mx = std::max(mx, sc[size_t(j)]);
          }
          std::fill(o.begin(), o.end(), 0.0);
          for (int j = 0; j < n_keys; ++j) {
            const double w = std::exp(sc[size_t(j)] - mx);
            sum += w;
            for (int e = 0; e < hd; ++e) o[size_t(e)] += w * vf[size_t(j) * hd + e];
          }
          for (int e = 0; e < hd; ++e) {
            ref_seg[size_t(qi) * qd + size_t(h) * hd + e] = float(o[size_t(e)] / sum);
            got_seg[size_t(qi) * qd + size_t(h) * hd + e] = to_f32(out[size_t(row) * qd + size_t(h) * hd + e], c.dtype);
          }
        }
    }
    got.insert(got.end(), got_seg.begin(), got_seg.end());
    ref.insert(ref.end(), ref_seg.begin(), ref_seg.end());
  }
  for (int r = 0; r < n_rows; ++r)
    if (!covered[size_t(r)])
      for (int e = 0; e < qd; ++e) untouched = untouched && out[size_t(r) * qd + e] == kNaN16;
  ftest::check_close(c.name, got.data(), ref.data(), got.size(), 2e-2);
  ftest::check(untouched, c.name + ": rows outside every segment untouched");

#ifndef FOCUS_ATTN_EMULATE
  // A second run must give the same bits (no race, no dependence on the poison).
  std::vector<uint16_t> again(out.size());
  focus::cuda::attention(l, nullptr);
  dev_sync();
  d2h(again.data(), dout, again.size() * 2);
  ftest::check(again == out, c.name + ": a second run gives the same bits");
#endif
}

std::vector<Case> cases() {
  std::vector<Case> v;
  auto add = [&](Case c) { v.push_back(std::move(c)); };
  // Decode: one and two tokens against caches of 0, 1, 7, 100, 3000 keys; all
  // in one call, so groups of unequal length and splits mix.
  for (int hd : {16, 64, 128})
    for (int kvh : {1, 4}) {
      for (int g : {1, 4, 8}) {
        if (hd == 16 && g == 4) continue;
        Case c{"decode hd" + std::to_string(hd) + " G" + std::to_string(g) + " kv" + std::to_string(kvh), kvh * g,
               kvh, hd, {}};
        for (int cache : {0, 1, 7, 100, 3000}) c.segs.push_back({1, cache, 0});
        for (int cache : {1, 7, 100, 3000}) c.segs.push_back({2, cache, 0});
        c.big = hd == 128 && kvh == 4;
        add(c);
      }
    }
  // Parallel candidate decoding as the runner issues it: per chunk, an
  // ordinary token and the candidate as two one-query segments on one cache.
  for (int g : {1, 8}) {
    Case c{"candidate decoding 16 chunks G" + std::to_string(g), 2 * g, 2, 64, {}};
    for (int k = 0; k < 16; ++k) {
      const int base = 200 + 37 * k;
      c.segs.push_back({1, base, 0});
      c.segs.push_back({1, base + 1, 0, int(c.segs.size()) - 1});
    }
    add(c);
  }
  // Prefill lengths around the tiles, fresh and after cached keys.
  for (int hd : {16, 64, 128}) {
    Case c{"prefill lengths hd" + std::to_string(hd), 4, 2, hd, {}};
    for (int n : {1, 5, 63, 64, 65, 129, 300}) c.segs.push_back({n, 0, 0});
    c.segs.push_back({65, 100, 0});
    c.segs.push_back({5, 3, 0});
    add(c);
  }
  add({"prefill 2561 (one chunk) hd128 G4", 8, 2, 128, {{2561, 0, 0}}, DType::BF16, 0, 1, 1.f, false, 0, true});
  add({"prefill 2561 (one chunk) hd64", 2, 2, 64, {{2561, 0, 0}}, DType::BF16, 0, 1, 1.f, false, 0, true});
  // Ingest: 16 chunks (ordinary tokens + candidate) in one launch.
  {
    Case c{"ingest 16 chunks hd64 G4 layer 1", 8, 2, 64, {}, DType::BF16, 1, 2};
    for (int k = 0; k < 16; ++k) {
      c.segs.push_back({120 + 3 * k, 0, 0});
      c.segs.push_back({1, 120 + 3 * k, 0, int(c.segs.size()) - 1});
    }
    add(c);
  }
  // Local sequence over a candidate prefix, and decode over a prefix.
  for (int np : {1, 3, 200}) {
    Case c{"prefix " + std::to_string(np) + " hd64 G4 layer 2", 8, 2, 64, {}, DType::BF16, 2, 3};
    c.segs.push_back({150, 0, np});
    c.segs.push_back({2, 40, np});
    c.segs.push_back({7, 0, np});
    add(c);
  }
  add({"prefix 200 local 2048 hd128", 4, 4, 128, {{2048, 0, 200}}, DType::BF16, 0, 1, 1.f, false, 0, true});
  // f16, peaky softmax, moving maxima, odd and padded head dims, unaligned buffers.
  add({"f16 mixed hd128 G8 layer 1", 8, 1, 128, {{70, 0, 3}, {1, 900, 3}, {2, 50, 0}}, DType::F16, 1, 2});
  add({"peaky q x6 hd64", 4, 4, 64, {{200, 10, 0}, {1, 500, 0}}, DType::BF16, 0, 1, 6.f});
  add({"ramped scores hd64", 2, 1, 64, {{300, 0, 5}, {2, 1200, 0}}, DType::BF16, 0, 1, 1.f, true});
  add({"head_dim 6 (4-byte loads)", 4, 2, 6, {{70, 2, 2}, {1, 100, 0}}});
  add({"head_dim 80 (padded to 128)", 2, 1, 80, {{90, 0, 0}, {2, 300, 1}}, DType::F16});
  add({"head_dim 256", 2, 1, 256, {{40, 5, 0}, {1, 150, 2}}});
  add({"head_dim 256 f16 G4", 4, 1, 256, {{20, 0, 0}, {3, 60, 0}}, DType::F16});
  add({"misaligned (4-byte) hd64", 4, 2, 64, {{66, 1, 2}, {2, 130, 0}}, DType::BF16, 1, 2, 1.f, false, 2});
  // Native decode against a long cache: one group, split over many blocks.
  add({"native decode 20000 keys hd128 G8", 8, 1, 128, {{1, 19999, 0}}});
  add({"native decode 20000 keys hd128 G1 kv4", 4, 4, 128, {{1, 19999, 0}}, DType::BF16, 0, 1, 1.f, false, 0, true});
  // GQA wider than a 16-row tile: 32 heads per KV head.
  add({"GQA 32 hd64", 32, 1, 64, {{1, 300, 0}, {3, 40, 2}, {9, 0, 0}}});
  return v;
}

// Argument checks: they throw before anything reaches the device.
void check_errors() {
  AttnSegment s{};
  s.n_q = 4;
  s.k_main = s.v_main = &s;
  s.main_dtype = int32_t(DType::BF16);
  AttnArgs a;
  a.segs = a.segs_host = &s;
  a.n_seg = 1;
  a.n_rows = 4;
  a.n_heads = 4;
  a.n_kv_heads = 2;
  a.head_dim = 64;
  focus::cuda::AttnLaunch l;
  l.args = &a;
  l.dtype = DType::BF16;
  auto throws = [&](const std::string& what, const std::string& needle) {
    try {
      focus::cuda::attention(l, nullptr);
      ftest::fail("rejects " + what + " (no error)");
    } catch (const focus::Error& e) {
      ftest::check(std::string(e.what()).find(needle) != std::string::npos, "rejects " + what, e.what());
    }
  };
  s.main_dtype = int32_t(DType::F32);
  throws("keys in another dtype", "segment 0");
  s.main_dtype = int32_t(DType::BF16);
  a.n_kv_heads = 3;
  throws("heads that do not share KV heads evenly", "KV heads");
  a.n_kv_heads = 2;
  a.head_dim = 7;
  throws("an odd head_dim", "head_dim");
  a.head_dim = 512;
  throws("head_dim 512", "head_dim");
  a.head_dim = 64;
  a.n_rows = 3;
  throws("rows past n_rows", "outside");
  a.n_rows = 4;
  s.n_prefix = 2;
  throws("a prefix without buffers", "prefix");
  s.n_prefix = 0;
  l.dtype = DType::F32;
  throws("F32 compute", "BF16 or F16");
}

// Checks that need the plan (and so a device): a too small workspace, a
// buffer that is not 4-byte aligned.
void check_launch_errors() {
  Arena ar;
  const int hd = 64, qd = 4 * hd;
  std::vector<uint16_t> halves(size_t(64) * qd, from_f32(0.5f, DType::BF16));
  void* kv = ar.alloc(halves.size() * 2 + 16);
  void* q = ar.alloc(halves.size() * 2);
  void* out = ar.alloc(halves.size() * 2);
  h2d(kv, halves.data(), halves.size() * 2);
  AttnSegment s{};
  s.n_q = 8;
  s.k_main = s.v_main = kv;
  s.main_dtype = int32_t(DType::BF16);
  void* dseg = ar.alloc(sizeof s);
  AttnArgs a;
  a.segs = static_cast<const AttnSegment*>(dseg);
  a.segs_host = &s;
  a.n_seg = 1;
  a.n_rows = 8;
  a.n_heads = 4;
  a.n_kv_heads = 2;
  a.head_dim = hd;
  focus::cuda::AttnLaunch l;
  l.args = &a;
  l.q = q;
  l.out = out;
  l.dtype = DType::BF16;
  auto throws = [&](const std::string& what, const std::string& needle) {
    try {
      h2d(dseg, &s, sizeof s);
      focus::cuda::attention(l, nullptr);
      dev_sync();
      ftest::fail("rejects " + what + " (no error)");
    } catch (const focus::Error& e) {
      ftest::check(std::string(e.what()).find(needle) != std::string::npos, "rejects " + what, e.what());
    }
  };
  l.workspace_bytes = focus::cuda::attention_workspace_bytes(a);
  l.workspace = ar.alloc(l.workspace_bytes);
  l.workspace_bytes -= 1;
  throws("a too small workspace", "workspace");
  l.workspace_bytes += 1;
  s.k_main = static_cast<uint16_t*>(kv) + 1;  // 2-byte aligned only
  throws("keys that are not 4-byte aligned", "aligned");
}

}  // namespace

int main() {
  check_errors();
  const std::string why = device_unavailable();
  if (!why.empty()) {
    ftest::skip("attention kernels against the float64 reference", why);
    // The argument checks above ran, but the kernels, which are what this
    // test is for, did not: report it skipped (77), not passed.
    const int rc = ftest::finish();
    return rc == 0 ? 77 : rc;
  }
  check_launch_errors();
  uint64_t seed = 1;
  for (const Case& c : cases()) {
#ifdef FOCUS_ATTN_EMULATE
    if (c.big && !std::getenv("FOCUS_EMU_ALL")) {
      ftest::skip(c.name, "slow in the emulator (FOCUS_EMU_ALL=1 runs it)");
      continue;
    }
#endif
    if (c.big && std::getenv("FOCUSLLM_TEST_SMALL")) {
      ftest::skip(c.name, "FOCUSLLM_TEST_SMALL is set");
      continue;
    }
    try {
      run_case(c, seed++);
    } catch (const std::exception& e) {
      ftest::fail(c.name + ": " + e.what());
    }
  }
  return ftest::finish();
}
