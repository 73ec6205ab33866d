// Storage types of weights, caches and activations, and their conversions.
// Conversions here are the portable scalar ones (round to nearest even); the
// CPU kernels have vectorised equivalents that must agree bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace focus {

enum class DType : int32_t { F32 = 0, F16 = 1, BF16 = 2 };

inline size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }
const char* dtype_name(DType t);
// "F32", "F16", "BF16" (safetensors spelling); false for anything else.
bool dtype_from_name(const std::string& name, DType* out);

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
  return uint16_t(u >> 16);
}

inline float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t u;
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

inline uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u);     // NaN
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);    // overflow -> inf
  if (a < 0x38800000u) {                                    // subnormal or zero
    if (a < 0x33000000u) return uint16_t(sign);             // below half the smallest subnormal
    uint32_t man = (a & 0x7fffffu) | 0x800000u;
    int shift = 126 - int(a >> 23);                         // 14..24
    uint32_t r = man >> shift;
    uint32_t rem = man & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return uint16_t(sign | r);
  }
  uint32_t r = ((a >> 13) - (112u << 10));
  uint32_t rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
  return uint16_t(sign | r);
}

// Element i of a buffer of type t, as float, and back. The buffer need not be
// aligned to its element type (a KV destination or a safetensors tensor may
// start at any byte): memcpy is the defined way to access it, and compiles to
// a plain load or store.
inline float load_as_f32(const void* p, DType t, size_t i) {
  const char* at = static_cast<const char*>(p) + i * dtype_size(t);
  if (t == DType::F32) {
    float f;
    std::memcpy(&f, at, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, at, 2);
  return t == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
}

inline void store_from_f32(void* p, DType t, size_t i, float v) {
  char* at = static_cast<char*>(p) + i * dtype_size(t);
  if (t == DType::F32) {
    std::memcpy(at, &v, 4);
    return;
  }
  const uint16_t h = t == DType::F16 ? f32_to_f16(v) : f32_to_bf16(v);
  std::memcpy(at, &h, 2);
}

}  // namespace focus
