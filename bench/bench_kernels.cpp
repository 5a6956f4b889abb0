// Microbenchmarks of the fast CPU kernels at DeepSeek-V4 Flash shapes. Counters:
//   bytes_per_second  weight bytes streamed (codes + scales), the decode bound
//   FLOP/s            2 * M * N * K
//   bw_frac           bytes_per_second / the streaming-read probe (core/bandwidth.h)
// Weights are replicated into enough copies to exceed 1 GiB, and successive iterations rotate
// through them, so a GEMV reads DRAM, not the last-level cache. Threads: DSV4_THREADS (default all).
// Example: build/dsv4_bench --benchmark_filter=Fp8 --benchmark_min_time=1
#include "kernels/cpu/simd_avx512.h"  // first: wraps <immintrin.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/bandwidth.h"
#include "core/mmap_file.h"
#include "core/thread_pool.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/formats.h"
#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/indexer_fp4.h"
#include "kernels/cpu/kv_decode.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/linear_kernels.h"
#include "kernels/cpu/rowwise.h"
#include "quant/quant.h"
#include "runtime/kv_codec.h"
#include "runtime/kv_gather.h"
#include "runtime/kv_store.h"

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

// Weight buffers in memory of the kind the engine's private weights lie in (map_huge:
// transparent huge pages advised). From the 4 KiB pages malloc returns, the same GEMVs read
// 15-21 GB/s where they read 29 from huge pages on the AMX Xeon (docs/performance.md), so a
// benchmark on them measured the page walks rather than the kernel.
template <class T>
struct HugeAlloc {
  using value_type = T;
  HugeAlloc() = default;
  template <class U>
  HugeAlloc(const HugeAlloc<U>&) {}
  T* allocate(size_t n) {
    void* p = map_huge(n * sizeof(T));
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) { unmap_huge(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const HugeAlloc<U>&) const { return true; }
};
using Bytes = std::vector<uint8_t, HugeAlloc<uint8_t>>;

// Bytes filled with a cheap LCG. `finite_e4m3`: FP8 codes distributed as in a block-scaled
// checkpoint, E4M3 of N(0, 1) x 64 (a 128 x 128 block's maximum, ~4.5 sigma, lands in (224, 448]),
// drawn from a table of 65536 such codes. Uniform bytes would put a zero or subnormal code (e = 0)
// in nearly every 64-byte chunk, where quantised weights have one in about 1% of the chunks, and
// the FMA decode GEMV takes a slower path for those chunks (fp8_fma_gemv.cpp). `scale_bytes`
// keep E8M0 scales near 1.
const std::vector<uint8_t>& gaussian_e4m3_table() {
  static const std::vector<uint8_t> t = [] {
    std::mt19937 rng(7);
    std::normal_distribution<float> d(0.0f, 64.0f);
    std::vector<uint8_t> v(65536);
    for (auto& c : v) c = quant::f32_to_e4m3(d(rng));
    return v;
  }();
  return t;
}
void fill(std::span<uint8_t> v, uint64_t seed, bool finite_e4m3) {
  uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
  const uint8_t* codes = finite_e4m3 ? gaussian_e4m3_table().data() : nullptr;
  for (auto& b : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    b = codes ? codes[s >> 48] : static_cast<uint8_t>(s >> 56);
  }
}
void fill_scales(std::span<uint8_t> v) {
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

// Args: N, K, M, isa (1 = detected, 0 = scalar), dram (1 = rotate copies through > 1 GiB,
// 0 = one cache-resident copy: the kernel's compute ceiling), off (the weights this many bytes
// past a 64-byte boundary, as checkpoint tensors mostly are)
void BM_LinearFp8(benchmark::State& st) {
  const int64_t n = st.range(0), k = st.range(1), m = st.range(2);
  set_isa(st.range(3) ? detected_isa() : Isa::Scalar);
  const size_t wbytes = n * k, sbytes = ((n + 127) / 128) * (k / 128);
  const size_t copies = m == 1 && st.range(4) ? std::max<size_t>(1, kRotateBytes / wbytes) : 1;
  const size_t mis = static_cast<size_t>(st.range(5));  // bytes past a 64-byte boundary
  std::vector<Bytes> w(copies, Bytes(wbytes + 64)), s(copies, Bytes(sbytes));
  for (size_t c = 0; c < copies; ++c) {
    fill(w[c], c + 1, true);
    fill_scales(s[c]);
  }
  const auto x = act_rows(m, k);
  std::vector<float> y(m * n);
  probe_gb_per_s();
  size_t c = 0;
  for (auto _ : st) {
    linear_fp8({w[c].data() + mis, s[c].data(), n, k}, {x.data(), m, k}, {y.data(), n}, &pool());
    benchmark::DoNotOptimize(y.data());
    c = (c + 1) % copies;
  }
  set_counters(st, double(wbytes + sbytes), 2.0 * m * n * k);
  set_isa(detected_isa());
}
BENCHMARK(BM_LinearFp8)
    ->ArgNames({"N", "K", "M", "simd", "dram", "off"})
    ->Args({32768, 1024, 1, 1, 1, 0})
    ->Args({4096, 8192, 1, 1, 1, 0})
    ->Args({1024, 4096, 1, 1, 1, 0})
    ->Args({1024, 1024, 1, 1, 0, 0})
    ->Args({256, 2048, 1, 1, 0, 0})
    ->Args({4096, 8192, 1, 0, 1, 0})
    ->Args({4096, 4096, 3, 1, 0, 0})
    ->Args({4096, 4096, 4, 1, 0, 0})
    ->Args({4096, 4096, 8, 1, 0, 0})
    ->Args({4096, 4096, 16, 1, 0, 0})
    ->Args({4096, 4096, 32, 1, 0, 0})
    ->Args({4096, 4096, 64, 1, 0, 0})
    ->Args({4096, 4096, 128, 1, 0, 0})
    ->Args({4096, 4096, 256, 1, 0, 0})
    ->Args({4096, 4096, 512, 1, 0, 0})
    ->Args({256, 2048, 1, 1, 0, 28})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// Args: N, K, M (rows per expert), experts, dram (1 = rotate weight sets through > 1 GiB when
// M == 1, 0 = one cache-resident set: the decode kernel's compute ceiling), off (the weights
// this many bytes past a 64-byte boundary, as checkpoint tensors mostly are)
void BM_LinearFp4(benchmark::State& st) {
  const int64_t n = st.range(0), k = st.range(1), m = st.range(2), experts = st.range(3);
  const size_t wbytes = n * k / 2, sbytes = n * k / 32, per = wbytes + sbytes;
  const size_t sets =
      m == 1 && st.range(4) ? std::max<size_t>(1, kRotateBytes / (per * experts)) : 1;
  const size_t total = sets * experts;
  const size_t mis = static_cast<size_t>(st.range(5));  // bytes past a 64-byte boundary
  std::vector<Bytes> w(total, Bytes(wbytes + 64)), s(total, Bytes(sbytes));
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
      groups[e] = {{w[idx].data() + mis, s[idx].data(), n, k}, x.data(), k, rows[e].data(), m,
                   {y.data() + e * m * n, n}};
    }
    linear_fp4_grouped(groups, &pool());
    benchmark::DoNotOptimize(y.data());
    c = (c + 1) % sets;
  }
  set_counters(st, double(per * experts), 2.0 * m * n * k * experts);
}
BENCHMARK(BM_LinearFp4)
    ->ArgNames({"N", "K", "M", "experts", "dram", "off"})
    ->Args({2048, 4096, 1, 1, 1, 0})
    ->Args({4096, 2048, 1, 1, 1, 0})
    ->Args({1024, 2048, 1, 1, 0, 0})
    ->Args({256, 2048, 1, 1, 0, 0})
    ->Args({2048, 4096, 1, 6, 1, 0})
    ->Args({2048, 4096, 3, 6, 1, 0})
    ->Args({2048, 4096, 4, 6, 1, 0})
    ->Args({2048, 4096, 8, 6, 1, 0})
    ->Args({2048, 4096, 12, 6, 1, 0})
    ->Args({2048, 4096, 24, 6, 1, 0})
    ->Args({2048, 4096, 64, 1, 1, 0})
    ->Args({2048, 4096, 256, 1, 1, 0})
    ->Args({2048, 4096, 512, 1, 1, 0})
    ->Args({2048, 4096, 16, 16, 1, 0})
    ->Args({256, 2048, 1, 1, 0, 28})
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
    ->Args({1024, 4096, 512, 0})
    ->Args({256, 4096, 512, 0})
    ->Args({256, 4096, 17, 0})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// Float32 weights (the hyper-connection mixes, [24 x 16384]: hc_mult (2 + hc_mult) rows over the
