// The JSON reader (core/json.cpp) against RFC 8259: a table of texts every
// conforming parser accepts, with the value they must give, and a table of
// texts it must refuse; duplicate keys keep the last value (as Python's json
// and JavaScript's JSON.parse do); strings are valid UTF-8 with paired
// surrogates. Then read_text_file: FIFOs, devices and oversized files are
// errors, not hangs or endless reads.
//
//   cmake --build build-rel --target json_test && ./build-rel/json_test
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "common/testing.h"
#include "core/error.h"
#include "core/json.h"

using namespace focus;

namespace {

// A compact canonical rendering of a parsed value, to compare with the table.
std::string render(const Json& v) {
  switch (v.type()) {
    case Json::Type::Null: return "null";
    case Json::Type::Bool: return v.as_bool() ? "true" : "false";
    case Json::Type::Number: {
      char buf[40];
      std::snprintf(buf, sizeof buf, "%.17g", v.as_number());
      return buf;
    }
    case Json::Type::String: {
      std::string s = "\"";
      for (unsigned char c : v.as_string()) {
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
          char buf[8];
          std::snprintf(buf, sizeof buf, "<%02x>", c);
          s += buf;
        } else {
          s += char(c);
        }
      }
      return s + "\"";
    }
    case Json::Type::Array: {
      std::string s = "[";
      for (size_t i = 0; i < v.items().size(); ++i) s += (i ? "," : "") + render(v.items()[i]);
      return s + "]";
    }
    default: {
      std::string s = "{";
      for (size_t i = 0; i < v.members().size(); ++i)
        s += (i ? "," : "") + std::string("\"") + v.members()[i].first + "\":" + render(v.members()[i].second);
      return s + "}";
    }
  }
}

struct Valid {
  std::string text, want;
};

// RFC 8259 grammar, one production at a time.
const std::vector<Valid> kValid = {
    // Section 2: any value at the top level, insignificant whitespace.
    {"null", "null"},
    {"true", "true"},
    {"false", "false"},
    {"0", "0"},
    {"\"x\"", "\"x\""},
    {" \t\r\n[ 1 , 2 ]\n", "[1,2]"},
    {"{}", "{}"},
    {"[]", "[]"},
    {"{ \"a\" : [ {} , [ ] ] }", "{\"a\":[{},[]]}"},
    // Section 6: numbers.
    {"-0", "-0"},
    {"-1", "-1"},
    {"0.5", "0.5"},
    {"1e3", "1000"},
    {"1E+3", "1000"},
    {"1e-3", "0.001"},
    {"-12.5e1", "-125"},
    {"123456789", "123456789"},
    {"1e400", "inf"},    // out of range: Python and JavaScript give infinity too
    {"1e-400", "0"},
    // Section 7: strings and escapes.
    {"\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", "\"<22> <5c> / <08> <0c> <0a> <0d> <09>\""},
    {"\"\\u0041\\u00e9\"", "\"A<c3><a9>\""},
    {"\"\\uD834\\uDD1E\"", "\"<f0><9d><84><9e>\""},  // a surrogate pair: U+1D11E
    {"\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "\"<c3><a9><e2><82><ac><f0><9f><98><80>\""},  // raw UTF-8
    {"\"\\u0000\"", "\"<00>\""},
    {"\"\x7f\"", "\"<7f>\""},  // DEL needs no escape
    // Section 4: duplicate names; the last value wins, in the first one's place.
    {"{\"a\":1,\"b\":2,\"a\":3}", "{\"a\":3,\"b\":2}"},
};

// Texts that are not JSON (each names the rule it breaks).
const std::vector<std::string> kInvalid = {
    "",                    // no value
    "   ",                 // no value
    "NaN",                 // not a JSON number (Python writes it; JSON does not have it)
    "Infinity", "-Infinity",
    "nul", "True", "undefined",
    "01", "-01", "00",     // leading zeros
    "1.", ".5", "-", "+1", "1e", "1e+", "0x10", "1.e3", "- 1",
    "[1,]", "[,1]", "[1 2]", "[1", "]",
    "{\"a\":1,}", "{,}", "{\"a\"}", "{\"a\" 1}", "{a:1}", "{'a':1}", "{\"a\":1",
    "'x'",                 // single quotes
    "\"abc",               // unterminated
    "\"a\tb\"",            // raw control character
    "\"a\nb\"",
    std::string("\"a\0b\"", 5),
    "\"\\x41\"", "\"\\'\"", "\"\\U0041\"",  // unknown escapes
    "\"\\u00g1\"", "\"\\u12\"",             // bad \u escapes
    "\"\\ud800\"",         // lone high surrogate
    "\"\\ud800\\u0041\"",  // high surrogate then a non-surrogate
    "\"\\ud800x\"",
    "\"\\udc00\"",         // lone low surrogate
    "\"\\udc00\\ud800\"",  // reversed pair
    "\"\xff\"", "\"\xc3\"", "\"\xc0\xaf\"",   // invalid UTF-8: bad byte, truncated, overlong
    "\"\xed\xa0\x80\"",    // UTF-8-encoded surrogate
    "\"\xf4\x90\x80\x80\"",  // above U+10FFFF
    "\xef\xbb\xbf{}",      // byte order mark
    "1 2", "{} x", "[]]",  // text after the value
    "/* c */ 1", "1 // c",
    "[\f1]",               // form feed is not JSON whitespace
};

