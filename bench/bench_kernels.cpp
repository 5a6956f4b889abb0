// Microbenchmarks of the fast CPU kernels at DeepSeek-V4 Flash shapes. Counters:
//   bytes_per_second  weight bytes streamed (codes + scales), the decode bound
//   FLOP/s            2 * M * N * K
//   bw_frac           bytes_per_second / the streaming-read probe (core/bandwidth.h)
// Weights are replicated into enough copies to exceed 1 GiB, and successive iterations rotate
// through them, so a GEMV reads DRAM, not the last-level cache. Threads: DSV4_THREADS (default all).
// Example: build/dsv4_bench --benchmark_filter=Fp8 --benchmark_min_time=1
#include "kernels/cpu/simd_avx512.h"  // first: wraps <immintrin.h>

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "core/bandwidth.h"
#include "core/thread_pool.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/formats.h"
#include "kernels/cpu/linear.h"

namespace {

using namespace dsv4;
using namespace dsv4::cpu;

ThreadPool& pool() {
  static ThreadPool p([] {
    const char* e = std::getenv("DSV4_THREADS");
    return e ? std::atoi(e) : 0;
  }());
  return p;
}

double probe_gb_per_s() {
  static const double g = measure_read_bandwidth(&pool(), size_t{1} << 30, 5).gb_per_s;
  return g;
}

constexpr size_t kRotateBytes = size_t{1} << 30;

// Bytes filled with a cheap LCG; `finite_e4m3` avoids the NaN codes; `scale_bytes` keep E8M0
// scales near 1.
void fill(std::vector<uint8_t>& v, uint64_t seed, bool finite_e4m3) {
  uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (auto& b : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    b = static_cast<uint8_t>(s >> 56);
    if (finite_e4m3 && (b & 0x7F) == 0x7F) b = 0x3F;
  }
}
void fill_scales(std::vector<uint8_t>& v) {
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>(120 + i % 8);
}

std::vector<float> act_rows(int64_t m, int64_t k) {
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> x(m * k);
  for (auto& v : x) v = d(rng);
  return x;
}

void set_counters(benchmark::State& st, double weight_bytes, double flops) {
  const double it = static_cast<double>(st.iterations());
  st.SetBytesProcessed(static_cast<int64_t>(weight_bytes * it));
  st.counters["FLOP/s"] = benchmark::Counter(flops * it, benchmark::Counter::kIsRate);
  st.counters["bw_frac"] = benchmark::Counter(weight_bytes * it / 1e9 / probe_gb_per_s(),
                                              benchmark::Counter::kIsRate);
  st.counters["threads"] = pool().size();
  st.SetLabel(isa_name(active_isa()));
}

// Args: N, K, M, isa (1 = detected, 0 = scalar)
void BM_LinearFp8(benchmark::State& st) {
  const int64_t n = st.range(0), k = st.range(1), m = st.range(2);
  set_isa(st.range(3) ? detected_isa() : Isa::Scalar);
  const size_t wbytes = n * k, sbytes = ((n + 127) / 128) * (k / 128);
  const size_t copies = m == 1 ? std::max<size_t>(1, kRotateBytes / wbytes) : 1;
  std::vector<std::vector<uint8_t>> w(copies, std::vector<uint8_t>(wbytes)), s(copies, std::vector<uint8_t>(sbytes));
  for (size_t c = 0; c < copies; ++c) {
    fill(w[c], c + 1, true);
    fill_scales(s[c]);
  }
  const auto x = act_rows(m, k);
  std::vector<float> y(m * n);
  probe_gb_per_s();
  size_t c = 0;
  for (auto _ : st) {
    linear_fp8({w[c].data(), s[c].data(), n, k}, {x.data(), m, k}, {y.data(), n}, &pool());
    benchmark::DoNotOptimize(y.data());
    c = (c + 1) % copies;
  }
  set_counters(st, double(wbytes + sbytes), 2.0 * m * n * k);
  set_isa(detected_isa());
}
BENCHMARK(BM_LinearFp8)
    ->ArgNames({"N", "K", "M", "simd"})
    ->Args({32768, 1024, 1, 1})
    ->Args({4096, 8192, 1, 1})
    ->Args({1024, 4096, 1, 1})
    ->Args({4096, 8192, 1, 0})
    ->Args({4096, 4096, 64, 1})
    ->Args({4096, 4096, 128, 1})
    ->Args({4096, 4096, 256, 1})
    ->Args({4096, 4096, 512, 1})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// Args: N, K, M (rows per expert), experts
void BM_LinearFp4(benchmark::State& st) {
  const int64_t n = st.range(0), k = st.range(1), m = st.range(2), experts = st.range(3);
  const size_t wbytes = n * k / 2, sbytes = n * k / 32, per = wbytes + sbytes;
  const size_t sets = m == 1 ? std::max<size_t>(1, kRotateBytes / (per * experts)) : 1;
  const size_t total = sets * experts;
  std::vector<std::vector<uint8_t>> w(total, std::vector<uint8_t>(wbytes)), s(total, std::vector<uint8_t>(sbytes));
  for (size_t c = 0; c < total; ++c) {
    fill(w[c], c + 11, false);
    fill_scales(s[c]);
  }
  const auto x = act_rows(m * experts, k);
  std::vector<float> y(m * experts * n);
  std::vector<std::vector<int32_t>> rows(experts);
  for (int64_t e = 0; e < experts; ++e)
    for (int64_t i = 0; i < m; ++i) rows[e].push_back(static_cast<int32_t>(i * experts + e));
  probe_gb_per_s();
  std::vector<Fp4Group> groups(experts);
  size_t c = 0;
  for (auto _ : st) {
    for (int64_t e = 0; e < experts; ++e) {
      const size_t idx = c * experts + e;
      groups[e] = {{w[idx].data(), s[idx].data(), n, k}, x.data(), k, rows[e].data(), m,
                   {y.data() + e * m * n, n}};
    }
    linear_fp4_grouped(groups, &pool());
    benchmark::DoNotOptimize(y.data());
    c = (c + 1) % sets;
  }
  set_counters(st, double(per * experts), 2.0 * m * n * k * experts);
}
BENCHMARK(BM_LinearFp4)
    ->ArgNames({"N", "K", "M", "experts"})
    ->Args({2048, 4096, 1, 1})
    ->Args({4096, 2048, 1, 1})
    ->Args({2048, 4096, 1, 6})
    ->Args({2048, 4096, 64, 1})
    ->Args({2048, 4096, 256, 1})
    ->Args({2048, 4096, 512, 1})
    ->Args({2048, 4096, 16, 16})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// Args: N, K, M, mode (0 = float32 activations / FMA, 1 = BF16 activations / vdpbf16ps)
void BM_LinearBf16(benchmark::State& st) {
  const int64_t n = st.range(0), k = st.range(1), m = st.range(2);
  const Bf16Act mode = st.range(3) ? Bf16Act::RoundToBf16 : Bf16Act::Float32;
  const size_t wbytes = n * k * 2;
  const size_t copies = m == 1 ? std::max<size_t>(1, kRotateBytes / wbytes) : 1;
  std::vector<std::vector<uint16_t>> w(copies, std::vector<uint16_t>(n * k));
  for (size_t c = 0; c < copies; ++c)
    for (size_t i = 0; i < w[c].size(); ++i)
      w[c][i] = f32_to_bf16_bits(static_cast<float>((i * 2654435761u + c) % 1000) * 1e-3f - 0.5f);
  const auto x = act_rows(m, k);
  std::vector<float> y(m * n);
  probe_gb_per_s();
  size_t c = 0;
  for (auto _ : st) {
    linear_bf16({w[c].data(), n, k}, {x.data(), m, k}, {y.data(), n}, &pool(), mode);
    benchmark::DoNotOptimize(y.data());
    c = (c + 1) % copies;
  }
  set_counters(st, double(wbytes), 2.0 * m * n * k);
}
BENCHMARK(BM_LinearBf16)
    ->ArgNames({"N", "K", "M", "bf16act"})
    ->Args({16384, 4096, 1, 0})
    ->Args({1024, 4096, 1, 1})
    ->Args({64, 4096, 1, 1})
    ->Args({1024, 4096, 256, 0})
    ->Args({1024, 4096, 256, 1})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

void BM_ReadBandwidthProbe(benchmark::State& st) {
  for (auto _ : st) {
    const auto r = measure_read_bandwidth(&pool(), size_t{1} << 30, 3);
    st.counters["GB/s"] = r.gb_per_s;
    st.counters["threads"] = r.threads;
  }
}
BENCHMARK(BM_ReadBandwidthProbe)->Iterations(1)->Unit(benchmark::kMillisecond);

// Peak multiply-accumulate throughput of one instruction stream per thread: 16 independent
// accumulator chains of vdpbf16ps (32 MAC each) or vfmadd231ps (16 MAC each) on registers.
DSV4_AVX512 float peak_dpbf16(int64_t iters) {
  __m512 acc[16];
  for (auto& a : acc) a = _mm512_setzero_ps();
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3F80), b = (__m512bh)_mm512_set1_epi16(0x3C00);
  for (int64_t i = 0; i < iters; ++i)
    for (auto& v : acc) v = _mm512_dpbf16_ps(v, a, b);
  __m512 s = _mm512_setzero_ps();
  for (auto& v : acc) s = _mm512_add_ps(s, v);
  return avx512::hsum(s);
}
DSV4_AVX512 float peak_fma(int64_t iters) {
  __m512 acc[16];
  for (auto& a : acc) a = _mm512_setzero_ps();
  const __m512 a = _mm512_set1_ps(1.0f), b = _mm512_set1_ps(1e-3f);
  for (int64_t i = 0; i < iters; ++i)
    for (auto& v : acc) v = _mm512_fmadd_ps(a, b, v);
  __m512 s = _mm512_setzero_ps();
  for (auto& v : acc) s = _mm512_add_ps(s, v);
  return avx512::hsum(s);
}