// hc_mult x 4096 expanded state) x float32 activations. M = 1 is decode, M = 512 a prefill
// batch, where the activations (32 MiB) are the large operand.
void BM_LinearF32(benchmark::State& st) {
  const int64_t n = st.range(0), k = st.range(1), m = st.range(2);
  std::vector<float> w(n * k);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
  const auto x = act_rows(m, k);
  std::vector<float> y(m * n);
  probe_gb_per_s();
  for (auto _ : st) {
    linear_f32({w.data(), n, k}, {x.data(), m, k}, {y.data(), n}, &pool());
    benchmark::DoNotOptimize(y.data());
  }
  set_counters(st, double(n * k * 4 + (m > 1 ? m * k * 4 : 0)), 2.0 * m * n * k);
}
BENCHMARK(BM_LinearF32)
    ->ArgNames({"N", "K", "M"})
    ->Args({24, 16384, 1})
    ->Args({24, 16384, 512})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// Sparse attention, Flash decode shape: 64 heads x 512 dims, 128 window + 512 selected keys.
// Args: query rows, keys per list. Bytes = gathered keys read once per query row. The short
// lists (16-64 keys, a decode step near depth 0) show the per-call cost the keys do not pay for.
void BM_SparseAttention(benchmark::State& st) {
  const int64_t n = st.range(0), L = st.range(1);
  const int H = 64, D = 512;
  const int64_t nkeys = 4096;
  const auto q = act_rows(n * H, D), keys = act_rows(nkeys, D);
  std::vector<float> sink(H, 0.5f), out(n * H * D);
  std::vector<int32_t> lists(n * L);
  for (size_t i = 0; i < lists.size(); ++i) lists[i] = static_cast<int32_t>((i * 7919) % nkeys);
  AttentionArgs a;
  a.q = q.data();
  a.n = n;
  a.n_heads = H;
  a.head_dim = D;
  a.keys = keys.data();
  a.split = nkeys;
  a.lists = lists.data();
  a.list_len = L;
  a.sink = sink.data();
  a.scale = 1.0f / std::sqrt(float(D));
  a.out = out.data();
  probe_gb_per_s();
  for (auto _ : st) {
    sparse_attention(a, &pool());
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(st, double(n * L * D * 4), 4.0 * n * H * L * D);
}
BENCHMARK(BM_SparseAttention)->ArgNames({"n", "keys"})->Args({1, 16})->Args({1, 32})->Args({1, 64})->Args({1, 128})->Args({1, 640})->Args({16, 640})->Args({128, 640})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

// Indexer arguments over n query rows of H heads x D dims and nk keys (the keys left to the caller).
IndexerScoreArgs indexer_args(const float* q, const float* w, int64_t n, int H, int D, int64_t nk,
                              const int64_t* visible, float* scores) {
  IndexerScoreArgs a;
  a.q = q;
  a.w = w;
  a.n = n;
  a.n_heads = H;
  a.head_dim = D;
  a.n_keys = nk;
  a.visible = visible;
  a.scores = scores;
  return a;
}

// Indexer scoring, Flash shape: 64 heads x 128 dims. Args: query rows, keys.
void BM_IndexerScores(benchmark::State& st) {
  const int64_t n = st.range(0), nk = st.range(1);
  const int H = 64, D = 128;
  const auto q = act_rows(n * H, D), w = act_rows(n, H), keys = act_rows(nk, D);
  std::vector<int64_t> visible(n, nk);
  std::vector<float> scores(n * nk);
  IndexerScoreArgs a = indexer_args(q.data(), w.data(), n, H, D, nk, visible.data(), scores.data());
  a.keys = keys.data();
  probe_gb_per_s();
  for (auto _ : st) {
    indexer_scores(a, &pool());
    benchmark::DoNotOptimize(scores.data());
  }
  set_counters(st, double(nk * D * 4), 2.0 * n * nk * H * D);
}
BENCHMARK(BM_IndexerScores)->ArgNames({"n", "keys"})->Args({1, 32768})->Args({4, 32768})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

// Indexer scoring straight from compact FP4 keys (the model's CSA scan; 68 B per key), Flash
// shape: 64 heads x 128 dims, FP4-simulated queries (E2M1 values times a power of two, as the
// model's are). Args: query rows, keys, random (0: FP4-simulated key vectors, as the model's; 1:
// random codes and block scales). bytes_per_second counts the key bytes.
void BM_IndexerScoresFp4(benchmark::State& st) {
  const int64_t n = st.range(0), nk = st.range(1);
  const int H = 64, D = 128;
  const size_t key_bytes = D / 2 + D / 32;
  std::mt19937 rng(7);
  std::vector<uint8_t> keys(static_cast<size_t>(nk) * key_bytes);
  if (st.range(2) == 0) {  // FP4-simulated vectors, as the model's keys
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::vector<float> key(static_cast<size_t>(nk) * D);
    for (int64_t i = 0; i < nk; ++i) {
      for (int d = 0; d < D; ++d) key[static_cast<size_t>(i * D + d)] = g(rng);
      quant::fp4_sim(key.data() + i * D, D, 32);
    }
    IndexKeyCodec(D).encode(key.data(), nk, keys.data());
  } else {  // random codes and block scales 2^-7 .. 2^0 apart: keys the integer kernel leaves to the others
    for (size_t i = 0; i < keys.size(); ++i)
      keys[i] = i % key_bytes < static_cast<size_t>(D / 2) ? static_cast<uint8_t>(rng()) : static_cast<uint8_t>(120 + rng() % 8);
  }
  std::vector<float> q(n * H * D);
  for (auto& v : q) v = std::ldexp(float(int(rng() % 13) - 6) * 0.5f, -3);
  const auto w = act_rows(n, H);
  std::vector<int64_t> visible(n, nk);
  std::vector<float> scores(n * nk);
  const IndexerScoreArgs a = indexer_args(q.data(), w.data(), n, H, D, nk, visible.data(), scores.data());
  probe_gb_per_s();
  for (auto _ : st) {
    indexer_scores_fp4(a, keys.data(), key_bytes, &pool());
    benchmark::DoNotOptimize(scores.data());
  }
  set_counters(st, double(keys.size()), 2.0 * n * nk * H * D);
}
BENCHMARK(BM_IndexerScoresFp4)->ArgNames({"n", "keys", "random"})->Args({1, 8192, 0})->Args({1, 65536, 0})
    ->Args({4, 8192, 0})->Args({64, 8192, 0})->Args({1, 8192, 1})->Args({64, 8192, 1})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

// The CSA indexer's whole selection (runtime/kv_gather.h indexer_topk_stored): scoring compact FP4
// keys in 4096-key blocks and keeping each query row's 512 best, through the CPU backend (threads:
// DSV4_THREADS). Flash shape (64 heads x 128 dims). Args: query rows (1 = decode, 512 = a prefill
// chunk), keys. Compare
// with BM_IndexerScoresFp4 at the same shape for the selection's share.
void BM_IndexerTopk(benchmark::State& st) {
  const int64_t n = st.range(0), nk = st.range(1);
  const int H = 64, D = 128, topk = 512;
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0.0f, 1.0f);
  KvRows keys;
  keys.init(nk, D, KvRowKind::Indexer, KvLayout::Compact, 0);
  std::vector<float> key(D);
  for (int64_t i = 0; i < nk; ++i) {
    for (auto& v : key) v = g(rng);
    quant::fp4_sim(key.data(), D, 32);
    keys.write(i, key.data());
  }
  std::vector<float> q(n * H * D);
  for (auto& v : q) v = std::ldexp(float(int(rng() % 13) - 6) * 0.5f, -3);
  const auto w = act_rows(n, H);
  std::vector<int64_t> visible(n);
  for (int64_t t = 0; t < n; ++t) visible[t] = nk - n + 1 + t;  // a prefill chunk's causal rows
  const IndexerScoreArgs a = indexer_args(q.data(), w.data(), n, H, D, nk, visible.data(), nullptr);
  const auto be = make_cpu_backend(pool().size());
  KvGatherScratch sc;
  std::vector<int32_t> sel(n * topk);
  std::vector<int64_t> nsel(n);
  for (auto _ : st) {
    indexer_topk_stored(*be, a, keys, topk, sel.data(), nsel.data(), sc);
    benchmark::DoNotOptimize(sel.data());
  }
  set_counters(st, double(nk * keys.entry_bytes()), 2.0 * n * nk * H * D);
}
BENCHMARK(BM_IndexerTopk)->ArgNames({"n", "keys"})->Args({1, 8192})->Args({1, 65536})->Args({64, 8192})
    ->Args({64, 65536})->Args({512, 8192})->Unit(benchmark::kMicrosecond)->UseRealTime();

