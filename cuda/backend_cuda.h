// The CUDA backend (core/backend.h): device memory, one stream, 16-bit
// activations (BF16, or F16 for F16 checkpoints), weights converted to that
// type at load. Declared here so that the CUDA tests and benchmarks can reach
// its stream and memory counters; everything else goes through Backend.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/backend.h"

namespace focus::cuda {

class CudaBackend final : public Backend {
 public:
  // Throws focus::Error when the device is not usable (see
  // cuda_unavailable_reason()).
  explicit CudaBackend(int device);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override { return "cuda"; }
  std::string description() const override { return description_; }
  DType act_dtype() const override { return act_; }

  // ---- memory (device memory, cudaMalloc only) ------------------------------
  // alloc() compares with cudaMemGetInfo first and throws OutOfMemory before
  // asking for more than is free. upload() returns once `src` has been read
  // (pageable host memory is staged by the driver); download() waits for the
  // stream. copy() ranges must not overlap.
  void* alloc(size_t bytes, const char* what) override;
  void dealloc(void* p) override;  // never throws: it runs in destructors
  void upload(void* dst, const void* src, size_t bytes) override;
  void download(void* dst, const void* src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void fill_zero(void* dst, size_t bytes) override;
  void sync() override;
  size_t free_bytes() const override;

  Weight load_weight(const TensorView& t, const char* name) override;
  void release_weight(Weight& w) override;
  size_t weight_bytes(DType file_dtype, int64_t numel) const override { return size_t(numel) * 2; }
  void set_rope(const std::vector<double>& inv_freq, int head_dim) override;
  void configure(DType weights_dtype) override;

  // ---- ops -----------------------------------------------------------------------
  void embedding(void* out, const Weight& table, const int32_t* ids, int n) override;
  void rms_norm(void* out, const void* x, const Weight& w, int n, float eps) override;
  void matmul(void* out, const void* x, int m, const Weight& w, const Weight* bias, Epilogue e) override;
  // One GEMM launch: rows [split, m) use (w2, b2).
  void matmul_split(void* out, const void* x, int m, int split, const Weight& w1, const Weight* b1, const Weight& w2,
                    const Weight* b2, Epilogue e) override;
  void rope_table(float* table, const int32_t* pos, int n) override;
  void rope(void* x, int n, int n_heads, const float* table) override;
  void kv_store(const void* k, const void* v, const KvDst* dst, int n, int kv_dim, int layer) override;
  void attention(void* out, const void* q, const AttnArgs& a) override;
  void swiglu(void* out, const void* gate, const void* up, int64_t n) override;
  void gather_rows(void* out, const void* x, const int32_t* rows, int n, int dim) override;
  void sample(int32_t* out, const float* logits, int rows, int vocab, const SampleParams& p,
              const float* uniforms) override;

  // ---- for tests and benchmarks ---------------------------------------------------
  cudaStream_t stream() const { return stream_; }
  int device() const { return device_; }
  size_t allocated_bytes() const;  // live allocations made through alloc()
  size_t peak_bytes() const;       // their high-water mark since construction / reset_peak()
  void reset_peak();

 private:
  void activate() const;  // makes device_ current on the calling thread
  void ensure_staging();
  void free_staging() noexcept;
  void check_weight(const Weight& w, const char* op) const;

  int device_ = 0;
  std::string description_;
  DType act_ = DType::BF16;
  cudaStream_t stream_ = nullptr;
  int weights_loaded_ = 0;

  // Rotary inverse frequencies (head_dim/2) on the device, double.
  double* inv_freq_ = nullptr;
  int head_dim_ = 0;

  // GEMM split-K scratch (kGemmWorkspaceBytes), allocated with the backend.
  void* gemm_ws_ = nullptr;

  // Attention split-KV scratch: grow-only, so steps of a session reuse it.
  void* attn_ws_ = nullptr;
  size_t attn_ws_bytes_ = 0;

  // Weight upload: two host staging buffers (pinned when the system allows)
  // and two device buffers for the file-typed data awaiting conversion, so
  // that the host copy of one chunk overlaps the transfer of the previous.
  static constexpr size_t kStageBytes = size_t(32) << 20;
  void* host_stage_[2] = {nullptr, nullptr};
  bool host_stage_pinned_ = false;
  void* dev_stage_[2] = {nullptr, nullptr};
  cudaEvent_t stage_done_[2] = {nullptr, nullptr};
  int stage_next_ = 0;

  mutable std::mutex mem_mutex_;
  std::unordered_map<void*, size_t> sizes_;
  size_t allocated_ = 0, peak_ = 0;
};

}  // namespace focus::cuda
