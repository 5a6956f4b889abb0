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

// Every thread reads its own slice in each of the probe's patterns (ProbePattern), and a pass
// keeps the fastest: no one pattern reads fastest on every machine. On the 2-core Sapphire Rapids
// VM one stream per thread read 14-18 GB/s where 4-16 interleaved streams read 20-25 (and a BF16
// GEMV 21-29); on the Zen 5 VM, 8 interleaved streams read 0.73-0.80 of what one stream with a
// software prefetch 32 KiB ahead read (36.6 vs 49.2 GB/s, 2026-12-07), and in its fastest
// minutes two far-apart streams read 2 KiB at a time read more than either. A probe that
// under-reads the memory makes every kernel look closer to the bandwidth than it is.
constexpr ProbePattern kPatterns[] = {
    {8, 16, false, "8 interleaved streams"},
    {1, 16, true, "1 stream + prefetch"},
    {2, 256, false, "2 streams x 2 KiB"},
};
constexpr size_t kPrefetchWords = 32768 / 8;  // the decode GEMVs' prefetch distance

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
// summed plainly after the streams). Steps are multiples of 16 words (two cache lines).
size_t stream_part(const ProbePattern& pat, size_t n) {
  return n / (size_t(pat.streams) * pat.step_words) * pat.step_words;
}

// Prefetch hint for the word `kPrefetchWords` ahead of q in its stream. A prefetch past the
// buffer's end is harmless (prefetches never fault).
inline void prefetch_ahead(const uint64_t* q) {
#if defined(__x86_64__)
  _mm_prefetch(reinterpret_cast<const char*>(q + kPrefetchWords), _MM_HINT_T0);
#else
  __builtin_prefetch(q + kPrefetchWords, 0, 3);
#endif
}

uint64_t sum_streams_plain(const ProbePattern& pat, const uint64_t* p, size_t n) {
  const size_t part = stream_part(pat, n);
  uint64_t a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (size_t i = 0; i < part; i += pat.step_words)
    for (size_t s = 0; s < size_t(pat.streams); ++s)
      for (size_t j = 0; j < pat.step_words; ++j) {
        if (pat.prefetch && j % 8 == 0) prefetch_ahead(p + s * part + i + j);
        a[j % 8] += p[s * part + i + j];
      }
  const size_t done = size_t(pat.streams) * part;
  return sum_words_plain(a, 8) + sum_words_plain(p + done, n - done);
}

#if defined(__x86_64__)
// 64-byte loads (a cache line per load), two per 16 words.
__attribute__((target("avx512f"))) uint64_t sum_streams_avx512(const ProbePattern& pat, const uint64_t* p, size_t n) {
  const size_t part = stream_part(pat, n);
  __m512i a0 = _mm512_setzero_si512(), a1 = a0;
  for (size_t i = 0; i < part; i += pat.step_words)
    for (size_t s = 0; s < size_t(pat.streams); ++s)
      for (size_t j = 0; j < pat.step_words; j += 16) {
        const uint64_t* q = p + s * part + i + j;
        if (pat.prefetch) {
          prefetch_ahead(q);
          prefetch_ahead(q + 8);
        }
        a0 = _mm512_add_epi64(a0, _mm512_loadu_si512(q));
        a1 = _mm512_add_epi64(a1, _mm512_loadu_si512(q + 8));
      }
  alignas(64) uint64_t lanes[8];  // unsigned sum (the intrinsic reduction adds as signed)
  _mm512_store_si512(lanes, _mm512_add_epi64(a0, a1));
  const size_t done = size_t(pat.streams) * part;
  return sum_words_plain(lanes, 8) + sum_words_plain(p + done, n - done);
}

__attribute__((target("avx2"))) uint64_t sum_streams_avx2(const ProbePattern& pat, const uint64_t* p, size_t n) {
  const size_t part = stream_part(pat, n);
  __m256i a0 = _mm256_setzero_si256(), a1 = a0;
  for (size_t i = 0; i < part; i += pat.step_words)
    for (size_t s = 0; s < size_t(pat.streams); ++s)
      for (size_t j = 0; j < pat.step_words; j += 16) {
        const uint64_t* w = p + s * part + i + j;
        if (pat.prefetch) {
          prefetch_ahead(w);
          prefetch_ahead(w + 8);
        }
        const __m256i* q = reinterpret_cast<const __m256i*>(w);
        a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(q));
        a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(q + 1));
        a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(q + 2));
        a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(q + 3));
      }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_add_epi64(a0, a1));
  const size_t done = size_t(pat.streams) * part;
  return sum_words_plain(lanes, 4) + sum_words_plain(p + done, n - done);
}
#endif

using SumFn = uint64_t (*)(const ProbePattern&, const uint64_t*, size_t);

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

std::span<const ProbePattern> probe_patterns() { return kPatterns; }

uint64_t probe_sum(ProbeLoads loads, const ProbePattern& pattern, const uint64_t* p, size_t n) {
  if (!cpu_has(loads)) {
    const char* name = loads == ProbeLoads::avx512 ? "AVX-512" : loads == ProbeLoads::avx2 ? "AVX2" : "plain";
    throw_error("bandwidth probe: this CPU has no ", name, " loads");
  }
  if (pattern.streams < 1 || pattern.step_words == 0 || pattern.step_words % 16 != 0)
    throw_error("bandwidth probe: pattern '", pattern.name, "' needs >= 1 stream and steps of 16 words");
  return sum_fn(loads)(pattern, p, n);
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
  std::vector<double> rates;  // per pass: the fastest pattern
  BandwidthResult res;
  res.by_pattern.assign(std::size(kPatterns), 0.0);
  for (int r = 0; r < reps; ++r) {
    double best = 0;
    for (size_t i = 0; i < std::size(kPatterns); ++i) {
      const ProbePattern& pat = kPatterns[i];
      const auto t0 = std::chrono::steady_clock::now();
      parallel_for(pool_, static_cast<int64_t>(words_), 512, [&](int64_t b, int64_t e, int t) {
        sink[static_cast<size_t>(t)] += sum(pat, data + b, static_cast<size_t>(e - b));
      });
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double rate = static_cast<double>(words_ * 8) / s / 1e9;
      best = std::max(best, rate);
      res.by_pattern[i] = std::max(res.by_pattern[i], rate);
      if (rate > res.gb_per_s) {
        res.gb_per_s = rate;
        res.pattern = pat.name;
      }
    }
    rates.push_back(best);
  }
  for (uint64_t v : sink) res.checksum += v;  // keeps the sums observable
  res.bytes = words_ * 8;
  res.threads = threads;
  res.passes = reps * static_cast<int>(std::size(kPatterns));
  std::sort(rates.begin(), rates.end());
  res.median_gb_per_s = rates[rates.size() / 2];
  return res;
}

BandwidthResult measure_read_bandwidth(ThreadPool* pool, size_t bytes, int reps) {
  const ReadProbe probe(pool, bytes);
  return probe.run(reps);
}

}  // namespace dsv4
