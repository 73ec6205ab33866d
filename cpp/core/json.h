// A small strict JSON (RFC 8259) reader for config.json, safetensors headers
// and index files.
// Numbers are kept as double and as their source text, so that 64-bit offsets
// above 2^53 are still read exactly.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace focus {

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };

  // Parses `text`; throws focus::Error naming `where` and the byte offset.
  static Json parse(const std::string& text, const std::string& where);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }

  bool as_bool() const { return bool_; }
  double as_number() const { return num_; }
  const std::string& as_string() const { return str_; }
  // True when the number is an integer that fits int64 exactly; writes it.
  bool as_int64(int64_t* out) const;

  const std::vector<Json>& items() const { return arr_; }
  const std::vector<std::pair<std::string, Json>>& members() const { return obj_; }
  // Member lookup; nullptr when absent (or when this is not an object).
  const Json* get(const std::string& key) const;

  static const char* type_name(Type t);

 private:
  Type type_ = Type::Null;
  bool bool_ = false;
  double num_ = 0;
  std::string str_;  // string value, or the number's source text
  std::vector<Json> arr_;
  std::vector<std::pair<std::string, Json>> obj_;
  friend class JsonParser;
};

// Largest JSON file read (config.json, index files): the safetensors header
// limit. Real ones weigh kilobytes; /dev/zero or a runaway file must not be
// read without end.
constexpr size_t kMaxJsonFileBytes = 100u * 1000 * 1000;

// Reads a whole regular file into a string; throws naming the path when it
// cannot be opened, is not a regular file (a FIFO would block forever, a
// device never ends) or is larger than max_bytes.
std::string read_text_file(const std::string& path, size_t max_bytes = kMaxJsonFileBytes);

}  // namespace focus
