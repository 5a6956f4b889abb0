// Streaming-read bandwidth probe: the yardstick for "fraction of memory bandwidth" in benches.
// Every thread of the pool sums its own contiguous slice of one large buffer (first touched by
// the same thread, so pages sit near it); the best of `reps` passes is reported.
#pragma once
#include <cstddef>

#include "core/thread_pool.h"

namespace dsv4 {

struct BandwidthResult {
  double gb_per_s = 0;  // 1e9 bytes per second, best pass
  double median_gb_per_s = 0;
  size_t bytes = 0;     // buffer size
  int threads = 1;
};

// bytes: buffer size (should exceed the last-level cache several times); reps >= 1 passes.
BandwidthResult measure_read_bandwidth(ThreadPool* pool, size_t bytes = size_t{1} << 30,
                                       int reps = 5);

}  // namespace dsv4
