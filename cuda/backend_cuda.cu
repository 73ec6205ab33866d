// The CUDA backend: memory, weight upload and the op dispatch to the kernels'
// launchers (ops.cuh, gemm.cuh, attention.cuh). The CPU counterpart is
// cpp/cpu/backend_cpu.cpp.
//
// Nothing here touches CUDA at static initialisation: the addon must load on
// machines without a GPU or driver, and ask only when a CUDA backend is
// requested (cuda_unavailable_reason, make_cuda_backend).
#include "backend_cuda.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "attention.cuh"
#include "common.cuh"
#include "core/safetensors.h"
#include "gemm.cuh"
#include "ops.cuh"

namespace focus {

namespace cuda {

// ---- errors ---------------------------------------------------------------------

namespace {

// Errors after which the context is unusable: every later call fails too.
bool is_sticky(cudaError_t e) {
  switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout:
      return true;
    default:
      return false;
  }
}

// "cuda/backend_cuda.cu" rather than the build machine's absolute path.
const char* short_path(const char* file) {
  for (const char* key : {"/cuda/", "/cpp/", "/test/", "/bench/"}) {
    const char* p = std::strstr(file, key);
    if (p) return p + 1;
  }
  return file;
}

}  // namespace

[[noreturn]] void throw_cuda_error(cudaError_t e, const char* expr, const char* file, int line) {
  const std::string what = str("CUDA error ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ") in ", expr,
                               " at ", short_path(file), ":", line);
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // not sticky: clear it so that the process carries on
    size_t free_b = 0, total = 0;
    if (cudaMemGetInfo(&free_b, &total) != cudaSuccess) free_b = 0;
    (void)cudaGetLastError();
    throw OutOfMemory(str("out of device memory: ", what, "; ", format_bytes(free_b), " free"), 0, free_b);
  }
  if (is_sticky(e))
    throw Error(what + "; the CUDA context cannot be used any more: restart the process (a kernel fault like this is "
                       "a bug in focusllm, please report it)");
  (void)cudaGetLastError();
  throw Error(what);
}

// ---- availability -----------------------------------------------------------------

namespace {

// A kernel whose attributes tell whether this binary has code for the device.
__global__ void probe_kernel() {}

std::string version_str(int v) { return str(v / 1000, ".", (v % 1000) / 10); }

std::string probe_device(int device) {
  int drv = 0;
  if (cudaDriverGetVersion(&drv) != cudaSuccess || drv == 0) {
    (void)cudaGetLastError();
    return "no NVIDIA driver was found (libcuda.so is not installed or not visible here)";
  }
  if (drv < CUDART_VERSION)
    return str("the NVIDIA driver supports CUDA up to ", version_str(drv), " but this build of focusllm needs CUDA ",
               version_str(CUDART_VERSION), "; update the driver");
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e == cudaErrorNoDevice || (e == cudaSuccess && n == 0)) {
    (void)cudaGetLastError();
    return "no CUDA device was found (the driver sees no GPU; check CUDA_VISIBLE_DEVICES)";
  }
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return str("CUDA could not start: ", cudaGetErrorString(e));
  }
  if (device < 0 || device >= n) return str("CUDA device ", device, " does not exist (", n, " found)");
  cudaDeviceProp p;
  if ((e = cudaGetDeviceProperties(&p, device)) != cudaSuccess) {
    (void)cudaGetLastError();
    return str("CUDA device ", device, " cannot be queried: ", cudaGetErrorString(e));
  }
  if (p.major < 8)
    return str("CUDA device ", device, " (", p.name, ") has compute capability ", p.major, ".", p.minor,
               "; focusllm needs 8.0 or newer (Ampere, Ada or Hopper)");
  cudaFuncAttributes fa;
  if ((e = cudaSetDevice(device)) == cudaSuccess) e = cudaFuncGetAttributes(&fa, probe_kernel);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return str("this build of focusllm has no GPU code for ", p.name, " (compute capability ", p.major, ".",
               p.minor, "): rebuild with FOCUSLLM_CUDA_ARCHS including ", p.major, p.minor, " (",
               cudaGetErrorString(e), ")");
  }
  return "";
}

}  // namespace

