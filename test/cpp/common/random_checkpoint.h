// Random-weight LLaMA checkpoints (config.json + model.safetensors) of any
// shape, for tests and benchmarks that need a model of a given size but not a
// trained one: a LLaMA-2-7B-shaped file of 13.5 GB is written in seconds.
//
// Weights are uniform in [-a, a] with a = sqrt(3 / fan_in), so each
// projection keeps unit-variance activations unit-variance (std 1/sqrt(fan_in)
// per weight); norm weights are 1 +- 0.1, the embedding +-1. Values come from
// a counter-based generator (seed, tensor, block), so a file's bytes depend
// on the seed only, whatever the number of threads writing it.
//
// It mirrors bench/random-model.ts (writeRandomModel, which writes through
// writeCheckpoint, the one TypeScript writer of these files): the same
// Hugging Face layout (config.json with beacon_param, beacon_* candidate
// tensors), not the same bytes (its own values, tensor order and config
// fields; no biases, tied embeddings or beacon_embed_tokens). It stays a
// second writer because the C++ tests and benchmarks run without Node.js (a
// GPU machine may have none), and because it fills a multi-GB file with
// every core, where the TypeScript writer streams on one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace ftest {

struct CheckpointShape {
  int vocab = 512;
  int hidden = 64;
  int inter = 160;
  int layers = 2;
  int heads = 4;
  int kv_heads = 2;
  int head_dim = 0;  // 0: hidden / heads (config.json then has no head_dim)
};

// Writes dir/config.json and dir/model.safetensors (creating dir), all
// weights in `dtype`. candidates: per-layer beacon_{q,k,v,o}_proj and
// beacon_param ["q","k","v","o"]; candidate_mlp adds mlp.beacon_{up,down}_proj
// and "mlp". Throws focus::Error on I/O failure.
void write_random_checkpoint(const std::string& dir, const CheckpointShape& s, focus::DType dtype, bool candidates,
                             bool candidate_mlp, uint64_t seed);

// Like write_random_checkpoint, unless dir already holds the checkpoint of
// exactly these arguments (recorded in dir/random_checkpoint.json, written
// last). Returns true when it wrote.
bool ensure_random_checkpoint(const std::string& dir, const CheckpointShape& s, focus::DType dtype, bool candidates,
                              bool candidate_mlp, uint64_t seed);

// Size of model.safetensors' tensor data for these arguments.
size_t random_checkpoint_bytes(const CheckpointShape& s, focus::DType dtype, bool candidates, bool candidate_mlp);

}  // namespace ftest
