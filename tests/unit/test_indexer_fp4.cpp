// Indexer scores over packed FP4 keys: the scalar twin equals the reference kernel on decoded keys
// (up to float vs double summation, i.e. at most one bf16 step on the rare inexact sums), and the
// AVX-512 and AVX2 versions agree with the scalar twin; visibility (-inf) exact.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/indexer_fp4.h"
#include "kernels/ref/indexer.h"
#include "quant/quant.h"
#include "runtime/kv_codec.h"

namespace dsv4 {
namespace {

struct Problem {
  int64_t n, nk;
  int H, D;
  std::vector<float> q, w, keys;
  std::vector<uint8_t> packed;
  std::vector<int64_t> visible;
};

Problem make(int64_t n, int64_t nk, int H, int D, uint32_t seed) {
  Problem p{n, nk, H, D, {}, {}, {}, {}, {}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  p.q.resize(static_cast<size_t>(n * H * D));
  for (auto& v : p.q) v = g(rng);
  for (int64_t r = 0; r < n * H; ++r) quant::fp4_sim(p.q.data() + r * D, D, 32);
  p.w.resize(static_cast<size_t>(n * H));
  for (auto& v : p.w) v = quant::bf16_round(g(rng) * 0.1f);
  p.keys.resize(static_cast<size_t>(nk * D));
  for (int64_t i = 0; i < nk; ++i) {
    const float s = std::ldexp(1.0f, static_cast<int>(rng() % 9) - 4);  // spread of block scales
    for (int d = 0; d < D; ++d) p.keys[static_cast<size_t>(i * D + d)] = g(rng) * s;
    quant::fp4_sim(p.keys.data() + i * D, D, 32);
  }
  const IndexKeyCodec codec(D);
  p.packed.resize(static_cast<size_t>(nk) * codec.entry_bytes());
  codec.encode(p.keys.data(), nk, p.packed.data());
  p.visible.resize(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) p.visible[static_cast<size_t>(r)] = std::max<int64_t>(0, nk - r * 3);
  return p;
}

IndexerScoreArgs args(Problem& p, std::vector<float>& out) {
  out.assign(static_cast<size_t>(p.n * p.nk), 0.0f);
  return IndexerScoreArgs{p.q.data(), p.w.data(), p.n, p.H, p.D, p.keys.data(), p.nk, p.visible.data(), out.data()};
}

// |a - b| within one bf16 step of the larger magnitude (or both -inf).
void expect_close(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size());
  int64_t exact = 0, finite = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isinf(a[i]) || std::isinf(b[i])) {
      EXPECT_EQ(a[i], b[i]) << what << " at " << i;
      continue;
    }
    ++finite;
    const float tol = std::max(std::fabs(a[i]), std::fabs(b[i])) * (1.0f / 128.0f) + 1e-30f;
    EXPECT_LE(std::fabs(a[i] - b[i]), tol) << what << " at " << i;
    exact += a[i] == b[i];
  }
  EXPECT_GT(finite, 0) << what;
  EXPECT_GT(exact, finite * 9 / 10) << what << ": most scores must agree exactly";
}

TEST(IndexerFp4, ScalarMatchesReferenceOnDecodedKeys) {
  for (auto [n, nk, H, D] : {std::tuple{1L, 300L, 4, 128}, std::tuple{5L, 77L, 2, 128}, std::tuple{3L, 40L, 8, 64}}) {
    Problem p = make(n, nk, H, D, static_cast<uint32_t>(n * 1000 + nk));
    std::vector<float> want, got;
    ref::indexer_scores(args(p, want));
    IndexerScoreArgs a = args(p, got);
    a.keys = nullptr;
    cpu::indexer_scores_fp4_scalar(a, p.packed.data(), IndexKeyCodec(D).entry_bytes());
    expect_close(want, got, "scalar vs reference");
  }
}

using Fp4Scorer = std::function<void(const IndexerScoreArgs&, const uint8_t*, size_t)>;

