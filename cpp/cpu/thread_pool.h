// A fixed pool of worker threads for the CPU ops. The calling thread takes part,
// so `threads` = 1 runs everything inline.
//
// Work is a region of n chunks handed out one at a time through an atomic
// counter: whichever thread is free takes the next chunk, and the caller waits
// only for chunks that were actually taken. Machines running other work (a
// shared 2-core VM, a laptop) often leave one of our threads descheduled for
// milliseconds. A fixed split would wait for it, but here the others just do
// its share.
//
// Decode issues ~80 regions per token, a few hundred microseconds each, and a
// condition-variable wake-up costs tens of microseconds on a VM. So after a
// region a worker spins for a short, bounded time (kSpinMicros) watching for
// the next one before it goes to sleep, and the caller spins the same way
// while the last chunks finish. An idle pool sleeps.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace focus::cpu {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_; }

  // Calls fn(i) for every i in [0, n), each exactly once, on whichever thread
  // is free, in increasing order of i (so put expensive items first). Returns
  // when all have finished. The first exception thrown is rethrown here, and
  // chunks not started by then are skipped. A region started from inside a
  // region runs inline.
  void parallel_chunks(int64_t n, const std::function<void(int64_t)>& fn);

  // Splits [0, n) into contiguous ranges of at least `grain` items (a few per
  // thread, for balance) and calls fn(begin, end) for each.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // Calls fn(i, size()) for i in [0, size()): one chunk per thread, though a
  // late thread's chunk may run on another.
  void run(const std::function<void(int, int)>& fn);

  // How long a thread spins before sleeping, in microseconds.
  static constexpr int kSpinMicros = 150;
  // Ranges per thread in parallel_for.
  static constexpr int kChunksPerThread = 4;

 private:
  void worker_main();
  // Takes and runs chunks of the open region until none is left.
  void work_on_region();

  int n_;
  std::vector<std::thread> threads_;
  std::mutex run_mu_;  // one region at a time when several threads share the pool

  // The open region. Its fields are written before `closed_` is cleared and
  // generation_ bumped; a worker touches them only between raising `active_`
  // and seeing `closed_` set, and the caller closes a region only after
  // waiting for active_ to drop to zero, so a late worker never sees a stale
  // function.
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t n_chunks_ = 0;
  std::atomic<int64_t> next_{0}, done_{0};
  std::atomic<bool> closed_{true};
  std::atomic<int> active_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};

  // Sleeping. A thread that gives up spinning registers (sleepers_,
  // caller_sleeping_) and re-checks its condition under mu_ before waiting;
  // the waker changes the state first, then takes mu_ and notifies if anybody
  // is registered, so no wake-up is lost.
  std::mutex mu_;
  std::condition_variable cv_work_, cv_done_;
  std::atomic<int> sleepers_{0};
  std::atomic<bool> caller_sleeping_{false};

  std::mutex err_mu_;
  std::exception_ptr error_;
};

}  // namespace focus::cpu
