// The runner's scratch memory (private to model.cpp / runner.cpp).
#pragma once

#include <algorithm>
#include <vector>

#include "model.h"

namespace focus {

// Scratch of the runner, sized once and grown rarely (never in the token loop
// once a session has reserved its largest step).
struct Model::Workspace {
  Backend& be;
  int rows = 0, prefix_rows = 0, logit_rows = 0;
  std::vector<void*> allocs;
  // act_dtype() buffers, row-major
  void* x = nullptr;     // (rows, dim) residual stream
  void* h = nullptr;     // (rows, dim) normalised
  void* q = nullptr;     // (rows, q_dim)
  void* k = nullptr;     // (rows, kv_dim)
  void* v = nullptr;     // (rows, kv_dim)
  void* att = nullptr;   // (rows, q_dim)
  void* gate = nullptr;  // (rows, inter)
  void* up = nullptr;    // (rows, inter)
  void* sk = nullptr;    // (rows, kv_dim) keys of sequences without a cache
  void* sv = nullptr;    // (rows, kv_dim)
  void* pk = nullptr;    // (prefix_rows, kv_dim) prefix keys rotated for the current layer
  void* lx = nullptr;    // (logit_rows, dim)
  float* rope = nullptr;    // (rows, head_dim)
  float* prope = nullptr;   // (prefix_rows, head_dim)
  float* logits = nullptr;  // (logit_rows, vocab)
  int32_t* tokens = nullptr;   // (logit_rows) sampled tokens
  float* uniforms = nullptr;   // (logit_rows) the sampler's random numbers
  void* tables = nullptr;   // ids, positions, destinations, segments
  size_t table_bytes = 0;
  size_t total = 0;  // bytes of everything taken

  explicit Workspace(Backend& b) : be(b) {}
  ~Workspace() {
    for (void* p : allocs) be.dealloc(p);
  }
  void* take(size_t bytes, const char* what) {
    void* p = be.alloc(std::max<size_t>(bytes, 64), what);
    allocs.push_back(p);
    total += std::max<size_t>(bytes, 64);
    return p;
  }
};

}  // namespace focus
