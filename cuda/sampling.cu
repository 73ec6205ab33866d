// Token choice on the GPU: argmax, and temperature / top-k / top-p sampling,
// with the semantics of lib/sampling.ts (the host sampler), so that a run
// that samples on the device picks from the same distribution.
//
// One block per row. Nothing is sorted: top-k and top-p both ask "which
// elements come first, in descending logit order with ties to the lower index,
// until their total weight reaches a target" (weight 1 for top-k; the
// probability for top-p). That is a radix select: four 8-bit passes over the
// order-preserving integer key of each logit, each pass a weighted 256-bin
// histogram, settle the threshold key; then one ordered pass over the ties
// at the threshold finds the index cut-off. The row (vocab x 4 bytes, 128 KB
// for LLaMA-2) stays in L2 across the ~12 passes.
#include <cmath>
#include <cstdint>
#include <climits>

#include "common.cuh"
#include "ops.cuh"

namespace focus::cuda {

namespace {

// ---- kernels -------------------------------------------------------------------

constexpr int kThreads = 512;  // a multiple of 32, at most 1024
constexpr int kWarps = kThreads / 32;

// NaN never wins (lib/sampling.ts compares with `>`): it is treated as -inf.
// -0 becomes +0 so that numerically equal logits have equal keys.
__device__ __forceinline__ float clean(float f) { return isnan(f) ? -INFINITY : (f == 0.0f ? 0.0f : f); }

// Order-preserving map of a (clean) float to an unsigned key.
__device__ __forceinline__ uint32_t float_key(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float key_float(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

// The kept set of a selection: keys above `key`, and keys equal to it at
// indices below `cutoff`. {0, INT_MAX} keeps everything.
struct Cut {
  uint32_t key;
  int cutoff;
  __device__ bool keeps(uint32_t k, int i) const { return k > key || (k == key && i < cutoff); }
};

struct Shared {
  float hist[256];
  float redf[kWarps];
  int redi[kWarps];
  float above;
  int digit, cutoff, pick, last;
};

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Block-wide sum / max, returned to every thread.
__device__ float block_sum(float v, Shared& sh) {
  v = warp_sum(v);
  if (threadIdx.x % 32 == 0) sh.redf[threadIdx.x / 32] = v;
  __syncthreads();
  float t = 0.0f;
  for (int w = 0; w < kWarps; ++w) t += sh.redf[w];  // same order in every thread: same result
  __syncthreads();
  return t;
}

__device__ float block_max(float v, Shared& sh) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  if (threadIdx.x % 32 == 0) sh.redf[threadIdx.x / 32] = v;
  __syncthreads();
  float t = -INFINITY;
  for (int w = 0; w < kWarps; ++w) t = fmaxf(t, sh.redf[w]);
  __syncthreads();
  return t;
}

// Inclusive prefix sum over the block in thread order; *total gets the sum.
template <class T>
__device__ T block_scan(T v, T* warp_totals, T* total) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const T n = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += n;
  }
  if (lane == 31) warp_totals[warp] = v;
  __syncthreads();
  T before = 0, all = 0;
  for (int w = 0; w < kWarps; ++w) {
    if (w < warp) before += warp_totals[w];
    all += warp_totals[w];
  }
  __syncthreads();
  *total = all;
  return before + v;
}

// The first elements of the row in (logit desc, index asc) order among those
// `in` keeps, whose total weight w(logit) reaches `target`. Weights of equal
// logits are equal, which is what lets ties be settled by a count.
template <class In, class W>
__device__ Cut select_top(const float* l, int vocab, In in, W w, float target, Shared& sh) {
  uint32_t prefix = 0, mask = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += blockDim.x) sh.hist[b] = 0.0f;
    __syncthreads();
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
      const float f = clean(l[i]);
      const uint32_t k = float_key(f);
      if ((k & mask) == prefix && in(k, i)) atomicAdd(&sh.hist[(k >> shift) & 255u], w(f));
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      // Walk the digits from the top; `above` is the weight of every kept
      // element whose key is larger than the current prefix range.
      float a = shift == 24 ? 0.0f : sh.above;
      int chosen = -1, lowest = -1;
      for (int b = 255; b >= 0; --b) {
        const float h = sh.hist[b];
        if (!(h > 0.0f)) continue;
        lowest = b;
        if (a + h >= target) {
          chosen = b;
          break;
        }
        a += h;
      }
      if (chosen < 0) {  // rounding left the target unreached: keep everything down to the lowest digit
        chosen = lowest < 0 ? 0 : lowest;
        if (lowest >= 0) a -= sh.hist[lowest];
      }
      sh.above = a;
      sh.digit = chosen;
    }
    __syncthreads();
    prefix |= uint32_t(sh.digit) << shift;
    mask |= 0xffu << shift;
  }
  // Ties at the threshold: the lowest-index `take` of them complete the target.
  const float wt = w(key_float(prefix));
  const float need = target - sh.above;
  const int take = wt > 0.0f ? max(1, int(fminf(ceilf(need / wt), 2e9f))) : INT_MAX;
  if (threadIdx.x == 0) sh.cutoff = INT_MAX;
  int seen = 0;
  for (int base = 0; base < vocab && seen < take; base += blockDim.x) {
    const int i = base + threadIdx.x;
    int tie = 0;
    if (i < vocab) {
      const uint32_t k = float_key(clean(l[i]));
      tie = k == prefix && in(k, i);
    }
    int tile;
    const int incl = block_scan(tie, sh.redi, &tile);
    if (tie && seen + incl == take) sh.cutoff = i + 1;  // exactly one thread, at most once
    seen += tile;  // uniform: the loop condition is the same in every thread
  }
  __syncthreads();
  return Cut{prefix, sh.cutoff};
}

