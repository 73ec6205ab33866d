// Row-wise and element-wise kernels (included by kernels_impl.h inside the
// level's namespace): dtype conversion, RMSNorm, rotary, SwiGLU.

static void to_f32(float* out, const void* src, int dtype, int64_t n) { row_to_f32(out, src, dtype, n); }

template <int T>
static void from_f32_t(void* out, const float* src, int64_t n) {
  uint16_t* d = static_cast<uint16_t*>(out);
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    if constexpr (T == kF16) vstore_f16(d + i, vload(src + i));
    else vstore_bf16(d + i, vload(src + i));
  }
  if (i < n) {
    if constexpr (T == kF16) vstore_f16_n(d + i, vload_n(src + i, int(n - i)), int(n - i));
    else vstore_bf16_n(d + i, vload_n(src + i, int(n - i)), int(n - i));
  }
}

static void from_f32(void* out, const float* src, int dtype, int64_t n) {
  switch (dtype) {
    case kF32: std::memcpy(out, src, size_t(n) * 4); break;
    case kF16: from_f32_t<kF16>(out, src, n); break;
    default: from_f32_t<kBF16>(out, src, n); break;
  }
}

static void rms_norm(float* out, const float* x, const float* w, int dim, float eps) {
  // Four float32 partial sums of squares (dim <= ~16K: relative error ~1e-7).
  vf s0 = vzero(), s1 = vzero(), s2 = vzero(), s3 = vzero();
  int j = 0;
  for (; j + 4 * W <= dim; j += 4 * W) {
    const vf a = vload(x + j), b = vload(x + j + W), c = vload(x + j + 2 * W), d = vload(x + j + 3 * W);
    s0 = vfma(a, a, s0);
    s1 = vfma(b, b, s1);
    s2 = vfma(c, c, s2);
    s3 = vfma(d, d, s3);
  }
  for (; j + W <= dim; j += W) {
    const vf a = vload(x + j);
    s0 = vfma(a, a, s0);
  }
  if (j < dim) {
    const vf a = vload_n(x + j, dim - j);
    s1 = vfma(a, a, s1);
  }
  const double ss = double(vhsum(vadd(vadd(s0, s1), vadd(s2, s3))));
  const vf inv = vset1(float(1.0 / __builtin_sqrt(ss / dim + double(eps))));
  j = 0;
  for (; j + W <= dim; j += W) vstore(out + j, vmul(vmul(vload(x + j), inv), vload(w + j)));
  if (j < dim) vstore_n(out + j, vmul(vmul(vload_n(x + j, dim - j), inv), vload_n(w + j, dim - j)), dim - j);
}

// Rotate-half rotary: dim i pairs with dim i + half; table = cos (half) | sin (half).
static void rope(float* x, int n_heads, int head_dim, const float* table) {
  const int half = head_dim / 2;
  const float* cs = table;
  const float* sn = table + half;
  for (int h = 0; h < n_heads; ++h) {
    float* lo = x + int64_t(h) * head_dim;
    float* hi = lo + half;
    for (int i = 0; i < half; i += W) {
      const int n = half - i < W ? half - i : W;
      const vf a = n == W ? vload(lo + i) : vload_n(lo + i, n), b = n == W ? vload(hi + i) : vload_n(hi + i, n);
      const vf c = n == W ? vload(cs + i) : vload_n(cs + i, n), s = n == W ? vload(sn + i) : vload_n(sn + i, n);
      const vf ra = vsub(vmul(a, c), vmul(b, s)), rb = vadd(vmul(b, c), vmul(a, s));
      if (n == W) {
        vstore(lo + i, ra);
        vstore(hi + i, rb);
      } else {
        vstore_n(lo + i, ra, n);
        vstore_n(hi + i, rb, n);
      }
    }
  }
}

static void swiglu(float* out, const float* gate, const float* up, int64_t n) {
  const vf one = vset1(1.0f), zero = vzero();
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    const vf g = vload(gate + i);
    vstore(out + i, vmul(vdiv(g, vadd(one, vexp(vsub(zero, g)))), vload(up + i)));
  }
  if (i < n) {
    const int t = int(n - i);
    const vf g = vload_n(gate + i, t);
    vstore_n(out + i, vmul(vdiv(g, vadd(one, vexp(vsub(zero, g)))), vload_n(up + i, t)), t);
  }
}

// ---- peak --------------------------------------------------------------------------

// Twelve chains: more than FMA latency x FMA ports on current x86 (4 x 2), and
// with the multiplier they fit in 16 registers (AVX2, SSE).
constexpr int kFmaChains = 12;

static float fma_loop(int64_t iters) {
  vf acc[kFmaChains];
  for (int c = 0; c < kFmaChains; ++c) acc[c] = vset1(float(c) * 1e-3f);
  const vf a = vset1(0.999999f), b = vset1(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kFmaChains; ++c) acc[c] = vfma(acc[c], a, b);
  }
  vf s = acc[0];
  for (int c = 1; c < kFmaChains; ++c) s = vadd(s, acc[c]);
  return vhsum(s);
}

// p[j] = exp(s[j] * scale - shift), j < n; returns Σ p (the softmax of the
// training attention; p may alias s).
static float exp_sub_sum(float* p, const float* s, int n, float scale, float shift) {
  const vf sc = vset1(scale), sh = vset1(shift);
  vf acc = vzero();
  int i = 0;
  for (; i + W <= n; i += W) {
    const vf e = vexp(vsub(vmul(vload(s + i), sc), sh));
    vstore(p + i, e);
    acc = vadd(acc, e);
  }
  float sum = vhsum(acc);
  for (; i < n; ++i) {
    const float e = sc_exp(s[i] * scale - shift);
    p[i] = e;
    sum += e;
  }
  return sum;
}