void expect_simd_matches_scalar(const Fp4Scorer& simd, const char* what) {
  for (auto [n, nk, H, D] : {std::tuple{1L, 1000L, 2, 128}, std::tuple{7L, 129L, 4, 128}, std::tuple{2L, 33L, 3, 96},
                                 std::tuple{9L, 45L, 2, 128}, std::tuple{20L, 300L, 3, 64}, std::tuple{3L, 50L, 5, 512},
                                 std::tuple{11L, 13L, 1, 32}, std::tuple{1L, 1001L, 64, 128},
                                 std::tuple{2L, 37L, 20, 64}, std::tuple{1L, 70L, 100, 128},
                                 std::tuple{9L, 40L, 100, 128}, std::tuple{10L, 21L, 130, 64}}) {
    Problem p = make(n, nk, H, D, static_cast<uint32_t>(nk));
    std::vector<float> s, v;
    IndexerScoreArgs a = args(p, s);
    a.keys = nullptr;
    cpu::indexer_scores_fp4_scalar(a, p.packed.data(), IndexKeyCodec(D).entry_bytes());
    IndexerScoreArgs b = args(p, v);
    b.keys = nullptr;
    simd(b, p.packed.data(), IndexKeyCodec(D).entry_bytes());
    expect_close(s, v, what);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t i = p.visible[static_cast<size_t>(r)]; i < nk; ++i)
        EXPECT_EQ(v[static_cast<size_t>(r * nk + i)], -std::numeric_limits<float>::infinity());
  }
}

TEST(IndexerFp4, Avx512MatchesScalar) {
  if (static_cast<int>(cpu::detected_isa()) < static_cast<int>(cpu::Isa::Avx512Bf16)) GTEST_SKIP() << "no AVX-512 BF16 on this CPU";
  const cpu::GemmUnit saved = cpu::gemm_unit();
  for (cpu::GemmUnit unit : {cpu::GemmUnit::Fma, cpu::GemmUnit::Dpbf16}) {  // FMA / vdpbf16ps decode
    cpu::set_gemm_unit(unit);
    expect_simd_matches_scalar(cpu::avx512::indexer_scores_fp4, cpu::gemm_unit_name(unit));
  }
  cpu::set_gemm_unit(saved);
}

// The AVX-512 level without BF16 instructions (the same source, emulated pair products); the
// GEMM unit asked for must not matter (it has no vdpbf16ps).
TEST(IndexerFp4, Avx512FmaMatchesScalar) {
  if (static_cast<int>(cpu::detected_isa()) < static_cast<int>(cpu::Isa::Avx512)) GTEST_SKIP() << "no AVX-512 on this CPU";
  const cpu::GemmUnit saved = cpu::gemm_unit();
  for (cpu::GemmUnit unit : {cpu::GemmUnit::Fma, cpu::GemmUnit::Dpbf16}) {
    cpu::set_gemm_unit(unit);
    expect_simd_matches_scalar(cpu::avx512fma::indexer_scores_fp4, "avx512 (no BF16)");
  }
  cpu::set_gemm_unit(saved);
}

TEST(IndexerFp4, AmxMatchesScalar) {
  if (cpu::detected_isa() != cpu::Isa::Avx512Amx) GTEST_SKIP() << "no AMX on this CPU";
  expect_simd_matches_scalar(cpu::avx512::indexer_scores_fp4_amx, "amx");
}

