// Streaming-read bandwidth probe: the yardstick for "fraction of memory bandwidth" in benches.
// Every thread of the pool sums its own contiguous slice of one large buffer (first touched by
// the same thread, so pages sit near it) as 8 interleaved sequential streams, the access pattern
// of a GEMV over a panel of weight rows, with the widest loads the CPU has (AVX-512 / AVX2 /
// SSE2), so that a kernel's loads are never wider than the probe's.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/thread_pool.h"

namespace dsv4 {

struct BandwidthResult {
  double gb_per_s = 0;  // 1e9 bytes per second, best pass
  double median_gb_per_s = 0;
  size_t bytes = 0;     // buffer size
  int threads = 1;
  uint64_t checksum = 0;  // sum of every word read, over all passes (mod 2^64)
};

// The probe's summing loop with a given load width (for tests: each must read every word once).
enum class ProbeLoads { plain, avx2, avx512 };
bool probe_loads_supported(ProbeLoads loads);
uint64_t probe_sum(ProbeLoads loads, const uint64_t* p, size_t n);  // throws if unsupported

// A probe buffer allocated and touched once, measured as often as wanted (benches interleave
// short probes with the runs they judge, on a machine whose bandwidth drifts).
class ReadProbe {
 public:
  ReadProbe(ThreadPool* pool, size_t bytes);  // bytes >= 1 MiB
  BandwidthResult run(int reps) const;        // reps >= 1 passes over the buffer
  size_t bytes() const { return words_ * 8; }

 private:
  struct Unmap {
    size_t bytes;
    void operator()(uint64_t* p) const;
  };
  ThreadPool* pool_;
  size_t words_;
  std::unique_ptr<uint64_t[], Unmap> buf_;
};

// bytes: buffer size (should exceed the last-level cache several times); reps >= 1 passes.
BandwidthResult measure_read_bandwidth(ThreadPool* pool, size_t bytes = size_t{1} << 30,
                                       int reps = 5);

}  // namespace dsv4
