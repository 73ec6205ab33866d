// CPU kernels for the target's baseline instruction set (SSE2 on x86-64, NEON
// on arm64): the fallback on any machine.
#define FOCUS_KERNEL_LEVEL 0
#define FOCUS_KERNEL_NAME "generic"
#define FOCUS_KERNEL_GETTER kernels_generic
#include "kernels_impl.h"
