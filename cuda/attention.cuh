// Attention kernels over the runner's segment table (core/backend.h
// AttnSegment): fused causal attention of many chunks in one launch (prefill),
// split-KV decoding for segments of a few queries against long caches, and the
// fully visible candidate prefix. Launchers only; the kernels are in
// attention_prefill.cu and attention_decode.cu, the planning in attention.cu.
//
// One call = at most four launches on `stream`: the work tables are uploaded
// into the workspace (one small host-to-device copy), then the prefill kernel
// (segments with more than kAttnDecodeMaxQ queries), the decode kernel (the
// others) and, when a decode segment's keys were split over several blocks,
// the kernel that combines the partial results.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "core/backend.h"

namespace focus::cuda {

// Segments with at most this many queries go to the split-KV decode kernel.
// There every block holds 16 query rows = (query, head of the GQA group)
// pairs, and reads each K/V row once for all of them; a prefill block holds 64
// or 128 consecutive queries of ONE head, so a 4-query segment would use 3% of
// it and read the keys once per head. Beyond 4 queries a segment fills enough
// of a prefill tile that the tensor cores' work stops being negligible.
constexpr int kAttnDecodeMaxQ = 4;

struct AttnLaunch {
  const AttnArgs* args = nullptr;  // segs (device) + segs_host (host)
  void* out = nullptr;             // (n_rows, n_heads * head_dim), dtype
  const void* q = nullptr;         // (n_rows, n_heads * head_dim), dtype, already rotated
  DType dtype = DType::BF16;       // of q, out and every key/value (main and prefix)
  void* workspace = nullptr;       // device memory, >= attention_workspace_bytes(*args)
  size_t workspace_bytes = 0;
};

// Bytes of workspace attention() needs for these arguments (work tables plus
// split-KV partial results), on the current device. Validates the arguments
// like attention() does.
size_t attention_workspace_bytes(const AttnArgs& a);

// Any even head_dim up to 256 (fast paths for 64 and 128; the tiny test
// models use 16). Rows of `out` that no segment covers are not written.
// Throws focus::Error on unsupported shapes, inconsistent segments, a too
// small workspace or a launch failure.
void attention(const AttnLaunch& l, cudaStream_t stream);

}  // namespace focus::cuda
