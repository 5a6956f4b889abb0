#include "core/bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/error.h"

namespace dsv4 {
namespace {

// Eight independent accumulators keep the loads in flight; integer adds vectorise freely.
uint64_t sum_words(const uint64_t* p, size_t n) {
  uint64_t a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) a[j] += p[i + j];
  for (; i < n; ++i) a[0] += p[i];
  uint64_t s = 0;
  for (uint64_t v : a) s += v;
  return s;
}

}  // namespace

BandwidthResult measure_read_bandwidth(ThreadPool* pool, size_t bytes, int reps) {
  if (bytes < (size_t{1} << 20)) throw_error("bandwidth probe: buffer of ", bytes, " bytes is too small (min 1 MiB)");
  if (reps < 1) throw_error("bandwidth probe: reps = ", reps, " must be >= 1");
  const size_t words = bytes / 8;
  std::unique_ptr<uint64_t[]> buf(new uint64_t[words]);  // not value-initialised: touched below
  uint64_t* data = buf.get();
  const int threads = pool ? pool->size() : 1;
  parallel_for(pool, static_cast<int64_t>(words), 512, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) data[i] = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
  });
  std::vector<uint64_t> sink(threads, 0);
  std::vector<double> rates;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(pool, static_cast<int64_t>(words), 512, [&](int64_t b, int64_t e, int t) {
      sink[t] += sum_words(data + b, static_cast<size_t>(e - b));
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(static_cast<double>(words * 8) / s / 1e9);
  }
  uint64_t all = 0;
  for (uint64_t v : sink) all += v;
  if (all == 0x5A5A5A5A5A5A5A5Aull) rates.push_back(0);  // keeps the sums observable
  BandwidthResult res;
  res.bytes = words * 8;
  res.threads = threads;
  res.gb_per_s = *std::max_element(rates.begin(), rates.end());
  std::sort(rates.begin(), rates.end());
  res.median_gb_per_s = rates[rates.size() / 2];
  return res;
}

}  // namespace dsv4
