// Device-side pieces shared by the GEMM kernels (gemm.cu, gemm_mma.cu,
// gemm_sm90.cu): where a block's tile lies, which weight its rows use, and the
// epilogue that writes an accumulator. Internal to the GEMM.
#pragma once

#include <type_traits>

#include "common.cuh"
#include "gemm_impl.cuh"

namespace focus::cuda::gemm_detail {

// Grouped rasterisation: consecutive blocks walk down a group of up to 8 M
// tiles before moving to the next N tile, so the blocks resident at one time
// share their x rows and w rows in L2 (about 8x fewer DRAM reads of w than
// row-major order on the big GEMMs). A bijection of [0, tiles_m * tiles_n).
__device__ __forceinline__ void tile_coords(int id, int tiles_m, int tiles_n, int* mt, int* nt) {
  constexpr int kGroup = 8;
  const int per_group = kGroup * tiles_n;
  const int first_m = (id / per_group) * kGroup;
  const int group_m = min(tiles_m - first_m, kGroup);
  const int in_group = id % per_group;
  *mt = first_m + in_group % group_m;
  *nt = in_group / group_m;
}

// The rows of M tile `mt` (tile height bm) and the weight set they use.
struct TileRows {
  int row0;     // first row
  int row_end;  // rows [row0, row_end) are this tile's: loads past it are zero, stores stop there
  int seg;      // 0: (w, bias), 1: (w2, bias2)
};

__device__ __forceinline__ TileRows tile_rows(const GemmParams& p, int mt, int bm) {
  TileRows t;
  if (mt < p.tiles_lo) {
    t.row0 = mt * bm;
    t.row_end = p.split;
    t.seg = 0;
  } else {
    t.row0 = p.split + (mt - p.tiles_lo) * bm;
    t.row_end = p.m;
    t.seg = 1;
  }
  t.row_end = min(t.row_end, t.row0 + bm);
  return t;
}

// The k tiles (of width bk) of split blockIdx.z: [begin, end).
__device__ __forceinline__ void k_tile_range(const GemmParams& p, int bk, int* begin, int* end) {
  const int total = (p.k + bk - 1) / bk;
  *begin = min(int(blockIdx.z) * p.k_tiles_per_split, total);
  *end = min(*begin + p.k_tiles_per_split, total);
}

// Finishes one output element (r, c) from its float32 sum: + bias, then the
// epilogue. The epilogue is a run-time switch: it is uniform across the grid
// and runs once per output element, after the k loop, so it costs nothing
// measurable and keeps one kernel instance per tile shape.
template <class T>
__device__ __forceinline__ void store_one(const GemmParams& p, int64_t r, int c, float v, const T* bias) {
  if (bias) v += to_float(bias[c]);
  const int64_t o = r * p.ldo + c;
  switch (p.epilogue) {
    case GemmEpilogue::Store: static_cast<T*>(p.out)[o] = from_float<T>(v); break;
    case GemmEpilogue::Add: {
      T* out = static_cast<T*>(p.out);
      out[o] = from_float<T>(to_float(out[o]) + v);
      break;
    }
    case GemmEpilogue::StoreF32: static_cast<float*>(p.out)[o] = v; break;
  }
}

template <class T>
struct Pair {  // two adjacent 16-bit elements, one 4-byte access
  using type = typename std::conditional<std::is_same<T, __half>::value, __half2, __nv_bfloat162>::type;
};

// Output elements (r, c) and (r, c + 1) from the sums v0, v1, as one access
// when both are in range and out allows it. Accumulator fragments of mma.sync
// and wgmma hold exactly such pairs. c < n; the tile's row bound is checked
// by the caller. With p.partial set, writes the raw sums of split blockIdx.z.
template <class T>
__device__ __forceinline__ void store_pair(const GemmParams& p, int64_t r, int c, float v0, float v1,
                                           const T* bias) {
  const bool two = c + 1 < p.n;
  if (p.partial) {
    float* dst = p.partial + (int64_t(blockIdx.z) * p.m + r) * p.n + c;
    if (two && (p.n % 2) == 0) {  // n even: (r * n + c) even, 8-byte aligned
      *reinterpret_cast<float2*>(dst) = make_float2(v0, v1);
    } else {
      dst[0] = v0;
      if (two) dst[1] = v1;
    }
    return;
  }
  if (!two || !p.out_pairs) {
    store_one<T>(p, r, c, v0, bias);
    if (two) store_one<T>(p, r, c + 1, v1, bias);
    return;
  }
  if (bias) {
    v0 += to_float(bias[c]);
    v1 += to_float(bias[c + 1]);
  }
  const int64_t o = r * p.ldo + c;  // even: ldo and c are even
  using P = typename Pair<T>::type;
  switch (p.epilogue) {
    case GemmEpilogue::Store: {
      P q;
      q.x = from_float<T>(v0);
      q.y = from_float<T>(v1);
      *reinterpret_cast<P*>(static_cast<T*>(p.out) + o) = q;
      break;
    }
    case GemmEpilogue::Add: {
      P* dst = reinterpret_cast<P*>(static_cast<T*>(p.out) + o);
      P q = *dst;
      q.x = from_float<T>(to_float(q.x) + v0);
      q.y = from_float<T>(to_float(q.y) + v1);
      *dst = q;
      break;
    }
    case GemmEpilogue::StoreF32:
      *reinterpret_cast<float2*>(static_cast<float*>(p.out) + o) = make_float2(v0, v1);
      break;
  }
}

}  // namespace focus::cuda::gemm_detail
