// Fast CPU linear kernels (FP8, FP4 grouped, BF16) vs float64 references built from the format
// definitions, for every ISA level this machine runs, on odd sizes, with and without threads.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/formats.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/linear_kernels.h"
#include "quant/quant.h"
#include "tests/unit/cpu_test_util.h"

namespace dsv4::cpu {
namespace {

using testing::GemmUnitScope;
using testing::GemvOrderScope;
using testing::gemm_units_to_test;
using testing::IsaScope;
using testing::isas_to_test;
using testing::sum_error_bound;

std::vector<float> random_rows(std::mt19937& rng, int64_t m, int64_t k, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> x(m * k);
  for (auto& v : x) v = d(rng);
  return x;
}

std::vector<uint8_t> random_e4m3(std::mt19937& rng, int64_t n) {
  std::uniform_int_distribution<int> d(0, 255);
  std::vector<uint8_t> w(n);
  for (auto& c : w) {
    do c = static_cast<uint8_t>(d(rng));
    while ((c & 0x7F) == 0x7F);
  }
  return w;
}

std::vector<uint8_t> random_scales(std::mt19937& rng, int64_t n, int lo = 118, int hi = 132) {
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<uint8_t> s(n);
  for (auto& b : s) b = static_cast<uint8_t>(d(rng));
  return s;
}

// Checks y (m x n, stride n) against the exact sums given by term(i, r, k) over k < K.
template <class Term>
void expect_close(const std::vector<float>& y, int64_t m, int64_t n, int64_t k, Term term,
                  const char* what) {
  int bad = 0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t r = 0; r < n; ++r) {
      double exact = 0, mag = 0;
      for (int64_t j = 0; j < k; ++j) {
        const double t = term(i, r, j);
        exact += t;
        mag += std::fabs(t);
      }
      const double err = std::fabs(y[i * n + r] - exact);
      if (!(err <= sum_error_bound(k, mag)) && bad++ < 5)
        ADD_FAILURE() << what << " row " << i << " out " << r << ": got " << y[i * n + r]
                      << " exact " << exact << " bound " << sum_error_bound(k, mag);
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

// Nearest E4M3 value (ties to the even code) by exhaustive search over the finite codes.
float nearest_e4m3(float v) {
  float best = 0;
  int best_code = 0;
  double best_d = 1e30;
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) continue;
    const double d = std::fabs(static_cast<double>(e4m3_value(static_cast<uint8_t>(c))) - v);
    if (d < best_d || (d == best_d && (c & 1) == 0 && (best_code & 1) == 1)) {
      best_d = d;
      best = e4m3_value(static_cast<uint8_t>(c));
      best_code = c;
    }
  }
  return best;
}

TEST(CpuLinear, ActQuantIsNearestE4m3TimesPowerOfTwoScale) {
  std::mt19937 rng(1);
  std::vector<float> x = random_rows(rng, 1, 300, 3.0f);
  x[5] = 0.0f;
  x[130] = 1e-7f;  // forces the amax floor in no block, but a tiny value rounds to zero/subnormal
  for (int j = 256; j < 300; ++j) x[j] = 1e-6f * (j - 280);  // a block below the 1e-4 amax floor
  std::vector<float> q(300);
  act_quant_dequant(x.data(), 300, q.data());
  for (int64_t b = 0; b < 300; b += 128) {
    float amax = 0;
    for (int64_t j = b; j < std::min<int64_t>(300, b + 128); ++j) amax = std::max(amax, std::fabs(x[j]));
    amax = std::max(amax, 1e-4f);
    const float s = std::ldexp(1.0f, ceil_log2_f32(amax * (1.0f / 448.0f)));
    EXPECT_LE(amax / s, 448.0f);
    EXPECT_GT(amax / s, 224.0f) << "scale is the smallest power of two";
    for (int64_t j = b; j < std::min<int64_t>(300, b + 128); ++j)
      ASSERT_EQ(q[j], nearest_e4m3(x[j] / s) * s) << "element " << j;
  }
}

// The SIMD activation preparation (act_quant rounding + BF16 + panel permutation) is bit-identical
// to the scalar twin, including E4M3 subnormals, ties, zeros of both signs and clamped blocks.
TEST(CpuLinear, PrepareActBitIdenticalToScalar) {
  std::mt19937 rng(11);
  const int64_t k = 512, ldo = k + 32;
  std::vector<float> x(k);
  std::normal_distribution<float> d(0.0f, 1.0f);
  for (int64_t j = 0; j < k; ++j) {
    const int block = static_cast<int>(j / 128);
    float v = d(rng) * (block == 0 ? 1.0f : block == 1 ? 1e-3f : block == 2 ? 3e4f : 1.0f);
    if (block == 3 && j % 3 == 0) v = std::ldexp(static_cast<float>(static_cast<int>(v * 64) | 1), -12);  // ties
    if (j % 17 == 0) v = (j % 2) ? -0.0f : 0.0f;
    x[j] = v;
  }
  x[300] = 1e-30f;  // a block whose values are mostly below the E4M3 subnormal grid
  const PanelKernels& ref = panel_kernels(Isa::Scalar);
  for (Isa isa : isas_to_test()) {
    const PanelKernels& kern = panel_kernels(isa);
    for (PanelOrder order : {PanelOrder::Natural, PanelOrder::Fp8, PanelOrder::Fp4, PanelOrder::Fp4Words,
                              PanelOrder::Fp8Dwords})
      for (bool quant : {false, true}) {
        std::vector<uint16_t> a(ldo, 0xFFFF), b(ldo, 0xEEEE);
        ref.prepare_act_bf16(x.data(), k, order, quant, a.data(), ldo);
        kern.prepare_act_bf16(x.data(), k, order, quant, b.data(), ldo);
        for (int64_t p = 0; p < ldo; ++p)
          ASSERT_EQ(a[p], b[p]) << isa_name(isa) << " order " << int(order) << " quant " << quant << " p " << p;
      }
  }
}

// Many rows with a short K: the whole-K AMX path takes passes of 256 activation rows (K <= 2048)
// and a partial one; every level and unit against float64.
TEST(CpuLinear, Fp8ManyRowsShortKMatchesFloat64Reference) {
  std::mt19937 rng(12);
  const int64_t n = 70, k = 384, m = 300;
  std::vector<uint8_t> w(n * k);
  std::normal_distribution<float> dg(0.0f, 64.0f);
  for (auto& c : w) c = quant::f32_to_e4m3(dg(rng));
  const auto s = random_scales(rng, 1 * 3);
  const auto x = random_rows(rng, m, k);
  std::vector<float> xq(m * k);
  for (int64_t i = 0; i < m; ++i) act_quant_dequant(&x[i * k], k, &xq[i * k]);
  ThreadPool pool2(2);
  for (Isa isa : isas_to_test()) for (GemmUnit unit : gemm_units_to_test(isa)) {
    IsaScope scope(isa);
    GemmUnitScope unit_scope(unit);
    SCOPED_TRACE(gemm_unit_name(unit));
    std::vector<float> y(m * n, -1.0f);
    linear_fp8({w.data(), s.data(), n, k}, {x.data(), m, k}, {y.data(), n}, &pool2);
    expect_close(y, m, n, k, [&](int64_t i, int64_t r, int64_t j) {
      return double(e4m3_value(w[r * k + j])) * e8m0_value(s[j / 128]) * xq[i * k + j];
    }, isa_name(isa));
  }
}

// Uniformly random codes put a zero or subnormal code in nearly every 64-byte chunk, so with the
// FMA unit the decode GEMV takes the table kernel for them; codes quantised from Gaussian values
// (as in checkpoints) take the FMA decode GEMV (fp8_fma_gemv.cpp).
TEST(CpuLinear, Fp8MatchesFloat64Reference) {
  std::mt19937 rng(2);
  const int64_t n = 262, k = 384;  // 3 row blocks (the last partial), n % 4 != 0
  const auto uniform = random_e4m3(rng, n * k);
  std::vector<uint8_t> gaussian(n * k);
  std::normal_distribution<float> dg(0.0f, 64.0f);
  for (auto& c : gaussian) c = quant::f32_to_e4m3(dg(rng));
  const auto s = random_scales(rng, 3 * 3);
  ThreadPool pool2(2), pool3(3);
  const std::vector<uint8_t>* weight_sets[] = {&uniform, &gaussian};
  for (const std::vector<uint8_t>* wp : weight_sets)
  for (Isa isa : isas_to_test()) for (GemmUnit unit : gemm_units_to_test(isa)) {
    const std::vector<uint8_t>& w = *wp;
    IsaScope scope(isa);
    GemmUnitScope unit_scope(unit);
    SCOPED_TRACE(gemm_unit_name(unit));
    for (int64_t m : {1, 3, 6, 13, 40, 64, 70}) {
      const auto x = random_rows(rng, m, k);
      std::vector<float> xq(m * k);
      for (int64_t i = 0; i < m; ++i) act_quant_dequant(&x[i * k], k, &xq[i * k]);
      for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &pool2, &pool3}) {
        std::vector<float> y(m * n, -1.0f);
        linear_fp8({w.data(), s.data(), n, k}, {x.data(), m, k}, {y.data(), n}, pool);
        expect_close(y, m, n, k, [&](int64_t i, int64_t r, int64_t j) {
          return double(e4m3_value(w[r * k + j])) * e8m0_value(s[(r / 128) * 3 + j / 128]) *
                 xq[i * k + j];
        }, isa_name(isa));
      }
      // quantize_act = false: BF16-rounded activations.
      std::vector<float> y(m * n);
      linear_fp8({w.data(), s.data(), n, k}, {x.data(), m, k}, {y.data(), n}, &pool2, false);
      expect_close(y, m, n, k, [&](int64_t i, int64_t r, int64_t j) {
        return double(e4m3_value(w[r * k + j])) * e8m0_value(s[(r / 128) * 3 + j / 128]) *
               bf16_bits_to_f32(f32_to_bf16_bits(x[i * k + j]));
      }, "fp8 bf16 act");
    }
  }
}

