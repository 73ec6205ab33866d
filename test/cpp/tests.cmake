# Standalone C++ tests and benchmarks (FOCUSLLM_BUILD_TESTS=ON). They link the
# engine library only (no Node.js), so they also run on the GPU machine.
#
#   test/cpp/<name>_test.cpp   -> executable <name>_test   (registered with ctest)
#   test/cpp/<name>_test.cu    -> executable <name>_test   (CUDA builds only)
#   bench/cpp/<name>.cpp       -> executable bench_<name>
#   bench/cpp/<name>.cu        -> executable bench_<name>  (CUDA builds only)
# test/cpp/common/*.cpp is linked into every one of them.
enable_testing()
file(GLOB _focus_test_common CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/test/cpp/common/*.cpp)
add_library(focusllm_testkit STATIC ${_focus_test_common})
target_include_directories(focusllm_testkit PUBLIC ${CMAKE_SOURCE_DIR}/cpp ${CMAKE_SOURCE_DIR}/test/cpp)
target_link_libraries(focusllm_testkit PUBLIC focusllm_core)
target_compile_definitions(focusllm_testkit PUBLIC FOCUSLLM_SOURCE_DIR="${CMAKE_SOURCE_DIR}")

file(GLOB _focus_tests CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/test/cpp/*_test.cpp)
file(GLOB _focus_benches CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/bench/cpp/*.cpp)
if(FOCUSLLM_WITH_CUDA)
  file(GLOB _focus_cuda_tests CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/test/cpp/*_test.cu)
  file(GLOB _focus_cuda_benches CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/bench/cpp/*.cu)
  list(APPEND _focus_tests ${_focus_cuda_tests})
  list(APPEND _focus_benches ${_focus_cuda_benches})
endif()
foreach(src ${_focus_tests})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE focusllm_testkit)
  add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  # Exit code 77 = skipped (e.g. no GPU), reported as such by ctest.
  set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77)
endforeach()
# A sanitized build (scripts/sanitize.sh) is for the tests: its timings mean nothing.
if(FOCUSLLM_SANITIZE)
  set(_focus_benches "")
endif()
foreach(src ${_focus_benches})
  get_filename_component(name ${src} NAME_WE)
  add_executable(bench_${name} ${src})
  target_link_libraries(bench_${name} PRIVATE focusllm_testkit)
endforeach()

# Buffers at any byte offset through core/dtype.h and the reference oracle,
# with UBSan's alignment check made fatal (where the compiler has it). It
# lives in test/cpp/sanitize/ so the glob above does not build it plainly.
include(CheckCXXSourceCompiles)
set(CMAKE_REQUIRED_FLAGS "-fsanitize=alignment -fno-sanitize-recover=alignment")
set(CMAKE_REQUIRED_LINK_OPTIONS "-fsanitize=alignment")
check_cxx_source_compiles("int main() { return 0; }" FOCUSLLM_HAVE_UBSAN_ALIGNMENT)
unset(CMAKE_REQUIRED_FLAGS)
unset(CMAKE_REQUIRED_LINK_OPTIONS)
if(FOCUSLLM_HAVE_UBSAN_ALIGNMENT)
  add_executable(unaligned_access_test test/cpp/sanitize/unaligned_access_test.cpp
                 test/cpp/common/reference.cpp test/cpp/common/testing.cpp)
  target_compile_options(unaligned_access_test PRIVATE -fsanitize=alignment -fno-sanitize-recover=alignment)
  target_link_options(unaligned_access_test PRIVATE -fsanitize=alignment)
  target_include_directories(unaligned_access_test PRIVATE ${CMAKE_SOURCE_DIR}/cpp ${CMAKE_SOURCE_DIR}/test/cpp)
  target_link_libraries(unaligned_access_test PRIVATE focusllm_core)
  add_test(NAME unaligned_access_test COMMAND unaligned_access_test WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
else()
  message(STATUS "focusllm: no -fsanitize=alignment here; unaligned_access_test is not built")
endif()

# The CUDA attention kernels, emulated on the CPU (needs only the CUDA headers).
# It lives in test/cpp/emu/ so the *_test.cpp glob above does not link it with
# the engine library (whose real focus::cuda::attention would clash).
# Not in a sanitized build: ASan cannot follow the emulator's fiber stack
# switches (ucontext) and reports false stack-use-after-scope errors.
find_package(CUDAToolkit QUIET)
if(CUDAToolkit_FOUND AND NOT FOCUSLLM_SANITIZE)
  add_executable(cuda_attention_emu_test test/cpp/emu/cuda_attention_emu_test.cpp
                 test/cpp/common/testing.cpp cpp/core/util.cpp)
  target_compile_definitions(cuda_attention_emu_test PRIVATE FOCUS_ATTN_EMULATE
                             FOCUSLLM_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  target_compile_options(cuda_attention_emu_test PRIVATE -U_FORTIFY_SOURCE -fno-strict-aliasing
                         -Wno-attributes -Wno-unknown-pragmas)
  target_include_directories(cuda_attention_emu_test PRIVATE ${CMAKE_SOURCE_DIR}/cpp
                             ${CMAKE_SOURCE_DIR}/test/cpp ${CMAKE_SOURCE_DIR}/cuda ${CUDAToolkit_INCLUDE_DIRS})
  target_link_libraries(cuda_attention_emu_test PRIVATE Threads::Threads)
  add_test(NAME cuda_attention_emu_test COMMAND cuda_attention_emu_test WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
endif()

# Fixture parity on the CUDA backend (skipped without a usable device).
if(FOCUSLLM_WITH_CUDA)
  add_test(NAME parity_test_cuda COMMAND parity_test cuda WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(parity_test_cuda PROPERTIES SKIP_RETURN_CODE 77)
endif()