// ---- the backend -------------------------------------------------------------------

CudaBackend::CudaBackend(int device) : device_(device) {
  const std::string why = probe_device(device);
  if (!why.empty()) throw Error("backend \"cuda\" is not available: " + why);
  activate();
  cudaDeviceProp p;
  CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  description_ = str(p.name, " (device ", device, ", compute capability ", p.major, ".", p.minor, ", ",
                     p.multiProcessorCount, " SMs, ", format_bytes(p.totalGlobalMem), ")");
  // Whether this device runs the sm_90a (wgmma) GEMM image is asked once, here,
  // with a synchronous probe, not inside the first large GEMM of a run.
  (void)gemm_sm90_available();
  // Non-blocking: the stream never waits on the legacy default stream that
  // other libraries in the process might use.
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  // Split-K lets skinny GEMMs (decode rows, candidate rows) use every SM; the
  // scratch is small and lives as long as the backend, outside any token loop.
  try {
    gemm_ws_ = alloc(kGemmWorkspaceBytes, "GEMM workspace");
  } catch (...) {
    CUDA_CHECK(cudaStreamDestroy(stream_));
    throw;
  }
}

CudaBackend::~CudaBackend() {
  if (cudaSetDevice(device_) != cudaSuccess) (void)cudaGetLastError();
  if (stream_ && cudaStreamSynchronize(stream_) != cudaSuccess) (void)cudaGetLastError();
  free_staging();
  dealloc(gemm_ws_);
  dealloc(attn_ws_);
  dealloc(inv_freq_);
  if (stream_ && cudaStreamDestroy(stream_) != cudaSuccess) (void)cudaGetLastError();
}

void CudaBackend::activate() const {
  // Per thread: the runner is called from Node's worker threads, each of
  // which starts on device 0. Cheap when the device is already current.
  CUDA_CHECK(cudaSetDevice(device_));
}

void* CudaBackend::alloc(size_t bytes, const char* what) {
  activate();
  bytes = std::max<size_t>(bytes, 256);
  size_t free_b = 0, total = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_b, &total));
  // Refuse before asking, so that the error names what did not fit and by
  // how much; cudaMalloc can still fail (fragmentation, another process),
  // which is reported the same way.
  if (bytes > free_b)
    throw OutOfMemory(str("out of device memory: ", what, " needs ", format_bytes(bytes), " (", bytes,
                          " bytes) but only ", format_bytes(free_b), " are free on ", description_),
                      bytes, free_b);
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    throw OutOfMemory(str("out of device memory: ", what, " needs ", format_bytes(bytes), " (", bytes,
                          " bytes); cudaMalloc failed with ", format_bytes(free_b), " reported free on ",
                          description_),
                      bytes, free_b);
  }
  CUDA_CHECK(e);
  std::lock_guard<std::mutex> lock(mem_mutex_);
  sizes_[p] = bytes;
  allocated_ += bytes;
  peak_ = std::max(peak_, allocated_);
  return p;
}

void CudaBackend::dealloc(void* p) {
  if (!p) return;
  if (cudaSetDevice(device_) != cudaSuccess || cudaFree(p) != cudaSuccess) (void)cudaGetLastError();
  std::lock_guard<std::mutex> lock(mem_mutex_);
  auto it = sizes_.find(p);
  if (it != sizes_.end()) {
    allocated_ -= it->second;
    sizes_.erase(it);
  }
}

void CudaBackend::upload(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  activate();
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
}

void CudaBackend::download(void* dst, const void* src, size_t bytes) {
  activate();
  if (bytes) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::copy(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  activate();
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
}

void CudaBackend::fill_zero(void* dst, size_t bytes) {
  if (!bytes) return;
  activate();
  CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, stream_));
}

void CudaBackend::sync() {
  activate();
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

size_t CudaBackend::free_bytes() const {
  activate();
  size_t free_b = 0, total = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_b, &total));
  return free_b;
}

