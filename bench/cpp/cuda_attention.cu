// The attention kernels (cuda/attention.cuh) at LLaMA-2-7B shapes (32 heads of
// 128; MHA and GQA with 8 KV heads), each figure beside a ceiling measured in
// the same run (DESIGN section 6):
//   - fused chunk attention (ingest): 16, 64, 200 chunks of 2048 + 513 tokens,
//     segments as the runner issues them (2560 ordinary queries, then the
//     candidate as a one-query segment on the same keys);
//   - the local sequence: 2048 queries over a prefix of 64 / 200 candidates;
//   - parallel candidate decoding: per chunk two one-query segments on one
//     cache of 2561 keys, 16 / 64 / 200 chunks (64 chunks = 128K context);
//   - native decode: one query over a 128K-key cache (split-KV).
// Compute-bound cases give TFLOP/s counting causal work only,
//   flops = 4 * n_heads * head_dim * Σ_segments Σ_i keys(i),
//   keys(i) = n_prefix + q_index + i + 1   (a fresh causal chunk of n: n(n+1)/2),
// against the peak of a plain mma.sync m16n8k16 bf16 loop (what these kernels
// use; the wgmma rate of sm_90 is higher, see bench_roofline). Decoding gives
// GB/s of K and V read (each key row once per decode group) against the
// bandwidth of a read-only kernel and of a device-to-device copy.
// One JSON object per line; medians of 15 runs after 3 warm-ups (CUDA events).
// Without a device: one line with "skipped" and exit 0.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "../../cuda/attention.cuh"
#include "../../cuda/common.cuh"
#include "common/cuda_bench.cuh"
#include "core/backend.h"
#include "core/error.h"

using focus::AttnArgs;
using focus::AttnSegment;
using focus::str;
using namespace ftest::bench;

