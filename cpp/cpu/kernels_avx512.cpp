// CPU kernels for AVX-512 F/BW/VL/DQ (+ FMA, F16C); compiled with those flags
// (x86-64 only), used when the CPU has them.
#include "kernels.h"
#ifdef FOCUSLLM_X86_DISPATCH
// The build gives this file its instruction-set flags (cmake/cpu_kernels.cmake,
// binding.gyp); without them the intrinsics below would not compile.
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VL__) || !defined(__AVX512DQ__) || !defined(__FMA__) || !defined(__F16C__)
#error "cpp/cpu/kernels_avx512.cpp must be compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2 -mfma -mf16c (see cmake/cpu_kernels.cmake)"
#endif
// GCC 12's AVX-512 headers trip its own uninitialized-variable warning
// (_mm512_undefined_* in _mm512_cvtph_ps, _mm512_reduce_*: GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define FOCUS_KERNEL_LEVEL 2
#define FOCUS_KERNEL_NAME "avx512"
#define FOCUS_KERNEL_GETTER kernels_avx512
#include "kernels_impl.h"
#endif
