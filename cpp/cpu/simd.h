// One float vector type per instruction-set level, and the handful of
// operations the kernels use. Included by kernels_impl.h only, inside the
// level's anonymous namespace, after <immintrin.h> where the level needs it:
//   FOCUS_KERNEL_LEVEL 0  generic: GCC/Clang vector extension, 4 lanes (SSE2 on
//                         x86-64, NEON on arm64)
//   FOCUS_KERNEL_LEVEL 1  AVX2 + FMA + F16C, 8 lanes
//   FOCUS_KERNEL_LEVEL 2  AVX-512 F/BW/VL/DQ, 16 lanes
// Storage types are DType values: 0 = F32, 1 = F16, 2 = BF16.

constexpr int kF32 = 0, kF16 = 1, kBF16 = 2;

// ---- scalar conversions (tails, generic level) ------------------------------
// Same results as dtype.h (round to nearest even); a copy, so that this
// translation unit pulls in no inline function shared with the others.

static inline float sc_bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

static inline uint16_t sc_f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

#if FOCUS_KERNEL_LEVEL >= 1
static inline float sc_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }
static inline uint16_t sc_f32_to_f16(float f) { return uint16_t(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)); }
#else
static inline float sc_f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      do {
        ++e;
        man <<= 1;
      } while ((man & 0x400u) == 0);
      u = sign | uint32_t(127 - 15 - e) << 23 | (man & 0x3ffu) << 13;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | man << 13;
  } else {
    u = sign | (exp + 112) << 23 | man << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

static inline uint16_t sc_f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u);   // NaN
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // overflow -> inf
  if (a < 0x38800000u) {                                  // subnormal or zero
    if (a < 0x33000000u) return uint16_t(sign);
    uint32_t man = (a & 0x7fffffu) | 0x800000u;
    int shift = 126 - int(a >> 23);
    uint32_t r = man >> shift, rem = man & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return uint16_t(sign | r);
  }
  uint32_t r = (a >> 13) - (112u << 10), rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
  return uint16_t(sign | r);
}
#endif

// exp(x) as in Cephes expf: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial
// for e^r, then scaled by 2^n. Relative error ~1e-7; inputs below -88 give 0
// (masked attention scores are -inf), above 88 are clamped (e^88 ~ 1.7e38).
constexpr float kExpHi = 88.0f, kExpLo = -88.3762626647949f, kLog2e = 1.44269504088896341f;
constexpr float kExpC1 = 0.693359375f, kExpC2 = -2.12194440e-4f;
constexpr float kExpP0 = 1.9875691500E-4f, kExpP1 = 1.3981999507E-3f, kExpP2 = 8.3334519073E-3f,
                kExpP3 = 4.1665795894E-2f, kExpP4 = 1.6666665459E-1f, kExpP5 = 5.0000001201E-1f;

static inline float sc_exp(float x) {
  x = x < kExpLo ? kExpLo : (x > kExpHi ? kExpHi : x);
  float fx = __builtin_floorf(x * kLog2e + 0.5f);
  x = x - fx * kExpC1 - fx * kExpC2;
  const float z = x * x;
  float y = ((((kExpP0 * x + kExpP1) * x + kExpP2) * x + kExpP3) * x + kExpP4) * x + kExpP5;
  y = y * z + x + 1.0f;
  const int32_t e = int32_t(fx) + 127;  // 0 at the low clamp: 2^n underflows to 0
  uint32_t bits = uint32_t(e) << 23;
  float p;
  std::memcpy(&p, &bits, 4);
  return y * p;
}

