// Linked when the addon is built without CUDA (no nvcc, or FOCUSLLM_CUDA=off).
#include "backend.h"
#include "error.h"

namespace focus {

bool cuda_compiled() { return false; }

std::string cuda_unavailable_reason() {
  return "this build of focusllm has no CUDA backend (it was built without nvcc or with FOCUSLLM_CUDA=off); "
         "rebuild with the CUDA toolkit installed: FOCUSLLM_CUDA=on npm run build:addon";
}

std::unique_ptr<Backend> make_cuda_backend(int) { throw Error("backend \"cuda\" is not available: " + cuda_unavailable_reason()); }

}  // namespace focus