TEST(CpuLinear, Fp4GroupedMatchesFloat64Reference) {
  std::mt19937 rng(3);
  const int64_t k = 256, tokens = 9;
  const int64_t ns[3] = {522, 64, 7};  // enough work (> 1M MACs) for the threaded path
  std::vector<std::vector<uint8_t>> packed(3), scales(3);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int e = 0; e < 3; ++e) {
    packed[e].resize(ns[e] * k / 2);
    for (auto& b : packed[e]) b = static_cast<uint8_t>(byte(rng));
    scales[e] = random_scales(rng, ns[e] * k / 32);
  }
  const auto x = random_rows(rng, tokens, k, 0.5f);
  std::vector<float> xq(tokens * k);
  for (int64_t i = 0; i < tokens; ++i) act_quant_dequant(&x[i * k], k, &xq[i * k]);
  // 40, 15 and 3 rows: one call mixing the panel path (from 32 rows on the tiles), the rows
  // between (FMA panels, or in-register decode 4 rows at a time where the integer kernel takes
  // them) and in-register decode at every level
  std::vector<std::vector<int32_t>> rows = {{}, {}, {2, 7, 0}};
  for (int i = 0; i < 40; ++i) rows[0].push_back(static_cast<int32_t>((i * 7 + 3) % tokens));
  for (int i = 0; i < 15; ++i) rows[1].push_back(static_cast<int32_t>((i * 5 + 1) % tokens));
  auto weight = [&](int e, int64_t r, int64_t j) {
    const uint8_t b = packed[e][r * k / 2 + j / 2];
    return double(e2m1_value(j % 2 ? b >> 4 : b & 15)) * e8m0_value(scales[e][r * k / 32 + j / 32]);
  };
  ThreadPool pool(2);
  for (Isa isa : isas_to_test()) for (GemmUnit unit : gemm_units_to_test(isa)) {
    IsaScope scope(isa);
    GemmUnitScope unit_scope(unit);
    SCOPED_TRACE(gemm_unit_name(unit));
    std::vector<std::vector<float>> y(3);
    std::vector<Fp4Group> groups;
    for (int e = 0; e < 3; ++e) {
      y[e].assign(rows[e].size() * ns[e], -1.0f);
      groups.push_back({{packed[e].data(), scales[e].data(), ns[e], k}, x.data(), k,
                        rows[e].data(), static_cast<int64_t>(rows[e].size()),
                        {y[e].data(), ns[e]}});
    }
    linear_fp4_grouped(groups, &pool);
    for (int e = 0; e < 3; ++e) {
      expect_close(y[e], rows[e].size(), ns[e], k, [&](int64_t i, int64_t r, int64_t j) {
        return weight(e, r, j) * xq[rows[e][i] * k + j];
      }, isa_name(isa));
    }
    // Enough rows per group for the GEMM paths (FMA / AMX tiles, partial 16-row tiles).
    std::vector<std::vector<int32_t>> many(3);
    for (int i = 0; i < 77; ++i) many[i % 2 ? 0 : 2].push_back(static_cast<int32_t>((i * 5) % tokens));
    std::vector<std::vector<float>> y2(3);
    std::vector<Fp4Group> groups2;
    for (int e = 0; e < 3; ++e) {
      y2[e].assign(many[e].size() * ns[e], -1.0f);
      groups2.push_back({{packed[e].data(), scales[e].data(), ns[e], k}, x.data(), k,
                         many[e].data(), static_cast<int64_t>(many[e].size()),
                         {y2[e].data(), ns[e]}});
    }
    linear_fp4_grouped(groups2, &pool);
    for (int e = 0; e < 3; ++e) {
      expect_close(y2[e], many[e].size(), ns[e], k, [&](int64_t i, int64_t r, int64_t j) {
        return weight(e, r, j) * xq[many[e][i] * k + j];
      }, isa_name(isa));
    }
    // The plain form, M > the 64-row tile.
    const int64_t m = 67;
    const auto xm = random_rows(rng, m, k);
    std::vector<float> xmq(m * k), ym(m * ns[0]);
    for (int64_t i = 0; i < m; ++i) act_quant_dequant(&xm[i * k], k, &xmq[i * k]);
    linear_fp4({packed[0].data(), scales[0].data(), ns[0], k}, {xm.data(), m, k},
               {ym.data(), ns[0]}, nullptr);
    expect_close(ym, m, ns[0], k, [&](int64_t i, int64_t r, int64_t j) {
      return weight(0, r, j) * xmq[i * k + j];
    }, isa_name(isa));
  }
}

