#include "isa.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "../core/error.h"

#ifdef FOCUSLLM_X86_DISPATCH
#include <cpuid.h>
#endif

namespace focus::cpu {

namespace {

const Kernels* table_for(Isa isa) {
  switch (isa) {
#ifdef FOCUSLLM_X86_DISPATCH
    case Isa::Avx512: return &kernels_avx512();
    case Isa::Avx2: return &kernels_avx2();
#endif
    default: return &kernels_generic();
  }
}

// nullptr until resolved; a plain atomic pointer because resolving twice from
// two threads gives the same answer.
std::atomic<const Kernels*> g_active{nullptr};
std::atomic<int> g_active_isa{0};

#ifdef FOCUSLLM_X86_DISPATCH
// CPUID leaf 1, ECX bit 29. Not __builtin_cpu_supports("f16c"): clang before
// 15 does not know that name (and refuses to compile it). The OS saving the
// YMM state, which F16C needs too, is part of the "avx2" check.
bool cpu_has_f16c() {
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}
#endif

}  // namespace

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::Generic: return true;
#ifdef FOCUSLLM_X86_DISPATCH
    case Isa::Avx2:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
    case Isa::Avx512:
      // libgcc's checks include the OS saving the AVX-512 register state.
      return isa_supported(Isa::Avx2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#endif
    default: return false;
  }
}

Isa best_isa() {
  if (isa_supported(Isa::Avx512)) return Isa::Avx512;
  if (isa_supported(Isa::Avx2)) return Isa::Avx2;
  return Isa::Generic;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "generic";
  }
}

bool parse_isa(const char* s, Isa* out) {
  for (Isa i : {Isa::Generic, Isa::Avx2, Isa::Avx512})
    if (std::strcmp(s, isa_name(i)) == 0) {
      *out = i;
      return true;
    }
  return false;
}

void set_isa(Isa isa) {
  FOCUS_CHECK(isa_supported(isa), "CPU instruction set ", isa_name(isa), " is not supported by this ",
              int(isa) > 0 ? "CPU" : "build", " (the best available is ", isa_name(best_isa()), ")");
  g_active_isa.store(int(isa));
  g_active.store(table_for(isa));
}

Isa isa_from_env(const char* value) {
  const Isa best = best_isa();
  if (!value || !*value) return best;
  Isa want;
  FOCUS_CHECK(parse_isa(value, &want), "FOCUSLLM_CPU_ISA must be generic, avx2 or avx512, got '", value, "'");
  FOCUS_CHECK(isa_supported(want), "FOCUSLLM_CPU_ISA=", value, " is not supported on this machine (the best is ",
              isa_name(best), ")");
  return want;
}

const Kernels& kernels() {
  const Kernels* k = g_active.load(std::memory_order_acquire);
  if (k) return *k;
  set_isa(isa_from_env(std::getenv("FOCUSLLM_CPU_ISA")));
  return *g_active.load();
}

Isa active_isa() {
  kernels();
  return Isa(g_active_isa.load());
}

const char* cpu_isa_name() { return isa_name(active_isa()); }

}  // namespace focus::cpu
