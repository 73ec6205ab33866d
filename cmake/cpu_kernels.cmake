# CPU kernels compiled once per instruction set (included by CMakeLists.txt
# before the engine library is defined). cpp/cpu/kernels_{generic,avx2,avx512}.cpp
# are already in FOCUSLLM_CORE_SOURCES (cpp/cpu/*.cpp); here they get their
# flags. The generic one keeps the target's baseline, so the library runs on
# any x86-64; cpp/cpu/isa.cpp picks the best level at run time.
#
# On other architectures (arm64, ...) the two x86 files compile to nothing
# (they test __x86_64__), so no flags are needed.
set(_focus_cpu_dir ${CMAKE_CURRENT_LIST_DIR}/../cpp/cpu)
get_filename_component(_focus_cpu_dir ${_focus_cpu_dir} ABSOLUTE)

set(_focus_x86 OFF)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|x64|i[3-6]86)$")
  set(_focus_x86 ON)
endif()

if(_focus_x86 AND (CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang"))
  set_source_files_properties(${_focus_cpu_dir}/kernels_avx2.cpp PROPERTIES
    COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
  set_source_files_properties(${_focus_cpu_dir}/kernels_avx512.cpp PROPERTIES
    COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512vl;-mavx512dq;-mavx2;-mfma;-mf16c")
  message(STATUS "focusllm: CPU kernels for generic, avx2 and avx512, chosen at run time")
else()
  message(STATUS "focusllm: CPU kernels for the baseline instruction set only (${CMAKE_SYSTEM_PROCESSOR})")
endif()

# The kernels are the hot loops: optimised even in Debug builds.
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  set_property(SOURCE ${_focus_cpu_dir}/kernels_generic.cpp ${_focus_cpu_dir}/kernels_avx2.cpp
               ${_focus_cpu_dir}/kernels_avx512.cpp APPEND PROPERTY COMPILE_OPTIONS "-O3")
endif()