// Pairs of groups on the same rows (a routed expert's w1 and w3) share one preparation of their
// activations, and so do consecutive experts whose own row lists hold the same rows (decode: each
// lists the step's one row); every group's result must equal its own single-group call, bit for
// bit, on each path (in-register decode and its integer form at 1-3 rows, tiles from 3 or 32
// rows).
TEST(CpuLinear, Fp4GroupedPairsOnTheSameRowsMatchSingleCalls) {
  std::mt19937 rng(4);
  const int64_t k = 512, n = 96, tokens = 50;
  std::uniform_int_distribution<int> byte(0, 255);
  const auto x = random_rows(rng, tokens, k, 0.5f);
  const int64_t counts[] = {1, 3, 12, 40, 2, 1, 1, 1, 2, 2};
  const int experts = static_cast<int>(std::size(counts));
  std::vector<std::vector<uint8_t>> packed(2 * experts), scales(2 * experts);
  for (int g = 0; g < 2 * experts; ++g) {
    packed[g].resize(n * k / 2);
    for (auto& b : packed[g]) b = static_cast<uint8_t>(byte(rng));
    scales[g] = random_scales(rng, n * k / 32);
  }
  std::vector<std::vector<int32_t>> rows(experts);
  for (int e = 0; e < experts; ++e)
    for (int64_t i = 0; i < counts[e]; ++i) rows[e].push_back(static_cast<int32_t>((e * 11 + i * 7) % tokens));
  // Experts 5-7: one row each, the same row in lists of their own; 8 and 9: the same count, the
  // second list one row different (no sharing).
  rows[5] = rows[6] = rows[7] = {9};
  rows[8] = {4, 9};
  rows[9] = {4, 10};
  ThreadPool pool(2);
  for (Isa isa : isas_to_test()) {
    IsaScope scope(isa);
    std::vector<std::vector<float>> together(2 * experts), alone(2 * experts);
    std::vector<Fp4Group> groups;
    for (int g = 0; g < 2 * experts; ++g) {
      const int e = g / 2;
      together[g].assign(counts[e] * n, -1.0f);
      alone[g].assign(counts[e] * n, -2.0f);
      groups.push_back({{packed[g].data(), scales[g].data(), n, k}, x.data(), k, rows[e].data(),
                        counts[e], {together[g].data(), n}});
    }
    linear_fp4_grouped(groups, &pool);
    for (int g = 0; g < 2 * experts; ++g) {
      Fp4Group one = groups[g];
      one.y = {alone[g].data(), n};
      linear_fp4_grouped(std::span<const Fp4Group>(&one, 1), &pool);
      ASSERT_EQ(together[g], alone[g]) << isa_name(isa) << " group " << g << " rows " << counts[g / 2];
    }
  }
}

