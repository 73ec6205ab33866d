// A C++ driver of the FocusLLM method (DESIGN.md section 1) over the engine,
// for the standalone tests and benchmarks that run without Node.js. The
// package's own driver is lib/session.ts; this one follows the same steps
// (its chunk plan: common/focus_plan.h) and is checked against the same
// float64 reference fixtures.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/focus_plan.h"
#include "core/model.h"

namespace ftest {

class FocusDriver {
 public:
  // params: nullopt runs every input natively. cache_dtype: chunk caches.
  FocusDriver(focus::Model& m, std::optional<FocusParams> params, int max_steps, focus::DType cache_dtype,
              bool keep_chunk_caches = true);

  // Next-token logits (vocab floats) after ids / after also feeding id.
  std::vector<float> ingest(const std::vector<int32_t>& ids);
  std::vector<float> step(int32_t id);

  bool focus_mode() const { return focus_; }
  int chunks() const { return k_; }

 private:
  std::vector<float> run_local();

  focus::Model& m_;
  std::optional<FocusParams> params_;
  int max_steps_;
  focus::DType cache_dtype_;
  bool keep_;
  bool focus_ = false;
  int k_ = 0;
  int32_t last_ = -1;
  std::vector<int32_t> local_;
  std::unique_ptr<focus::KvPool> pool_;
  std::unique_ptr<focus::CandidateSet> cands_;
};

// One reference case of test/fixtures (see test/fixtures/README.md).
struct FixtureCase {
  std::string file, model;
  std::vector<int32_t> ids, continuation;
  std::optional<FocusParams> options;
  std::vector<std::vector<float>> logits;
  std::vector<int> greedy;
};

// Every case listed in test/fixtures/cases.json.
std::vector<FixtureCase> load_fixture_cases();

}  // namespace ftest
