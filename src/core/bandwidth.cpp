#include "core/bandwidth.h"

// GCC 12 warns about its own _mm512_undefined_*() inside the intrinsic headers when they are used
// through target attributes (a false positive; see kernels/cpu/simd_avx512.h).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <chrono>
#include <vector>

#include "core/error.h"

namespace dsv4 {
namespace {

// Eight independent accumulators keep the loads in flight; integer adds vectorise freely.
uint64_t sum_words_plain(const uint64_t* p, size_t n) {
  uint64_t a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) a[j] += p[i + j];
  for (; i < n; ++i) a[0] += p[i];
  uint64_t s = 0;
  for (uint64_t v : a) s += v;
  return s;
}

#if defined(__x86_64__)
// 64-byte loads, four independent vector accumulators (a cache line per load).
__attribute__((target("avx512f"))) uint64_t sum_words_avx512(const uint64_t* p, size_t n) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm512_add_epi64(a0, _mm512_loadu_si512(p + i));
    a1 = _mm512_add_epi64(a1, _mm512_loadu_si512(p + i + 8));
    a2 = _mm512_add_epi64(a2, _mm512_loadu_si512(p + i + 16));
    a3 = _mm512_add_epi64(a3, _mm512_loadu_si512(p + i + 24));
  }
  alignas(64) uint64_t lanes[8];  // unsigned sum (the intrinsic reduction adds as signed)
  _mm512_store_si512(lanes, _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
  return sum_words_plain(lanes, 8) + sum_words_plain(p + i, n - i);
}

__attribute__((target("avx2"))) uint64_t sum_words_avx2(const uint64_t* p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
    a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
    a3 = _mm256_add_epi64(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 12)));
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes),
                     _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
  return lanes[0] + lanes[1] + lanes[2] + lanes[3] + sum_words_plain(p + i, n - i);
}
#endif

using SumFn = uint64_t (*)(const uint64_t*, size_t);

SumFn pick_sum() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return sum_words_avx512;
  if (__builtin_cpu_supports("avx2")) return sum_words_avx2;
#endif
  return sum_words_plain;
}

}  // namespace

ReadProbe::ReadProbe(ThreadPool* pool, size_t bytes) : pool_(pool), words_(bytes / 8) {
  if (bytes < (size_t{1} << 20)) throw_error("bandwidth probe: buffer of ", bytes, " bytes is too small (min 1 MiB)");
  buf_.reset(new uint64_t[words_]);  // not value-initialised: touched below
  uint64_t* data = buf_.get();
  parallel_for(pool_, static_cast<int64_t>(words_), 512, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) data[i] = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
  });
}

BandwidthResult ReadProbe::run(int reps) const {
  if (reps < 1) throw_error("bandwidth probe: reps = ", reps, " must be >= 1");
  static const SumFn sum = pick_sum();
  const uint64_t* data = buf_.get();
  const int threads = pool_ ? pool_->size() : 1;
  std::vector<uint64_t> sink(static_cast<size_t>(threads), 0);
  std::vector<double> rates;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(pool_, static_cast<int64_t>(words_), 512, [&](int64_t b, int64_t e, int t) {
      sink[static_cast<size_t>(t)] += sum(data + b, static_cast<size_t>(e - b));
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(static_cast<double>(words_ * 8) / s / 1e9);
  }
  uint64_t all = 0;
  for (uint64_t v : sink) all += v;
  if (all == 0x5A5A5A5A5A5A5A5Aull) rates.push_back(0);  // keeps the sums observable
  BandwidthResult res;
  res.bytes = words_ * 8;
  res.threads = threads;
  res.gb_per_s = *std::max_element(rates.begin(), rates.end());
  std::sort(rates.begin(), rates.end());
  res.median_gb_per_s = rates[rates.size() / 2];
  return res;
}

BandwidthResult measure_read_bandwidth(ThreadPool* pool, size_t bytes, int reps) {
  const ReadProbe probe(pool, bytes);
  return probe.run(reps);
}

}  // namespace dsv4