// linear_fp8_grouped equals one linear_fp8 per group bit for bit: decode rows (1 and 2 per group:
// one parallel region over all groups), groups sharing an input, uniformly random codes (the
// table kernel with the FMA unit) beside Gaussian ones, row counts that are not multiples of 4
// or 128, both activation modes, and a prefill-sized group (each group its own GEMM).
TEST(CpuLinear, Fp8GroupedMatchesSingleCalls) {
  std::mt19937 rng(14);
  const int64_t k = 384;
  const int64_t ns[] = {1030, 640, 7, 1280, 33};  // m = 1: > 1M MACs, the threaded split
  const int groups_n = static_cast<int>(std::size(ns));
  std::normal_distribution<float> dg(0.0f, 64.0f);
  std::vector<std::vector<uint8_t>> codes(groups_n), scales(groups_n);
  for (int g = 0; g < groups_n; ++g) {
    if (g == 2) {
      codes[g] = random_e4m3(rng, ns[g] * k);
    } else {
      codes[g].resize(ns[g] * k);
      for (auto& c : codes[g]) c = quant::f32_to_e4m3(dg(rng));
    }
    scales[g] = random_scales(rng, (ns[g] + 127) / 128 * 3);
  }
  ThreadPool pool(2);
  for (Isa isa : isas_to_test()) for (GemmUnit unit : gemm_units_to_test(isa)) {
    IsaScope scope(isa);
    GemmUnitScope unit_scope(unit);
    for (int64_t m : {1, 2, 40}) {
      const auto x = random_rows(rng, 3 * m, k);
      for (bool quant : {true, false}) {
        std::vector<std::vector<float>> together(groups_n), alone(groups_n);
        std::vector<Fp8Group> groups;
        for (int g = 0; g < groups_n; ++g) {
          together[g].assign(m * ns[g], -1.0f);
          alone[g].assign(m * ns[g], -2.0f);
          // groups 1 and 2 share group 0's input (w1 / w3 style); the others have their own
          const int64_t row0 = g <= 2 ? 0 : (g - 2) * m;
          groups.push_back({{codes[g].data(), scales[g].data(), ns[g], k}, {x.data() + row0 * k, m, k},
                            {together[g].data(), ns[g]}});
        }
        linear_fp8_grouped(groups, &pool, quant);
        for (int g = 0; g < groups_n; ++g) {
          linear_fp8(groups[g].w, groups[g].x, {alone[g].data(), ns[g]}, &pool, quant);
          ASSERT_EQ(together[g], alone[g]) << isa_name(isa) << " " << gemm_unit_name(unit) << " m " << m
                                           << " quant " << quant << " group " << g;
        }
      }
    }
  }
}


