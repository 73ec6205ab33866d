// Which instruction set the CPU kernels run with. The default build compiles
// the kernels for baseline x86-64 (or the target's baseline elsewhere), for
// AVX2+FMA+F16C and for AVX-512 (F/BW/VL/DQ), and picks the best level this
// CPU supports on first use. FOCUSLLM_CPU_ISA=generic|avx2|avx512 forces a
// level (lower than the best, for tests and comparisons).
#pragma once

#include "kernels.h"

namespace focus::cpu {

// The highest level both this build and this CPU support.
Isa best_isa();
bool isa_supported(Isa isa);
const char* isa_name(Isa isa);
// "generic", "avx2", "avx512" -> level; false for anything else.
bool parse_isa(const char* s, Isa* out);

// The level FOCUSLLM_CPU_ISA asks for: best_isa() when `value` is null or
// empty; throws an Error naming the variable when the value is not a level or
// not supported here.
Isa isa_from_env(const char* value);

// The level the ops use now. The first call resolves it from the CPU and
// FOCUSLLM_CPU_ISA; a bad or unsupported FOCUSLLM_CPU_ISA throws an Error that
// names the variable.
Isa active_isa();
const Kernels& kernels();
const char* cpu_isa_name();  // isa_name(active_isa())

// Switches every op to `isa` (tests and benchmarks); throws an Error when this
// build or CPU does not support it. Not thread-safe against running ops.
void set_isa(Isa isa);

}  // namespace focus::cpu