#if FOCUS_KERNEL_LEVEL == 2
// ---- AVX-512 -------------------------------------------------------------------
constexpr int W = 16;
using vf = __m512;
static inline __mmask16 lanes(int n) { return __mmask16((1u << n) - 1u); }
static inline vf vzero() { return _mm512_setzero_ps(); }
static inline vf vset1(float a) { return _mm512_set1_ps(a); }
static inline vf vload(const float* p) { return _mm512_loadu_ps(p); }
static inline void vstore(float* p, vf v) { _mm512_storeu_ps(p, v); }
static inline vf vload_n(const float* p, int n) { return _mm512_maskz_loadu_ps(lanes(n), p); }
static inline void vstore_n(float* p, vf v, int n) { _mm512_mask_storeu_ps(p, lanes(n), v); }
static inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf vdiv(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline float vhsum(vf v) { return _mm512_reduce_add_ps(v); }
static inline float vhmax(vf v) { return _mm512_reduce_max_ps(v); }
static inline vf vload_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p)); }
static inline vf vload_f16_n(const uint16_t* p, int n) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lanes(n), p)); }
static inline vf bf16_bits(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
static inline vf vload_bf16(const uint16_t* p) { return bf16_bits(_mm256_loadu_si256((const __m256i*)p)); }
static inline vf vload_bf16_n(const uint16_t* p, int n) { return bf16_bits(_mm256_maskz_loadu_epi16(lanes(n), p)); }
static inline __m256i f16_bits(vf v) { return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline __m256i bf16_round(vf v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
  r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  return _mm512_cvtepi32_epi16(r);
}
static inline void vstore_f16(uint16_t* p, vf v) { _mm256_storeu_si256((__m256i*)p, f16_bits(v)); }
static inline void vstore_f16_n(uint16_t* p, vf v, int n) { _mm256_mask_storeu_epi16(p, lanes(n), f16_bits(v)); }
static inline void vstore_bf16(uint16_t* p, vf v) { _mm256_storeu_si256((__m256i*)p, bf16_round(v)); }
static inline void vstore_bf16_n(uint16_t* p, vf v, int n) { _mm256_mask_storeu_epi16(p, lanes(n), bf16_round(v)); }
static inline vf vexp(vf x) {
  x = _mm512_min_ps(_mm512_max_ps(x, vset1(kExpLo)), vset1(kExpHi));
  const vf fx = _mm512_roundscale_ps(vfma(x, vset1(kLog2e), vset1(0.5f)), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  x = _mm512_fnmadd_ps(fx, vset1(kExpC2), _mm512_fnmadd_ps(fx, vset1(kExpC1), x));
  const vf z = vmul(x, x);
  vf y = vfma(vset1(kExpP0), x, vset1(kExpP1));
  y = vfma(y, x, vset1(kExpP2));
  y = vfma(y, x, vset1(kExpP3));
  y = vfma(y, x, vset1(kExpP4));
  y = vfma(y, x, vset1(kExpP5));
  y = vadd(vfma(y, z, x), vset1(1.0f));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(fx), _mm512_set1_epi32(127)), 23);
  return vmul(y, _mm512_castsi512_ps(e));
}

#elif FOCUS_KERNEL_LEVEL == 1
// ---- AVX2 + FMA + F16C -------------------------------------------------------
constexpr int W = 8;
using vf = __m256;
static inline vf vzero() { return _mm256_setzero_ps(); }
static inline vf vset1(float a) { return _mm256_set1_ps(a); }
static inline vf vload(const float* p) { return _mm256_loadu_ps(p); }
static inline void vstore(float* p, vf v) { _mm256_storeu_ps(p, v); }
static inline __m256i lanes(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline vf vload_n(const float* p, int n) { return _mm256_maskload_ps(p, lanes(n)); }
static inline void vstore_n(float* p, vf v, int n) { _mm256_maskstore_ps(p, lanes(n), v); }
static inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf vdiv(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline float vhsum(vf v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
static inline float vhmax(vf v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
static inline vf vload_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)); }
static inline vf vload_bf16(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16));
}
static inline __m128i bf16_round(vf v) {
  const __m256i u = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
  const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                         _mm256_set1_epi32(0x7f800000));
  r = _mm256_blendv_epi8(r, _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40)), nan);
  // Values fit 16 bits, so the saturating pack is exact; it interleaves the
  // 128-bit lanes, the permute puts elements 0..7 in the low half.
  r = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
  return _mm256_castsi256_si128(r);
}
static inline void vstore_f16(uint16_t* p, vf v) {
  _mm_storeu_si128((__m128i*)p, _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
static inline void vstore_bf16(uint16_t* p, vf v) { _mm_storeu_si128((__m128i*)p, bf16_round(v)); }
static inline vf vexp(vf x) {
  x = _mm256_min_ps(_mm256_max_ps(x, vset1(kExpLo)), vset1(kExpHi));
  const vf fx = _mm256_floor_ps(vfma(x, vset1(kLog2e), vset1(0.5f)));
  x = _mm256_fnmadd_ps(fx, vset1(kExpC2), _mm256_fnmadd_ps(fx, vset1(kExpC1), x));
  const vf z = vmul(x, x);
  vf y = vfma(vset1(kExpP0), x, vset1(kExpP1));
  y = vfma(y, x, vset1(kExpP2));
  y = vfma(y, x, vset1(kExpP3));
  y = vfma(y, x, vset1(kExpP4));
  y = vfma(y, x, vset1(kExpP5));
  y = vadd(vfma(y, z, x), vset1(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return vmul(y, _mm256_castsi256_ps(e));
}

#else
// ---- generic: 4-lane vector extension --------------------------------------------
constexpr int W = 4;
typedef float vf __attribute__((vector_size(16)));
static inline vf vzero() { return vf{0, 0, 0, 0}; }
static inline vf vset1(float a) { return vf{a, a, a, a}; }
static inline vf vload(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
static inline void vstore(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
static inline vf vload_n(const float* p, int n) {
  vf v = vzero();
  for (int i = 0; i < n; ++i) v[i] = p[i];
  return v;
}
static inline void vstore_n(float* p, vf v, int n) {
  for (int i = 0; i < n; ++i) p[i] = v[i];
}
static inline vf vadd(vf a, vf b) { return a + b; }
static inline vf vsub(vf a, vf b) { return a - b; }
static inline vf vmul(vf a, vf b) { return a * b; }
static inline vf vdiv(vf a, vf b) { return a / b; }
static inline vf vmax(vf a, vf b) { return vf{a[0] > b[0] ? a[0] : b[0], a[1] > b[1] ? a[1] : b[1],
                                              a[2] > b[2] ? a[2] : b[2], a[3] > b[3] ? a[3] : b[3]}; }
static inline vf vfma(vf a, vf b, vf c) { return a * b + c; }
static inline float vhsum(vf v) { return (v[0] + v[2]) + (v[1] + v[3]); }
static inline float vhmax(vf v) {
  float a = v[0] > v[1] ? v[0] : v[1], b = v[2] > v[3] ? v[2] : v[3];
  return a > b ? a : b;
}
typedef uint32_t vu __attribute__((vector_size(16)));
typedef int32_t vi __attribute__((vector_size(16)));
typedef uint16_t vh __attribute__((vector_size(8)));
static inline vu widen(const uint16_t* p) {
  vh h;
  std::memcpy(&h, p, sizeof h);
  return __builtin_convertvector(h, vu);
}
// F16 -> F32 without branches (exact, subnormals included): move exponent and
// mantissa into place, rebias; Inf/NaN get the rest of the exponent range;
// subnormals are renormalised by subtracting 2^-14 in float arithmetic.
static inline vf vload_f16(const uint16_t* p) {
  const vu h = widen(p);
  vu u = (h & 0x7fffu) << 13;
  const vu e = u & (0x7c00u << 13);
  u += (127u - 15u) << 23;
  u += (vu)((vi)(e == (0x7c00u << 13)) & int32_t((128u - 16u) << 23));  // Inf/NaN
  const vi denorm = (vi)(e == 0u);
  u += (vu)(denorm & int32_t(1u << 23));
  vf f;
  std::memcpy(&f, &u, sizeof f);
  const vf magic = vset1(6.103515625e-05f);  // 2^-14, bits 113 << 23
  vf fixed = f - magic;
  vu fu, ru;
  std::memcpy(&fu, &fixed, sizeof fu);
  ru = (vu)((denorm & (vi)fu) | (~denorm & (vi)u));
  ru |= (h & 0x8000u) << 16;
  std::memcpy(&f, &ru, sizeof f);
  return f;
}
static inline vf vload_bf16(const uint16_t* p) {
  const vu u = widen(p) << 16;
  vf f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
static inline void vstore_f16(uint16_t* p, vf v) {
  for (int i = 0; i < 4; ++i) p[i] = sc_f32_to_f16(v[i]);
}
static inline void vstore_bf16(uint16_t* p, vf v) {
  for (int i = 0; i < 4; ++i) p[i] = sc_f32_to_bf16(v[i]);
}
static inline vf vexp(vf x) { return vf{sc_exp(x[0]), sc_exp(x[1]), sc_exp(x[2]), sc_exp(x[3])}; }
#endif

#if FOCUS_KERNEL_LEVEL < 2
// Partial 16-bit loads and stores through a zero-padded buffer (tails only).
static inline vf vload_f16_n(const uint16_t* p, int n) {
  uint16_t t[W] = {};
  std::memcpy(t, p, size_t(n) * 2);
  return vload_f16(t);
}
static inline vf vload_bf16_n(const uint16_t* p, int n) {
  uint16_t t[W] = {};
  std::memcpy(t, p, size_t(n) * 2);
  return vload_bf16(t);
}
static inline void vstore_f16_n(uint16_t* p, vf v, int n) {
  uint16_t t[W];
  vstore_f16(t, v);
  std::memcpy(p, t, size_t(n) * 2);
}
static inline void vstore_bf16_n(uint16_t* p, vf v, int n) {
  uint16_t t[W];
  vstore_bf16(t, v);
  std::memcpy(p, t, size_t(n) * 2);
}
#endif

// Loads W elements (n < W: the first n, rest zero) of a row of dtype t.
template <int T>
static inline vf vload_as(const void* p, int64_t i) {
  if constexpr (T == kF32) return vload(static_cast<const float*>(p) + i);
  else if constexpr (T == kF16) return vload_f16(static_cast<const uint16_t*>(p) + i);
  else return vload_bf16(static_cast<const uint16_t*>(p) + i);
}
template <int T>
static inline vf vload_as_n(const void* p, int64_t i, int n) {
  if constexpr (T == kF32) return vload_n(static_cast<const float*>(p) + i, n);
  else if constexpr (T == kF16) return vload_f16_n(static_cast<const uint16_t*>(p) + i, n);
  else return vload_bf16_n(static_cast<const uint16_t*>(p) + i, n);
}
