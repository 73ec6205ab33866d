#!/usr/bin/env bash
# Fuzzes the readers of untrusted model files with libFuzzer, under ASan and
# UBSan: the JSON reader, config.json (parse_config) and safetensors files
# (parse_safetensors). The harnesses are test/fuzz/<target>_fuzz.cpp.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   SECONDS per target (default 600),
#                                           targets json, config, safetensors (default all)
#   npm run fuzz                            the long run: 600 s per target
#   npm run fuzz -- 60 config               one minute on config.json
#   build-fuzz/fuzz_<target> FILE...        replay inputs (a finding, a seed)
#
# Builds build-fuzz/fuzz_<target> with clang++ -fsanitize=fuzzer,address,undefined
# from the harness and the four engine sources the parsers need (not the
# engine), then runs each target from its seeds, test/fuzz/corpus/<target>/
# (read only: the inputs it finds go to build-fuzz/corpus/<target>/, and are
# reused by the next run). A focus::Error is the parser refusing an input; a
# crash, a sanitizer report, any other exception, a broken invariant, an input
# slower than 10 s or a run over 2 GB is a finding: the script goes on with
# the other targets, then exits 1, naming build-fuzz/findings/<target>-*, the
# input to replay. Fix it and copy that input into the target's seed corpus
# as a regression test (with a name that says what it was).
#
# Needs clang++ with the sanitizer and libFuzzer runtimes (Debian: clang and
# libclang-rt-<version>-dev). CXX_FUZZ=clang++-NN picks another clang.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-600}
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "fuzz.sh: SECONDS must be a positive whole number, got '$seconds'" >&2
  exit 2
fi
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(json config safetensors)

CXX=${CXX_FUZZ:-clang++}
out=build-fuzz
if ! command -v "$CXX" >/dev/null; then
  echo "fuzz.sh: $CXX not found; install clang and its runtimes (Debian: apt-get install clang libclang-rt-14-dev)" >&2
  exit 1
fi

run() {
  echo "+ $*"
  "$@"
}

# The parsers' sources: json.cpp (the reader), config.cpp, safetensors.cpp,
# and util.cpp (dtype names, format_bytes).
sources=(cpp/core/json.cpp cpp/core/config.cpp cpp/core/safetensors.cpp cpp/core/util.cpp)
flags=(-std=c++17 -O1 -g -fno-omit-frame-pointer -fno-sanitize-recover=undefined -Icpp -Wall -Wextra -Wno-unused-parameter)

echo "== build ($("$CXX" --version | head -1))"
mkdir -p "$out/obj" "$out/findings"
for t in "${targets[@]}"; do
  if [ ! -f "test/fuzz/${t}_fuzz.cpp" ]; then
    echo "fuzz.sh: no target '$t' (test/fuzz/${t}_fuzz.cpp); targets: json config safetensors" >&2
    exit 2
  fi
done
objs=()
pids=()
for src in "${sources[@]}"; do
  obj="$out/obj/$(basename "$src" .cpp).o"
  objs+=("$obj")
  run "$CXX" "${flags[@]}" -fsanitize=fuzzer-no-link,address,undefined -c "$src" -o "$obj" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
pids=()
for t in "${targets[@]}"; do
  run "$CXX" "${flags[@]}" -fsanitize=fuzzer,address,undefined "test/fuzz/${t}_fuzz.cpp" "${objs[@]}" \
    -o "$out/fuzz_$t" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

# Inputs longer than real ones only slow the search: a config.json is under a
# kilobyte, and a safetensors header of a few tensors fits in 8 KB.
max_len() {
  case "$1" in
    safetensors) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

failed=()
for t in "${targets[@]}"; do
  echo "== fuzz $t for ${seconds} s"
  mkdir -p "$out/corpus/$t"
  rm -f "$out/findings/$t-"*
  log="$out/$t.log"
  # The outer timeout only guards against libFuzzer itself hanging.
  set +e
  run timeout --kill-after=30 $((seconds + 300)) "$out/fuzz_$t" "$out/corpus/$t" "test/fuzz/corpus/$t" \
    -dict="test/fuzz/$t.dict" -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$out/findings/$t-" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|INITED' "$log" || true
    echo "$t: no finding ($(ls "$out/corpus/$t" | wc -l) inputs in $out/corpus/$t; log $log)"
  else
    echo "$t: FINDING (exit $rc); the end of $log:"
    tail -n 60 "$log"
    for f in "$out/findings/$t-"*; do
      [ -e "$f" ] && echo "  input: $f  (replay: $out/fuzz_$t $f)"
    done
    failed+=("$t")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: findings in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: no findings (${targets[*]}, ${seconds} s each)"