// Row-wise kernels (single thread). Arg: 0 RMSNorm [64 x 4096], 1 softmax [64 x 4096],
// 2 RoPE [64 rows x 64 heads of 64 rope dims], 3 Hadamard [64 x 64 heads x 128].
void BM_Rowwise(benchmark::State& st) {
  const int op = static_cast<int>(st.range(0));
  const int64_t rows = 64, n = 4096;
  auto x = act_rows(rows * 64, 128);
  const auto w = act_rows(1, n);
  std::vector<float> c(rows * 64 * 32, 0.6f), s(rows * 64 * 32, 0.8f), y(rows * n);
  for (auto _ : st) {
    switch (op) {
      case 0: rms_norm(x.data(), n, rows, n, w.data(), 1e-6f, y.data(), n); break;
      case 1: softmax(x.data(), n, rows, n); break;
      case 2: rope(x.data(), 128, rows * 64, 64, 32, c.data(), s.data(), 32, false); break;
      default: hadamard(x.data(), 128, rows * 64, 128); break;
    }
    benchmark::DoNotOptimize(x.data());
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * rows * n * 4));
  static const char* names[] = {"rms_norm", "softmax", "rope", "hadamard"};
  st.SetLabel(names[op]);
}
BENCHMARK(BM_Rowwise)->DenseRange(0, 3)->Unit(benchmark::kMicrosecond);