TEST(IndexerFp4, KeySplitOverThreadsChangesNothing) {
  ThreadPool pool(3);
  for (auto [n, nk, H] : {std::tuple{1L, 4001L, 64}, std::tuple{3L, 2500L, 16}, std::tuple{9L, 700L, 64}}) {
    Problem p = make(n, nk, H, 128, static_cast<uint32_t>(nk + 1));
    std::vector<float> s, v;
    IndexerScoreArgs a = args(p, s);
    a.keys = nullptr;
    cpu::indexer_scores_fp4(a, p.packed.data(), IndexKeyCodec(128).entry_bytes());
    IndexerScoreArgs b = args(p, v);
    b.keys = nullptr;
    cpu::indexer_scores_fp4(b, p.packed.data(), IndexKeyCodec(128).entry_bytes(), &pool);
    for (size_t i = 0; i < s.size(); ++i) ASSERT_EQ(std::bit_cast<uint32_t>(s[i]), std::bit_cast<uint32_t>(v[i])) << "n " << n << " at " << i;
  }
}

TEST(IndexerFp4, Avx2MatchesScalar) {
  if (static_cast<int>(cpu::detected_isa()) < static_cast<int>(cpu::Isa::Avx2)) GTEST_SKIP() << "no AVX2 on this CPU";
  expect_simd_matches_scalar(cpu::indexer_scores_fp4_avx2, "avx2 vs scalar");
}

// The integer kernels (vpdpbusd): AVX-512 VNNI at the AVX-512 levels, AVX-VNNI at the AVX2 level,
// each where this CPU has it.
struct Int8Kernel {
  const char* name;
  bool (*fn)(const IndexerScoreArgs&, const uint8_t*, size_t);
};

std::vector<Int8Kernel> int8_kernels() {
  std::vector<Int8Kernel> v;
  if (static_cast<int>(cpu::detected_isa()) >= static_cast<int>(cpu::Isa::Avx512))
    v.push_back({"avx512-vnni", cpu::avx512::indexer_scores_fp4_int8});
  if (cpu::cpu_has_avx_vnni()) v.push_back({"avx-vnni", cpu::indexer_scores_fp4_avxvnni});
  return v;
}

// Each takes every problem above (its queries and keys are FP4-simulated), and agrees with the
// scalar twin.
TEST(IndexerFp4, Int8MatchesScalar) {
  if (int8_kernels().empty()) GTEST_SKIP() << "no VNNI on this CPU";
  for (const Int8Kernel& k : int8_kernels())
    expect_simd_matches_scalar(
        [&](const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes) {
          ASSERT_TRUE(k.fn(a, keys, key_bytes)) << k.name << " declined FP4-simulated queries";
        },
        k.name);
}

// Its dot products are exact: with one head of weight 1 a score is bf16(relu(bf16(q . k))), q . k
// summed in double (exact for these values), for every key. Also keys it cannot hold in int8 (a
// nonzero block more than 2^3 below the key's largest, scored by the BF16 / float32 kernel
// instead), blocks and keys of zeros, and visibility cut inside a 16-key tile.
TEST(IndexerFp4, Int8DotsAreExact) {
  if (int8_kernels().empty()) GTEST_SKIP() << "no VNNI on this CPU";
  for (const Int8Kernel& k : int8_kernels())
  for (const int D : {128, 96, 320}) {
    const int64_t nk = 300;
    Problem p = make(3, nk, 1, D, static_cast<uint32_t>(D));
    p.w.assign(p.w.size(), 1.0f);
    p.visible = {nk, 137, 1};
    for (int64_t i = 0; i < nk; ++i) {
      float* k = p.keys.data() + i * D;
      if (i % 7 == 1)  // block 0 at 2^-6 of the rest: not int8-exact
        for (int d = 0; d < 32; ++d) k[d] = std::ldexp(k[d], -6);
      if (i % 7 == 2) std::fill(k + 32, k + 64, 0.0f);  // a block of zeros
      if (i % 7 == 3) std::fill(k, k + D, 0.0f);        // a key of zeros
      if (i % 7 == 4)  // block 1 at 2^-3 of the rest: still exact
        for (int d = 32; d < 64; ++d) k[d] = std::ldexp(k[d], -3);
      quant::fp4_sim(k, D, 32);
    }
    IndexKeyCodec(D).encode(p.keys.data(), nk, p.packed.data());
    std::vector<float> got;
    IndexerScoreArgs a = args(p, got);
    a.keys = nullptr;
    ASSERT_TRUE(k.fn(a, p.packed.data(), IndexKeyCodec(D).entry_bytes())) << k.name;
    for (int64_t r = 0; r < p.n; ++r)
      for (int64_t i = 0; i < nk; ++i) {
        const float s = got[static_cast<size_t>(r * nk + i)];
        if (i >= p.visible[static_cast<size_t>(r)]) {
          EXPECT_EQ(s, -std::numeric_limits<float>::infinity()) << k.name << " D " << D << " row " << r << " key " << i;
          continue;
        }
        double dot = 0.0;
        for (int d = 0; d < D; ++d)
          dot += double(p.q[static_cast<size_t>(r * D + d)]) * double(p.keys[static_cast<size_t>(i * D + d)]);
        const float want = quant::bf16_round(std::max(0.0f, quant::bf16_round(static_cast<float>(dot))));
        if (i % 7 == 1) {  // the other kernel sums in float32: within a bf16 step
          EXPECT_NEAR(s, want, std::fabs(want) / 128.0f + 1e-30f) << k.name << " D " << D << " row " << r << " key " << i;
        } else {
          EXPECT_EQ(s, want) << k.name << " D " << D << " row " << r << " key " << i;
        }
      }
  }
}

