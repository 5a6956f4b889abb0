// A small persistent thread pool for the CPU kernels: a fixed number of workers created once,
// woken per call, with a static partition of [0, n) into one contiguous range per thread.
// No allocation per call (the work item is a function pointer and a context pointer), so it is
// safe to call from the decode loop. Calls are serialised: one parallel region at a time; a call
// made from inside a parallel region (or on a 1-thread pool) runs inline on the caller; calls from
// different threads are serialised by a mutex.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace dsv4 {

// How parallel_for hands out [0, n). Static: one contiguous range per thread, fixed by n and the
// thread count (results that depend on which thread did what stay reproducible). Stealing: each
// thread starts on its static range and claims it front to back in pieces of a quarter of what
// is left of it; a thread whose range is used up takes the back half of the largest range left
// and goes on there. A thread that runs slower (a busier memory channel, a time-shared core) so
// gives up part of its range and all finish together, while each thread still streams one
// contiguous range (a decode GEMV's software prefetch runs ahead across its pieces; with one
// shared cursor, as before, every piece started cold: 2-16% slower GEMVs of 1-33 MB). Only for
// bodies whose result per element does not depend on the thread that computes it.
enum class Schedule { Static, Stealing };

namespace detail {
// A range [lo, hi) of units, both below 2^31, packed in one word (Schedule::Stealing): a claim
// and a steal are each one compare-and-swap, and the word alone says which units are whose, so a
// stale read only makes a CAS fail.
constexpr uint64_t pack_range(int64_t lo, int64_t hi) { return uint64_t(lo) | uint64_t(hi) << 32; }
constexpr int64_t range_lo(uint64_t r) { return int64_t(r & 0xFFFFFFFFu); }
constexpr int64_t range_size(uint64_t r) { return int64_t(r >> 32) - range_lo(r); }
struct alignas(64) StealSlot {  // one per thread, each on its own cache line
  std::atomic<uint64_t> range{0};
};
// Steals the back half of the largest range in slots other than `self` into slots[self]; false
// when every other range is empty.
bool steal_range(StealSlot* slots, int threads, int self);
}  // namespace detail

class ThreadPool {
 public:
  // threads <= 0: std::thread::hardware_concurrency(). The calling thread is thread 0, so
  // `threads - 1` workers are started.
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(ctx, t) once on every thread t in [0, size()); returns when all have finished.
  void run(void (*fn)(void* ctx, int thread), void* ctx);

  // [0, n) in units of `grain` (the last unit may be short). Static: thread t gets one contiguous
  // range and calls f(begin, end, t) once if the range is not empty. Stealing: f(begin, end, t) is
  // called once per claimed piece (unit-aligned; increasing within each range a thread works on).
  template <class F>
  void parallel_for(int64_t n, int64_t grain, F&& f, Schedule schedule = Schedule::Static);

  // The range thread t of `threads` gets for parallel_for(n, grain).
  static void partition(int64_t n, int64_t grain, int threads, int t, int64_t* begin, int64_t* end);

 private:
  void worker(int index);
  static bool t_in_region_now();  // inside a parallel region (nested calls run inline)

  int n_threads_ = 1;
  std::unique_ptr<detail::StealSlot[]> slots_;  // Schedule::Stealing, one per thread
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex run_mutex_;
  void (*fn_)(void*, int) = nullptr;
  void* ctx_ = nullptr;
};

// `pool`, or nullptr (run serially) when the work is too small to pay for waking the workers:
// `work` in multiply-accumulates (or comparable element operations).
inline ThreadPool* pool_for_work(ThreadPool* pool, double work) {
  constexpr double kMinParallelWork = 1 << 20;  // ~10-30 us of SIMD work
  return work >= kMinParallelWork ? pool : nullptr;
}

// Runs on `pool` when given, else serially on the caller (thread index 0 of 1).
template <class F>
void parallel_for(ThreadPool* pool, int64_t n, int64_t grain, F&& f,
                  Schedule schedule = Schedule::Static) {
  if (pool) {
    pool->parallel_for(n, grain, std::forward<F>(f), schedule);
  } else if (n > 0) {
    f(int64_t{0}, n, 0);
  }
}

template <class F>
void ThreadPool::parallel_for(int64_t n, int64_t grain, F&& f, Schedule schedule) {
  if (n <= 0) return;
  using Fn = std::remove_reference_t<F>;
  struct Ctx {
    Fn* f;
    int64_t n, grain;
    int threads;
  } ctx{&f, n, grain < 1 ? 1 : grain, n_threads_};
  if (schedule == Schedule::Static || n_threads_ == 1 || t_in_region_now()) {
    run(
        [](void* p, int t) {
          auto* c = static_cast<Ctx*>(p);
          int64_t b, e;
          partition(c->n, c->grain, c->threads, t, &b, &e);
          if (b < e) (*c->f)(b, e, t);
        },
        &ctx);
    return;
  }
  struct StealCtx {
    Fn* f;
    int64_t n, grain, units;
    int threads;
    detail::StealSlot* slots;
  } sc{&f, n, ctx.grain, (n + ctx.grain - 1) / ctx.grain, n_threads_, slots_.get()};
  if (sc.units > int64_t{0x7FFFFFFF}) {  // beyond the packed range: never in practice
    parallel_for(n, grain, std::forward<F>(f), Schedule::Static);
    return;
  }
  run(
      [](void* p, int t) {
        auto* c = static_cast<StealCtx*>(p);
        std::atomic<uint64_t>& own = c->slots[t].range;
        int64_t b, e;
        partition(c->units, 1, c->threads, t, &b, &e);
        // Until this store the slot reads empty (every range is used up when a call ends), so
        // another thread cannot take units this one has not been given yet.
        own.store(detail::pack_range(b, e), std::memory_order_relaxed);
        do {
          uint64_t r = own.load(std::memory_order_relaxed);
          while (detail::range_size(r) > 0) {
            const int64_t lo = detail::range_lo(r), hi = lo + detail::range_size(r);
            const int64_t take = std::max<int64_t>(1, (hi - lo) / 4);
            if (!own.compare_exchange_weak(r, detail::pack_range(lo + take, hi), std::memory_order_relaxed))
              continue;
            (*c->f)(lo * c->grain, std::min(c->n, (lo + take) * c->grain), t);
            r = own.load(std::memory_order_relaxed);
          }
        } while (detail::steal_range(c->slots, c->threads, t));
      },
      &sc);
}

}  // namespace dsv4
