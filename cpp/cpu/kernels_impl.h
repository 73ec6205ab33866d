// The body of one kernel translation unit. kernels_generic.cpp,
// kernels_avx2.cpp and kernels_avx512.cpp each define FOCUS_KERNEL_LEVEL,
// FOCUS_KERNEL_NAME and FOCUS_KERNEL_GETTER and include this file; the build
// compiles each with its own instruction-set flags (cmake/cpu_kernels.cmake,
// binding.gyp).
//
// Everything here lives in an anonymous namespace, so no function or template
// instantiation compiled with AVX-512 can be merged by the linker with one that
// baseline code calls; only the getter, which returns a table of pointers, is
// visible outside.
#if !defined(FOCUS_KERNEL_LEVEL) || !defined(FOCUS_KERNEL_NAME) || !defined(FOCUS_KERNEL_GETTER)
#error "define FOCUS_KERNEL_LEVEL, FOCUS_KERNEL_NAME and FOCUS_KERNEL_GETTER before including kernels_impl.h"
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>
#if FOCUS_KERNEL_LEVEL > 0
#include <immintrin.h>
#endif

#include "kernels.h"

namespace focus::cpu {
namespace {

#include "simd.h"
#include "kernels_gemm.inl"
#include "kernels_attention.inl"
#include "kernels_elementwise.inl"

const Kernels kTable = {
    FOCUS_KERNEL_NAME, kMR, kNR, to_f32, from_f32, gemm_pack, gemm_panel, gemv, attention, attention_scratch,
    rms_norm, rope, swiglu, fma_loop, 2 * W * kFmaChains, gemm_pack_nn, exp_sub_sum,
};

}  // namespace

const Kernels& FOCUS_KERNEL_GETTER() { return kTable; }

}  // namespace focus::cpu