size_t CudaBackend::allocated_bytes() const {
  std::lock_guard<std::mutex> lock(mem_mutex_);
  return allocated_;
}

size_t CudaBackend::peak_bytes() const {
  std::lock_guard<std::mutex> lock(mem_mutex_);
  return peak_;
}

void CudaBackend::reset_peak() {
  std::lock_guard<std::mutex> lock(mem_mutex_);
  peak_ = allocated_;
}

// ---- weights ------------------------------------------------------------------------

void CudaBackend::configure(DType weights_dtype) {
  const DType act = weights_dtype == DType::F16 ? DType::F16 : DType::BF16;
  FOCUS_CHECK(weights_loaded_ == 0 || act == act_, "CUDA backend: configure(", dtype_name(weights_dtype),
              ") after weights were loaded as ", dtype_name(act_));
  act_ = act;
}

void CudaBackend::ensure_staging() {
  if (host_stage_[0]) return;
  try {
    for (int b = 0; b < 2; ++b) {
      CUDA_CHECK(cudaEventCreateWithFlags(&stage_done_[b], cudaEventDisableTiming));
      dev_stage_[b] = alloc(kStageBytes, "weight upload staging");
    }
    // Pinned memory makes the copies real DMA at full PCIe speed; where the
    // system refuses it (locked-memory limits), pageable buffers still work.
    host_stage_pinned_ = true;
    for (int b = 0; b < 2; ++b) {
      if (cudaMallocHost(&host_stage_[b], kStageBytes) != cudaSuccess) {
        (void)cudaGetLastError();
        host_stage_pinned_ = false;
        break;
      }
    }
    if (!host_stage_pinned_) {
      for (int b = 0; b < 2; ++b) {
        if (host_stage_[b] && cudaFreeHost(host_stage_[b]) != cudaSuccess) (void)cudaGetLastError();
        host_stage_[b] = std::malloc(kStageBytes);
        if (!host_stage_[b]) throw OutOfMemory("out of host memory for the weight upload buffers", kStageBytes, 0);
      }
    }
  } catch (...) {
    free_staging();
    throw;
  }
}

void CudaBackend::free_staging() noexcept {
  if (stream_ && cudaStreamSynchronize(stream_) != cudaSuccess) (void)cudaGetLastError();
  for (int b = 0; b < 2; ++b) {
    if (host_stage_[b]) {
      if (!host_stage_pinned_) std::free(host_stage_[b]);
      else if (cudaFreeHost(host_stage_[b]) != cudaSuccess) (void)cudaGetLastError();
      host_stage_[b] = nullptr;
    }
    dealloc(dev_stage_[b]);
    dev_stage_[b] = nullptr;
    if (stage_done_[b] && cudaEventDestroy(stage_done_[b]) != cudaSuccess) (void)cudaGetLastError();
    stage_done_[b] = nullptr;
  }
}

Weight CudaBackend::load_weight(const TensorView& t, const char* name) {
  FOCUS_CHECK(t.dtype_supported, t.file, ": tensor '", name, "' has dtype ", t.dtype_name,
              "; supported: F32, F16, BF16");
  activate();
  Weight w;
  w.dtype = act_;
  w.rows = t.shape.empty() ? 1 : t.shape[0];
  w.cols = t.shape.size() >= 2 ? t.shape[1] : 1;
  w.name = name;
  const int64_t numel = t.numel();
  const size_t in_es = dtype_size(t.dtype);
  FOCUS_CHECK(t.nbytes == size_t(numel) * in_es, t.file, ": tensor '", name, "' holds ", t.nbytes,
              " bytes for ", numel, " elements of ", t.dtype_name);
  char* dst = static_cast<char*>(alloc(weight_bytes(t.dtype, numel), name));
  try {
    ensure_staging();
    const bool same = t.dtype == act_;
    const int64_t chunk = int64_t(kStageBytes / in_es);
    for (int64_t off = 0; off < numel; off += chunk) {
      const int64_t cnt = std::min(chunk, numel - off);
      const int b = stage_next_;
      stage_next_ ^= 1;
      // The buffer's previous chunk must have left before it is refilled.
      CUDA_CHECK(cudaEventSynchronize(stage_done_[b]));
      std::memcpy(host_stage_[b], t.data + size_t(off) * in_es, size_t(cnt) * in_es);
      if (same) {
        CUDA_CHECK(cudaMemcpyAsync(dst + off * 2, host_stage_[b], size_t(cnt) * 2, cudaMemcpyHostToDevice, stream_));
      } else {
        CUDA_CHECK(cudaMemcpyAsync(dev_stage_[b], host_stage_[b], size_t(cnt) * in_es, cudaMemcpyHostToDevice,
                                   stream_));
        convert(dst + off * 2, act_, dev_stage_[b], t.dtype, cnt, stream_);
      }
      CUDA_CHECK(cudaEventRecord(stage_done_[b], stream_));
    }
  } catch (...) {
    dealloc(dst);
    throw;
  }
  w.data = dst;
  ++weights_loaded_;
  return w;
}