// One block per row; out[row] = argmax, lowest index among equal maxima.
__global__ void __launch_bounds__(kThreads) argmax_kernel(const float* __restrict__ logits, int vocab,
                                                          int32_t* __restrict__ out) {
  __shared__ Shared sh;
  const float* l = logits + int64_t(blockIdx.x) * vocab;
  float bv = -INFINITY;
  int bi = INT_MAX;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float v = clean(l[i]);
    if (v > bv || (v == bv && i < bi)) bv = v, bi = i;  // i rises: the first equal maximum stays
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (ov > bv || (ov == bv && oi < bi)) bv = ov, bi = oi;
  }
  if (threadIdx.x % 32 == 0) {
    sh.redf[threadIdx.x / 32] = bv;
    sh.redi[threadIdx.x / 32] = bi;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kWarps; ++w)
      if (sh.redf[w] > bv || (sh.redf[w] == bv && sh.redi[w] < bi)) bv = sh.redf[w], bi = sh.redi[w];
    out[blockIdx.x] = bi == INT_MAX ? 0 : bi;
  }
}

__global__ void __launch_bounds__(kThreads) sample_kernel(const float* __restrict__ logits, int vocab, SampleParams p,
                                                          const float* __restrict__ uniforms,
                                                          int32_t* __restrict__ out) {
  __shared__ Shared sh;
  const float* l = logits + int64_t(blockIdx.x) * vocab;
  float m = -INFINITY;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) m = fmaxf(m, clean(l[i]));
  m = block_max(m, sh);
  if (m == -INFINITY) {  // nothing to draw from: argmax's answer
    if (threadIdx.x == 0) out[blockIdx.x] = 0;
    return;
  }
  // Unnormalised probability exp((l - max) / T) in (0, 1]. The max itself
  // gets exactly 1, which also makes +inf logits (inf - inf) well defined.
  const float inv_t = 1.0f / p.temperature;
  auto weight = [=](float f) { return f == m ? 1.0f : expf((f - m) * inv_t); };
  auto one = [](float) { return 1.0f; };
  const Cut all{0u, INT_MAX};

  Cut kc = all;
  if (p.top_k > 0 && p.top_k < vocab)
    kc = select_top(l, vocab, [](uint32_t, int) { return true; }, one, float(p.top_k), sh);
  Cut pc = all;
  if (p.top_p < 1.0f) {
    float total = 0.0f;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
      const float f = clean(l[i]);
      if (kc.keeps(float_key(f), i)) total += weight(f);
    }
    total = block_sum(total, sh);
    pc = select_top(l, vocab, [=](uint32_t k, int i) { return kc.keeps(k, i); }, weight, p.top_p * total, sh);
  }
  auto kept_weight = [&](int i) {
    const float f = clean(l[i]);
    const uint32_t k = float_key(f);
    return kc.keeps(k, i) && pc.keeps(k, i) ? weight(f) : 0.0f;
  };

  float s = 0.0f;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) s += kept_weight(i);
  s = block_sum(s, sh);
  // Inverse CDF in index order: the first kept index whose running weight
  // reaches u * s. (The host sampler walks its sorted order instead; the
  // distribution is the same.)
  const float r = uniforms[blockIdx.x] * s;
  if (threadIdx.x == 0) sh.pick = INT_MAX, sh.last = -1;
  __syncthreads();
  float run = 0.0f;
  for (int base = 0; base < vocab; base += blockDim.x) {
    const int i = base + threadIdx.x;
    const float wi = i < vocab ? kept_weight(i) : 0.0f;
    float tile;
    const float cum = run + block_scan(wi, sh.redf, &tile);
    if (wi > 0.0f) {
      if (cum >= r) atomicMin(&sh.pick, i);
      atomicMax(&sh.last, i);
    }
    __syncthreads();
    if (sh.pick != INT_MAX) break;  // uniform: read after the barrier
    run += tile;
  }
  if (threadIdx.x == 0) {
    // Not reached only through rounding (r a hair above the scanned total): the last kept index.
    out[blockIdx.x] = sh.pick != INT_MAX ? sh.pick : max(sh.last, 0);
  }
}

}  // namespace

// ---- launchers -----------------------------------------------------------------

void sample_argmax(const float* logits, int rows, int vocab, int32_t* out, cudaStream_t stream) {
  FOCUS_CHECK(vocab > 0, "CUDA sample_argmax: vocab must be positive, got ", vocab);
  if (rows <= 0) return;
  argmax_kernel<<<rows, kThreads, 0, stream>>>(logits, vocab, out);
  CUDA_CHECK_LAUNCH();
}

void sample(const float* logits, int rows, int vocab, const SampleParams& p, const float* uniforms, int32_t* out,
            cudaStream_t stream) {
  FOCUS_CHECK(vocab > 0, "CUDA sample: vocab must be positive, got ", vocab);
  FOCUS_CHECK(std::isfinite(p.temperature) && p.temperature >= 0.0f,
              "sampling option temperature must be a number >= 0, got ", p.temperature);
  FOCUS_CHECK(p.top_k >= 0, "sampling option topK must be an integer >= 0, got ", p.top_k);
  FOCUS_CHECK(p.top_p > 0.0f && p.top_p <= 1.0f, "sampling option topP must be in (0, 1], got ", p.top_p);
  if (rows <= 0) return;
  if (p.temperature == 0.0f) return sample_argmax(logits, rows, vocab, out, stream);
  sample_kernel<<<rows, kThreads, 0, stream>>>(logits, vocab, p, uniforms, out);
  CUDA_CHECK_LAUNCH();
}

}  // namespace focus::cuda