TEST(CpuLinear, Bf16MatchesFloat64ReferenceBothActivationModes) {
  std::mt19937 rng(4);
  ThreadPool pool(2);
  // k % 32 != 0: padded / masked tails; k = 300 also ends in a partial K chunk (vdpbf16ps tiles,
  // 256 values).
  for (int64_t k : {100, 300}) {
    const int64_t n = 37;
    std::vector<uint16_t> w(n * k);
    std::normal_distribution<float> d(0.0f, 0.1f);
    for (auto& b : w) b = f32_to_bf16_bits(d(rng));
    for (Isa isa : isas_to_test()) for (GemmUnit unit : gemm_units_to_test(isa)) for (int rows : {0, 1}) {
      IsaScope scope(isa);
      GemmUnitScope unit_scope(unit);
      GemvOrderScope order(rows ? GemvOrder::Rows : GemvOrder::Tiles);  // the decode GEMV's two orders
      SCOPED_TRACE(std::string(gemm_unit_name(unit)) + " k " + std::to_string(k) + (rows ? " rows" : " tiles"));
      for (int64_t m : {1, 5, 14, 66}) {
        const auto x = random_rows(rng, m, k);
        std::vector<float> y(m * n);
        linear_bf16({w.data(), n, k}, {x.data(), m, k}, {y.data(), n}, &pool, Bf16Act::Float32);
        expect_close(y, m, n, k, [&](int64_t i, int64_t r, int64_t j) {
          return double(bf16_bits_to_f32(w[r * k + j])) * x[i * k + j];
        }, "bf16 f32 act");
        linear_bf16({w.data(), n, k}, {x.data(), m, k}, {y.data(), n}, &pool, Bf16Act::RoundToBf16);
        expect_close(y, m, n, k, [&](int64_t i, int64_t r, int64_t j) {
          return double(bf16_bits_to_f32(w[r * k + j])) *
                 bf16_bits_to_f32(f32_to_bf16_bits(x[i * k + j]));
        }, "bf16 bf16 act");
      }
    }
  }
}