// Queries off the FP4 grid (or a head whose blocks span more than 2^3): a row with such a head is
// scored by the other kernel (within a bf16 step of the scalar twin), the other rows stay exact
// integer sums; with no row of the form the kernel declines and writes nothing, and the dispatch
// still gives the scalar twin's scores.
TEST(IndexerFp4, Int8HandsOnOtherQueries) {
  if (int8_kernels().empty()) GTEST_SKIP() << "no VNNI on this CPU";
  const int H = 4, D = 128;
  const size_t kb = IndexKeyCodec(D).entry_bytes();
  for (const Int8Kernel& k : int8_kernels())
  for (const int variant : {0, 1})
    for (const int64_t n : {1L, 3L}) {
      Problem p = make(n, 100, H, D, 3);
      const int64_t bad = n - 1;  // its head 1
      float* q = p.q.data() + (bad * H + 1) * D;
      if (variant == 0) {
        q[17] = 13.0f / 512.0f;  // a BF16 value off the head's FP4 grid
      } else {
        for (int d = 0; d < 32; ++d) q[d] = std::ldexp(q[d], -5);  // block 0 far below block 1
        q[0] = std::ldexp(1.5f, -4);
      }
      std::vector<float> got, want, split;
      IndexerScoreArgs a = args(p, got);
      a.keys = nullptr;
      got.assign(got.size(), 7.0f);
      IndexerScoreArgs b = args(p, want);
      b.keys = nullptr;
      cpu::indexer_scores_fp4_scalar(b, p.packed.data(), kb);
      const std::string what = std::string(k.name) + " variant " + std::to_string(variant) + " rows " + std::to_string(n);
      if (n == 1) {
        EXPECT_FALSE(k.fn(a, p.packed.data(), kb)) << what;
        for (const float v : got) ASSERT_EQ(v, 7.0f) << what;
        cpu::indexer_scores_fp4(a, p.packed.data(), kb);
        expect_close(want, got, what.c_str());
        continue;
      }
      ASSERT_TRUE(k.fn(a, p.packed.data(), kb)) << what;
      expect_close(want, got, what.c_str());
      // the rows before it alone give the same bits (their integer sums do not see the odd row)
      Problem first = p;
      first.n = bad;
      first.q.resize(static_cast<size_t>(bad * H * D));
      first.w.resize(static_cast<size_t>(bad * H));
      first.visible.resize(static_cast<size_t>(bad));
      IndexerScoreArgs c = args(first, split);
      c.keys = nullptr;
      ASSERT_TRUE(k.fn(c, first.packed.data(), kb)) << what;
      for (size_t i = 0; i < split.size(); ++i)
        ASSERT_EQ(std::bit_cast<uint32_t>(split[i]), std::bit_cast<uint32_t>(got[i])) << what << " at " << i;
    }
}

}  // namespace
}  // namespace dsv4

