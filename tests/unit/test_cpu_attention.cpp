// Fast sparse attention and indexer scoring (scalar twin, AVX2, AVX-512) vs float64 references, on
// odd head counts, padded (-1) key lists, a split key table, an empty list and partial visibility.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/formats.h"
#include "tests/unit/cpu_test_util.h"

namespace dsv4::cpu {
namespace {

using testing::IsaScope;
using testing::isas_to_test;

float bf16v(float v) { return bf16_bits_to_f32(f32_to_bf16_bits(v)); }

std::vector<float> bf16_randn(std::mt19937& rng, size_t n, float sd) {
  std::normal_distribution<float> d(0.f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = bf16v(d(rng));
  return v;
}

// Query rows q [n][H][D] against the key table k1 (its rows first) then k2, lists [n][L].
AttentionArgs attention_args(const std::vector<float>& q, int64_t n, int H, int D, const std::vector<float>& k1,
                             const float* k2, const std::vector<int32_t>& lists, int64_t L,
                             const std::vector<float>& sink) {
  AttentionArgs a;
  a.q = q.data();
  a.n = n;
  a.n_heads = H;
  a.head_dim = D;
  a.keys = k1.data();
  a.split = static_cast<int64_t>(k1.size()) / D;
  a.keys2 = k2;
  a.lists = lists.data();
  a.list_len = L;
  a.sink = sink.data();
  a.scale = 1.0f / std::sqrt(float(D));
  return a;
}

class CpuAttentionDims : public ::testing::TestWithParam<int> {};

// D = 80: D % 64 != 0 (both AVX-512 PV chunk widths); D = 88: D % 16 != 0 (the AVX2 path at every
// SIMD level, with its 8-dim PV remainder).
INSTANTIATE_TEST_SUITE_P(HeadDims, CpuAttentionDims, ::testing::Values(80, 88));

void expect_sparse_attention_matches_float64(int H, int D, int64_t n = 3) {
  std::mt19937 rng(11);
  const int64_t split = 7, n2 = 30, L = 40;
  const auto q = bf16_randn(rng, n * H * D, 1.0f);
  const auto k1 = bf16_randn(rng, split * D, 1.0f);
  const auto k2 = bf16_randn(rng, n2 * D, 1.0f);
  std::vector<float> sink(H);
  for (int h = 0; h < H; ++h) sink[h] = std::vector<float>{0.5f, -1.0f, 2.0f, 0.0f, -3.0f}[h % 5] + 0.25f * (h / 5);
  std::vector<int32_t> lists(n * L, -1);
  std::uniform_int_distribution<int> pick(0, split + n2 - 1);
  for (int64_t j = 0; j < L; ++j) lists[j] = (j % 3 == 2) ? -1 : pick(rng);   // row 0: padded
  if (n > 1)
    for (int64_t j = 0; j < 37; ++j) lists[L + j] = pick(rng);                 // row 1: tail -1
  // row 2: no keys at all -> zero output
  AttentionArgs a = attention_args(q, n, H, D, k1, k2.data(), lists, L, sink);
  ThreadPool pool(2);
  for (Isa isa : isas_to_test()) {
    IsaScope scope(isa);
    std::vector<float> out(n * H * D, 123.0f);
    a.out = out.data();
    sparse_attention(a, &pool);
    for (int64_t t = 0; t < n; ++t) {
      for (int h = 0; h < H; ++h) {
        std::vector<double> s, acc(D, 0.0);
        std::vector<const float*> ks;
        for (int64_t j = 0; j < L; ++j) {
          if (lists[t * L + j] < 0) continue;
          const float* kk = a.key(lists[t * L + j]);
          double d = 0;
          for (int i = 0; i < D; ++i) d += double(q[(t * H + h) * D + i]) * kk[i];
          s.push_back(d * a.scale);
          ks.push_back(kk);
        }
        // The reference's online softmax (one block: L <= 64): probabilities relative to the
        // scores' maximum (their BF16 rounding depends on it), the sink joins the denominator last.
        double m = s.empty() ? sink[h] : s[0];
        for (double v : s) m = std::max(m, v);
        double l = 0;
        for (size_t j = 0; j < s.size(); ++j) {
          const double p = std::exp(s[j] - m);
          l += p;
          const double pb = bf16v(static_cast<float>(p));  // the reference's BF16 PV weights
          for (int i = 0; i < D; ++i) acc[i] += pb * ks[j][i];
        }
        l += std::exp(sink[h] - m);
        for (int i = 0; i < D; ++i) {
          const double ref = acc[i] / l;
          const float got = out[(t * H + h) * D + i];
          // BF16 output: half an ulp (2^-9 relative) plus float32 / exp approximation slack.
          ASSERT_NEAR(got, ref, std::ldexp(std::fabs(ref), -8) + 1e-6)
              << isa_name(isa) << " H " << H << " t " << t << " h " << h << " d " << i;
          if (t == 2) {
            ASSERT_EQ(got, 0.0f);
          }
        }
      }
    }
  }
}

// H = 5: one unit of 4 + 1 heads; H = 21: a 16-head unit (4 groups sharing the BF16 key copy)
// and a 5-head one at the AVX-512 level, one 21-head unit per row on vdpbf16ps (3 rows, 2
// threads); H = 64 over 9 rows: one unit per row with AMX and on vdpbf16ps; H = 64 in one row:
// two 32-head units (AMX, vdpbf16ps); H = 21 in one row: 16 + 5 heads on vdpbf16ps.
TEST_P(CpuAttentionDims, SparseAttentionMatchesFloat64) {
  for (const int H : {5, 21}) {
    SCOPED_TRACE(H);
    expect_sparse_attention_matches_float64(H, GetParam());
  }
  for (const auto& [H, n] : {std::pair<int, int64_t>{64, 9}, {64, 1}, {21, 1}}) {
    SCOPED_TRACE(std::to_string(H) + " heads, " + std::to_string(n) + " rows");
    expect_sparse_attention_matches_float64(H, GetParam(), n);
  }
}

// The key table's first rows given again as BF16 bits (AttentionArgs::keys_bf16, what a decode
// step's window ring keeps) change no output bit at any level: the BF16 kernel reads those rows in
// place of its own conversion where D is a multiple of 32 (D = 96, 512), and converts as before
// otherwise (D = 80). Several 64-key blocks, -1 holes, odd key counts, keys on both sides of split.
TEST(CpuAttention, Bf16KeyRowsChangeNothing) {
  std::mt19937 rng(23);
  ThreadPool pool(2);
  for (const int D : {80, 96, 512}) {
    for (const auto& [H, n] : {std::pair<int, int64_t>{64, 1}, {21, 3}}) {
      const int split = 70, n2 = 90;
      const int64_t L = 151;
      const auto q = bf16_randn(rng, n * H * D, 1.0f);
      const auto k1 = bf16_randn(rng, split * D, 1.0f), k2 = bf16_randn(rng, n2 * D, 1.0f);
      std::vector<uint16_t> k1_bits(k1.size());
      for (size_t i = 0; i < k1.size(); ++i) k1_bits[i] = f32_to_bf16_bits(k1[i]);
      std::vector<float> sink(H, -0.5f);
      std::vector<int32_t> lists(n * L);
      std::uniform_int_distribution<int> pick(0, split + n2 - 1);
      for (int64_t j = 0; j < n * L; ++j) lists[j] = (j % 7 == 3) ? -1 : pick(rng);
      AttentionArgs a = attention_args(q, n, H, D, k1, k2.data(), lists, L, sink);
      for (Isa isa : isas_to_test()) {
        IsaScope scope(isa);
        std::vector<float> want(n * H * D, 1.0f), got(n * H * D, 2.0f);
        a.keys_bf16 = nullptr;
        a.out = want.data();
        sparse_attention(a, &pool);
        a.keys_bf16 = k1_bits.data();
        a.out = got.data();
        sparse_attention(a, &pool);
        ASSERT_EQ(want, got) << "D " << D << " H " << H << " " << isa_name(isa);
      }
    }
  }
}

// Long lists (several 64-key online-softmax blocks, -1 holes, a last block of 1-63 keys, odd
// key counts): the AMX unit equals the AVX-512 one up to float32 summation order, for units of
// 21 and 53 heads.
TEST(CpuAttention, AmxRowsMatchAvx512OverManyBlocks) {
  if (detected_isa() != Isa::Avx512Amx) GTEST_SKIP() << "no AMX on this CPU";
  std::mt19937 rng(13);
  for (const int D : {80, 128, 512}) {
    for (const int64_t L : {1, 33, 64, 200, 641}) for (const int H : {21, 53}) {
      const int n = 2, nkeys = 700;
      const auto q = bf16_randn(rng, n * H * D, 1.0f);
      const auto keys = bf16_randn(rng, nkeys * D, 1.0f);
      std::vector<float> sink(H, 0.5f);
      std::vector<int32_t> lists(n * L);
      std::uniform_int_distribution<int> pick(0, nkeys - 1);
      for (int64_t j = 0; j < n * L; ++j) lists[j] = (j % 7 == 3) ? -1 : pick(rng);
      AttentionArgs a = attention_args(q, n, H, D, keys, nullptr, lists, L, sink);
      std::vector<float> want(n * H * D), got(n * H * D);
      for (int64_t t = 0; t < n; ++t)
        for (int h0 = 0; h0 < H; h0 += 16) {
          a.out = want.data();
          avx512::sparse_attention_rows(a, t, h0, std::min(16, H - h0));
          a.out = got.data();
          avx512::sparse_attention_rows_amx(a, t, h0, std::min(16, H - h0));
        }
      // A unit of all H heads (whole groups of 16 and a partial one; 53 heads: the up to 64 of a
      // prefill unit) gives the same as units of 16.
      for (int64_t t = 0; t < n; ++t) {
        std::vector<float> whole(n * H * D);
        a.out = whole.data();
        avx512::sparse_attention_rows_amx(a, t, 0, H);
        for (int64_t i = t * H * D; i < (t + 1) * H * D; ++i)
          ASSERT_EQ(whole[i], got[i]) << "one " << H << "-head unit, D " << D << " L " << L << " at " << i;
      }
      // Results near zero come from cancelling terms: the summation-order slack scales with the
      // head's largest output, plus a BF16 step of the value itself.
      for (size_t row = 0; row < want.size() / D; ++row) {
        float big = 0;
        for (int d = 0; d < D; ++d) big = std::max(big, std::fabs(want[row * D + d]));
        for (int d = 0; d < D; ++d) {
          const size_t i = row * D + d;
          ASSERT_NEAR(got[i], want[i], std::ldexp(std::fabs(want[i]), -7) + std::ldexp(big, -9) + 1e-6)
              << "D " << D << " L " << L << " at " << i;
        }
      }
    }
  }
}

// A prefill batch on AMX (>= 8 rows) converts every key the lists reference to BF16 once and the
// rows copy their blocks from that table: bit for bit what each row gets converting its own float
// keys, with keys in both tables (window rows and compressed entries), -1 holes and odd blocks.
TEST(CpuAttention, AmxPrefillKeyTableChangesNothing) {
  if (detected_isa() != Isa::Avx512Amx) GTEST_SKIP() << "no AMX on this CPU";
  std::mt19937 rng(17);
  ThreadPool pool(2);
  for (const int D : {80, 512}) {
    const int H = 64, n = 9, split = 150, n2 = 500;
    const int64_t L = 203;
    const auto q = bf16_randn(rng, n * H * D, 1.0f);
    const auto k1 = bf16_randn(rng, split * D, 1.0f), k2 = bf16_randn(rng, n2 * D, 1.0f);
    std::vector<float> sink(H, 0.25f);
    std::vector<int32_t> lists(n * L);
    std::uniform_int_distribution<int> pick(0, split + n2 - 1);
    for (int64_t j = 0; j < n * L; ++j) lists[j] = (j % 11 == 5) ? -1 : pick(rng);
    AttentionArgs a = attention_args(q, n, H, D, k1, k2.data(), lists, L, sink);
    std::vector<float> want(n * H * D), got(n * H * D);
    a.out = want.data();
    for (int64_t t = 0; t < n; ++t) avx512::sparse_attention_rows_amx(a, t, 0, H);
    a.out = got.data();
    sparse_attention(a, &pool);
    for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(want[i], got[i]) << "D " << D << " at " << i;
  }
}

TEST(CpuAttention, IndexerScoresMatchFloat64) {
  std::mt19937 rng(12);
  const int H = 19, D = 128;  // H not a multiple of 16
  const int64_t n = 2, nk = 301;
  const auto q = bf16_randn(rng, n * H * D, 0.3f);
  const auto w = bf16_randn(rng, n * H, 1.0f);
  const auto keys = bf16_randn(rng, nk * D, 0.3f);
  const std::vector<int64_t> visible = {nk, 150};
  ThreadPool pool(2);
  for (Isa isa : isas_to_test()) {
    IsaScope scope(isa);
    std::vector<float> scores(n * nk, 7.0f);
    IndexerScoreArgs a;
    a.q = q.data();
    a.w = w.data();
    a.n = n;
    a.n_heads = H;
    a.head_dim = D;
    a.keys = keys.data();
    a.n_keys = nk;
    a.visible = visible.data();
    a.scores = scores.data();
    indexer_scores(a, &pool);
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t i = 0; i < nk; ++i) {
        const float got = scores[t * nk + i];
        if (i >= visible[t]) {
          ASSERT_EQ(got, -std::numeric_limits<float>::infinity());
          continue;
        }
        double total = 0, mag = 0;
        for (int h = 0; h < H; ++h) {
          double s = 0, sm = 0;
          for (int d = 0; d < D; ++d) {
            s += double(q[(t * H + h) * D + d]) * keys[i * D + d];
            sm += std::fabs(double(q[(t * H + h) * D + d]) * keys[i * D + d]);
          }
          total += std::max(s, 0.0) * w[t * H + h];
          mag += sm * std::fabs(w[t * H + h]);
        }
        // BF16 rounding of the score plus the float32 accumulation bound over H * D terms.
        ASSERT_NEAR(got, total, std::ldexp(std::fabs(total), -8) +
                                    testing::sum_error_bound(int64_t{H} * D + H, mag))
            << isa_name(isa) << " t " << t << " key " << i;
      }
    }
  }
}

}  // namespace
}  // namespace dsv4::cpu