void CudaBackend::release_weight(Weight& w) {
  dealloc(const_cast<void*>(w.data));
  w.data = nullptr;
}

void CudaBackend::set_rope(const std::vector<double>& inv_freq, int head_dim) {
  // Called once after the weights: the upload buffers are no longer needed.
  free_staging();
  FOCUS_CHECK(int(inv_freq.size()) * 2 == head_dim, "CUDA set_rope: ", inv_freq.size(),
              " frequencies for head_dim ", head_dim);
  dealloc(inv_freq_);
  inv_freq_ = nullptr;
  inv_freq_ = static_cast<double*>(alloc(inv_freq.size() * sizeof(double), "rotary frequencies"));
  upload(inv_freq_, inv_freq.data(), inv_freq.size() * sizeof(double));
  sync();
  head_dim_ = head_dim;
}

void CudaBackend::check_weight(const Weight& w, const char* op) const {
  FOCUS_CHECK(!w.empty() && w.dtype == act_, "CUDA ", op, ": weight '", w.name, "' must be a ", dtype_name(act_),
              " tensor loaded by this backend");
}

// ---- ops ------------------------------------------------------------------------------

void CudaBackend::embedding(void* out, const Weight& table, const int32_t* ids, int n) {
  activate();
  cuda::embedding(out, act_, table.data, table.dtype, table.rows, table.cols, ids, n, stream_);
}

void CudaBackend::rms_norm(void* out, const void* x, const Weight& w, int n, float eps) {
  check_weight(w, "rms_norm");
  activate();
  cuda::rms_norm(out, x, w.data, n, int(w.rows), eps, act_, stream_);
}

void CudaBackend::matmul(void* out, const void* x, int m, const Weight& w, const Weight* bias, Epilogue e) {
  matmul_split(out, x, m, m, w, bias, w, bias, e);
}

void CudaBackend::matmul_split(void* out, const void* x, int m, int split, const Weight& w1, const Weight* b1,
                               const Weight& w2, const Weight* b2, Epilogue e) {
  if (m <= 0) return;
  check_weight(w1, "matmul");
  check_weight(w2, "matmul");
  FOCUS_CHECK(w1.rows == w2.rows && w1.cols == w2.cols, "CUDA matmul: row-split weights '", w1.name, "' and '",
              w2.name, "' differ in shape");
  activate();
  auto bias_of = [](const Weight* b) -> const void* { return b && !b->empty() ? b->data : nullptr; };
  GemmArgs a;
  a.x = x;
  a.ldx = w1.cols;
  a.out = out;
  a.ldo = w1.rows;
  a.m = m;
  a.n = int(w1.rows);
  a.k = int(w1.cols);
  a.epilogue = e == Epilogue::Add ? GemmEpilogue::Add : e == Epilogue::StoreF32 ? GemmEpilogue::StoreF32
                                                                                : GemmEpilogue::Store;
  a.dtype = act_;
  a.workspace = gemm_ws_;
  a.workspace_bytes = kGemmWorkspaceBytes;
  // One launch either way; a plain GEMM when one weight set covers every row
  // (including zero-shot checkpoints, whose candidate weights alias the base).
  const bool one_set = w1.data == w2.data && bias_of(b1) == bias_of(b2);
  if (one_set || split >= m) {
    a.w = w1.data, a.bias = bias_of(b1), a.split = m;
  } else if (split <= 0) {
    a.w = w2.data, a.bias = bias_of(b2), a.split = m;
  } else {
    a.w = w1.data, a.bias = bias_of(b1), a.w2 = w2.data, a.bias2 = bias_of(b2), a.split = split;
  }
  gemm(a, stream_);
}

