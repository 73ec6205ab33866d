// CPU kernels for AVX2 + FMA + F16C; compiled with -mavx2 -mfma -mf16c (x86-64
// only), used when the CPU has them.
#include "kernels.h"
#ifdef FOCUSLLM_X86_DISPATCH
// The build gives this file its instruction-set flags (cmake/cpu_kernels.cmake,
// binding.gyp); without them the intrinsics below would not compile.
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "cpp/cpu/kernels_avx2.cpp must be compiled with -mavx2 -mfma -mf16c (see cmake/cpu_kernels.cmake)"
#endif
#define FOCUS_KERNEL_LEVEL 1
#define FOCUS_KERNEL_NAME "avx2"
#define FOCUS_KERNEL_GETTER kernels_avx2
#include "kernels_impl.h"
#endif
