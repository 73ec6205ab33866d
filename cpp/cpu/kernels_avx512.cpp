// CPU kernels for AVX-512 F/BW/VL/DQ (+ FMA, F16C); compiled with those flags
// (x86-64 only), used when the CPU has them.
#include "kernels.h"
#ifdef FOCUSLLM_X86_DISPATCH
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