// The blocked top-k (bounded scratch, a running bar) selects exactly what one [n][n_keys] score
// matrix + topk_desc selects, for block sizes that split the keys anywhere, in both layouts, with
// ties (also at the bar), with keys whose scores rise along the list (every key beats the bar: the
// most reductions), and with the rows split over threads.
#include "kernels/cpu/cpu_backend.h"
#include "runtime/kv_gather.h"

namespace dsv4 {
namespace {

TEST(IndexerTopk, BlockedEqualsOneShot) {
  const auto ref_be = make_reference_backend();
  const auto cpu_be = cpu::make_cpu_backend(2);
  const int H = 2, D = 128;
  const int64_t n = 6, nk = 611;
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(n * H * D)), w(static_cast<size_t>(n * H), 0.25f);
  for (auto& v : q) v = std::abs(g(rng));  // positive queries: a positive key scores higher
  for (int64_t r = 0; r < n * H; ++r) quant::fp4_sim(q.data() + r * D, D, 32);
  std::vector<float> key(D);
  for (const bool rising : {false, true})
    for (KvLayout layout : {KvLayout::Compact, KvLayout::Bf16}) {
      KvRows keys;
      keys.init(nk, D, KvRowKind::Indexer, layout, 0);
      for (int64_t i = 0; i < nk; ++i) {
        for (auto& v : key) v = g(rng);
        // rising: every element grows with i (fp4 steps, so also equal runs), scores rise
        if (rising) key.assign(D, 0.05f * static_cast<float>(i));
        if (i % 10 == 3) key.assign(D, 0.0f);  // equal (zero) scores: ties broken by index
        quant::fp4_sim(key.data(), D, 32);
        keys.write(i, key.data());
      }
      std::vector<int64_t> vis{1, 17, 60, 61, 400, 611};
      std::vector<float> all(static_cast<size_t>(n * nk));
      std::vector<float> dec(static_cast<size_t>(nk * D));
      keys.read_range(0, nk, dec.data());
      ref_be->indexer_scores(IndexerScoreArgs{q.data(), w.data(), n, H, D, dec.data(), nk, vis.data(), all.data()});
      for (const int topk : {1, 5, 64}) {
        std::vector<int32_t> want(static_cast<size_t>(n * topk), -1), work(static_cast<size_t>(nk));
        for (int64_t t = 0; t < n; ++t)
          ref::topk_desc(&all[static_cast<size_t>(t * nk)], vis[static_cast<size_t>(t)],
                         std::min<int64_t>(topk, vis[static_cast<size_t>(t)]), &want[static_cast<size_t>(t * topk)],
                         work.data());
        KvGatherScratch gs;
        for (const Backend* be : {ref_be.get(), cpu_be.get()})
          for (int64_t block : {1, 4, 7, 60, 61, 1000}) {
            std::vector<int32_t> sel(static_cast<size_t>(n * topk), -1);
            std::vector<int64_t> nsel(static_cast<size_t>(n));
            indexer_topk_stored(*be, IndexerScoreArgs{q.data(), w.data(), n, H, D, nullptr, nk, vis.data(), nullptr},
                                keys, topk, sel.data(), nsel.data(), gs, block);
            EXPECT_EQ(sel, want) << "block " << block << " layout " << kv_layout_name(layout) << " topk " << topk
                                 << " rising " << rising << " backend " << (be == cpu_be.get() ? "cpu" : "ref");
            for (int64_t t = 0; t < n; ++t)
              EXPECT_EQ(nsel[static_cast<size_t>(t)], std::min<int64_t>(topk, vis[static_cast<size_t>(t)]));
          }
      }
    }
}

}  // namespace
}  // namespace dsv4