// The decode GEMVs in both GemvOrder settings. With Tiles (Intel) they run 4 weight rows
// interleaved; with Rows (AMD) one activation row reads the rows one after the other
// (fp8_row_by_row, fp4_row_by_row, dot_f32_row_by_row), whose sums come in another order. So
// for one row every kernel is checked against the float64 products under each setting; for 7
// rows (the 4-, 2- and 1-row tiles) both settings give the same bits. Both FP8 kernels run
// (uniform codes take the table decode on the fma unit, Gaussian ones the FMA decode), a
// partial last panel too (n = 262).
TEST(CpuLinear, DecodeGemvsAgreeInEitherOrder) {
  std::mt19937 rng(21);
  // k = 896: the row-by-row FP4 kernel's groups of 512 and a tail of 3 chunks of 128.
  const int64_t n = 262, k = 896, kb = k / 128;
  const auto uniform = random_e4m3(rng, n * k);
  std::vector<uint8_t> gaussian(n * k);
  std::normal_distribution<float> dg(0.0f, 64.0f);
  for (auto& c : gaussian) c = quant::f32_to_e4m3(dg(rng));
  const auto s = random_scales(rng, 3 * kb);
  std::vector<uint16_t> wb(n * k);
  for (auto& b : wb) b = f32_to_bf16_bits(dg(rng) / 640.0f);
  std::vector<uint8_t> packed(n * k / 2);
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : packed) b = static_cast<uint8_t>(byte(rng));
  const auto s4 = random_scales(rng, n * k / 32);
  const std::vector<uint8_t>* codes[2] = {&uniform, &gaussian};
  ThreadPool pool(2);
  for (Isa isa : isas_to_test()) for (GemmUnit unit : gemm_units_to_test(isa)) {
    IsaScope scope(isa);
    GemmUnitScope unit_scope(unit);
    SCOPED_TRACE(std::string(isa_name(isa)) + " " + gemm_unit_name(unit));
    for (int64_t m : {1, 7}) {
      const auto x = random_rows(rng, m, k);
      std::vector<float> xq(m * k);
      for (int64_t i = 0; i < m; ++i) act_quant_dequant(&x[i * k], k, &xq[i * k]);
      std::vector<float> y[2][4];
      for (int l1 = 0; l1 < 2; ++l1) {  // l1: GemvOrder::Rows
        GemvOrderScope order(l1 ? GemvOrder::Rows : GemvOrder::Tiles);
        const char* what = l1 ? "order rows" : "order tiles";
        for (auto& v : y[l1]) v.assign(m * n, -1.0f);
        for (int t = 0; t < 2; ++t) {
          linear_fp8({codes[t]->data(), s.data(), n, k}, {x.data(), m, k}, {y[l1][t].data(), n}, &pool);
          expect_close(y[l1][t], m, n, k, [&](int64_t i, int64_t r, int64_t j) {
            return double(e4m3_value((*codes[t])[r * k + j])) * e8m0_value(s[(r / 128) * kb + j / 128]) *
                   xq[i * k + j];
          }, what);
        }
        linear_bf16({wb.data(), n, k}, {x.data(), m, k}, {y[l1][2].data(), n}, &pool, Bf16Act::Float32);
        expect_close(y[l1][2], m, n, k, [&](int64_t i, int64_t r, int64_t j) {
          return double(bf16_bits_to_f32(wb[r * k + j])) * x[i * k + j];
        }, what);
        linear_fp4({packed.data(), s4.data(), n, k}, {x.data(), m, k}, {y[l1][3].data(), n}, &pool);
        expect_close(y[l1][3], m, n, k, [&](int64_t i, int64_t r, int64_t j) {
          const uint8_t b = packed[r * k / 2 + j / 2];
          return double(e2m1_value(j % 2 ? b >> 4 : b & 15)) * e8m0_value(s4[r * k / 32 + j / 32]) * xq[i * k + j];
        }, what);
      }
      for (int t = 0; t < 4; ++t) {
        SCOPED_TRACE("m " + std::to_string(m) + " weights " + std::to_string(t));
        if (m > 1) {
          EXPECT_EQ(0, std::memcmp(y[0][t].data(), y[1][t].data(), y[0][t].size() * sizeof(float)));
        }
        EXPECT_NE(y[0][t][m * n - 1], -1.0f);
        EXPECT_NE(y[1][t][m * n - 1], -1.0f);
      }
    }
  }
}

