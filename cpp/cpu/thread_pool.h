// A fixed pool of worker threads for the CPU ops. The calling thread takes part
// as worker 0, so `threads` = 1 runs everything inline.
//
// Decode issues ~80 parallel regions per token, each a few hundred
// microseconds long, and a condition-variable wake-up costs tens of
// microseconds on a VM. So after a region a worker spins for a short, bounded
// time (kSpinMicros) watching for the next one before it goes to sleep, and the
// caller spins the same way while waiting for the workers to finish. An idle
// pool sleeps: it burns at most one spin period per region.
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

  // Calls fn(worker, n_workers) once on each of the pool's threads and returns
  // when all have finished. Exceptions from any worker are rethrown here (the
  // first one; the others are dropped). A region started from inside a region
  // runs inline on the calling thread.
  void run(const std::function<void(int, int)>& fn);

  // Splits [0, n) into contiguous ranges, at least `grain` items each, and
  // calls fn(begin, end) for each on the pool.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // Calls fn(i) for every i in [0, n), handing indices out one at a time to
  // whichever thread is free: for items of unequal cost (put the expensive
  // ones first).
  void parallel_dynamic(int64_t n, const std::function<void(int64_t)>& fn);

  // How long a thread spins before sleeping, in microseconds.
  static constexpr int kSpinMicros = 150;

 private:
  void worker_main(int id);
  void finish_job(std::exception_ptr err);

  int n_;
  std::vector<std::thread> threads_;
  std::mutex run_mu_;  // one region at a time when several threads share the pool

  // The job: published by bumping generation_ (release), read after seeing it.
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};  // workers (other than the caller) still running the job
  std::atomic<bool> stop_{false};

  // Sleeping. A thread that gives up spinning registers in sleepers_ and
  // re-checks its condition under mu_ before waiting; the waker bumps the
  // state first, then takes mu_ and notifies if anybody is registered, so no
  // wake-up is lost.
  std::mutex mu_;
  std::condition_variable cv_work_, cv_done_;
  std::atomic<int> sleepers_{0};
  std::atomic<bool> caller_sleeping_{false};

  std::mutex err_mu_;
  std::exception_ptr error_;
};

}  // namespace focus::cpu
