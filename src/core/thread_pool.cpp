#include "core/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DSV4_PAUSE() _mm_pause()
#else
#define DSV4_PAUSE() ((void)0)
#endif

namespace dsv4 {
namespace {
// True while this thread executes inside a parallel region (nested calls run inline).
thread_local bool t_in_region = false;
// Spin this many pause iterations before sleeping on the futex: back-to-back kernel calls of a
// decode step then cost no wake-up (~0.1 ms of spinning at most), while an idle pool sleeps and
// leaves a shared machine to others.
constexpr int kSpinIters = 2000;
}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = threads;
  workers_.reserve(threads - 1);
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::partition(int64_t n, int64_t grain, int threads, int t, int64_t* begin,
                           int64_t* end) {
  const int64_t units = (n + grain - 1) / grain;
  const int64_t ub = units * t / threads, ue = units * (t + 1) / threads;
  *begin = std::min(n, ub * grain);
  *end = std::min(n, ue * grain);
}

void ThreadPool::run(void (*fn)(void*, int), void* ctx) {
  if (n_threads_ == 1 || t_in_region) {
    // Inline: every "thread" index in turn keeps the partition identical to the parallel case.
    for (int t = 0; t < n_threads_; ++t) fn(ctx, t);
    return;
  }
  std::lock_guard<std::mutex> lock(run_mutex_);
  fn_ = fn;
  ctx_ = ctx;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  t_in_region = true;
  fn(ctx, 0);
  t_in_region = false;
  for (int i = 0; pending_.load(std::memory_order_acquire) != 0; ++i) {
    if (i < kSpinIters) {
      DSV4_PAUSE();
    } else {
      int p = pending_.load(std::memory_order_acquire);
      if (p != 0) pending_.wait(p, std::memory_order_acquire);
    }
  }
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  t_in_region = true;
  for (;;) {
    uint64_t g;
    for (int i = 0;; ++i) {
      g = generation_.load(std::memory_order_acquire);
      if (g != seen) break;
      if (i < kSpinIters) {
        DSV4_PAUSE();
      } else {
        generation_.wait(seen, std::memory_order_acquire);
      }
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    fn_(ctx_, index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
  }
}

}  // namespace dsv4