// Checkpoint tensors are rarely 64-byte aligned (safetensors offsets carry no alignment, and the
// engine uses the weights where they lie). The decode GEMVs give the same bits for weights at
// any byte offset (FP8 / FP4) or 2-byte offset (BF16) as for aligned ones, in either order and
// at every level.
TEST(CpuLinear, DecodeGemvsIgnoreTheWeightsAlignment) {
  std::mt19937 rng(5);
  const int64_t n = 70, k = 640;
  const auto codes = random_e4m3(rng, n * k);
  const auto s8 = random_scales(rng, 1 * (k / 128));
  std::vector<uint8_t> packed(n * k / 2);
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : packed) b = static_cast<uint8_t>(byte(rng));
  const auto s4 = random_scales(rng, n * k / 32);
  std::vector<uint16_t> wb(n * k);
  for (auto& b : wb) b = f32_to_bf16_bits(std::normal_distribution<float>(0.0f, 0.05f)(rng));
  const auto x = random_rows(rng, 1, k);
  // 64-byte aligned storage, and copies at `off` bytes past a 64-byte boundary.
  auto placed = [](const auto& v, size_t off, std::vector<uint8_t>& store) {
    const size_t bytes = v.size() * sizeof(v[0]);
    store.assign(bytes + 128, 0);
    uint8_t* p = store.data() + (64 - reinterpret_cast<uintptr_t>(store.data()) % 64) % 64 + off;
    std::memcpy(p, v.data(), bytes);
    return p;
  };
  ThreadPool pool(2);
  for (Isa isa : isas_to_test()) for (GemmUnit unit : gemm_units_to_test(isa)) for (int rows = 0; rows < 2; ++rows) {
    IsaScope scope(isa);
    GemmUnitScope unit_scope(unit);
    GemvOrderScope order(rows ? GemvOrder::Rows : GemvOrder::Tiles);
    SCOPED_TRACE(std::string(isa_name(isa)) + " " + gemm_unit_name(unit) + (rows ? " rows" : " tiles"));
    for (size_t off : {size_t{0}, size_t{2}, size_t{28}, size_t{48}}) {
      SCOPED_TRACE("offset " + std::to_string(off));
      std::vector<uint8_t> b8, b4, b16;
      std::vector<float> y(3 * n, -1.0f), ref(3 * n, -2.0f);
      for (int pass = 0; pass < 2; ++pass) {
        const size_t o = pass ? off : 0;
        float* out = pass ? y.data() : ref.data();
        const uint8_t* w8 = placed(codes, o, b8);
        const uint8_t* w4 = placed(packed, o, b4);
        const auto* w16 = reinterpret_cast<const uint16_t*>(placed(wb, o, b16));
        linear_fp8({w8, s8.data(), n, k}, {x.data(), 1, k}, {out, n}, &pool);
        linear_fp4({w4, s4.data(), n, k}, {x.data(), 1, k}, {out + n, n}, &pool);
        linear_bf16({w16, n, k}, {x.data(), 1, k}, {out + 2 * n, n}, &pool, Bf16Act::Float32);
      }
      EXPECT_EQ(0, std::memcmp(y.data(), ref.data(), y.size() * sizeof(float)));
      EXPECT_NE(ref[0], -2.0f);
    }
  }
}

// The float32 activations of linear_bf16 on AMX split into three BF16 limbs: each limb is a BF16
// value, h + m + l gives x back exactly (summed in that order, in float32), and the AVX-512
// kernel equals its scalar twin bit for bit, specials and odd widths included.
TEST(CpuLinear, Bf16LimbSplitIsExactAndTwinsAgree) {
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> e(-60.f, 60.f);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t k : {1, 15, 16, 17, 100, 4096}) {
    std::vector<float> x(k);
    for (auto& v : x) v = std::exp2(e(rng)) * (rng() % 2 ? 1.f : -1.f) * (1.0f + (rng() % 1000) * 1e-3f);
    if (k > 8) {
      x[1] = 0.0f;
      x[2] = -0.0f;
      x[3] = 3.4e38f;
      x[4] = 1e-39f;  // subnormal
      x[5] = inf;
      x[6] = -inf;
      x[7] = nan;
    }
    const int64_t lds = k + 3;
    std::vector<float> a(3 * lds, 7.f), b(3 * lds, 7.f);
    scalar::split_bf16_limbs(x.data(), k, a.data(), lds);
    for (int64_t j = 0; j < k; ++j) {
      const float h = a[j], m = a[lds + j], l = a[2 * lds + j];
      if (std::isnan(x[j])) {
        EXPECT_TRUE(std::isnan(h));
        continue;
      }
      // BF16 values: the low 16 bits clear (limbs of a subnormal x may keep some: the tiles
      // flush those anyway).
      if (std::fabs(x[j]) >= std::numeric_limits<float>::min()) {
        for (float limb : {h, m, l}) EXPECT_EQ(std::bit_cast<uint32_t>(limb) & 0xFFFFu, 0u) << x[j];
      }
      EXPECT_EQ((h + m) + l, x[j]) << j;
    }
    if (detected_isa() >= Isa::Avx512) {
      avx512::split_bf16_limbs(x.data(), k, b.data(), lds);
      for (size_t i = 0; i < a.size(); ++i)
        ASSERT_EQ(std::bit_cast<uint32_t>(a[i]), std::bit_cast<uint32_t>(b[i])) << "k " << k << " at " << i;
    }
  }
}

