// Fixture parity without Node.js: every case of test/fixtures, native and
// FocusLLM, through the engine and a C++ driver of DESIGN section 1, against
// the float64 reference logits.
//
//   parity_test            CPU backend, tolerance 1e-4 (DESIGN section 3)
//   parity_test cuda       CUDA backend, tolerance 2e-2 and same greedy tokens;
//                          skipped when no device is usable
#include <cstring>
#include <string>

#include "common/focus_driver.h"
#include "common/testing.h"
#include "core/backend.h"
#include "core/error.h"
#include "core/model.h"

int main(int argc, char** argv) {
  const std::string backend = argc > 1 ? argv[1] : "cpu";
  const bool cuda = backend == "cuda";
  if (cuda && !focus::cuda_unavailable_reason().empty()) {
    ftest::skip("fixture parity on the CUDA backend", focus::cuda_unavailable_reason());
    return ftest::finish();
  }
  const double tol = cuda ? 2e-2 : 1e-4;
  for (const auto& c : ftest::load_fixture_cases()) {
    try {
      std::shared_ptr<focus::Backend> be = cuda ? focus::make_cuda_backend(0) : focus::make_cpu_backend(2);
      focus::Model m(c.model, be);
      // The exactness contract keeps chunk caches in float32 on the CPU.
      ftest::FocusDriver d(m, c.options, int(c.continuation.size()), be->act_dtype());
      std::vector<std::vector<float>> rows{d.ingest(c.ids)};
      for (int32_t t : c.continuation) rows.push_back(d.step(t));
      for (size_t i = 0; i < rows.size(); ++i) {
        const std::string what = backend + " " + c.file.substr(c.file.rfind('/') + 1) + " row " + std::to_string(i);
        ftest::check_close(what, rows[i].data(), c.logits[i].data(), rows[i].size(), tol);
        int am = 0;
        for (size_t j = 0; j < rows[i].size(); ++j)
          if (rows[i][j] > rows[i][size_t(am)]) am = int(j);
        ftest::check(am == c.greedy[i], what + " greedy token",
                     "got " + std::to_string(am) + ", reference " + std::to_string(c.greedy[i]));
      }
    } catch (const std::exception& e) {
      ftest::fail(c.file + ": " + e.what());
    }
  }
  return ftest::finish();
}
