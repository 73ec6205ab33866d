#include "thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>  // _mm_pause (SSE2, baseline x86-64)
#endif

namespace focus::cpu {

namespace {

// Set while a thread executes a region, so that a nested run() or
// parallel_for() from inside a job runs inline instead of deadlocking.
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
  auto start = std::chrono::steady_clock::now();
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() - start > std::chrono::microseconds(ThreadPool::kSpinMicros)) return done();
  }
}

struct RegionGuard {
  RegionGuard() { t_in_region = true; }
  ~RegionGuard() { t_in_region = false; }
};

}  // namespace

ThreadPool::ThreadPool(int threads) : n_(std::max(1, threads)) {
  for (int i = 1; i < n_; ++i) threads_.emplace_back([this, i] { worker_main(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  {
    std::lock_guard<std::mutex> lock(mu_);
  }
  cv_work_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::worker_main(int id) {
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
    seen = generation_.load(std::memory_order_acquire);
    std::exception_ptr err;
    try {
      RegionGuard g;
      (*job_)(id, n_);
    } catch (...) {
      err = std::current_exception();
    }
    finish_job(err);
  }
}

void ThreadPool::finish_job(std::exception_ptr err) {
  if (err) {
    std::lock_guard<std::mutex> lock(err_mu_);
    if (!error_) error_ = err;
  }
  if (pending_.fetch_sub(1) == 1 && caller_sleeping_.load()) {
    std::lock_guard<std::mutex> lock(mu_);
    cv_done_.notify_one();
  }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (n_ == 1 || t_in_region) {
    // Inline: one thread, or a region started from inside a region.
    for (int w = 0; w < n_; ++w) fn(w, n_);
    return;
  }
  std::lock_guard<std::mutex> region(run_mu_);
  job_ = &fn;
  error_ = nullptr;
  pending_.store(n_ - 1);
  generation_.fetch_add(1);  // publishes job_ (seq_cst includes release)
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    cv_work_.notify_all();
  }
  std::exception_ptr err;
  try {
    RegionGuard g;
    fn(0, n_);
  } catch (...) {
    err = std::current_exception();
  }
  auto done = [&] { return pending_.load() == 0; };
  if (!spin_until(done)) {
    caller_sleeping_.store(true);
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_done_.wait(lock, done);
    }
    caller_sleeping_.store(false);
  }
  job_ = nullptr;
  {
    std::lock_guard<std::mutex> lock(err_mu_);
    if (!err) err = error_;
    error_ = nullptr;
  }
  if (err) std::rethrow_exception(err);
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int64_t parts = std::min<int64_t>(n_, (n + grain - 1) / grain);
  if (parts <= 1 || t_in_region) {
    fn(0, n);
    return;
  }
  run([&](int w, int) {
    if (w >= parts) return;
    int64_t b = n * w / parts, e = n * (w + 1) / parts;
    if (b < e) fn(b, e);
  });
}

void ThreadPool::parallel_dynamic(int64_t n, const std::function<void(int64_t)>& fn) {
  if (n <= 0) return;
  if (n == 1 || n_ == 1 || t_in_region) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<int64_t> next{0};
  run([&](int, int) {
    for (;;) {
      const int64_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= n) return;
      try {
        fn(i);
      } catch (...) {
        next.store(n, std::memory_order_relaxed);  // stop handing out work
        throw;
      }
    }
  });
}

}  // namespace focus::cpu
