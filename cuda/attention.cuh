// Attention kernels over the runner's segment table (core/backend.h
// AttnSegment): fused causal attention of many chunks in one launch (prefill),
// split-KV decoding for segments of one or two queries against long caches,
// and the fully visible candidate prefix. Launchers only.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "core/backend.h"

namespace focus::cuda {

struct AttnLaunch {
  const AttnArgs* args = nullptr;  // segs (device) + segs_host (host)
  void* out = nullptr;             // (n_rows, n_heads * head_dim), dtype
  const void* q = nullptr;         // (n_rows, n_heads * head_dim), dtype, already rotated
  DType dtype = DType::BF16;       // of q, out and every key/value (main and prefix)
  void* workspace = nullptr;       // scratch for split-KV partial results
  size_t workspace_bytes = 0;
};

// Bytes of workspace attention() needs for these arguments.
size_t attention_workspace_bytes(const AttnArgs& a);

// Any even head_dim up to 256 (fast paths for 64 and 128; the tiny test
// models use 16). Throws focus::Error on unsupported shapes or launch failure.
void attention(const AttnLaunch& l, cudaStream_t stream);

}  // namespace focus::cuda