void test_tables() {
  for (const Valid& v : kValid) {
    try {
      Json j = Json::parse(v.text, "t");
      std::string got = render(j);
      ftest::check(got == v.want, "valid: " + v.text, "parsed as " + got + ", want " + v.want);
    } catch (const Error& e) {
      ftest::fail("valid: " + v.text + " (refused: " + e.what() + ")");
    }
  }
  for (const std::string& t : kInvalid) {
    try {
      Json j = Json::parse(t, "t");
      ftest::fail("invalid text accepted: " + t + " -> " + render(j));
    } catch (const Error& e) {
      ftest::check(std::string(e.what()).rfind("t: invalid JSON at byte ", 0) == 0, "invalid refused: " + t, e.what());
    }
  }
}

void test_details() {
  // The case from the issue: the character after a lone surrogate was eaten.
  try {
    Json::parse("\"\\ud800\\u0041\"", "f.json");
    ftest::fail("lone high surrogate before \\u0041 accepted");
  } catch (const Error& e) {
    ftest::check(std::string(e.what()) == "f.json: invalid JSON at byte 1: lone high surrogate \\ud800 in a string",
                 "lone surrogate message names the offset and the escape", e.what());
  }
  // Duplicate keys: get() and members() both see the last value.
  Json d = Json::parse("{\"dtype\":\"F16\",\"dtype\":\"F32\"}", "t");
  ftest::check(d.members().size() == 1 && d.get("dtype")->as_string() == "F32", "duplicate key: last value wins");
  // Integers stay exact beyond 2^53; beyond int64 they are not integers.
  int64_t x = 0;
  ftest::check(Json::parse("9007199254740993", "t").as_int64(&x) && x == 9007199254740993LL, "int64 exact above 2^53");
  ftest::check(!Json::parse("18446744073709551616", "t").as_int64(&x), "beyond int64 is not an int64");
  ftest::check(Json::parse("2e3", "t").as_int64(&x) && x == 2000, "2e3 is the integer 2000");
  ftest::check(!Json::parse("2.5", "t").as_int64(&x), "2.5 is not an integer");
  // Depth is bounded (no stack overflow on hostile input).
  std::string deep(100000, '[');
  try {
    Json::parse(deep, "t");
    ftest::fail("100000 nested arrays accepted");
  } catch (const Error& e) {
    ftest::check(std::string(e.what()).find("nesting is too deep") != std::string::npos, "deep nesting refused", e.what());
  }
  // Many keys with duplicates: linear time, last wins.
  std::string big = "{";
  for (int i = 0; i < 200000; ++i) big += (i ? ",\"k" : "\"k") + std::to_string(i % 1000) + "\":" + std::to_string(i);
  big += "}";
  auto t0 = std::chrono::steady_clock::now();
  Json b = Json::parse(big, "t");
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ftest::check(b.members().size() == 1000 && b.get("k7")->as_number() == 199007, "200000 members, 1000 keys: last wins");
  ftest::check(s < 2.0, "200000 members parse in linear time", std::to_string(s) + " s");
}

std::string error_of(const std::string& path, size_t max_bytes = kMaxJsonFileBytes) {
  try {
    read_text_file(path, max_bytes);
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

void test_files() {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("focusllm-json-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string fifo = (dir / "config.json").string();
  if (::mkfifo(fifo.c_str(), 0600) != 0) {
    ftest::skip("a FIFO is refused", "mkfifo failed");
  } else {
    // Before: open() waited for a writer forever.
    std::string e = error_of(fifo);
    ftest::check(e == fifo + ": not a regular file (a FIFO, device or socket cannot be read as a model file)",
                 "a FIFO is refused at once", e);
  }
  std::string e = error_of("/dev/zero");
  ftest::check(e.find("/dev/zero: not a regular file") == 0, "/dev/zero is refused (was read without end)", e);
  const std::string small = (dir / "small.json").string();
  {
    FILE* f = std::fopen(small.c_str(), "wb");
    std::fputs("{\"a\": 1}", f);
    std::fclose(f);
  }
  ftest::check(read_text_file(small) == "{\"a\": 1}", "a regular file is read whole");
  e = error_of(small, 4);
  ftest::check(e == small + ": file of 8 bytes is larger than the limit for JSON files (4 bytes)", "size cap", e);
  // A sparse file just over the default cap: refused from its size, unread.
  const std::string huge = (dir / "huge.json").string();
  int fd = ::open(huge.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
  bool sparse = fd >= 0 && ::ftruncate(fd, off_t(kMaxJsonFileBytes) + 1) == 0;
  if (fd >= 0) ::close(fd);
  if (sparse) {
    e = error_of(huge);
    ftest::check(e == huge + ": file of 100000001 bytes is larger than the limit for JSON files (100000000 bytes)",
                 "default cap is 100 MB", e);
  } else {
    ftest::skip("default cap", "cannot create a sparse file");
  }
  e = error_of((dir / "absent.json").string());
  ftest::check(e.find("absent.json: cannot open (") != std::string::npos, "a missing file names the path", e);
  fs::remove_all(dir);
}

}  // namespace

int main() {
  test_tables();
  test_details();
  test_files();
  return ftest::finish();
}
