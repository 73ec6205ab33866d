// CPU kernels for AVX2 + FMA + F16C; compiled with -mavx2 -mfma -mf16c (x86-64
// only), used when the CPU has them.
#include "kernels.h"
#ifdef FOCUSLLM_X86_DISPATCH
#define FOCUS_KERNEL_LEVEL 1
#define FOCUS_KERNEL_NAME "avx2"
#define FOCUS_KERNEL_GETTER kernels_avx2
#include "kernels_impl.h"
#endif
