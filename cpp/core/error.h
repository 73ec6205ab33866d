// Errors of the engine. Nothing in the engine exits or aborts: every failure is
// a C++ exception that the binding turns into a JavaScript Error (or a rejected
// Promise), and that the standalone test programs report.
#pragma once

#include <cstddef>
#include <sstream>
#include <stdexcept>
#include <string>

namespace focus {

// Any bad input or failed operation. The message names what is wrong and where
// (file, tensor, field, option).
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An allocation that does not fit. `needed` is the size of the allocation that
// failed, `available` what the backend reported as free (0 when unknown).
struct OutOfMemory : Error {
  OutOfMemory(const std::string& msg, size_t needed, size_t available)
      : Error(msg), needed(needed), available(available) {}
  size_t needed;
  size_t available;
};

// A run stopped because its caller asked it to (AbortSignal in JavaScript).
struct Cancelled : Error {
  Cancelled() : Error("the operation was aborted") {}
};

template <class... A>
std::string str(A&&... parts) {
  std::ostringstream s;
  (s << ... << parts);
  return s.str();
}

// Human-readable byte count: "1.50 GiB".
std::string format_bytes(size_t bytes);

}  // namespace focus

#define FOCUS_CHECK(cond, ...)                               \
  do {                                                       \
    if (!(cond)) throw ::focus::Error(::focus::str(__VA_ARGS__)); \
  } while (0)