// The reference's light row ops (model/backend.h RowOps) at V4-Flash widths, single thread, on
// 64 rows: 0 RMSNorm [4096], 1 per-head norm [512], 2 hc_post [4 streams x 4096], 3 SwiGLU
// [2048], 4 RoPE [64 dims], 5 FP4 simulation [128], 6 FP8 simulation [448] (the KV row's
// non-RoPE dims, blocks of 64), 7 the compressor's softmax pool [8 candidates x 512 channels]
// (a ratio-4 block completing), 8 the router's sqrt-softplus scores [256 experts]. Arg 2: 0 the reference (kernels/ref, quant), 1 the
// CPU backend's twins at the active level (ref_rows.h; DSV4_ISA=avx2 for the AVX2 ones).
// Bytes: the float32 rows read (op 7: the 8 candidates' values and scores).
void BM_RefRowOps(benchmark::State& st) {
  const int op = static_cast<int>(st.range(0));
  static const std::unique_ptr<Backend> be = make_cpu_backend(1);
  const RowOps& ops = st.range(1) != 0 ? be->row_ops() : reference_row_ops();
  constexpr int kHc = 4;
  const int64_t rows = 64, dim = 4096;
  static constexpr int64_t kWidth[9] = {dim, 512, kHc * dim, 2048, 64, 128, 448, 512, 256};
  constexpr int kPool = 8;
  const float* pv[kPool];
  const float* ps[kPool];
  const int64_t n = kWidth[op];
  auto x = act_rows(rows, n), y = act_rows(rows, n);
  const auto f = act_rows(1, dim), g = act_rows(rows, n);
  std::vector<uint16_t> w(dim, 0x3F80);
  std::vector<float> c(32, 0.6f), sn(32, 0.8f);
  const float post[kHc] = {0.9f, 1.1f, 0.7f, 1.3f};
  float comb[kHc * kHc];
  for (int i = 0; i < kHc * kHc; ++i) comb[i] = 0.25f + 0.01f * i;
  for (auto _ : st) {
    for (int64_t r = 0; r < rows; ++r) {
      float* xr = x.data() + r * n;
      switch (op) {
        case 0: ops.rms_norm(xr, w.data(), n, 1e-6f, y.data() + r * n); break;
        case 1: ops.head_norm_bf16(xr, n, 1e-6f); break;
        case 2: ops.hc_post(xr, f.data(), kHc, dim, post, comb, 0, dim, y.data() + r * n); break;
        case 3: ops.swiglu(xr, g.data() + r * n, n, 10.0f, 0.5f, y.data() + r * n); break;
        case 4: ops.rope_apply(xr, c.data(), sn.data(), 32, false); break;
        case 5: ops.fp4_sim(xr, n, 32); break;
        case 6: ops.fp8_sim(xr, n, 64); break;
        case 8:
          std::copy(g.data() + r * n, g.data() + (r + 1) * n, xr);  // logits, not the last scores
          ops.gate_scores(xr, static_cast<int>(n), ScoreFunc::SqrtSoftplus);
          break;
        default:
          for (int i = 0; i < kPool; ++i) {
            pv[i] = x.data() + (r + i) % rows * n;
            ps[i] = g.data() + (r + i) % rows * n;
          }
          ops.softmax_pool(pv, ps, kPool, n, y.data() + r * n);
          break;
      }
    }
    benchmark::DoNotOptimize(x.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * rows * n * 4 * (op == 7 ? 2 * kPool : 1)));
  static const char* names[] = {"rms_norm", "head_norm_bf16", "hc_post",  "swiglu",
                                "rope_apply", "fp4_sim",       "fp8_sim", "softmax_pool", "gate_scores"};
  st.SetLabel(std::string(names[op]) + (st.range(1) != 0 ? std::string(" ") + isa_name(active_isa()) : " reference"));
}
BENCHMARK(BM_RefRowOps)->ArgNames({"op", "simd"})->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7, 8}, {0, 1}})
    ->Unit(benchmark::kMicrosecond);

