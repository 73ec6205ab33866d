#include "json.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "error.h"

namespace focus {

// A strict RFC 8259 parser: untrusted files (config.json, safetensors headers,
// index files) must mean the same here as in Python and JavaScript, which
// write and read them. So: no NaN / Infinity / leading zeros / trailing
// commas / raw control characters in strings; text must be valid UTF-8 and
// \u escapes must pair their surrogates (a lone one cannot be written as
// UTF-8, so it is an error rather than a silent replacement); of duplicate
// object keys the last wins, as in Python's json and JavaScript's JSON.parse.
class JsonParser {
 public:
  JsonParser(const std::string& s, const std::string& where) : s_(s), where_(where) {}

  Json parse_document() {
    if (s_.compare(0, 3, "\xef\xbb\xbf") == 0) fail("the text starts with a byte order mark (JSON text must not)");
    Json v = parse_value(0);
    skip_ws();
    if (i_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    throw Error(str(where_, ": invalid JSON at byte ", i_, ": ", what));
  }

  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }

  bool consume(const char* lit) {
    size_t n = std::strlen(lit);
    if (s_.compare(i_, n, lit) == 0) {
      i_ += n;
      return true;
    }
    return false;
  }

  bool digit_at(size_t k) const { return k < s_.size() && s_[k] >= '0' && s_[k] <= '9'; }

  Json parse_value(int depth) {
    if (depth > 256) fail("nesting is too deep");
    skip_ws();
    if (i_ >= s_.size()) fail("unexpected end of input");
    Json v;
    char c = s_[i_];
    if (c == '{') {
      v.type_ = Json::Type::Object;
      ++i_;
      skip_ws();
      if (i_ < s_.size() && s_[i_] == '}') {
        ++i_;
        return v;
      }
      // Key -> member index, to replace duplicates in O(1) (a safetensors
      // header may hold 100K keys).
      std::unordered_map<std::string, size_t> seen;
      for (;;) {
        skip_ws();
        if (i_ >= s_.size() || s_[i_] != '"') fail("expected a string key");
        std::string key = parse_string();
        skip_ws();
        if (i_ >= s_.size() || s_[i_] != ':') fail("expected ':'");
        ++i_;
        Json item = parse_value(depth + 1);
        auto [it, fresh] = seen.emplace(key, v.obj_.size());
        if (fresh) v.obj_.emplace_back(std::move(key), std::move(item));
        else v.obj_[it->second].second = std::move(item);  // the last one wins, in the first one's place
        skip_ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == '}') {
          ++i_;
          return v;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v.type_ = Json::Type::Array;
      ++i_;
      skip_ws();
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        return v;
      }
      for (;;) {
        v.arr_.push_back(parse_value(depth + 1));
        skip_ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == ']') {
          ++i_;
          return v;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c == '"') {
      v.type_ = Json::Type::String;
      v.str_ = parse_string();
      return v;
    }
    if (consume("true")) {
      v.type_ = Json::Type::Bool;
      v.bool_ = true;
      return v;
    }
    if (consume("false")) {
      v.type_ = Json::Type::Bool;
      return v;
    }
    if (consume("null")) return v;
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
    fail(str("unexpected character ", describe(c)));
  }

  // number = [ "-" ] ( "0" / 1-9 *DIGIT ) [ "." 1*DIGIT ] [ ( "e" / "E" ) [ "+" / "-" ] 1*DIGIT ]
  Json parse_number() {
    const size_t start = i_;
    if (s_[i_] == '-') ++i_;
    if (!digit_at(i_)) fail("malformed number: a digit must follow '-'");
    if (s_[i_] == '0') {
      ++i_;
      if (digit_at(i_)) fail("malformed number: leading zeros are not allowed");
    } else {
      while (digit_at(i_)) ++i_;
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (!digit_at(i_)) fail("malformed number: a digit must follow '.'");
      while (digit_at(i_)) ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!digit_at(i_)) fail("malformed number: a digit must follow the exponent");
      while (digit_at(i_)) ++i_;
    }
    std::string text = s_.substr(start, i_ - start);
    // Out of double range reads as +-inf or 0, as in Python and JavaScript;
    // the fields that need a finite value check for one.
    return number(std::strtod(text.c_str(), nullptr), text);
  }

  static std::string hex_code(uint32_t cp) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04x", unsigned(cp));
    return buf;
  }

