// CPU emulator of the device primitives the attention kernels use (the
// FOCUS_ATTN_EMULATE half of attention_impl.cuh), so that the kernels
// themselves run and are tested on a machine without a GPU. Test-only: the
// test (test/cpp/cuda_attention_test.cu) includes this file, then the kernel
// sources; it is never part of the library.
//
// A block runs as one fiber per thread on a stack-switching scheduler; a fiber
// runs until it waits on a barrier (block or warp). Warp primitives: every
// lane posts its operand, a warp barrier, every lane reads what it needs, a
// second warp barrier. What it catches beyond wrong indexing: cp.async data is
// written to shared memory only at the cp.async.wait that covers it, shared
// memory starts as NaN, ldmatrix/cp.async addresses are checked, and a barrier
// that not every thread reaches stops the program.
#pragma once

#include <setjmp.h>
#include <ucontext.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include <cuda_runtime.h>

#include "core/dtype.h"

namespace focus::cuda::attn {
using std::max;
using std::min;
namespace emu {

struct Dim {
  unsigned x, y, z;
};
struct Fiber {
  ucontext_t ctx;
  jmp_buf jb;
  bool started = false, done = false;
  const long* wait_gen = nullptr;  // blocked while *wait_gen == wait_val
  long wait_val = 0;
  struct Copy {
    void* dst;
    unsigned char data[16];
    long group;
  };
  std::vector<Copy> pending;  // cp.async data, written to shared memory at the wait
  long committed = 0;
};
struct Lane {
  const void* ptr;
  float f;
  uint32_t a[4], b0, b1;
};
struct Warp {
  int arrived = 0;
  long gen = 0, done_gen = -1;
  float d[16][8];
};
struct Cta {
  int n = 0;
  unsigned bid = 0;
  int cur = 0, arrived = 0;
  long gen = 0;
  std::vector<Fiber> fibers;
  std::vector<Lane> lanes;
  std::vector<Warp> warps;
  std::vector<unsigned char> smem;
  std::vector<std::vector<char>> stacks;
  jmp_buf sched;
  std::function<void()> body;
};
inline Cta cta;

[[noreturn]] inline void die(const char* what) {
  std::fprintf(stderr, "emulator: %s (block %u, thread %d)\n", what, cta.bid, cta.cur);
  std::abort();
}
inline Dim thread_idx() { return {unsigned(cta.cur), 0, 0}; }
inline Dim block_idx() { return {cta.bid, 0, 0}; }
inline void wait_change(const long* gen, long val) {
  Fiber& f = cta.fibers[size_t(cta.cur)];
  f.wait_gen = gen;
  f.wait_val = val;
  if (!_setjmp(f.jb)) _longjmp(cta.sched, 1);
  f.wait_gen = nullptr;
}
inline void barrier(int& arrived, long& gen, int count) {
  const long my = gen;
  if (++arrived == count) {
    arrived = 0;
    ++gen;
    return;
  }
  wait_change(&gen, my);
}
inline void warp_sync() {
  Warp& w = cta.warps[size_t(cta.cur >> 5)];
  barrier(w.arrived, w.gen, 32);
}
inline void check_smem(const void* p, size_t n, const char* what) {
  const auto* c = static_cast<const unsigned char*>(p);
  if (c < cta.smem.data() || c + n > cta.smem.data() + cta.smem.size() || reinterpret_cast<uintptr_t>(c) % 16)
    die(what);
}
inline void entry() {
  cta.body();
  Fiber& f = cta.fibers[size_t(cta.cur)];
  if (!f.pending.empty()) die("cp.async data never waited for");
  f.done = true;
  _longjmp(cta.sched, 1);
}
// Runs fiber i until it waits on a barrier or ends. Its own frame, so that
// nothing the scheduler loop keeps is live across the jump.
[[gnu::noinline]] inline void resume(int i) {
  Fiber& f = cta.fibers[size_t(i)];
  cta.cur = i;
  if (!_setjmp(cta.sched)) {
    if (!f.started) {
      f.started = true;
      setcontext(&f.ctx);
    }
    _longjmp(f.jb, 1);
  }
}
inline void run_block(unsigned bid, int n, size_t smem) {
  cta.n = n;
  cta.bid = bid;
  cta.arrived = 0;
  cta.fibers.assign(size_t(n), Fiber{});
  cta.lanes.assign(size_t(n), Lane{});
  cta.warps.assign(size_t(n + 31) / 32, Warp{});
  cta.smem.assign(smem, 0xFF);  // NaN: reading unwritten shared memory shows
  cta.stacks.resize(size_t(std::max<int>(n, int(cta.stacks.size()))));
  for (int i = 0; i < n; ++i) {
    Fiber& f = cta.fibers[size_t(i)];
    cta.stacks[size_t(i)].resize(256 * 1024);
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = cta.stacks[size_t(i)].data();
    f.ctx.uc_stack.ss_size = cta.stacks[size_t(i)].size();
    f.ctx.uc_link = nullptr;
    makecontext(&f.ctx, entry, 0);
  }
  for (;;) {
    bool ran = false, all_done = true;
    for (int i = 0; i < n; ++i) {
      Fiber& f = cta.fibers[size_t(i)];
      if (f.done) continue;
      all_done = false;
      if (f.wait_gen && *f.wait_gen == f.wait_val) continue;
      ran = true;
      resume(i);
    }
    if (all_done) return;
    if (!ran) die("deadlock: a barrier that not every thread reaches");
  }
}

}  // namespace emu

template <class... P, class... A>
void emu_launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, const A&... args) {
  for (unsigned b = 0; b < grid.x; ++b) {
    emu::cta.body = [&] { kernel(args...); };
    emu::run_block(b, int(block.x), smem);
  }
}

