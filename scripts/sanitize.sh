#!/usr/bin/env bash
# Builds the standalone C++ tests (test/cpp, CPU only) with clang under
# AddressSanitizer and UndefinedBehaviorSanitizer in build-asan/, and runs
# them with ctest. Any sanitizer report fails its test: UBSan does not
# recover (-fno-sanitize-recover), ASan stops at the first error, and
# LeakSanitizer reports leaks at exit. Not built there: the benchmarks, and
# cuda_attention_emu_test (ASan cannot follow its fiber stack switches and
# reports false errors; it also takes minutes under ASan).
#
#   scripts/sanitize.sh            configure, build, run every test
#   scripts/sanitize.sh -R json    extra arguments go to ctest
#
# The flags come from the CMake option FOCUSLLM_SANITIZE=address,undefined
# (CMakeLists.txt), which any build can use. Needs clang (Debian: clang and
# libclang-rt-<version>-dev for the runtimes); CC_SANITIZE / CXX_SANITIZE pick
# other compilers (gcc works too).
set -euo pipefail
cd "$(dirname "$0")/.."

CC=${CC_SANITIZE:-clang}
CXX=${CXX_SANITIZE:-clang++}
build=build-asan
jobs=${FOCUSLLM_JOBS:-$(nproc)}
if ! command -v "$CXX" >/dev/null; then
  echo "sanitize.sh: $CXX not found; install clang and its runtimes (Debian: apt-get install clang libclang-rt-14-dev)" >&2
  exit 1
fi

run() {
  echo "+ $*"
  "$@"
}

# RelWithDebInfo: optimised enough that the op tests run in seconds under
# ASan, with line numbers in the reports. NDEBUG changes nothing here (the
# engine and tests use no assert()).
run cmake -S . -B "$build" -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFOCUSLLM_BUILD_TESTS=ON -DFOCUSLLM_CUDA=off -DFOCUSLLM_SANITIZE=address,undefined
run cmake --build "$build" --parallel "$jobs"

export ASAN_OPTIONS=${ASAN_OPTIONS:-strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
run ctest --test-dir "$build" --output-on-failure --timeout 900 "$@"
