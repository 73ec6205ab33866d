// The C++ chunk plan (common/focus_plan.h) that the Node-free tests and
// benchmarks drive the method with: first cases worked by hand from DESIGN.md
// section 1, then every case of test/fixtures/plan-cases.json, the table
// lib/plan.ts (the reference) writes.
//
//   cmake --build build --target plan_test && ./build/plan_test
#include <cstdint>
#include <string>
#include <vector>

#include "common/focus_plan.h"
#include "common/testing.h"
#include "core/error.h"
#include "core/json.h"

using ftest::FocusParams;
using ftest::FocusPlan;
using Ids = std::vector<int32_t>;

namespace {

constexpr int32_t kBos = 1;

// ids[i] = 10 + i, BOS first when asked.
Ids make_ids(int n, bool bos_first) {
  Ids x(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) x[size_t(i)] = bos_first && i == 0 ? kBos : 10 + i;
  return x;
}

Ids slice(const Ids& x, int b, int e) { return Ids(x.begin() + b, x.begin() + e); }

template <class F>
bool throws(F&& f) {
  try {
    f();
  } catch (const focus::Error&) {
    return true;
  }
  return false;
}

void by_hand() {
  // The small case of DESIGN.md's rules: localWindow 4, chunkSize 3,
  // promptCap 2, minChunkedLength 6; x = [BOS, 11 .. 17], L = 8.
  // M = 4, t = min(2, 3, 4) = 2: chunks x[0:3], x[3:4]; P = [BOS, 16, 17];
  // local = [BOS] + x[4:8].
  const FocusParams small{4, 3, 2, 6};
  const Ids x = make_ids(8, true);
  FocusPlan p = ftest::plan_ingest(x, small, kBos);
  ftest::check(!p.native && p.memory == 4, "small: focus mode, 4 memory tokens");
  ftest::check(p.chunks == std::vector<Ids>{{1, 11, 12}, {13}}, "small: chunk 0 starts with BOS, chunk 1 is short");
  ftest::check(p.prompt == Ids{1, 16, 17}, "small: the prompt is BOS + the last 2 tokens");
  ftest::check(p.local == Ids{1, 14, 15, 16, 17}, "small: the local sequence is BOS + the last 4 tokens");
  ftest::check(ftest::chunk_count(8, small) == 2, "small: chunk_count 2");
  // Without BOS first, chunk 0 does not get one: only the prompt and the local sequence do.
  p = ftest::plan_ingest(make_ids(8, false), small, kBos);
  ftest::check(p.chunks[0] == Ids{10, 11, 12}, "small, no BOS: chunk 0 is x[0:3] as it is");
  // L = 5 < 6: native, BOS added once.
  p = ftest::plan_ingest(make_ids(5, false), small, kBos);
  ftest::check(p.native && p.local == Ids({1, 10, 11, 12, 13, 14}) && p.chunks.empty(), "small: L 5 runs natively");
  p = ftest::plan_ingest(make_ids(5, true), small, kBos);
  ftest::check(p.local == make_ids(5, true), "small: native input that starts with BOS is kept as it is");

  // The defaults (2048, 2048, 512, 4096).
  const FocusParams d{};
  ftest::check(ftest::plan_ingest(make_ids(4095, true), d, kBos).native && ftest::chunk_count(4095, d) == 0,
               "defaults: 4095 tokens run natively");
  p = ftest::plan_ingest(make_ids(4096, true), d, kBos);
  ftest::check(!p.native && p.memory == 2048 && p.chunks.size() == 1 && p.chunks[0].size() == 2048,
               "defaults: 4096 tokens are one full chunk of 2048");
  const Ids x5 = make_ids(5000, true);
  p = ftest::plan_ingest(x5, d, kBos);
  Ids prompt{kBos};
  const Ids tail = slice(x5, 5000 - 512, 5000);
  prompt.insert(prompt.end(), tail.begin(), tail.end());
  Ids local{kBos};
  const Ids last = slice(x5, 2952, 5000);
  local.insert(local.end(), last.begin(), last.end());
  ftest::check(p.memory == 2952 && p.chunks.size() == 2 && p.chunks[0] == slice(x5, 0, 2048) &&
                   p.chunks[1] == slice(x5, 2048, 2952),
               "defaults: 5000 tokens: memory 2952 in chunks of 2048 and 904");
  ftest::check(p.prompt == prompt && p.prompt.size() == 513, "defaults: the prompt is BOS + the last 512 tokens");
  ftest::check(p.local == local && p.local.size() == 2049, "defaults: the local sequence is BOS + the last 2048");
  ftest::check(ftest::chunk_count(100000, d) == 48, "defaults: 100000 tokens make ceil(97952 / 2048) = 48 chunks");

  // No params: always native. Errors before any work.
  ftest::check(ftest::plan_ingest(make_ids(10000, true), std::nullopt, kBos).native, "no params: native at any length");
  ftest::check(throws([&] { ftest::plan_ingest({}, d, kBos); }), "an empty input is an Error");
  ftest::check(throws([&] { ftest::plan_ingest(make_ids(8, true), FocusParams{6, 3, 2, 6}, kBos); }),
               "min_chunked_length <= local_window is an Error");
  ftest::check(throws([&] { ftest::plan_ingest(make_ids(8, true), FocusParams{4, 0, 2, 6}, kBos); }),
               "chunk_size 0 is an Error");
}

Ids int_list(const focus::Json* j) {
  Ids out;
  if (!j) return out;
  for (const auto& v : j->items()) out.push_back(int32_t(v.as_number()));
  return out;
}

void table() {
  const std::string file = ftest::source_path("test/fixtures/plan-cases.json");
  const focus::Json root = focus::Json::parse(focus::read_text_file(file), file);
  const int32_t bos = int32_t(root.get("bos")->as_number());
  int n = 0, bad = 0;
  std::string first_bad;
  for (const focus::Json& c : root.get("cases")->items()) {
    const focus::Json& pj = *c.get("params");
    FocusParams p;
    p.local_window = int(pj.get("localWindow")->as_number());
    p.chunk_size = int(pj.get("chunkSize")->as_number());
    p.prompt_cap = int(pj.get("promptCap")->as_number());
    p.min_chunked_length = int(pj.get("minChunkedLength")->as_number());
    const Ids ids = int_list(c.get("ids"));
    const FocusPlan got = ftest::plan_ingest(ids, p, bos);
    const bool native = c.get("mode")->as_string() == "native";
    std::vector<Ids> chunks;
    if (const focus::Json* cj = c.get("chunks"))
      for (const auto& ch : cj->items()) chunks.push_back(int_list(&ch));
    const bool ok = got.native == native && got.local == int_list(c.get("local")) &&
                    ftest::chunk_count(int(ids.size()), p) == int(c.get("chunkCount")->as_number()) &&
                    (native || (got.memory == int(c.get("memory")->as_number()) &&
                                got.prompt == int_list(c.get("prompt")) && got.chunks == chunks));
    ++n;
    if (!ok && bad++ == 0)
      first_bad = focus::str("L ", ids.size(), ", params (", p.local_window, ", ", p.chunk_size, ", ", p.prompt_cap,
                             ", ", p.min_chunked_length, ")");
  }
  ftest::check(n > 0 && bad == 0, focus::str("plan-cases.json: ", n - bad, " of ", n, " cases as lib/plan.ts plans them"),
               first_bad.empty() ? "" : "first difference: " + first_bad);
}

}  // namespace

int main() {
  by_hand();
  table();
  return ftest::finish();
}