  static std::string describe(char c) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return str("'", c, "'");
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02x", u);
    return buf;
  }

  static Json number(double d, const std::string& text) {
    Json v;
    v.type_ = Json::Type::Number;
    v.num_ = d;
    v.str_ = text;
    return v;
  }

  static void put_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xc0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += char(0xe0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3f));
      out += char(0x80 | (cp & 0x3f));
    } else {
      out += char(0xf0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3f));
      out += char(0x80 | ((cp >> 6) & 0x3f));
      out += char(0x80 | (cp & 0x3f));
    }
  }

  uint32_t hex4() {
    if (i_ + 4 > s_.size()) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[i_];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f') v |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= uint32_t(c - 'A' + 10);
      else fail("bad \\u escape (4 hex digits expected)");
      ++i_;
    }
    return v;
  }

  // Length of the well-formed UTF-8 sequence at i_ (RFC 3629: no overlong
  // forms, no surrogates, nothing above U+10FFFF), or 0.
  size_t utf8_len() const {
    auto b = [&](size_t k) -> unsigned { return k < s_.size() ? static_cast<unsigned char>(s_[k]) : 0u; };
    auto cont = [&](size_t k) { return (b(k) & 0xc0) == 0x80; };
    const unsigned c = b(i_);
    if (c >= 0xc2 && c <= 0xdf) return cont(i_ + 1) ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
      const unsigned c1 = b(i_ + 1);
      if (c == 0xe0 && c1 < 0xa0) return 0;  // overlong
      if (c == 0xed && c1 > 0x9f) return 0;  // U+D800..U+DFFF
      return cont(i_ + 1) && cont(i_ + 2) ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
      const unsigned c1 = b(i_ + 1);
      if (c == 0xf0 && c1 < 0x90) return 0;  // overlong
      if (c == 0xf4 && c1 > 0x8f) return 0;  // above U+10FFFF
      return cont(i_ + 1) && cont(i_ + 2) && cont(i_ + 3) ? 4 : 0;
    }
    return 0;
  }

  std::string parse_string() {
    ++i_;  // opening quote
    std::string out;
    for (;;) {
      if (i_ >= s_.size()) fail("unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return out;
      }
      if (c < 0x20) fail(str("control character ", describe(char(c)), " in a string (it must be escaped)"));
      if (c >= 0x80) {
        const size_t n = utf8_len();
        if (n == 0) fail("invalid UTF-8 in a string");
        out.append(s_, i_, n);
        i_ += n;
        continue;
      }
      ++i_;
      if (c != '\\') {
        out += char(c);
        continue;
      }
      if (i_ >= s_.size()) fail("unterminated escape");
      char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const size_t at = i_ - 2;
          uint32_t cp = hex4();
          if (cp >= 0xdc00 && cp < 0xe000) {
            i_ = at;
            fail(str("lone low surrogate \\u", hex_code(cp), " in a string"));
          }
          if (cp >= 0xd800 && cp < 0xdc00) {
            // Only a low surrogate completes the pair; anything else is
            // left in place (and the high one is an error).
            uint32_t lo = 0;
            if (i_ + 1 < s_.size() && s_[i_] == '\\' && s_[i_ + 1] == 'u') {
              i_ += 2;
              lo = hex4();
            }
            if (lo < 0xdc00 || lo >= 0xe000) {
              i_ = at;
              fail(str("lone high surrogate \\u", hex_code(cp), " in a string"));
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          put_utf8(out, cp);
          break;
        }
        default: fail(str("bad escape ", describe(e)));
      }
    }
  }

  const std::string& s_;
  const std::string& where_;
  size_t i_ = 0;
};

Json Json::parse(const std::string& text, const std::string& where) {
  return JsonParser(text, where).parse_document();
}

bool Json::as_int64(int64_t* out) const {
  if (type_ != Type::Number) return false;
  // Integers are read from the source text, so values above 2^53 stay exact.
  const std::string& t = str_;
  if (t.empty() || t.find_first_of(".eE") != std::string::npos) {
    if (std::isfinite(num_) && num_ == std::floor(num_) && std::fabs(num_) < 9.0e15) {
      *out = int64_t(num_);
      return true;
    }
    return false;
  }
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(t.c_str(), &end, 10);
  if (errno != 0 || end != t.c_str() + t.size()) return false;
  *out = int64_t(v);
  return true;
}

const Json* Json::get(const std::string& key) const {
  if (type_ != Type::Object) return nullptr;
  for (const auto& kv : obj_)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

const char* Json::type_name(Type t) {
  switch (t) {
    case Type::Null: return "null";
    case Type::Bool: return "a boolean";
    case Type::Number: return "a number";
    case Type::String: return "a string";
    case Type::Array: return "an array";
    default: return "an object";
  }
}

std::string read_text_file(const std::string& path, size_t max_bytes) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer
  // forever (and hold the process at exit); regular files ignore the flag.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw Error(str(path, ": cannot open (", std::strerror(errno), ")"));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw Error(str(path, ": cannot stat (", std::strerror(e), ")"));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(str(path, ": not a regular file (a FIFO, device or socket cannot be read as a model file)"));
  }
  if (uint64_t(st.st_size) > max_bytes) {
    ::close(fd);
    throw Error(str(path, ": file of ", uint64_t(st.st_size), " bytes is larger than the limit for JSON files (",
                    max_bytes, " bytes)"));
  }
  // Read at most max_bytes + 1: a file that grows while it is read is caught too.
  std::string out;
  out.resize(size_t(st.st_size) + 1);
  size_t got = 0;
  for (;;) {
    if (got == out.size()) {
      if (out.size() > max_bytes) break;
      out.resize(std::min(max_bytes + 1, out.size() * 2));
    }
    const ssize_t n = ::read(fd, &out[got], out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      throw Error(str(path, ": read error (", std::strerror(e), ")"));
    }
    if (n == 0) break;
    got += size_t(n);
  }
  ::close(fd);
  if (got > max_bytes)
    throw Error(str(path, ": file is larger than the limit for JSON files (", max_bytes, " bytes)"));
  out.resize(got);
  return out;
}

}  // namespace focus
