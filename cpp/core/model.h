// A LLaMA model with FocusLLM candidate projections, on one backend, and the
// runner that executes a batch of independent sequences as one step.
#pragma once

#include <atomic>
#include <map>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend.h"
#include "config.h"
#include "safetensors.h"

namespace focus {

struct LayerWeights {
  Weight attn_norm, ffn_norm;  // (dim)
  Weight wq, wk, wv, wo;       // (q_dim, dim) (kv_dim, dim) (kv_dim, dim) (dim, q_dim)
  Weight bq, bk, bv, bo;       // (q_dim) (kv_dim) (kv_dim) (dim); empty without attention_bias
  // Candidate ("beacon") projections: the same shapes. When the checkpoint has
  // none for a projection these alias the base ones.
  Weight cq, ck, cv, co;
  Weight cbq, cbk, cbv, cbo;
  Weight w_gate, w_up, w_down;  // (inter, dim) (inter, dim) (dim, inter)
  Weight c_up, c_down;          // candidate MLP; alias w_up / w_down when absent
};

struct ModelWeights {
  Weight embed;    // (vocab, dim)
  Weight norm;     // (dim)
  Weight lm_head;  // (vocab, dim); aliases embed when tied
  std::vector<LayerWeights> layers;
};

// What the checkpoint holds, for `focusllm info`.
struct ModelInfo {
  int64_t n_params = 0;            // base model parameters
  int64_t n_candidate_params = 0;  // candidate projections in use
  std::string dtype;               // storage type of most weights ("BF16", ...)
  size_t file_bytes = 0;
  size_t backend_weight_bytes = 0;
  // Of "q","k","v","o","mlp": those whose candidate tensors every layer has
  // (a projection present in some layers only is a load error).
  std::vector<std::string> candidate_present;
  // Tensors of the checkpoint the model does not read (sorted), but for the
  // known unused ones (model.beacon_embed_tokens.weight, rotary_emb.inv_freq).
  std::vector<std::string> unused_tensors;
};

// KV caches of many sequences in one allocation. Layout per tensor (K and V):
// (n_slot, n_layer, capacity, kv_dim); a slot's keys are stored rotated.
class KvPool {
 public:
  KvPool(std::shared_ptr<Backend> be, const ModelConfig& c, int n_slot, int capacity, DType dtype);
  ~KvPool();
  KvPool(const KvPool&) = delete;
  KvPool& operator=(const KvPool&) = delete;

  static size_t bytes_needed(const ModelConfig& c, int64_t n_slot, int64_t capacity, DType dtype);

  int n_slot() const { return n_slot_; }
  int capacity() const { return capacity_; }
  DType dtype() const { return dtype_; }
  int n_layer() const { return n_layer_; }
  int kv_dim() const { return kv_dim_; }
  size_t bytes() const { return bytes_; }
  // Element offset of (slot, layer, pos).
  int64_t offset(int slot, int layer, int pos) const {
    return ((int64_t(slot) * n_layer_ + layer) * capacity_ + pos) * kv_dim_;
  }
  void* k() const { return k_; }
  void* v() const { return v_; }
  const Backend* backend() const { return be_.get(); }

  std::vector<int> length;  // tokens cached in each slot
  int in_use = 0;           // runs in flight that use it (the binding keeps JS away meanwhile)

 private:
  std::shared_ptr<Backend> be_;
  int n_slot_, capacity_, n_layer_, kv_dim_;
  DType dtype_;
  size_t bytes_ = 0;
  void* k_ = nullptr;
  void* v_ = nullptr;
};

// Candidate KVs: keys before rotary, and values, in act_dtype(). Layout
// (n_layer, n_slot, kv_dim), so the first k slots of a layer are one block.
class CandidateSet {
 public:
  CandidateSet(std::shared_ptr<Backend> be, const ModelConfig& c, int n_slot);
  ~CandidateSet();
  CandidateSet(const CandidateSet&) = delete;
  CandidateSet& operator=(const CandidateSet&) = delete;

  static size_t bytes_needed(const ModelConfig& c, int64_t n_slot, DType dtype);

  int n_slot() const { return n_slot_; }
  DType dtype() const { return dtype_; }
  size_t bytes() const { return bytes_; }
  int64_t offset(int layer, int slot) const { return (int64_t(layer) * n_slot_ + slot) * kv_dim_; }
  void* k() const { return k_; }
  void* v() const { return v_; }
  const Backend* backend() const { return be_.get(); }

  std::vector<uint8_t> filled;  // slot holds a candidate
  int in_use = 0;               // runs in flight that use it

