// The GEMM's front door (gemm.cuh): argument checks, the host-side plan
// (which kernel, how many k splits), the CUDA-core fallback for shapes and
// alignments the tensor-core kernels do not take, the split-K reduction, and
// the optional cuBLASLt route. The tensor-core kernels are in gemm_mma.cu and
// gemm_sm90.cu.
#include <algorithm>
#include <map>
#include <mutex>

#include "gemm_device.cuh"

namespace focus::cuda {

namespace {

using namespace gemm_detail;

// ---- kernels -------------------------------------------------------------------

// The fallback: any k, any ld, any alignment, float32 FMA on CUDA cores. A
// 64x64 tile per 256-thread block, k in steps of 16 through shared memory;
// thread (ty, tx) = (tid / 16, tid % 16) owns rows ty + 16i and columns
// tx + 16j (i, j < 4), so a warp reads one or two x values (broadcast) and 16
// consecutive w values per step: no bank conflicts.
template <class T>
__global__ void __launch_bounds__(256) gemm_simt_kernel(const GemmParams p) {
  constexpr int BM = 64, BN = 64, BK = 16;
  static_assert(gemm_tile(GemmKernel::Simt).bm == BM && gemm_tile(GemmKernel::Simt).bn == BN, "tile table");
  __shared__ float xs[BK][BM + 1];  // [k][row]
  __shared__ float ws[BK][BN + 1];  // [k][output feature]

  int mt, nt;
  tile_coords(int(blockIdx.x), p.tiles_m, p.tiles_n, &mt, &nt);
  const TileRows rows = tile_rows(p, mt, BM);
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(rows.seg ? p.w2 : p.w);
  const T* bias = static_cast<const T*>(rows.seg ? p.bias2 : p.bias);
  const int col0 = nt * BN;
  const int tid = int(threadIdx.x), tx = tid % 16, ty = tid / 16;

  float acc[4][4] = {};
  for (int k0 = 0; k0 < p.k; k0 += BK) {
    // i -> (row i / BK, k i % BK): consecutive threads read consecutive k.
    for (int i = tid; i < BM * BK; i += 256) {
      const int r = i / BK, kk = i % BK, gk = k0 + kk;
      const int gr = rows.row0 + r, gn = col0 + r;
      xs[kk][r] = gr < rows.row_end && gk < p.k ? to_float(x[int64_t(gr) * p.ldx + gk]) : 0.0f;
      ws[kk][r] = gn < p.n && gk < p.k ? to_float(w[int64_t(gn) * p.k + gk]) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = xs[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = ws[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int r = rows.row0 + ty + 16 * i;
    if (r >= rows.row_end) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int c = col0 + tx + 16 * j;
      if (c < p.n) store_one<T>(p, r, c, acc[i][j], bias);
    }
  }
}

// Split-K second pass: out[r, c] = epilogue(sum over splits of partial[z, r,
// c] + bias), the splits summed in a fixed order (deterministic). One thread
// per element, consecutive threads on consecutive columns.
template <class T>
__global__ void gemm_splitk_reduce_kernel(const GemmParams p) {
  const int64_t total = int64_t(p.m) * p.n;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    float v = 0.0f;
    for (int z = 0; z < p.splits; ++z) v += p.partial[z * total + i];
    const int64_t r = i / p.n;
    const int c = int(i - r * p.n);
    store_one<T>(p, r, c, v, static_cast<const T*>(r < p.split ? p.bias : p.bias2));
  }
}

// ---- host helpers --------------------------------------------------------------

struct DeviceInfo {
  int cc = 0;          // compute capability, major * 10 + minor
  int sms = 1;         // multiprocessors
  int smem_optin = 0;  // dynamic shared memory a block may opt in to
};

// Per device, asked once.
DeviceInfo device_info() {
  static std::mutex mu;
  static std::map<int, DeviceInfo> cache;
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(dev);
  if (it != cache.end()) return it->second;
  DeviceInfo d;
  int major = 0, minor = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&d.sms, cudaDevAttrMultiProcessorCount, dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&d.smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  d.cc = major * 10 + minor;
  cache[dev] = d;
  return d;
}

bool aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

bool is_mma(GemmKernel k) { return k >= GemmKernel::Mma16x64 && k <= GemmKernel::Mma128x256; }
bool is_wgmma(GemmKernel k) { return k == GemmKernel::Wgmma128x128 || k == GemmKernel::Wgmma128x256; }

// Rows [0, split) use w, [split, m) use w2 (split = m without w2).
int effective_split(const GemmArgs& a) { return a.w2 ? a.split : a.m; }

// Output tiles of kernel k for a (row tiles never straddle the split).
int64_t tile_count(GemmKernel k, const GemmArgs& a) {
  const GemmTile t = gemm_tile(k);
  const int split = effective_split(a);
  return (int64_t(ceil_div(split, t.bm)) + ceil_div(a.m - split, t.bm)) * ceil_div(a.n, t.bn);
}

void check_args(const GemmArgs& a) {
  FOCUS_CHECK(a.dtype == DType::BF16 || a.dtype == DType::F16, "gemm: dtype must be BF16 or F16, got ",
              dtype_name(a.dtype));
  FOCUS_CHECK(a.m >= 0 && a.n >= 1 && a.k >= 1, "gemm: bad shape m=", a.m, " n=", a.n, " k=", a.k);
  FOCUS_CHECK(a.ldx >= a.k, "gemm: ldx=", a.ldx, " < k=", a.k);
  FOCUS_CHECK(a.ldo >= a.n, "gemm: ldo=", a.ldo, " < n=", a.n);
  FOCUS_CHECK(a.w2 || !a.bias2, "gemm: bias2 given without w2");
  FOCUS_CHECK(!a.w2 || (a.split >= 0 && a.split <= a.m), "gemm: split=", a.split, " outside [0, m=", a.m, "]");
  if (a.m == 0) return;
  FOCUS_CHECK(a.x && a.w && a.out, "gemm: null pointer (x=", a.x, " w=", a.w, " out=", a.out, ")");
}

}  // namespace

// ---- launchers -----------------------------------------------------------------

const char* gemm_kernel_name(GemmKernel k) {
  switch (k) {
    case GemmKernel::Simt: return "simt64x64";
    case GemmKernel::Mma16x64: return "mma16x64";
    case GemmKernel::Mma32x64: return "mma32x64";
    case GemmKernel::Mma64x128: return "mma64x128";
    case GemmKernel::Mma128x128: return "mma128x128";
    case GemmKernel::Mma128x256: return "mma128x256";
    case GemmKernel::Wgmma128x128: return "wgmma128x128";
    case GemmKernel::Wgmma128x256: return "wgmma128x256";
    default: return "?";
  }
}

bool gemm_kernel_usable(GemmKernel k, const GemmArgs& a, std::string* why) {
  auto no = [&](const char* reason) {
    if (why) *why = reason;
    return false;
  };
  if (k == GemmKernel::Simt) return true;
  if (!is_mma(k) && !is_wgmma(k)) return no("not a kernel");
  // 16-byte copies (cp.async, TMA) of whole rows: every row start 16-byte aligned.
  if (a.k % 8 != 0 || a.ldx % 8 != 0) return no("k or ldx is not a multiple of 8");
  if (!aligned(a.x, 16) || !aligned(a.w, 16) || (a.w2 && !aligned(a.w2, 16))) return no("x or w not 16-byte aligned");
  const DeviceInfo d = device_info();
  if (d.cc < 80) return no("tensor-core kernels need sm_80 or later");
  if (gemm_tile(k).smem_bytes > d.smem_optin) return no("not enough shared memory on this device");
  if (is_wgmma(k) && !gemm_sm90_available()) return no("wgmma kernels need an sm_90 device and a build for sm_90a");
  return true;
}

GemmPlan gemm_plan(const GemmArgs& a) {
  GemmPlan plan;
  auto usable = [&](GemmKernel k) { return gemm_kernel_usable(k, a, nullptr); };
  if (!usable(GemmKernel::Mma16x64)) return plan;  // Simt
  const DeviceInfo d = device_info();

  // Tile height from m: skinny problems (decode, candidate rows) are bound by
  // reading w, so small tiles that waste little on padding rows; big problems
  // take the biggest tiles that still fill the GPU with one wave of blocks.
  // Thresholds are a starting point; bench_cuda_gemm prints every kernel's
  // time per shape to tune them.
  if (a.m <= 16) {
    plan.kernel = GemmKernel::Mma16x64;
  } else if (a.m <= 64) {
    plan.kernel = GemmKernel::Mma32x64;
  } else if (a.m <= 128) {
    plan.kernel = GemmKernel::Mma64x128;
  } else {
    const bool wg = usable(GemmKernel::Wgmma128x256);
    const GemmKernel big = wg ? GemmKernel::Wgmma128x256 : GemmKernel::Mma128x256;
    const GemmKernel mid = wg ? GemmKernel::Wgmma128x128 : GemmKernel::Mma128x128;
    if (usable(big) && tile_count(big, a) >= d.sms) plan.kernel = big;
    else if (usable(mid) && tile_count(mid, a) >= d.sms / 2) plan.kernel = mid;
    else plan.kernel = GemmKernel::Mma64x128;
  }

  // Split k when the tiles alone leave SMs idle: skinny problems are bound by
  // reading w, and want at least two blocks streaming it on every SM; big
  // ones want one wave. Each split is at least 4 k tiles (256 of k) long, and
  // the partial sums (splits, m, n) must fit the workspace.
  const int64_t tiles = tile_count(plan.kernel, a);
  const int64_t target = a.m <= 128 ? 2 * int64_t(d.sms) : d.sms;
  const int k_tiles = ceil_div(a.k, 64);
  if (tiles < target && k_tiles >= 8 && a.workspace && aligned(a.workspace, 16)) {
    int splits = int(std::min<int64_t>({(target + tiles - 1) / tiles, k_tiles / 4, 16}));
    const size_t per_split = size_t(a.m) * size_t(a.n) * 4;
    while (splits > 1 && size_t(splits) * per_split > a.workspace_bytes) --splits;
    plan.splits = std::max(splits, 1);
  }
  return plan;
}

void gemm_run(const GemmArgs& a, const GemmPlan& plan, cudaStream_t stream) {
  check_args(a);
  if (a.m == 0) return;
  std::string why;
  FOCUS_CHECK(gemm_kernel_usable(plan.kernel, a, &why), "gemm: kernel ", gemm_kernel_name(plan.kernel),
              " cannot run m=", a.m, " n=", a.n, " k=", a.k, ": ", why);
  const GemmTile t = gemm_tile(plan.kernel);

  GemmParams p{};
  p.x = a.x;
  p.ldx = a.ldx;
  p.w = a.w;
  p.bias = a.bias;
  p.w2 = a.w2 ? a.w2 : a.w;
  p.bias2 = a.w2 ? a.bias2 : a.bias;
  p.out = a.out;
  p.ldo = a.ldo;
  p.m = a.m;
  p.n = a.n;
  p.k = a.k;
  p.split = effective_split(a);
  p.tiles_lo = ceil_div(p.split, t.bm);
  p.tiles_m = p.tiles_lo + ceil_div(a.m - p.split, t.bm);
  p.tiles_n = ceil_div(a.n, t.bn);
  FOCUS_CHECK(int64_t(p.tiles_m) * p.tiles_n < (int64_t(1) << 31), "gemm: too many tiles for m=", a.m, " n=", a.n);
  p.epilogue = a.epilogue;
  const size_t out_elem = a.epilogue == GemmEpilogue::StoreF32 ? 4 : 2;
  p.out_pairs = a.ldo % 2 == 0 && aligned(a.out, 2 * out_elem);

  // Splits: none empty (k tiles per split rounded up, then the count redone).
  const int k_tiles = ceil_div(a.k, t.bk);
  int splits = std::clamp(plan.splits, 1, k_tiles);
  p.k_tiles_per_split = ceil_div(k_tiles, splits);
  splits = ceil_div(k_tiles, p.k_tiles_per_split);
  p.splits = splits;
  if (splits > 1) {
    FOCUS_CHECK(plan.kernel != GemmKernel::Simt, "gemm: the fallback kernel does not split k");
    const size_t need = size_t(splits) * size_t(a.m) * size_t(a.n) * 4;
    FOCUS_CHECK(a.workspace && aligned(a.workspace, 16) && a.workspace_bytes >= need, "gemm: split-K x", splits,
                " needs ", need, " bytes of 16-byte aligned workspace, got ", a.workspace_bytes);
    p.partial = static_cast<float*>(a.workspace);
  }

  if (plan.kernel == GemmKernel::Simt) {
    const dim3 grid(unsigned(p.tiles_m) * unsigned(p.tiles_n));
    if (a.dtype == DType::BF16) gemm_simt_kernel<__nv_bfloat16><<<grid, t.threads, 0, stream>>>(p);
    else gemm_simt_kernel<__half><<<grid, t.threads, 0, stream>>>(p);
    CUDA_CHECK_LAUNCH();
  } else if (is_mma(plan.kernel)) {
    gemm_mma_launch(plan.kernel, a.dtype, p, stream);
  } else {
    gemm_sm90_launch(plan.kernel, a.dtype, p, stream);
  }

  if (p.partial) {
    const int64_t total = int64_t(a.m) * a.n;
    const int blocks = int(std::min<int64_t>((total + 255) / 256, int64_t(device_info().sms) * 8));
    GemmParams r = p;
    if (a.dtype == DType::BF16) gemm_splitk_reduce_kernel<__nv_bfloat16><<<blocks, 256, 0, stream>>>(r);
    else gemm_splitk_reduce_kernel<__half><<<blocks, 256, 0, stream>>>(r);
    CUDA_CHECK_LAUNCH();
  }
}

void gemm(const GemmArgs& a, cudaStream_t stream) {
  check_args(a);
  if (a.m == 0) return;
#ifdef FOCUSLLM_WITH_CUBLASLT
  // Big single-weight GEMMs may go to cuBLASLt; it declines (false) what it
  // has no algorithm for, and row-split GEMMs stay ours (one launch).
  const bool one_weight = !a.w2 || a.split == a.m;
  if (one_weight && a.m >= 256 && gemm_cublaslt(a, stream)) return;
#endif
  gemm_run(a, gemm_plan(a), stream);
}

}  // namespace focus::cuda