void CudaBackend::rope_table(float* table, const int32_t* pos, int n) {
  activate();
  cuda::rope_table(table, pos, n, inv_freq_, head_dim_, stream_);
}

void CudaBackend::rope(void* x, int n, int n_heads, const float* table) {
  activate();
  cuda::rope(x, n, n_heads, head_dim_, table, act_, stream_);
}

void CudaBackend::kv_store(const void* k, const void* v, const KvDst* dst, int n, int kv_dim, int layer) {
  activate();
  cuda::kv_store(k, v, dst, n, kv_dim, layer, act_, stream_);
}

void CudaBackend::attention(void* out, const void* q, const AttnArgs& a) {
  // The kernels read every key and value in the activation type.
  for (int i = 0; i < a.n_seg; ++i) {
    const AttnSegment& s = a.segs_host[i];
    FOCUS_CHECK(DType(s.main_dtype) == act_ && (s.n_prefix == 0 || DType(s.prefix_dtype) == act_),
                "CUDA attention: segment ", i, " has keys/values in ",
                dtype_name(DType(DType(s.main_dtype) != act_ ? s.main_dtype : s.prefix_dtype)),
                "; on the CUDA backend KV caches and candidate sets must be ", dtype_name(act_));
  }
  activate();
  const size_t need = attention_workspace_bytes(a);
  if (need > attn_ws_bytes_) {
    // Grow geometrically: the local sequence grows by a token per step.
    const size_t bytes = std::max(need, attn_ws_bytes_ + attn_ws_bytes_ / 2);
    sync();  // the old workspace may still be in use by queued kernels
    dealloc(attn_ws_);
    attn_ws_ = nullptr;
    attn_ws_bytes_ = 0;
    attn_ws_ = alloc(bytes, "attention workspace");
    attn_ws_bytes_ = bytes;
  }
  AttnLaunch l;
  l.args = &a;
  l.out = out;
  l.q = q;
  l.dtype = act_;
  l.workspace = attn_ws_;
  l.workspace_bytes = attn_ws_bytes_;
  cuda::attention(l, stream_);
}

void CudaBackend::swiglu(void* out, const void* gate, const void* up, int64_t n) {
  activate();
  cuda::swiglu(out, gate, up, n, act_, stream_);
}

void CudaBackend::gather_rows(void* out, const void* x, const int32_t* rows, int n, int dim) {
  activate();
  cuda::gather_rows(out, x, rows, n, dim, act_, stream_);
}

void CudaBackend::sample(int32_t* out, const float* logits, int rows, int vocab, const focus::SampleParams& p,
                         const float* uniforms) {
  activate();
  cuda::SampleParams sp;
  sp.temperature = p.temperature;
  sp.top_k = p.top_k;
  sp.top_p = p.top_p;
  if (p.temperature == 0.0f)
    cuda::sample_argmax(logits, rows, vocab, out, stream_);
  else
    cuda::sample(logits, rows, vocab, sp, uniforms, out, stream_);
}

}  // namespace cuda

// ---- entry points (core/backend.h) ---------------------------------------------------------

bool cuda_compiled() { return true; }

std::string cuda_unavailable_reason() {
  // Asked on request only (never at load); the answer does not change within
  // a process, and the first ask costs the driver's start-up.
  static const std::string reason = cuda::probe_device(0);
  return reason;
}

std::unique_ptr<Backend> make_cuda_backend(int device) { return std::make_unique<cuda::CudaBackend>(device); }

}  // namespace focus
