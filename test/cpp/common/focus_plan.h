// The FocusLLM chunk plan (DESIGN.md section 1), in C++: the same rules as
// lib/plan.ts, which is the reference (the package decides its plans in
// TypeScript; the engine itself never needs one). This copy exists for the
// programs that run without Node.js: the standalone tests, the GPU tests and
// the benchmarks drive the method through FocusDriver, which cuts its inputs
// with plan_ingest. test/cpp/plan_test.cpp holds it to cases worked by hand
// and to test/fixtures/plan-cases.json, a table written by lib/plan.ts
// (test/helpers/plan-cases.ts; test/plan-cases.test.ts keeps it current).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace ftest {

struct FocusParams {
  int local_window = 2048;      // tokens of local context
  int chunk_size = 2048;        // memory chunk length (the official "memory_stride")
  int prompt_cap = 512;         // cap on the dynamic prompt
  int min_chunked_length = 4096;  // inputs shorter than this run natively
};

// Throws focus::Error unless min_chunked_length > local_window >= 1,
// chunk_size >= 1 and prompt_cap >= 1 (lib/plan.ts resolveFocusParams).
void check_focus_params(const FocusParams& p);

// x if x[0] == bos, else [bos, ...x].
std::vector<int32_t> with_bos(std::vector<int32_t> x, int32_t bos);

struct FocusPlan {
  bool native = true;
  int memory = 0;                            // memory tokens: x[0 : memory] (focus mode)
  std::vector<int32_t> prompt;               // P = withBos(x[L-t : L]), t = min(prompt_cap, chunk_size, local_window)
  std::vector<std::vector<int32_t>> chunks;  // chunk i = x[i*chunk_size : min((i+1)*chunk_size, memory)], no prompt
  std::vector<int32_t> local;                // withBos(x[memory : L]) (native: withBos(x))
};

// Cuts input ids into the plan; params nullopt: always native. Throws
// focus::Error on an empty input.
FocusPlan plan_ingest(const std::vector<int32_t>& ids, const std::optional<FocusParams>& params, int32_t bos);

// Chunks an input of `length` tokens is cut into (0 when it runs natively).
int chunk_count(int length, const FocusParams& p);

}  // namespace ftest