inline void cp_async16(void* dst, const void* src) {
  emu::check_smem(dst, 16, "cp.async destination outside shared memory or unaligned");
  if (reinterpret_cast<uintptr_t>(src) % 16) emu::die("cp.async source not 16-byte aligned");
  emu::Fiber& f = emu::cta.fibers[size_t(emu::cta.cur)];
  emu::Fiber::Copy c{dst, {}, f.committed};
  std::memcpy(c.data, src, 16);
  f.pending.push_back(c);
}
inline void cp_async_commit() { ++emu::cta.fibers[size_t(emu::cta.cur)].committed; }
inline void emu_cp_async_wait(int n) {  // groups older than the newest n complete
  emu::Fiber& f = emu::cta.fibers[size_t(emu::cta.cur)];
  std::vector<emu::Fiber::Copy> keep;
  for (const auto& c : f.pending) {
    if (c.group < f.committed - n) std::memcpy(c.dst, c.data, 16);
    else keep.push_back(c);
  }
  f.pending.swap(keep);
}
inline void ldm(uint32_t (&r)[4], const void* p, bool trans) {
  emu::check_smem(p, 16, "ldmatrix row outside shared memory or unaligned");
  const int me = emu::cta.cur, lane = me & 31, base = me & ~31, g = lane >> 2, t = lane & 3;
  emu::cta.lanes[size_t(me)].ptr = p;
  emu::warp_sync();
  auto u16 = [&](int src_lane, int elem) {
    uint16_t x;
    std::memcpy(&x, static_cast<const unsigned char*>(emu::cta.lanes[size_t(base + src_lane)].ptr) + 2 * elem, 2);
    return uint32_t(x);
  };
  for (int j = 0; j < 4; ++j)
    r[j] = trans ? u16(j * 8 + 2 * t, g) | u16(j * 8 + 2 * t + 1, g) << 16
                 : u16(j * 8 + g, 2 * t) | u16(j * 8 + g, 2 * t + 1) << 16;
  emu::warp_sync();
}
inline void ldmatrix_x4(uint32_t (&r)[4], const void* p) { ldm(r, p, false); }
inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) { ldm(r, p, true); }
inline void emu_mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1, bool bf16) {
  const int me = emu::cta.cur, lane = me & 31, base = me & ~31, g = lane >> 2, t = lane & 3;
  emu::Lane& L = emu::cta.lanes[size_t(me)];
  std::memcpy(L.a, a, sizeof L.a);
  L.b0 = b0;
  L.b1 = b1;
  emu::warp_sync();
  emu::Warp& w = emu::cta.warps[size_t(me >> 5)];
  if (w.done_gen != w.gen) {  // the first lane through computes the warp's product
    auto f = [&](uint32_t reg, int half) {
      const uint16_t h = uint16_t(reg >> (16 * half));
      return bf16 ? focus::bf16_to_f32(h) : focus::f16_to_f32(h);
    };
    float A[16][16], B[16][8];
    for (int l = 0; l < 32; ++l) {
      const emu::Lane& x = emu::cta.lanes[size_t(base + l)];
      const int lg = l >> 2, lt = l & 3;
      for (int h = 0; h < 2; ++h) {
        A[lg][2 * lt + h] = f(x.a[0], h);
        A[lg + 8][2 * lt + h] = f(x.a[1], h);
        A[lg][2 * lt + 8 + h] = f(x.a[2], h);
        A[lg + 8][2 * lt + 8 + h] = f(x.a[3], h);
        B[2 * lt + h][lg] = f(x.b0, h);
        B[2 * lt + 8 + h][lg] = f(x.b1, h);
      }
    }
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 8; ++j) {
        float s = 0;
        for (int k = 0; k < 16; ++k) s += A[i][k] * B[k][j];
        w.d[i][j] = s;
      }
    w.done_gen = w.gen;
  }
  c[0] += w.d[g][2 * t];
  c[1] += w.d[g][2 * t + 1];
  c[2] += w.d[g + 8][2 * t];
  c[3] += w.d[g + 8][2 * t + 1];
  emu::warp_sync();
}
inline float shfl_xor(float v, int mask) {
  const int me = emu::cta.cur;
  emu::cta.lanes[size_t(me)].f = v;
  emu::warp_sync();
  const float r = emu::cta.lanes[size_t((me & ~31) + ((me & 31) ^ mask))].f;
  emu::warp_sync();
  return r;
}
inline void block_sync() { emu::barrier(emu::cta.arrived, emu::cta.gen, emu::cta.n); }
inline void* emu_dynamic_smem() { return emu::cta.smem.data(); }

// Host side: an H100/H200-like device.
inline int attn_sm_count() { return 132; }
inline size_t attn_smem_optin() { return 227 * 1024; }
inline void attn_upload(void* dst, const void* src, size_t bytes, cudaStream_t) { std::memcpy(dst, src, bytes); }
inline void attn_check_launch(const char*) {}

}  // namespace focus::cuda::attn
