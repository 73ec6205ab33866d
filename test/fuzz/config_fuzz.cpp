// libFuzzer target: focus::parse_config (cpp/core/config.cpp), the reader of
// a model's config.json, on arbitrary bytes.
//
// A focus::Error is the reader refusing the input. Anything else is a
// finding: a crash, a sanitizer report, another exception, or an accepted
// config that the engine could not use safely: every size positive and within
// the limits parse_config states, num_key_value_heads dividing
// num_attention_heads, an even head_dim, token ids inside the vocabulary,
// finite positive rotary frequencies.
//
//   scripts/fuzz.sh 60 config            build and run (see the script)
//   build-fuzz/fuzz_config FILE          replay one input
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/config.h"
#include "core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  focus::ModelConfig c;
  try {
    c = focus::parse_config(text, "fuzz/config.json");
  } catch (const focus::Error&) {
    return 0;  // refused: fine
  }
  const bool sizes_ok = c.vocab_size >= 1 && c.vocab_size <= (1 << 24) && c.hidden_size >= 1 &&
                        c.hidden_size <= (1 << 20) && c.intermediate_size >= 1 && c.intermediate_size <= (1 << 20) &&
                        c.n_layers >= 1 && c.n_layers <= 4096 && c.n_heads >= 1 && c.n_kv_heads >= 1 &&
                        c.n_heads % c.n_kv_heads == 0 && c.head_dim >= 2 && c.head_dim % 2 == 0 &&
                        c.head_dim <= 1024 && int64_t(c.n_heads) * c.head_dim <= (int64_t(1) << 20);
  if (!sizes_ok) __builtin_trap();
  if (c.bos_token_id < 0 || c.bos_token_id >= c.vocab_size) __builtin_trap();
  for (int e : c.eos_token_ids)
    if (e < 0 || e >= c.vocab_size) __builtin_trap();
  if (!(std::isfinite(c.rms_norm_eps) && c.rms_norm_eps > 0)) __builtin_trap();
  const auto freq = c.rope_inv_freq();
  if (freq.size() != size_t(c.head_dim / 2)) __builtin_trap();
  for (double f : freq)
    if (!(std::isfinite(f) && f > 0)) __builtin_trap();
  return 0;
}
