// libFuzzer target: focus::parse_safetensors (cpp/core/safetensors.cpp) on an
// arbitrary file image (8-byte header length, JSON header, data section).
//
// A focus::Error is the parser refusing the file. Anything else is a finding:
// a crash, a sanitizer report, another exception, or an accepted file whose
// tensor views break the format's promise: each view lies inside the data
// section, its size is its shape times its element size, and the views tile
// the data section exactly. Every byte of every view is read, so ASan
// reports a view that points outside the input.
//
//   scripts/fuzz.sh 60 safetensors       build and run (see the script)
//   build-fuzz/fuzz_safetensors FILE     replay one input
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<focus::TensorView> views;
  try {
    focus::parse_safetensors(data, size, "fuzz.safetensors", &views);
  } catch (const focus::Error&) {
    return 0;  // refused: fine
  }
  // Accepted: the 8-byte length and the header are there.
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | data[i];
  const uint8_t* base = data + 8 + header_len;
  const uint8_t* end = data + size;
  size_t covered = 0;
  unsigned sum = 0;
  for (const focus::TensorView& t : views) {
    if (t.data < base || t.data > end || t.nbytes > size_t(end - t.data)) __builtin_trap();
    if (t.numel() < 0 || t.shape_str().empty()) __builtin_trap();
    if (t.dtype_supported && t.nbytes != size_t(t.numel()) * focus::dtype_size(t.dtype)) __builtin_trap();
    for (size_t i = 0; i < t.nbytes; ++i) sum += t.data[i];
    covered += t.nbytes;
  }
  if (covered != size_t(end - base)) __builtin_trap();  // no gap, no overlap
  volatile unsigned sink = sum;
  (void)sink;
  return 0;
}