// The collector behind `dsv4 bench --breakdown`: while on, each call adds its kind's weight
// bytes (codes and scales) and a positive time; while off, nothing.
TEST(CpuLinear, StatsCountCallsAndWeightBytesByKind) {
  std::mt19937 rng(7);
  const int64_t n = 200, k = 256;  // FP8: 2 x 2 scale blocks
  const auto w8 = random_e4m3(rng, n * k);
  const auto s8 = random_scales(rng, 4);
  const auto w4 = random_e4m3(rng, n * k / 2);
  const auto s4 = random_scales(rng, n * k / 32);
  const auto x = random_rows(rng, 3, k);
  std::vector<float> y(3 * n);
  auto run_all = [&] {
    linear_fp8({w8.data(), s8.data(), n, k}, {x.data(), 3, k}, {y.data(), n}, nullptr);
    linear_fp4({w4.data(), s4.data(), n, k}, {x.data(), 3, k}, {y.data(), n}, nullptr);
    linear_fp4({w4.data(), s4.data(), n, k}, {x.data(), 1, k}, {y.data(), n}, nullptr);
  };
  linear_stats_reset();
  run_all();  // off: not counted
  for (const auto& t : linear_stats()) EXPECT_EQ(t.calls, 0);
  linear_stats_enable(true);
  run_all();
  linear_stats_enable(false);
  run_all();
  const auto st = linear_stats();
  const auto& f8 = st[static_cast<int>(LinearKind::Fp8)];
  const auto& f4 = st[static_cast<int>(LinearKind::Fp4)];
  EXPECT_EQ(f8.calls, 1);
  EXPECT_EQ(f8.weight_bytes, double(n * k + 4));
  EXPECT_GT(f8.seconds, 0.0);
  EXPECT_EQ(f4.calls, 2);
  EXPECT_EQ(f4.weight_bytes, 2.0 * (n * k / 2 + n * k / 32));
  EXPECT_GT(f4.seconds, 0.0);
  EXPECT_EQ(st[static_cast<int>(LinearKind::Bf16)].calls, 0);
  EXPECT_STREQ(linear_kind_name(LinearKind::F32), "f32");
  // By shape: one entry per kind here (both FP4 calls are n x k), FP8 first.
  const auto shapes = linear_stats_by_shape();
  ASSERT_EQ(shapes.size(), 2u);
  EXPECT_EQ(shapes[0].shape.kind, LinearKind::Fp8);
  EXPECT_EQ(shapes[1].shape.kind, LinearKind::Fp4);
  for (const auto& s : shapes) {
    EXPECT_EQ(s.shape.n, n);
    EXPECT_EQ(s.shape.k, k);
    EXPECT_EQ(s.shape.groups, 1);
    EXPECT_FALSE(s.shape.mixed);
  }
  EXPECT_EQ(shapes[1].totals.calls, 2);
  EXPECT_EQ(shapes[1].totals.weight_bytes, f4.weight_bytes);
  linear_stats_reset();
  for (const auto& t : linear_stats()) EXPECT_EQ(t.calls, 0);
}

TEST(CpuLinear, RejectsBadShapes) {
  std::vector<uint8_t> w(128 * 100), s(4);
  std::vector<float> x(100), y(128);
  EXPECT_THROW(linear_fp8({w.data(), s.data(), 128, 100}, {x.data(), 1, 100}, {y.data(), 128}, nullptr),
               Error);
  EXPECT_THROW(linear_fp4({w.data(), s.data(), 128, 96}, {x.data(), 1, 96}, {y.data(), 128}, nullptr),
               Error);
  EXPECT_THROW(linear_bf16({nullptr, 4, 4}, {x.data(), 1, 4}, {y.data(), 4}, nullptr), Error);
}

}  // namespace
}  // namespace dsv4::cpu
