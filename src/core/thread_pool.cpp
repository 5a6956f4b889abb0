#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>

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
// Spin this long before sleeping on the futex. The serial work between the kernel calls of a
// decode step (norms, routing, attention set-up) then costs no futex wake-up (tens of us each,
// dozens of calls per token), while an idle pool sleeps and leaves a shared machine to others.
// Measured in time, not pause iterations: PAUSE takes ~10-140 cycles depending on the core.
constexpr auto kSpin = std::chrono::microseconds(300);

// Spins until ready() or kSpin has passed; true if ready.
template <class Ready>
bool spin_until(Ready&& ready) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    if (ready()) return true;
    DSV4_PAUSE();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() >= until) return ready();
  }
}
}  // namespace

bool ThreadPool::t_in_region_now() { return t_in_region; }

bool detail::steal_range(StealSlot* slots, int threads, int self) {
  for (;;) {
    int victim = -1;
    uint64_t vr = 0;
    for (int v = 0; v < threads; ++v) {
      const uint64_t r = slots[v].range.load(std::memory_order_relaxed);
      if (v != self && range_size(r) > range_size(vr)) victim = v, vr = r;
    }
    if (victim < 0) return false;
    const int64_t lo = range_lo(vr), hi = lo + range_size(vr), mid = lo + (hi - lo) / 2;
    if (slots[victim].range.compare_exchange_strong(vr, pack_range(lo, mid), std::memory_order_relaxed)) {
      slots[self].range.store(pack_range(mid, hi), std::memory_order_relaxed);
      return true;
    }
  }
}

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = threads;
  slots_ = std::make_unique<detail::StealSlot[]>(static_cast<size_t>(threads));
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
  if (spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; })) return;
  for (int p = pending_.load(std::memory_order_acquire); p != 0; p = pending_.load(std::memory_order_acquire))
    pending_.wait(p, std::memory_order_acquire);
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  t_in_region = true;
  for (;;) {
    uint64_t g = seen;
    if (!spin_until([&] { return (g = generation_.load(std::memory_order_acquire)) != seen; })) {
      while ((g = generation_.load(std::memory_order_acquire)) == seen)
        generation_.wait(seen, std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    fn_(ctx_, index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
  }
}

}  // namespace dsv4