namespace {

// ---- kernels ----------------------------------------------------------------------

// mma.sync m16n8k16 bf16 throughput: 8 independent accumulators per warp.
constexpr int kMmaIters = 4096;
__global__ void mma_peak(float* sink, uint32_t seed) {
  uint32_t a[4] = {seed, seed * 3u, seed * 5u, seed * 7u}, b0 = seed ^ 0x3f803f80u, b1 = seed ^ 0x3f003f00u;
  float c[8][4] = {};
  for (int it = 0; it < kMmaIters; ++it) {
#pragma unroll
    for (int j = 0; j < 8; ++j)
      asm volatile(
          "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
          "{%0, %1, %2, %3};\n"
          : "+f"(c[j][0]), "+f"(c[j][1]), "+f"(c[j][2]), "+f"(c[j][3])
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  float s = 0;
  for (int j = 0; j < 8; ++j) s += c[j][0] + c[j][1] + c[j][2] + c[j][3];
  if (s == 1234.5f) sink[threadIdx.x] = s;
}

// ---- measuring ----------------------------------------------------------------------

constexpr int kReps = 15, kWarm = 3;  // runs timed (median) and warm-ups before them

struct DevMem {
  std::vector<void*> p;
  ~DevMem() {
    for (void* x : p) cudaFree(x);
  }
  __nv_bfloat16* random(int64_t n, uint64_t seed) {
    void* x = nullptr;
    CUDA_CHECK(cudaMalloc(&x, size_t(std::max<int64_t>(n, 8)) * 2));
    p.push_back(x);
    fill_random(x, n, seed);
    return static_cast<__nv_bfloat16*>(x);
  }
  void* bytes(size_t n) {
    void* x = nullptr;
    CUDA_CHECK(cudaMalloc(&x, std::max<size_t>(n, 16)));
    p.push_back(x);
    return x;
  }
};

std::string g_device;
void emit(const std::string& body) {
  std::printf("{\"bench\": \"cuda_attention\", \"device\": \"%s\", %s}\n", json_escape(g_device).c_str(), body.c_str());
  std::fflush(stdout);
}

struct Roofline {
  double read_gbs = 0, copy_gbs = 0, mma_tflops = 0;
};

Roofline measure_roofline() {
  Roofline r;
  DevMem m;
  Timer tm;
  const int64_t n = int64_t(2) << 30;  // 4 GiB of bf16: far beyond the L2
  __nv_bfloat16* src = m.random(n, 7);
  void* dst = m.bytes(size_t(n) * 2);
  void* sink = m.bytes(1 << 20);
  const double copy_ms = tm.median_ms(
      [&] { CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(n) * 2, cudaMemcpyDeviceToDevice)); }, kReps, kWarm);
  r.copy_gbs = 2.0 * double(n) * 2 / (copy_ms * 1e6);  // read + written
  int sms = 0, dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  const double read_ms = tm.median_ms(
      [&] {
        read_only_kernel<<<sms * 8, 512>>>(reinterpret_cast<const uint4*>(src), n / 8, static_cast<uint4*>(sink));
        CUDA_CHECK_LAUNCH();
      },
      kReps, kWarm);
  r.read_gbs = double(n) * 2 / (read_ms * 1e6);
  const int blocks = sms * 8, threads = 256;
  const double mma_ms = tm.median_ms(
      [&] {
        mma_peak<<<blocks, threads>>>(static_cast<float*>(sink), 0x3f803f80u);
        CUDA_CHECK_LAUNCH();
      },
      kReps, kWarm);
  r.mma_tflops = double(blocks) * (threads / 32) * kMmaIters * 8 * 4096.0 / (mma_ms * 1e9);
  emit(str("\"case\": \"roofline\", \"copy_gbs\": ", r.copy_gbs, ", \"read_gbs\": ", r.read_gbs,
           ", \"mma_sync_bf16_tflops\": ", r.mma_tflops,
           ", \"note\": \"copy counts bytes read + written; mma.sync peak, not wgmma\""));
  return r;
}

// ---- cases ----------------------------------------------------------------------------

struct Shape {
  int n_heads = 32, n_kv_heads = 32, head_dim = 128;
  int kv_dim() const { return n_kv_heads * head_dim; }
  int q_dim() const { return n_heads * head_dim; }
};

// Runs attention() over `segs` (host table; key pointers already set) and
// reports. flops > 0: compute figure; kv_bytes > 0: bandwidth figure.
void run(const std::string& name, const Shape& s, std::vector<AttnSegment>& segs, int n_rows, double flops,
         double kv_bytes, const Roofline& roof, DevMem& m) {
  AttnSegment* dsegs = static_cast<AttnSegment*>(m.bytes(segs.size() * sizeof(AttnSegment)));
  CUDA_CHECK(cudaMemcpy(dsegs, segs.data(), segs.size() * sizeof(AttnSegment), cudaMemcpyHostToDevice));
  AttnArgs a;
  a.segs = dsegs;
  a.segs_host = segs.data();
  a.n_seg = int(segs.size());
  a.n_rows = n_rows;
  a.n_heads = s.n_heads;
  a.n_kv_heads = s.n_kv_heads;
  a.head_dim = s.head_dim;
  a.scale = 1.0f / std::sqrt(float(s.head_dim));
  focus::cuda::AttnLaunch l;
  l.args = &a;
  l.q = m.random(int64_t(n_rows) * s.q_dim(), 11);
  l.out = m.bytes(size_t(n_rows) * s.q_dim() * 2);
  l.dtype = focus::DType::BF16;
  l.workspace_bytes = focus::cuda::attention_workspace_bytes(a);
  l.workspace = m.bytes(l.workspace_bytes);
  Timer tm;
  const double ms = tm.median_ms([&] { focus::cuda::attention(l, nullptr); }, kReps, kWarm);
  std::string body = str("\"case\": \"", name, "\", \"n_heads\": ", s.n_heads, ", \"n_kv_heads\": ", s.n_kv_heads,
                         ", \"head_dim\": ", s.head_dim, ", \"segments\": ", segs.size(), ", \"median_ms\": ", ms);
  if (flops > 0) {
    const double tf = flops / (ms * 1e9);
    body += str(", \"causal_tflops\": ", tf, ", \"mma_sync_peak_tflops\": ", roof.mma_tflops,
                ", \"fraction_of_peak\": ", tf / roof.mma_tflops);
  }
  if (kv_bytes > 0) {
    const double gbs = kv_bytes / (ms * 1e6);
    body += str(", \"kv_gbs\": ", gbs, ", \"read_roofline_gbs\": ", roof.read_gbs,
                ", \"fraction_of_bandwidth\": ", gbs / roof.read_gbs, ", \"copy_gbs\": ", roof.copy_gbs);
  }
  emit(body);
}

// Per chunk: 2560 ordinary queries (causal, fresh) + the candidate on the same keys.
void chunks(const Shape& s, int n, const Roofline& roof) {
  DevMem m;
  const int len = 2048 + 513, kvd = s.kv_dim();
  const __nv_bfloat16* k = m.random(int64_t(n) * len * kvd, 1);
  const __nv_bfloat16* v = m.random(int64_t(n) * len * kvd, 2);
  std::vector<AttnSegment> segs;
  double keys = 0;
  for (int c = 0; c < n; ++c) {
    AttnSegment g{};
    g.k_main = k + int64_t(c) * len * kvd;
    g.v_main = v + int64_t(c) * len * kvd;
    g.main_dtype = int32_t(focus::DType::BF16);
    g.q_row = c * (len - 1);
    g.n_q = len - 1;
    segs.push_back(g);
    g.q_row = n * (len - 1) + c;  // candidates after every ordinary row, as the runner lays them
    g.n_q = 1;
    g.q_index = len - 1;
    segs.push_back(g);
    keys += double(len - 1) * len / 2 + len;
  }
  run(str("chunk attention ", n, " chunks x 2561"), s, segs, n * len, 4.0 * s.n_heads * s.head_dim * keys, 0, roof, m);
}

void local(const Shape& s, int k, const Roofline& roof) {
  DevMem m;
  const int n = 2048, kvd = s.kv_dim();
  AttnSegment g{};
  g.k_main = m.random(int64_t(n) * kvd, 3);
  g.v_main = m.random(int64_t(n) * kvd, 4);
  g.main_dtype = g.prefix_dtype = int32_t(focus::DType::BF16);
  g.k_prefix = m.random(int64_t(k) * kvd, 5);
  g.v_prefix = m.random(int64_t(k) * kvd, 6);
  g.n_prefix = k;
  g.n_q = n;
  std::vector<AttnSegment> segs{g};
  const double keys = double(n) * k + double(n) * (n + 1) / 2;
  run(str("local 2048 over ", k, " candidates"), s, segs, n, 4.0 * s.n_heads * s.head_dim * keys, 0, roof, m);
}

// n caches of `cache` keys; q per cache one-query segments (2: candidate decoding).
void decode(const std::string& name, const Shape& s, int n, int cache, int q, const Roofline& roof) {
  DevMem m;
  const int kvd = s.kv_dim(), rows = cache + q;
  const __nv_bfloat16* k = m.random(int64_t(n) * rows * kvd, 8);
  const __nv_bfloat16* v = m.random(int64_t(n) * rows * kvd, 9);
  std::vector<AttnSegment> segs;
  for (int c = 0; c < n; ++c)
    for (int j = 0; j < q; ++j) {
      AttnSegment g{};
      g.k_main = k + int64_t(c) * rows * kvd;
      g.v_main = v + int64_t(c) * rows * kvd;
      g.main_dtype = int32_t(focus::DType::BF16);
      g.q_row = j * n + c;
      g.n_q = 1;
      g.q_index = cache + j;
      segs.push_back(g);
    }
  run(name, s, segs, n * q, 0, 2.0 * double(n) * rows * kvd * 2, roof, m);
}

}  // namespace

int main() {
  int n_dev = 0;
  const cudaError_t e = cudaGetDeviceCount(&n_dev);
  if (e != cudaSuccess || n_dev == 0) {
    std::printf("{\"bench\": \"cuda_attention\", \"skipped\": \"%s\"}\n",
                json_escape(e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device").c_str());
    return 0;
  }
  try {
    cudaDeviceProp p{};
    CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
    g_device = p.name;
    const Roofline roof = measure_roofline();
    for (int kvh : {32, 8}) {
      Shape s;
      s.n_kv_heads = kvh;
      for (int n : {16, 64, 200}) chunks(s, n, roof);
      for (int k : {64, 200}) local(s, k, roof);
      for (int n : {16, 64, 200}) decode(str("candidate decoding ", n, " chunks x 2561 keys"), s, n, 2561, 2, roof);
      decode("native decode 1 query x 131072 keys", s, 1, 131071, 1, roof);
    }
  } catch (const std::exception& ex) {
    std::printf("{\"bench\": \"cuda_attention\", \"error\": \"%s\"}\n", json_escape(ex.what()).c_str());
    return 1;
  }
  return 0;
}
