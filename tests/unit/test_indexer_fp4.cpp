// Indexer scores over packed FP4 keys: the scalar twin equals the reference kernel on decoded keys
// (up to float vs double summation, i.e. at most one bf16 step on the rare inexact sums), and the
// AVX-512 version agrees with the scalar twin; visibility (-inf) exact.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

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
  int64_t exact = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isinf(a[i]) || std::isinf(b[i])) {
      EXPECT_EQ(a[i], b[i]) << what << " at " << i;
      continue;
    }
    const float tol = std::max(std::fabs(a[i]), std::fabs(b[i])) * (1.0f / 128.0f) + 1e-30f;
    EXPECT_LE(std::fabs(a[i] - b[i]), tol) << what << " at " << i;
    exact += a[i] == b[i];
  }
  EXPECT_GT(exact, static_cast<int64_t>(a.size() * 9 / 10)) << what << ": most scores must agree exactly";
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

TEST(IndexerFp4, Avx512MatchesScalar) {
  if (cpu::detected_isa() != cpu::Isa::Avx512Bf16) GTEST_SKIP() << "no AVX-512 on this CPU";
  for (auto [n, nk, H, D] : {std::tuple{1L, 1000L, 2, 128}, std::tuple{7L, 129L, 4, 128}, std::tuple{2L, 33L, 3, 96}}) {
    Problem p = make(n, nk, H, D, static_cast<uint32_t>(nk));
    std::vector<float> s, v;
    IndexerScoreArgs a = args(p, s);
    a.keys = nullptr;
    cpu::indexer_scores_fp4_scalar(a, p.packed.data(), IndexKeyCodec(D).entry_bytes());
    IndexerScoreArgs b = args(p, v);
    b.keys = nullptr;
    cpu::indexer_scores_fp4_avx512(b, p.packed.data(), IndexKeyCodec(D).entry_bytes());
    expect_close(s, v, "avx512 vs scalar");
    for (int64_t r = 0; r < n; ++r)
      for (int64_t i = p.visible[static_cast<size_t>(r)]; i < nk; ++i)
        EXPECT_EQ(v[static_cast<size_t>(r * nk + i)], -std::numeric_limits<float>::infinity());
  }
}

}  // namespace
}  // namespace dsv4
