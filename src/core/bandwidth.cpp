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
#include "core/mmap_file.h"

namespace dsv4 {
namespace {

// Every thread reads its slice as kStreams interleaved sequential streams (equal parts, two
// cache lines of each per step), the way a GEMV reads its panel of weight rows: on the 2-core
// Sapphire Rapids VM one stream per thread read 14-18 GB/s where 4-16 streams read 20-25 and a
// BF16 GEMV 21-29, so a one-stream probe made decode look faster than the memory (fractions up
// to 1.4). 32 streams read less again.
constexpr size_t kStreams = 8;
constexpr size_t kStep = 16;  // words per stream per step (two cache lines)

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

// Words per stream: the slice's length rounded down to whole steps of every stream (the rest is
// summed plainly after the streams).
size_t stream_part(size_t n) { return n / (kStreams * kStep) * kStep; }

uint64_t sum_streams_plain(const uint64_t* p, size_t n) {
  const size_t part = stream_part(n);
  uint64_t a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (size_t i = 0; i < part; i += kStep)
    for (size_t s = 0; s < kStreams; ++s)
      for (size_t j = 0; j < kStep; ++j) a[j % 8] += p[s * part + i + j];
  return sum_words_plain(a, 8) + sum_words_plain(p + kStreams * part, n - kStreams * part);
}

#if defined(__x86_64__)
// 64-byte loads (a cache line per load).
__attribute__((target("avx512f"))) uint64_t sum_streams_avx512(const uint64_t* p, size_t n) {
  const size_t part = stream_part(n);
  __m512i a0 = _mm512_setzero_si512(), a1 = a0;
  for (size_t i = 0; i < part; i += kStep)
    for (size_t s = 0; s < kStreams; ++s) {
      const uint64_t* q = p + s * part + i;
      a0 = _mm512_add_epi64(a0, _mm512_loadu_si512(q));
      a1 = _mm512_add_epi64(a1, _mm512_loadu_si512(q + 8));
    }
  alignas(64) uint64_t lanes[8];  // unsigned sum (the intrinsic reduction adds as signed)
  _mm512_store_si512(lanes, _mm512_add_epi64(a0, a1));
  return sum_words_plain(lanes, 8) + sum_words_plain(p + kStreams * part, n - kStreams * part);
}

__attribute__((target("avx2"))) uint64_t sum_streams_avx2(const uint64_t* p, size_t n) {
  const size_t part = stream_part(n);
  __m256i a0 = _mm256_setzero_si256(), a1 = a0;
  for (size_t i = 0; i < part; i += kStep)
    for (size_t s = 0; s < kStreams; ++s) {
      const __m256i* q = reinterpret_cast<const __m256i*>(p + s * part + i);
      a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(q));
      a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(q + 1));
      a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(q + 2));
      a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(q + 3));
    }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_add_epi64(a0, a1));
  return sum_words_plain(lanes, 4) + sum_words_plain(p + kStreams * part, n - kStreams * part);
}
#endif

using SumFn = uint64_t (*)(const uint64_t*, size_t);

bool cpu_has(ProbeLoads loads) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (loads == ProbeLoads::avx512) return __builtin_cpu_supports("avx512f");
  if (loads == ProbeLoads::avx2) return __builtin_cpu_supports("avx2");
#endif
  return loads == ProbeLoads::plain;
}

SumFn sum_fn(ProbeLoads loads) {
#if defined(__x86_64__)
  if (loads == ProbeLoads::avx512) return sum_streams_avx512;
  if (loads == ProbeLoads::avx2) return sum_streams_avx2;
#endif
  return sum_streams_plain;
}

ProbeLoads widest_loads() {
  for (ProbeLoads l : {ProbeLoads::avx512, ProbeLoads::avx2})
    if (cpu_has(l)) return l;
  return ProbeLoads::plain;
}

}  // namespace

bool probe_loads_supported(ProbeLoads loads) { return cpu_has(loads); }

uint64_t probe_sum(ProbeLoads loads, const uint64_t* p, size_t n) {
  if (!cpu_has(loads)) {
    const char* name = loads == ProbeLoads::avx512 ? "AVX-512" : loads == ProbeLoads::avx2 ? "AVX2" : "plain";
    throw_error("bandwidth probe: this CPU has no ", name, " loads");
  }
  return sum_fn(loads)(p, n);
}

void ReadProbe::Unmap::operator()(uint64_t* p) const { unmap_huge(p, bytes); }

// The buffer is memory of the kind the engine's private weights lie in (map_huge: transparent
// huge pages advised), so the probe reads the way decode does.
ReadProbe::ReadProbe(ThreadPool* pool, size_t bytes)
    : pool_(pool), words_(bytes / 8), buf_(nullptr, Unmap{bytes / 8 * 8}) {
  if (bytes < (size_t{1} << 20)) throw_error("bandwidth probe: buffer of ", bytes, " bytes is too small (min 1 MiB)");
  buf_.reset(static_cast<uint64_t*>(map_huge(words_ * 8)));  // written below
  if (!buf_) throw_error("bandwidth probe: cannot map ", words_ * 8, " bytes");
  uint64_t* data = buf_.get();
  parallel_for(pool_, static_cast<int64_t>(words_), 512, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) data[i] = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
  });
}

BandwidthResult ReadProbe::run(int reps) const {
  if (reps < 1) throw_error("bandwidth probe: reps = ", reps, " must be >= 1");
  static const SumFn sum = sum_fn(widest_loads());
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
  BandwidthResult res;
  for (uint64_t v : sink) res.checksum += v;  // keeps the sums observable
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
