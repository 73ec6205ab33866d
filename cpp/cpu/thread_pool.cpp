#include "thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>  // _mm_pause (SSE2, baseline x86-64)
#endif

namespace focus::cpu {

namespace {

// Set while a thread runs chunks, so that a region started from inside a
// chunk runs inline instead of deadlocking.
thread_local bool t_in_region = false;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#else
  std::this_thread::yield();
#endif
}

// Spins until done() holds or kSpinMicros have passed; true when done() held.
template <class F>
bool spin_until(F done) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() - start > std::chrono::microseconds(ThreadPool::kSpinMicros)) return done();
  }
}

struct RegionGuard {
  bool prev = t_in_region;
  RegionGuard() { t_in_region = true; }
  ~RegionGuard() { t_in_region = prev; }
};

}  // namespace

ThreadPool::ThreadPool(int threads) : n_(std::max(1, threads)) {
  for (int i = 1; i < n_; ++i) threads_.emplace_back([this] { worker_main(); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  {
    std::lock_guard<std::mutex> lock(mu_);
  }
  cv_work_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::worker_main() {
  uint64_t seen = 0;
  for (;;) {
    auto ready = [&] { return stop_.load() || generation_.load() != seen; };
    if (!spin_until(ready)) {
      sleepers_.fetch_add(1);
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_work_.wait(lock, ready);
      }
      sleepers_.fetch_sub(1);
    }
    if (stop_.load()) return;
    seen = generation_.load();
    work_on_region();
  }
}

void ThreadPool::work_on_region() {
  active_.fetch_add(1);
  if (!closed_.load()) {
    RegionGuard g;
    const int64_t n = n_chunks_;
    // Counts k more chunks as finished and wakes the caller on the last one.
    auto finish = [&](int64_t k) {
      if (done_.fetch_add(k) + k == n && caller_sleeping_.load()) {
        std::lock_guard<std::mutex> lock(mu_);
        cv_done_.notify_one();
      }
    };
    for (;;) {
      const int64_t i = next_.fetch_add(1);
      if (i >= n) break;
      try {
        (*fn_)(i);
      } catch (...) {
        {
          std::lock_guard<std::mutex> lock(err_mu_);
          if (!error_) error_ = std::current_exception();
        }
        // Chunks not handed out yet are skipped, and count as finished.
        const int64_t untaken = next_.exchange(n);
        if (untaken < n) finish(n - untaken);
      }
      finish(1);
    }
  }
  active_.fetch_sub(1);
}

void ThreadPool::parallel_chunks(int64_t n, const std::function<void(int64_t)>& fn) {
  if (n <= 0) return;
  if (n == 1 || n_ == 1 || t_in_region) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::lock_guard<std::mutex> region(run_mu_);
  fn_ = &fn;
  n_chunks_ = n;
  next_.store(0);
  done_.store(0);
  error_ = nullptr;
  closed_.store(false);      // publishes the fields above
  generation_.fetch_add(1);  // wakes spinning workers
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    cv_work_.notify_all();
  }
  work_on_region();  // the caller takes chunks too
  auto all_done = [&] { return done_.load() >= n; };
  if (!spin_until(all_done)) {
    caller_sleeping_.store(true);
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_done_.wait(lock, all_done);
    }
    caller_sleeping_.store(false);
  }
  // A worker that arrived late may still be between raising active_ and
  // finding no chunk left: wait for it before the region's fields change.
  // The window is a few instructions, but the worker may be preempted in it:
  // then yield, so that it gets a core back sooner on a busy machine.
  closed_.store(true);
  for (int spins = 0; active_.load() != 0; ++spins) {
    if (spins < 1000) cpu_relax();
    else std::this_thread::yield();
  }
  fn_ = nullptr;
  std::exception_ptr err;
  {
    std::lock_guard<std::mutex> lock(err_mu_);
    err = error_;
    error_ = nullptr;
  }
  if (err) std::rethrow_exception(err);
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks = std::min<int64_t>((n + grain - 1) / grain, int64_t(n_) * kChunksPerThread);
  if (chunks <= 1 || n_ == 1 || t_in_region) {
    fn(0, n);
    return;
  }
  parallel_chunks(chunks, [&](int64_t c) {
    const int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
    if (b < e) fn(b, e);
  });
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  parallel_chunks(n_, [&](int64_t i) { fn(int(i), n_); });
}

}  // namespace focus::cpu
