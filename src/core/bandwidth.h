// Streaming-read bandwidth probe: the yardstick for "fraction of memory bandwidth" in benches.
// Every thread of the pool sums its own contiguous slice of one large buffer (first touched by
// the same thread, so pages sit near it) with the widest loads the CPU has (AVX-512 / AVX2 /
// SSE2), so that a kernel's loads are never wider than the probe's, in each of a few access
// patterns (probe_patterns(): interleaved streams, one prefetched stream, far-apart streams),
// and a pass keeps the fastest, so the probe measures what the memory gives rather than what one
// pattern gets on one machine.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/thread_pool.h"

namespace dsv4 {

struct BandwidthResult {
  double gb_per_s = 0;  // 1e9 bytes per second, best pass of any pattern
  double median_gb_per_s = 0;  // over passes, each the fastest of its patterns
  const char* pattern = "";    // the pattern of the best pass
  std::vector<double> by_pattern;  // each pattern's best pass, in probe_patterns() order
  size_t bytes = 0;     // buffer size
  int threads = 1;
  int passes = 0;  // reps x patterns
  uint64_t checksum = 0;  // sum of every word read, over all passes (mod 2^64)
};

// One access pattern: a thread's slice read as `streams` equal, far-apart parts, `step_words`
// (a multiple of 16) of each in turn, with a software prefetch 32 KiB ahead if `prefetch`.
struct ProbePattern {
  int streams;
  size_t step_words;
  bool prefetch;
  const char* name;
};
std::span<const ProbePattern> probe_patterns();

// The probe's summing loop with a given load width and pattern (for tests: each must read every
// word once).
enum class ProbeLoads { plain, avx2, avx512 };
bool probe_loads_supported(ProbeLoads loads);
// Throws if the CPU lacks the loads or the pattern is malformed.
uint64_t probe_sum(ProbeLoads loads, const ProbePattern& pattern, const uint64_t* p, size_t n);

// A probe buffer allocated and touched once, measured as often as wanted (benches interleave
// short probes with the runs they judge, on a machine whose bandwidth drifts).
class ReadProbe {
 public:
  ReadProbe(ThreadPool* pool, size_t bytes);  // bytes >= 1 MiB
  BandwidthResult run(int reps) const;        // reps >= 1 passes over the buffer per pattern
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