 private:
  std::shared_ptr<Backend> be_;
  int n_slot_, kv_dim_;
  DType dtype_;
  size_t bytes_ = 0;
  void* k_ = nullptr;
  void* v_ = nullptr;
};

enum class LogitsMode : int { None = 0, Last = 1, All = 2 };

// One sequence of a batched step.
struct SeqRun {
  std::vector<int32_t> tokens;  // new tokens, at least one
  KvPool* pool = nullptr;       // cache to attend to and append to (none: scratch)
  int slot = -1;
  CandidateSet* prefix = nullptr;  // fully visible prefix: slots [0, n_prefix)
  int n_prefix = 0;
  CandidateSet* cand = nullptr;    // the last token is a candidate: candidate
  int cand_slot = -1;              // projections, its KV goes to cand[cand_slot]
  LogitsMode logits = LogitsMode::None;
  int logits_from = 0;  // All: only the rows of tokens [logits_from, n)
  // Seeded cache: before any work of the run, the slot (which must be empty)
  // gets a copy of the first base_length cached tokens of base[base_slot],
  // then the tokens run on top. base is only read, so one kept document's
  // chunk caches serve many questions, each on its own copy (lib/document.ts).
  const KvPool* base = nullptr;
  int base_slot = -1;
  int base_length = 0;
};

// Shared between a run and its caller (another thread): cancellation and
// progress counters.
struct RunControl {
  std::atomic<bool> cancel{false};
  std::atomic<int64_t> tokens_done{0};
  std::atomic<int64_t> tokens_total{0};
};

struct ModelOptions {
  int max_batch_tokens = 0;  // rows per micro-batch; 0 = backend default
  // In place of config.json's beacon_param (which candidate projections run,
  // and which a trainer trains): LoadOptions.beaconParam.
  bool override_beacon_param = false;
  std::vector<std::string> beacon_param;
};

class Model {
 public:
  Model(const std::string& dir, std::shared_ptr<Backend> be, const ModelOptions& opts = {});
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return cfg_; }
  const ModelInfo& info() const { return info_; }
  Backend& backend() { return *be_; }
  std::shared_ptr<Backend> backend_ptr() { return be_; }
  int max_batch_tokens() const { return max_batch_tokens_; }
  // Bytes of the runner's scratch now allocated: it grows only when a run
  // needs more than it has (then by half again), and is kept between runs.
  size_t scratch_bytes() const { return ws_bytes_.load(); }
  // Milliseconds the last finished run (run or run_sample) spent in here,
  // from validation to its results: the bench subtracts it from a session
  // step's wall time to get the JavaScript side in the same step.
  double last_run_ms() const { return last_run_ms_.load(); }
  // Throws naming the file when a checkpoint file was modified in place since
  // load (see MappedFile): run() calls it before and after each run, as
  // the CPU backend reads the weights from the memory maps.
  void check_files() const;

  // Runs every sequence of the batch: embeddings, all layers, logits. Caches
  // grow by the tokens run (the candidate excepted); candidate KVs are
  // written. Returns the requested logits rows, (rows, vocab) float32, in
  // sequence order (all rows of a sequence in token order for All).
  // Validates the whole batch before any work; thread-safe (runs serialize).
  std::vector<float> run(const std::vector<SeqRun>& batch, RunControl* ctl = nullptr);

  // The same run, but each requested logits row is sampled on the backend
  // (only the token crosses to the host): one token per row, in the order
  // run() would return the rows, drawn with uniforms[row] in [0, 1).
  std::vector<int32_t> run_sample(const std::vector<SeqRun>& batch, const SampleParams& params,
                                  const std::vector<float>& uniforms, RunControl* ctl = nullptr);

  // A KV slot's first `length` cached tokens to / from host memory, laid out
  // (2, n_layer, length, kv_dim) in the pool's dtype: keys, then values.
  // kv_write sets the slot's length. Serialized with runs (they share the
  // backend's stream); bounds are checked, never trusted.
  void kv_read(const KvPool& pool, int slot, int length, void* dst);
  void kv_write(KvPool& pool, int slot, const void* src, int length);

 private:
  friend class Trainer;  // core/train.cpp: makes tensors trainable (master copies below)
  struct Piece;
  struct Workspace;
  void validate(const std::vector<SeqRun>& batch) const;
  // Where a run's requested rows go: logits, or sampled tokens.
  struct Output {
    std::vector<float>* logits = nullptr;
    std::vector<int32_t>* tokens = nullptr;
    const SampleParams* params = nullptr;
    const std::vector<float>* uniforms = nullptr;
  };
  void run_impl(const std::vector<SeqRun>& batch, RunControl* ctl, Output& out);
  void run_micro_batch(const std::vector<SeqRun>& batch, const std::vector<Piece>& pieces, Output& out,
                       RunControl* ctl);
  // run_micro_batch's parts (runner.cpp): the row layout and its tables, the
  // tables on the backend, one layer's two blocks, the requested rows' output.
  struct MicroBatch;
  struct BatchTables;
  MicroBatch micro_batch_rows(const std::vector<SeqRun>& batch, const std::vector<Piece>& pieces);
  void micro_batch_tables(const std::vector<SeqRun>& batch, const std::vector<Piece>& pieces, MicroBatch& mb);
  AttnSegment piece_keys(const SeqRun& s, int n, const MicroBatch& mb, int& scratch_row);
  BatchTables micro_batch_upload(const MicroBatch& mb);
  void attention_block(int l, const MicroBatch& mb, const BatchTables& d);
  void mlp_block(int l, const MicroBatch& mb);
  void micro_batch_outputs(const MicroBatch& mb, const BatchTables& d, Output& out);
  void load_weights(const Checkpoint& ck);
  Weight weight(const Checkpoint& ck, const std::string& name, std::vector<int64_t> shape, bool required);
  void ensure_workspace(int rows, int prefix_rows, int logit_rows);

  ModelConfig cfg_;
  ModelInfo info_;
  std::shared_ptr<Backend> be_;
  std::unique_ptr<Checkpoint> ck_;  // the memory maps; the CPU backend computes on them
  ModelWeights w_;
  std::vector<std::unique_ptr<std::string>> names_;  // stable storage for Weight::name
  std::vector<Weight> owned_;  // every loaded weight once (aliases excluded), to release
  int max_batch_tokens_ = 0;
  std::unique_ptr<Workspace> ws_;
  std::atomic<double> last_run_ms_{0};
  std::atomic<size_t> ws_bytes_{0};  // ws_'s bytes, readable while a run holds run_mutex_
  std::mutex run_mutex_;
  // Float32 master copies of trained tensors, by checkpoint name; the Weight
  // slots of w_ point at them once a Trainer made them trainable. They live
  // as long as the model, so it keeps running the trained weights.
  std::map<std::string, std::unique_ptr<std::vector<float>>> masters_;
  bool has_trainer_ = false;
};

}  // namespace focus