// Arg: 0 = FMA, 1 = vdpbf16ps. Reports MAC/s summed over the pool's threads.
void BM_PeakMac(benchmark::State& st) {
  if (detected_isa() != Isa::Avx512Bf16) {
    st.SkipWithError("needs AVX512-BF16");
    return;
  }
  const bool dp = st.range(0) != 0;
  const int64_t iters = 1 << 20;
  std::vector<float> out(pool().size());
  std::pair<bool, float*> ctx(dp, out.data());
  for (auto _ : st) {
    pool().run([](void* p, int t) {
      auto* o = static_cast<std::pair<bool, float*>*>(p);
      o->second[t] = o->first ? peak_dpbf16(iters) : peak_fma(iters);
    }, &ctx);
    benchmark::DoNotOptimize(out.data());
  }
  const double macs = double(iters) * 16 * (dp ? 32 : 16) * pool().size();
  st.counters["MAC/s"] = benchmark::Counter(macs * st.iterations(), benchmark::Counter::kIsRate);
  st.counters["FLOP/s"] = benchmark::Counter(2 * macs * st.iterations(), benchmark::Counter::kIsRate);
  st.SetLabel(dp ? "vdpbf16ps" : "vfmadd231ps");
}
BENCHMARK(BM_PeakMac)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
