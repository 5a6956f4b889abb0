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
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace dsv4 {

// How parallel_for hands out [0, n). Static: one contiguous range per thread, fixed by n and the
// thread count (results that depend on which thread did what stay reproducible). Guided: threads
// claim pieces from a shared cursor, each piece 1/(2 x threads) of what is left (at least one
// grain unit), so a thread that runs slower (a busier memory channel, a time-shared core) takes
// fewer pieces and all finish together. Only for bodies whose result per element does not depend
// on the thread that computes it.
enum class Schedule { Static, Guided };

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
  // range and calls f(begin, end, t) once if the range is not empty. Guided: f(begin, end, t) is
  // called once per claimed piece (unit-aligned, in increasing order per thread).
  template <class F>
  void parallel_for(int64_t n, int64_t grain, F&& f, Schedule schedule = Schedule::Static);

  // The range thread t of `threads` gets for parallel_for(n, grain).
  static void partition(int64_t n, int64_t grain, int threads, int t, int64_t* begin, int64_t* end);

 private:
  void worker(int index);
  static bool t_in_region_now();  // inside a parallel region (nested calls run inline)

  int n_threads_ = 1;
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
    std::atomic<int64_t> next{0};  // Guided: the first unclaimed unit
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
  run(
      [](void* p, int t) {
        auto* c = static_cast<Ctx*>(p);
        const int64_t units = (c->n + c->grain - 1) / c->grain;
        for (;;) {
          int64_t u = c->next.load(std::memory_order_relaxed), take;
          do {
            if (u >= units) return;
            take = std::max<int64_t>(1, (units - u) / (2 * c->threads));
          } while (!c->next.compare_exchange_weak(u, u + take, std::memory_order_relaxed));
          (*c->f)(u * c->grain, std::min(c->n, (u + take) * c->grain), t);
        }
      },
      &ctx);
}

}  // namespace dsv4
