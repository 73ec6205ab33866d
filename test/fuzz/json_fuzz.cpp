// libFuzzer target: focus::Json::parse (cpp/core/json.cpp) on arbitrary bytes.
//
// A focus::Error is the parser refusing the input, as it must for most of
// them. Anything else is a finding: a crash, a sanitizer report, another
// exception (std::terminate), or a parsed value that breaks a promise of the
// parser: nesting of at most 257 levels, strings and keys in valid UTF-8
// (a lone surrogate is an error, never a replacement), member lookup finding
// every key it kept.
//
//   scripts/fuzz.sh 60 json              build and run (see the script)
//   build-fuzz/fuzz_json FILE            replay one input
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/json.h"

namespace {

using focus::Json;

// RFC 3629 well-formedness: no overlong forms, no surrogates, <= U+10FFFF.
bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
    for (size_t k = 1; k < n; ++k) {
      const unsigned b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xc0) != 0x80) return false;
      cp = cp << 6 | (b & 0x3f);
    }
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return false;
    i += n;
  }
  return true;
}

// Visits every value (so that the sanitizers see every string and vector the
// parser built) and checks the promises above; traps on a broken one.
size_t walk(const Json& v, int depth) {
  if (depth > 256) __builtin_trap();
  size_t n = 1;
  switch (v.type()) {
    case Json::Type::Number: {
      int64_t x = 0;
      n += v.as_int64(&x) + v.as_string().size();  // as_int64 reads the number's source text
      break;
    }
    case Json::Type::String:
      if (!valid_utf8(v.as_string())) __builtin_trap();
      n += v.as_string().size();
      break;
    case Json::Type::Array:
      for (const Json& x : v.items()) n += walk(x, depth + 1);
      break;
    case Json::Type::Object:
      for (const auto& [key, x] : v.members()) {
        if (!valid_utf8(key) || v.get(key) != &x) __builtin_trap();  // keys are unique: the last one won
        n += key.size() + walk(x, depth + 1);
      }
      break;
    default:
      break;
  }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const Json v = Json::parse(text, "fuzz.json");
    volatile size_t n = walk(v, 0);
    (void)n;
  } catch (const focus::Error&) {
    // refused: fine
  }
  return 0;
}
