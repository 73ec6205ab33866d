// Optional route of big GEMMs through cuBLASLt (builds with
// FOCUSLLM_WITH_CUBLASLT, CMake option FOCUSLLM_CUBLASLT), so that the
// benchmark can put our kernels and NVIDIA's side by side and gemm() can use
// whichever the build chose. Row-major out (m, n) = x (m, k) · wᵀ is, in
// cuBLAS's column-major terms, outᵀ (n, m) = op(w)ᵀ · xᵀ: A = w viewed as a
// (k, n) column-major matrix with ld k, transposed; B = x viewed as (k, m)
// with ld ldx; C = D = out viewed as (n, m) with ld ldo. The bias is a vector
// over D's rows (n): cuBLASLt's BIAS epilogue.
#ifdef FOCUSLLM_WITH_CUBLASLT

#include <cublasLt.h>

#include <map>
#include <mutex>
#include <tuple>

#include "common.cuh"
#include "gemm_impl.cuh"

namespace focus::cuda {

namespace {

#define FOCUS_LT_CHECK(expr)                                                                          \
  do {                                                                                                \
    const cublasStatus_t s_ = (expr);                                                                 \
    if (s_ != CUBLAS_STATUS_SUCCESS) throw Error(str("cuBLASLt error ", int(s_), " in ", #expr));    \
  } while (0)

// Descriptors and algorithm of one problem, built once (the heuristic query
// costs tens of microseconds).
struct LtPlan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool found = false;
  void destroy() {
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

// device, m, n, k, ldx, ldo, dtype, epilogue, bias, workspace bytes
using LtKey = std::tuple<int, int, int, int, int64_t, int64_t, int, int, bool, size_t>;

std::mutex g_mu;
std::map<int, cublasLtHandle_t> g_handles;  // per device, kept for the process
std::map<LtKey, LtPlan> g_plans;
constexpr size_t kMaxPlans = 512;  // m changes every decode step: bound the cache

LtPlan make_plan(cublasLtHandle_t h, const GemmArgs& a, size_t ws_bytes) {
  const cudaDataType_t ab = a.dtype == DType::BF16 ? CUDA_R_16BF : CUDA_R_16F;
  const cudaDataType_t cd = a.epilogue == GemmEpilogue::StoreF32 ? CUDA_R_32F : ab;
  LtPlan p;
  try {
    FOCUS_LT_CHECK(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    FOCUS_LT_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    FOCUS_LT_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (a.bias) {
      const cublasLtEpilogue_t e = CUBLASLT_EPILOGUE_BIAS;
      FOCUS_LT_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof e));
      // The heuristic looks at the pointer's alignment; set again at each call.
      FOCUS_LT_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &a.bias, sizeof a.bias));
    }
    FOCUS_LT_CHECK(cublasLtMatrixLayoutCreate(&p.la, ab, uint64_t(a.k), uint64_t(a.n), int64_t(a.k)));
    FOCUS_LT_CHECK(cublasLtMatrixLayoutCreate(&p.lb, ab, uint64_t(a.k), uint64_t(a.m), a.ldx));
    FOCUS_LT_CHECK(cublasLtMatrixLayoutCreate(&p.lc, cd, uint64_t(a.n), uint64_t(a.m), a.ldo));
    cublasLtMatmulPreference_t pref = nullptr;
    FOCUS_LT_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    const uint64_t wsb = ws_bytes;
    cublasLtMatmulHeuristicResult_t r{};
    int n_found = 0;
    const cublasStatus_t s =
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb);
    if (s == CUBLAS_STATUS_SUCCESS &&
        cublasLtMatmulAlgoGetHeuristic(h, p.op, p.la, p.lb, p.lc, p.lc, pref, 1, &r, &n_found) ==
            CUBLAS_STATUS_SUCCESS &&
        n_found > 0) {
      p.algo = r.algo;
      p.found = true;
    }
    cublasLtMatmulPreferenceDestroy(pref);
  } catch (...) {
    p.destroy();
    throw;
  }
  return p;
}

}  // namespace

// Runs `a` through cuBLASLt; false (nothing enqueued) when it declines: a row
// split (ours does it in one launch), a bias with float32 output (cuBLASLt's
// bias has the output's type, ours is 16-bit), or no algorithm found.
bool gemm_cublaslt(const GemmArgs& a, cudaStream_t stream) {
  if (a.m <= 0) return a.m == 0;
  if (a.w2 && a.split != a.m) return false;
  if (a.bias && a.epilogue == GemmEpilogue::StoreF32) return false;
  const bool ws_ok = a.workspace && reinterpret_cast<uintptr_t>(a.workspace) % 256 == 0;
  const size_t ws_bytes = ws_ok ? a.workspace_bytes : 0;
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));

  std::lock_guard<std::mutex> lock(g_mu);
  cublasLtHandle_t& h = g_handles[dev];
  if (!h) FOCUS_LT_CHECK(cublasLtCreate(&h));
  const LtKey key{dev, a.m, a.n, a.k, a.ldx, a.ldo, int(a.dtype), int(a.epilogue), a.bias != nullptr, ws_bytes};
  auto it = g_plans.find(key);
  if (it == g_plans.end()) {
    if (g_plans.size() >= kMaxPlans) {
      for (auto& kv : g_plans) kv.second.destroy();
      g_plans.clear();
    }
    it = g_plans.emplace(key, make_plan(h, a, ws_bytes)).first;
  }
  LtPlan& p = it->second;
  if (!p.found) return false;
  if (a.bias)
    FOCUS_LT_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &a.bias, sizeof a.bias));
  const float alpha = 1.0f, beta = a.epilogue == GemmEpilogue::Add ? 1.0f : 0.0f;
  FOCUS_LT_CHECK(cublasLtMatmul(h, p.op, &alpha, a.w, p.la, a.x, p.lb, &beta, a.out, p.lc, a.out, p.lc, &p.algo,
                                ws_ok ? a.workspace : nullptr, ws_bytes, stream));
  return true;
}

}  // namespace focus::cuda

#endif  // FOCUSLLM_WITH_CUBLASLT
