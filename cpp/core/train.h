// Training: FocusLLM candidate-projection training (DESIGN 1b) and full
// causal-LM training, with exact float32 gradients.
//
// The Trainer makes some of a Model's tensors trainable: each gets a float32
// master copy, held by the Model, which the Model's own Weight slots are
// pointed at (so inference after training runs the trained weights), plus a
// gradient and the two AdamW moments, held here. Frozen tensors stay as
// loaded (memory-mapped, 16-bit ok).
//
// One accumulate() call runs forward + backward of a batch of examples (one
// after another; every op is multi-threaded) and adds each example's
// gradient into the gradient buffers; adamw() applies the update. All ops go
// through the Backend interface (core/backend.h, "training" section), so a
// backend that implements them trains too.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "model.h"

namespace focus {

// Float32 backend memory for one example, kept by the Trainer from one
// example to the next: a bump allocator over one block, which grows (once,
// to what the largest example needed) when an example does not fit. Fresh
// memory costs a page fault per 4 KiB on first touch (measured 0.3 GB/s on
// this project's VMs), as much as the compute of an example's activations.
class TrainArena {
 public:
  explicit TrainArena(Backend& be) : be_(be) {}
  ~TrainArena() { release(); }
  void reset() {
    // Anything that overflowed the block: make the next block big enough.
    if (!extra_.empty()) {
      const size_t need = used_ + extra_bytes_;
      release();
      size_ = need + need / 4;
      block_ = static_cast<char*>(be_.alloc(size_, "training activations"));
    }
    used_ = 0;
  }
  // Makes the block hold at least `bytes` before an example starts, so that
  // an example that cannot fit fails before any work (OutOfMemory names the
  // bytes) and the allocations of the example never fault in fresh pages.
  void reserve(size_t bytes) {
    if (block_ && size_ >= bytes) return;
    release();
    size_ = bytes;
    block_ = static_cast<char*>(be_.alloc(size_, "training activations"));
  }
  float* take(size_t n, const char* what, bool zero = false) {
    const size_t bytes = (std::max<size_t>(n, 1) * 4 + 63) & ~size_t(63);
    void* p;
    if (block_ && used_ + bytes <= size_) {
      p = block_ + used_;
      used_ += bytes;
    } else {
      p = be_.alloc(bytes, what);
      extra_.push_back(p);
      extra_bytes_ += bytes;
    }
    if (zero) be_.fill_zero(p, n * 4);
    return static_cast<float*>(p);
  }
  size_t bytes() const { return size_; }

 private:
  void release() {
    for (void* p : extra_) be_.dealloc(p);
    extra_.clear();
    extra_bytes_ = 0;
    if (block_) be_.dealloc(block_);
    block_ = nullptr;
    size_ = used_ = 0;
  }
  Backend& be_;
  char* block_ = nullptr;
  size_t size_ = 0, used_ = 0;
  std::vector<void*> extra_;
  size_t extra_bytes_ = 0;
};

struct TrainExample {
  enum class Kind { Focus, Lm };
  Kind kind = Kind::Focus;
  std::vector<int32_t> ids;  // x, BOS first
  bool repetition = false;   // focus: memory = all of x (else x[0:s])
  int s = 0, l = 0, chunk = 0, prompt_cap = 512;  // focus geometry
  int loss_start = 1;        // lm: the first scored token, ids[loss_start..] (1: every next token)
  float weight = 1.0f;       // the example's gradient is multiplied by this
};

struct TrainParam {
  std::string name;             // checkpoint name
  std::vector<int64_t> shape;
  float* w = nullptr;           // master weight (held by the Model)
  int64_t numel = 0;
  std::vector<float> g, m, v;   // gradient and AdamW moments
  bool in_checkpoint = false;   // false: a new candidate tensor (copied from its base at the start)
};

class Trainer {
 public:
  // all_params: every tensor of the checkpoint (LM training); otherwise the
  // candidate projections per beacon_param. recompute: keep only each layer's
  // input and recompute the layer during the backward.
  Trainer(std::shared_ptr<Model> model, bool all_params, bool recompute);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  bool all_params() const { return all_; }
  const std::vector<std::unique_ptr<TrainParam>>& params() const { return params_; }
  const TrainParam* find(const std::string& name) const;
  int64_t step() const { return step_; }
  // What was trained, for config.json's beacon_param ("q", "k", "v", "o", "mlp"); empty for all-params.
  const std::vector<std::string>& candidate_keys() const { return cand_keys_; }

  // Checks every example before any work; throws naming the example and field.
  void validate(const std::vector<TrainExample>& ex) const;
  // Forward + backward of every example; gradients (times weight) accumulate.
  // Returns each example's loss. ctl: cancellation between examples and layers.
  std::vector<double> accumulate(const std::vector<TrainExample>& ex, RunControl* ctl = nullptr);
  // Scratch bytes one example needs (activations, gradients, the chunks' caches), beyond the
  // model, the master weights, gradients and optimizer state (4 floats per trainable element).
  size_t example_bytes(const TrainExample& e) const;
  void zero_grad();
  double grad_norm() const;
  void adamw(const AdamWStep& s);  // s.t is set from the step counter

  // One safetensors file with every tensor of the base checkpoint, the
  // trainable ones replaced by their float32 weights, new candidates added.
  void save_weights(const std::string& path) const;
  void save_state(const std::string& path) const;
  void load_state(const std::string& path);

 private:
  struct Graph;  // train_graph.cpp
  void make_params();
  float* grad_of(const Weight& w) const;  // null for frozen weights

  std::shared_ptr<Model> model_;
  bool all_ = false, recompute_ = false;
  std::vector<std::unique_ptr<TrainParam>> params_;
  std::map<const void*, TrainParam*> by_data_;  // master pointer -> param
  std::vector<std::string> cand_keys_;
  std::unique_ptr<TrainArena> arena_;  // the examples' scratch, kept between examples
  std::unique_ptr<KvPool> pool_;  // the chunks' caches (float32)
  int64_t step_ = 0;
  std::mutex mutex_;
};

}  // namespace focus