// KV entry decode (kv_decode.h), single thread: 512 gathered entries of a 4096-entry store, Flash
// widths (448 E4M3 codes + 7 scales + 64 BF16 each, 583 B), 2.4 MB (L2 / L3). Arg: 0 the scalar
// twin (quant::e4m3_to_f32 per element: ~2.9 ms here; the runtime's table decode, KvRows::read_rows,
// takes ~90 us), 1 the AVX-512 kernel (~45 us).
void BM_KvDecode(benchmark::State& st) {
  const bool simd = st.range(0) != 0;
  if (simd && detected_isa() < Isa::Avx512) {
    st.SkipWithError("needs AVX-512");
    return;
  }
  const int nope = 448, rope = 64;
  const size_t bytes = nope + nope / 64 + 2 * rope;
  const int64_t entries = 4096, n = 512;
  std::vector<uint8_t> store(entries * bytes);
  fill(store, 9, true);
  for (int64_t i = 0; i < entries; ++i)
    for (int b = 0; b < nope / 64; ++b) store[i * bytes + nope + b] = static_cast<uint8_t>(110 + (i + b) % 16);
  std::vector<int32_t> ids(n);
  for (int64_t r = 0; r < n; ++r) ids[r] = static_cast<int32_t>((r * 2654435761u) % entries);
  std::vector<float> out(n * (nope + rope));
  for (auto _ : st) {
    if (simd) avx512::decode_kv_rows(store.data(), bytes, ids.data(), 0, n, nope, rope, out.data(), nope + rope);
    else scalar::decode_kv_rows(store.data(), bytes, ids.data(), 0, n, nope, rope, out.data(), nope + rope);
    benchmark::DoNotOptimize(out.data());
  }
  st.counters["values/s"] = benchmark::Counter(double(n) * (nope + rope) * st.iterations(), benchmark::Counter::kIsRate);
  st.SetLabel(simd ? "avx512" : "scalar");
}
BENCHMARK(BM_KvDecode)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// The float32 panel micro-kernel alone on cache-resident data (single thread): its compute
// ceiling. Args: K (panel width), M (activation rows).
void BM_DotF32Panel(benchmark::State& st) {
  const int64_t kp = st.range(0), m = st.range(1), ld = kp + 32;
  std::vector<float> panel(kWidePanelRows * ld, 0.5f), a(m * ld, 0.25f), y(m * kWidePanelRows);
  const PanelKernels& kern = panel_kernels(detected_isa());
  for (auto _ : st) {
    kern.dot_f32(panel.data(), ld, kWidePanelRows, a.data(), ld, m, kp, y.data(), kWidePanelRows);
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["FLOP/s"] = benchmark::Counter(2.0 * kWidePanelRows * m * kp * st.iterations(),
                                             benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DotF32Panel)->Args({512, 2})->Args({512, 64})->Args({4096, 64});

// The tile kernel alone (one 32-row panel, activations already in the tile layout), single
// thread, on AMX tiles (arg 2 = 1) or vdpbf16ps registers (0). Args: K, M, engine. Data: panel
// 64 KiB x K/1024, activations M x K x 2 B.
void BM_TilePanel(benchmark::State& st) {
  const bool use_amx = st.range(2) != 0;
  if (use_amx ? detected_isa() != Isa::Avx512Amx : detected_isa() < Isa::Avx512Bf16) {
    st.SkipWithError(use_amx ? "needs AMX-BF16" : "needs AVX-512 BF16");
    return;
  }
  const int64_t kp = st.range(0), m = st.range(1), ld = kp + 32;
  // 64-byte aligned like the engine's buffers: a tile row split over two cache lines costs the
  // AMX loop about two thirds of its rate.
  AlignedVector<uint16_t> panel(kTilePanelRows * ld, 0x3F00), a(m * ld, 0x3E80),
      vnni((m + 15) / 16 * 16 * kp);
  std::vector<float> y(m * kTilePanelRows);
  amx::to_vnni(a.data(), ld, m, kp, vnni.data());
  for (auto _ : st) {
    amx::panel_gemm(use_amx, panel.data(), ld, kTilePanelRows, vnni.data(), m, kp, y.data(),
                    kTilePanelRows);
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["MAC/s"] = benchmark::Counter(double(kTilePanelRows) * m * kp * st.iterations(),
                                            benchmark::Counter::kIsRate);
  st.SetLabel(use_amx ? "amx" : "vdpbf16ps");
}
BENCHMARK(BM_TilePanel)
    ->Args({512, 32, 1})->Args({4096, 32, 1})->Args({4096, 128, 1})->Args({1024, 128, 1})
    ->Args({4096, 32, 0})->Args({4096, 48, 0})->Args({4096, 128, 0})->Args({1024, 128, 0});

// The read half of a decode GEMV with no arithmetic: rows [b, e) of a [n, ldw] byte matrix read
// 4 rows at a time, 64 bytes of each row per step, with the in-register kernels' software
// prefetch (prefetch_ahead). Its rate is the ceiling an FP8 GEMV could reach on this access
// pattern (BM_DecodeVsProbe/3).
DSV4_AVX512F uint64_t read_panels_avx512(const uint8_t* w, int64_t ldw, int64_t b, int64_t e) {
  const int64_t ahead = prefetch_ahead(ldw);
  __m512i acc = _mm512_setzero_si512();
  for (int64_t n0 = b; n0 < e; n0 += kPanelRows) {
    const uint8_t* rows[kPanelRows];
    for (int r = 0; r < kPanelRows; ++r) rows[r] = w + std::min<int64_t>(n0 + r, e - 1) * ldw;
    for (int64_t c = 0; c < ldw; c += 64)
      for (int r = 0; r < kPanelRows; ++r) {
        _mm_prefetch(reinterpret_cast<const char*>(rows[r] + ahead + c), _MM_HINT_T1);
        acc = _mm512_add_epi64(acc, _mm512_loadu_si512(rows[r] + c));
      }
  }
  return static_cast<uint64_t>(_mm512_reduce_add_epi64(acc));
}

// Decode weight streaming vs the read probe, interleaved so both see the same machine state:
// each round runs one probe pass over 512 MiB and then the GEMV over >= 512 MiB of rotating
// weight copies; the best round of each is kept (best-of-N filters time-sharing noise).
// Arg: 0 FP8 [4096 x 8192], 1 FP4 6 experts [2048 x 4096], 2 BF16 [16384 x 4096] (f32 act),
// 3 the FP8 matrix read in the GEMV's pattern with no arithmetic (read_panels_avx512), 4 the FP8
// GEMVs of one CSA layer in the decode step's order and grouping (Fp8LayerMix).
// The label names the ISA level the kernels ran at (DSV4_ISA=avx2 etc. caps it).
// The FP8 GEMVs of one V4-Flash CSA layer in the order and grouping the decode step runs them
// (wq_a, wq_b, wkv, the indexer's wq_b, wo_a as 8 groups, wo_b, the shared expert's w1 + w3 as
// 2 groups, w2: 134 MB), each matrix in its own huge-page buffer, one activation row. Unlike one
// big matrix this has the model's mix of short (1 KiB) and long rows and of 2-32 MiB calls.
// Returns the bytes one pass over `layers` copies reads; `run` does the pass.
struct Fp8LayerMix {
  struct Mat {
    int64_t n, k;
    int group;  // matrices with the same group number run in one linear_fp8_grouped call
  };
  static constexpr Mat kMats[] = {{1024, 4096, 0},  {32768, 1024, 1}, {512, 4096, 2},  {8192, 1024, 3},
                                  {1024, 4096, 4},  {1024, 4096, 4},  {1024, 4096, 4}, {1024, 4096, 4},
                                  {1024, 4096, 4},  {1024, 4096, 4},  {1024, 4096, 4}, {1024, 4096, 4},
                                  {4096, 8192, 5},  {2048, 4096, 6},  {2048, 4096, 6}, {4096, 2048, 7}};
  std::vector<Bytes> w, s;
  std::vector<float> x, y;
  size_t layers = 0, bytes = 0;
  explicit Fp8LayerMix(size_t total) {
    size_t per = 0;
    for (const Mat& m : kMats) per += size_t(m.n * m.k + (m.n / 128) * (m.k / 128));
    layers = std::max<size_t>(2, total / per);
    bytes = layers * per;
    for (size_t l = 0; l < layers; ++l)
      for (const Mat& m : kMats) {
        w.emplace_back(size_t(m.n * m.k));
        s.emplace_back(size_t((m.n / 128) * (m.k / 128)));
        fill(w.back(), w.size() + 3, true);
        fill_scales(s.back());
      }
    x = act_rows(8, 8192);
    y.resize(32768 * 8);
  }
  void run() {
    std::vector<Fp8Group> groups;
    size_t i = 0;
    for (size_t l = 0; l < layers; ++l) {
      for (size_t j = 0; j < std::size(kMats);) {
        groups.clear();
        const int g = kMats[j].group;
        for (; j < std::size(kMats) && kMats[j].group == g; ++j, ++i) {
          const Mat& m = kMats[j];
          const int64_t gi = static_cast<int64_t>(groups.size());
          groups.push_back({{w[i].data(), s[i].data(), m.n, m.k}, {x.data() + gi * 8192, 1, m.k},
                            {y.data() + gi * 32768, m.n}});
        }
        linear_fp8_grouped(groups, &pool());
        benchmark::DoNotOptimize(y.data());
      }
    }
  }
};

// The weights one BM_DecodeVsProbe kind streams (>= `total` bytes of rotating copies, or the CSA
// layer mix) and one decode pass over them; returns the GB/s of that pass.
class DecodeWeights {
 public:
  DecodeWeights(int kind, size_t total) : kind_(kind) {
    if (kind == 4) {
      mix_ = std::make_unique<Fp8LayerMix>(total);
      return;
    }
    if (kind == 1) n_ = 2048, k_ = 4096;
    if (kind == 2) n_ = 16384, k_ = 4096;
    const size_t wbytes = kind == 1 ? n_ * k_ / 2 : kind == 2 ? n_ * k_ * 2 : n_ * k_;
    const size_t sbytes = kind == 0 ? (n_ / 128) * (k_ / 128) : kind == 1 ? n_ * k_ / 32 : 0;
    per_ = wbytes + sbytes;
    copies_ = std::max<size_t>(6, total / per_);
    w_.assign(copies_, Bytes(wbytes));
    s_.assign(copies_, Bytes(sbytes));
    for (size_t c = 0; c < copies_; ++c) {
      fill(w_[c], c + 3, kind == 0);
      if (kind == 2)
        for (size_t i = 0; i + 1 < wbytes; i += 2) w_[c][i + 1] = static_cast<uint8_t>(0x3C + (w_[c][i + 1] & 1));
      fill_scales(s_[c]);
    }
    x_ = act_rows(1, k_);
    y_.resize(n_);
    groups_.resize(experts());
    sums_.resize(pool().size());
  }
  double pass() {
    const auto t0 = std::chrono::steady_clock::now();
    size_t bytes = 0;
    if (mix_) {
      mix_->run();
      bytes = mix_->bytes;
    } else {
      const int experts = this->experts();
      for (size_t c = 0; c + experts <= copies_; c += experts) {
        if (kind_ == 0) {
          linear_fp8({w_[c].data(), s_[c].data(), n_, k_}, {x_.data(), 1, k_}, {y_.data(), n_}, &pool());
        } else if (kind_ == 1) {
          for (int e = 0; e < experts; ++e)
            groups_[e] = {{w_[c + e].data(), s_[c + e].data(), n_, k_}, x_.data(), k_, nullptr, 1, {y_.data(), n_}};
          linear_fp4_grouped(groups_, &pool());
        } else if (kind_ == 2) {
          linear_bf16({reinterpret_cast<const uint16_t*>(w_[c].data()), n_, k_}, {x_.data(), 1, k_},
                      {y_.data(), n_}, &pool(), Bf16Act::Float32);
        } else {
          parallel_for(&pool(), n_, kPanelRows, [&](int64_t b, int64_t e, int t) {
            sums_[t] += read_panels_avx512(w_[c].data(), k_, b, e);
          }, Schedule::Stealing);
          benchmark::DoNotOptimize(sums_.data());
        }
        benchmark::DoNotOptimize(y_.data());
        bytes += experts * per_;
      }
    }
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return double(bytes) / sec / 1e9;
  }
  std::string name() const {
    static const char* names[] = {"fp8 4096x8192", "fp4 6x 2048x4096", "bf16 16384x4096",
                                  "read-only 4096x8192 (GEMV pattern)",
                                  "fp8 CSA-layer mix (16 matrices, 8 calls)"};
    return names[kind_];
  }

 private:
  int experts() const { return kind_ == 1 ? 6 : 1; }
  int kind_;
  int64_t n_ = 4096, k_ = 8192;
  size_t per_ = 0, copies_ = 0;
  std::vector<Bytes> w_, s_;
  std::vector<float> x_, y_;
  std::vector<Fp4Group> groups_;
  std::vector<uint64_t> sums_;
  std::unique_ptr<Fp8LayerMix> mix_;
};

void BM_DecodeVsProbe(benchmark::State& st) {
  const int kind = static_cast<int>(st.range(0));
  const size_t total = size_t{512} << 20;
  if (kind == 3 && !isa_at_least(Isa::Avx512)) {
    st.SkipWithError("needs AVX-512");
    return;
  }
  DecodeWeights weights(kind, total);
  double best_probe = 0, best_kernel = 0;
  for (auto _ : st) {
    best_probe = std::max(best_probe, measure_read_bandwidth(&pool(), total, 1).gb_per_s);
    best_kernel = std::max(best_kernel, weights.pass());
  }
  st.counters["probe_GB/s"] = best_probe;
  st.counters["kernel_GB/s"] = best_kernel;
  st.counters["bw_frac"] = best_kernel / best_probe;
  st.counters["threads"] = pool().size();
  st.SetLabel(weights.name() + " " + isa_name(active_isa()));
}
BENCHMARK(BM_DecodeVsProbe)->DenseRange(0, 4)->Iterations(8)->Unit(benchmark::kMillisecond);

// The decode GEMVs' two orders (GemvOrder, dispatch.h: tiles of 4 interleaved rows vs each row
// whole) on a BM_DecodeVsProbe kind (0 FP8, 1 FP4 6 experts, 2 BF16, 4 the CSA layer's FP8 mix):
// each round runs a probe pass and a decode pass in each order in turn, so both see the same
// minute of a noisy machine; the counters are the medians over rounds of each order's fraction
// of the probe just before it (tiles_frac, rows_frac) and of its GB/s.
void BM_GemvOrder(benchmark::State& st) {
  const size_t total = size_t{256} << 20;
  DecodeWeights weights(static_cast<int>(st.range(0)), total);
  const GemvOrder saved = gemv_order();
  std::vector<double> frac[2], rate[2];
  for (auto _ : st) {
    for (int rows = 0; rows < 2; ++rows) {
      const double probe = measure_read_bandwidth(&pool(), total, 1).gb_per_s;
      set_gemv_order(rows ? GemvOrder::Rows : GemvOrder::Tiles);
      const double gbs = weights.pass();
      frac[rows].push_back(gbs / probe);
      rate[rows].push_back(gbs);
    }
  }
  set_gemv_order(saved);
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  st.counters["tiles_frac"] = median(frac[0]);
  st.counters["rows_frac"] = median(frac[1]);
  st.counters["tiles_GB/s"] = median(rate[0]);
  st.counters["rows_GB/s"] = median(rate[1]);
  st.counters["threads"] = pool().size();
  st.SetLabel(weights.name() + " " + isa_name(active_isa()) + ", default " +
              gemv_order_name(saved));
}
BENCHMARK(BM_GemvOrder)->Arg(0)->Arg(1)->Arg(2)->Arg(4)->Iterations(15)->Unit(benchmark::kMillisecond);

void BM_ReadBandwidthProbe(benchmark::State& st) {
  for (auto _ : st) {
    const auto r = measure_read_bandwidth(&pool(), size_t{1} << 30, 3);
    st.counters["GB/s"] = r.gb_per_s;
    st.counters["threads"] = r.threads;
    for (size_t i = 0; i < r.by_pattern.size(); ++i)
      st.counters[std::string(probe_patterns()[i].name)] = r.by_pattern[i];
    st.SetLabel(std::string("fastest: ") + r.pattern);
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
DSV4_AVX512F float peak_fma(int64_t iters) {
  __m512 acc[16];
  for (auto& a : acc) a = _mm512_setzero_ps();
  const __m512 a = _mm512_set1_ps(1.0f), b = _mm512_set1_ps(1e-3f);
  for (int64_t i = 0; i < iters; ++i)
    for (auto& v : acc) v = _mm512_fmadd_ps(a, b, v);
  __m512 s = _mm512_setzero_ps();
  for (auto& v : acc) s = _mm512_add_ps(s, v);
  return avx512::hsum(s);
}

// The same with vpdpwssd (32 int16 MACs each: the FP4 decode GEMV's product, fp4_int_gemv.cpp).
DSV4_AVX512VNNI float peak_dpwssd(int64_t iters) {
  __m512i acc[16];
  for (auto& a : acc) a = _mm512_setzero_si512();
  const __m512i a = _mm512_set1_epi16(3), b = _mm512_set1_epi16(-2);
  for (int64_t i = 0; i < iters; ++i)
    for (auto& v : acc) v = _mm512_dpwssd_epi32(v, a, b);
  __m512i s = _mm512_setzero_si512();
  for (auto& v : acc) s = _mm512_add_epi32(s, v);
  return static_cast<float>(_mm512_reduce_add_epi32(s));
}

// Runs fn(iters) on every pool thread once per benchmark iteration (the peak-rate loops).
void run_on_pool(benchmark::State& st, float (*fn)(int64_t), int64_t iters) {
  struct Ctx { float (*fn)(int64_t); int64_t iters; float* out; };
  std::vector<float> out(pool().size());
  Ctx ctx{fn, iters, out.data()};
  for (auto _ : st) {
    pool().run([](void* p, int t) {
      auto* c = static_cast<Ctx*>(p);
      c->out[t] = c->fn(c->iters);
    }, &ctx);
    benchmark::DoNotOptimize(out.data());
  }
}

// Arg: 0 = FMA, 1 = vdpbf16ps, 2 = AMX tdpbf16ps, 3 = vpdpwssd (int16). Reports MAC/s summed over
// the pool's threads.
void BM_PeakMac(benchmark::State& st) {
  const int op = static_cast<int>(st.range(0));
  const Isa need = op == 2 ? Isa::Avx512Amx : op == 1 ? Isa::Avx512Bf16 : Isa::Avx512;
  if (static_cast<int>(detected_isa()) < static_cast<int>(need)) {
    st.SkipWithError(op == 2 ? "needs AMX-BF16" : op == 1 ? "needs AVX512-BF16" : "needs AVX-512");
    return;
  }
  if (op == 2) {
    const int64_t iters = 1 << 16;
    for (auto _ : st) pool().run([](void*, int) { benchmark::DoNotOptimize(amx::peak_macs(iters)); }, nullptr);
    const double macs = double(iters) * 4 * 8192 * pool().size();
    st.counters["MAC/s"] = benchmark::Counter(macs * st.iterations(), benchmark::Counter::kIsRate);
    st.counters["FLOP/s"] = benchmark::Counter(2 * macs * st.iterations(), benchmark::Counter::kIsRate);
    st.SetLabel("tdpbf16ps");
    return;
  }
  const int64_t iters = 1 << 20;
  float (*const loops[])(int64_t) = {peak_fma, peak_dpbf16, nullptr, peak_dpwssd};
  run_on_pool(st, loops[op], iters);
  const double macs = double(iters) * 16 * (op == 0 ? 16 : 32) * pool().size();
  st.counters["MAC/s"] = benchmark::Counter(macs * st.iterations(), benchmark::Counter::kIsRate);
  st.counters["FLOP/s"] = benchmark::Counter(2 * macs * st.iterations(), benchmark::Counter::kIsRate);
  static const char* const names[] = {"vfmadd231ps", "vdpbf16ps", "", "vpdpwssd"};
  st.SetLabel(names[op]);
}
BENCHMARK(BM_PeakMac)->DenseRange(0, 3)->Unit(benchmark::kMillisecond)->UseRealTime();

// What costs the AMX product its rate: the peak loop (4 tdpbf16ps of a 2 x 2 block per round)
// with Args {loads, fmas}: `loads` of its 4 operand tiles reloaded from L1 each round, and `fmas`
// register-only AVX-512 FMAs after each round, on every pool thread. The GEMM's tile kernel
// (amx_gemm.cpp) reloads all 4 per 32 K, one load per tdpbf16ps, the fewest a register block
// of 8 tiles allows; the FMAs stand for vector work (the panel decode) interleaved with it.
void BM_AmxRound(benchmark::State& st) {
  if (static_cast<int>(detected_isa()) < static_cast<int>(Isa::Avx512Amx)) {
    st.SkipWithError("needs AMX-BF16");
    return;
  }
  struct Ctx { int64_t iters; int loads, fmas; };
  const Ctx ctx{1 << 15, static_cast<int>(st.range(0)), static_cast<int>(st.range(1))};
  for (auto _ : st)
    pool().run([](void* p, int) {
      const auto* c = static_cast<const Ctx*>(p);
      benchmark::DoNotOptimize(amx::peak_macs(c->iters, c->loads, c->fmas));
    }, const_cast<Ctx*>(&ctx));
  const double macs = double(ctx.iters) * 4 * 8192 * pool().size();
  st.counters["MAC/s"] = benchmark::Counter(macs * st.iterations(), benchmark::Counter::kIsRate);
  st.SetLabel(std::to_string(ctx.loads) + " tile loads + " + std::to_string(ctx.fmas) +
              " FMAs per 4 tdpbf16ps");
}
BENCHMARK(BM_AmxRound)
    ->ArgNames({"loads", "fmas"})
    ->Args({0, 0})->Args({2, 0})->Args({4, 0})->Args({4, 32})->Args({4, 64})->Args({4, 128})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// Prefill GEMM vs the peak MAC rate of the engine it runs on, interleaved like BM_DecodeVsProbe
// so both see the same machine state (a shared core's tile or vector unit can deliver a fraction
// of its rate from one minute to the next): each round times the engine's peak loop
// (tdpbf16ps with AMX, else vdpbf16ps or FMA as gemm_unit() picks) on every pool thread, then
// three GEMMs; the best round of each is kept. peak_frac = GEMM MACs / peak MACs.
// Args: 0 FP8 [4096 x 4096], 1 FP4 [2048 x 4096] (one expert); M activation rows.
void BM_PrefillVsPeak(benchmark::State& st) {
  const int kind = static_cast<int>(st.range(0));
  const int64_t m = st.range(1), n = kind == 0 ? 4096 : 2048, k = 4096;
  if (!isa_at_least(Isa::Avx512)) {
    st.SkipWithError("needs AVX-512 (the peak loops)");
    return;
  }
  // The engine the GEMMs run on: AMX, vdpbf16ps tiles (BF16 level and unit), else FMA panels.
  const bool amx = active_isa() == Isa::Avx512Amx;
  const bool dp = active_isa() == Isa::Avx512Bf16 && gemm_unit() == GemmUnit::Dpbf16;
  const size_t wbytes = kind == 0 ? n * k : n * k / 2;
  const size_t sbytes = kind == 0 ? (n / 128) * (k / 128) : n * k / 32;
  std::vector<uint8_t> w(wbytes), s(sbytes);
  fill(w, 5, kind == 0);
  fill_scales(s);
  const auto x = act_rows(m, k);
  std::vector<float> y(m * n);
  std::vector<int32_t> rows(m);
  for (int64_t i = 0; i < m; ++i) rows[i] = static_cast<int32_t>(i);
  auto gemm = [&] {
    if (kind == 0) {
      linear_fp8({w.data(), s.data(), n, k}, {x.data(), m, k}, {y.data(), n}, &pool());
    } else {
      const Fp4Group g{{w.data(), s.data(), n, k}, x.data(), k, rows.data(), m, {y.data(), n}};
      linear_fp4_grouped(std::span<const Fp4Group>(&g, 1), &pool());
    }
    benchmark::DoNotOptimize(y.data());
  };
  // Per-thread MACs of one peak call: 4.3 G (AMX), 0.54 G (vdpbf16ps) or 0.27 G (FMA), 2-5 ms at
  // the full rates.
  const int64_t iters = amx ? int64_t{1} << 17 : int64_t{1} << 20;
  const double peak_call = double(iters) * (amx ? 4.0 * 8192 : 16.0 * (dp ? 32 : 16));
  struct Ctx { int64_t iters; bool amx, dp; };
  Ctx ctx{iters, amx, dp};
  gemm();  // warm: thread-local panels, the activation buffers
  double best_peak = 0, best_gemm = 0;
  for (auto _ : st) {
    auto t0 = std::chrono::steady_clock::now();
    pool().run([](void* p, int) {
      const auto* c = static_cast<const Ctx*>(p);
      if (c->amx) {
        benchmark::DoNotOptimize(amx::peak_macs(c->iters));
      } else {
        benchmark::DoNotOptimize(c->dp ? peak_dpbf16(c->iters) : peak_fma(c->iters));
      }
    }, &ctx);
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best_peak = std::max(best_peak, peak_call * pool().size() / sec);
    t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < 3; ++r) gemm();
    sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best_gemm = std::max(best_gemm, 3.0 * m * n * k / sec);
  }
  st.counters["peak_MAC/s"] = best_peak;
  st.counters["gemm_MAC/s"] = best_gemm;
  st.counters["peak_frac"] = best_gemm / best_peak;
  st.counters["threads"] = pool().size();
  st.SetLabel(std::string(kind == 0 ? "fp8 4096x4096 " : "fp4 2048x4096 ") +
              (amx ? "tdpbf16ps" : dp ? "vdpbf16ps" : "vfmadd231ps"));
}
BENCHMARK(BM_PrefillVsPeak)
    ->ArgNames({"kind", "M"})
    ->ArgsProduct({{0, 1}, {64, 256}})
    ->Iterations(8)
    ->Unit(benchmark::kMillisecond);

// The issue rate of the permutes the in-register decoders are built on (16 independent chains):
// vpermw (FP4 words), vpermi2b (FP8 bytes), vpermps. Compared with BM_PeakMac's FMA rate
// (instructions = MAC/s / 16) it shows which unit bounds a decode GEMV on the machine at hand
// (on Intel cores the permutes share port 5 with an FMA pipe; vpermi2b takes two of its cycles).
template <int Op>
DSV4_AVX512F float permute_chains(int64_t iters) {
  __m512i v[16];
  for (int j = 0; j < 16; ++j) v[j] = _mm512_set1_epi32(j);
  const __m512i t = _mm512_set1_epi32(0x3F803F80);
  for (int64_t i = 0; i < iters; ++i)
    for (auto& x : v) {
      if constexpr (Op == 0) x = _mm512_permutexvar_epi16(x, t);
      else if constexpr (Op == 1) x = _mm512_permutex2var_epi8(t, x, t);
      else x = _mm512_castps_si512(_mm512_permutexvar_ps(x, _mm512_castsi512_ps(t)));
    }
  __m512i s = _mm512_setzero_si512();
  for (auto& x : v) s = _mm512_xor_si512(s, x);
  return static_cast<float>(_mm512_reduce_add_epi32(s));
}

// Arg: 0 = vpermw, 1 = vpermi2b, 2 = vpermps. Reports instructions/s summed over the threads.
void BM_PermuteRate(benchmark::State& st) {
  if (static_cast<int>(detected_isa()) < static_cast<int>(Isa::Avx512)) {
    st.SkipWithError("needs AVX-512 (VBMI)");
    return;
  }
  using Fn = float (*)(int64_t);
  static constexpr Fn kFns[3] = {permute_chains<0>, permute_chains<1>, permute_chains<2>};
  static constexpr const char* kNames[3] = {"vpermw", "vpermi2b", "vpermps"};
  const int op = static_cast<int>(st.range(0));
  const int64_t iters = 1 << 18;
  run_on_pool(st, kFns[op], iters);
  st.counters["instr/s"] = benchmark::Counter(double(iters) * 16 * pool().size() * st.iterations(),
                                              benchmark::Counter::kIsRate);
  st.SetLabel(kNames[op]);
}
BENCHMARK(BM_PermuteRate)->DenseRange(0, 2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
