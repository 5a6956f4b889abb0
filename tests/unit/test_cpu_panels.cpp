// The panel kernels (linear_kernels.h) of every SIMD level this machine runs, called directly:
// the decoders and the activation scaling are bit-identical to the scalar twins; the dot kernels
// match float64 sums within the float32 bound, for nr = 1..4 rows, m = 1..9 activation rows
// (every register tile and remainder) and K with a tail where the kernel allows one.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/formats.h"
#include "kernels/cpu/linear_kernels.h"
#include "tests/unit/cpu_test_util.h"

namespace dsv4::cpu {
namespace {

using testing::GemvOrderScope;
using testing::isas_to_test;
using testing::sum_error_bound;

std::vector<Isa> simd_isas() {
  std::vector<Isa> v;
  for (Isa isa : isas_to_test())
    if (isa != Isa::Scalar) v.push_back(isa);
  return v;
}

std::vector<uint8_t> random_bytes(std::mt19937& rng, size_t n, bool finite_e4m3) {
  std::uniform_int_distribution<int> d(0, 255);
  std::vector<uint8_t> v(n);
  for (auto& b : v) {
    do b = static_cast<uint8_t>(d(rng));
    while (finite_e4m3 && (b & 0x7F) == 0x7F);
  }
  return v;
}

std::vector<uint8_t> random_scales(std::mt19937& rng, size_t n, int lo, int hi) {
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(d(rng));
  return v;
}

std::vector<uint16_t> random_bf16(std::mt19937& rng, size_t n, float sd) {
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<uint16_t> v(n);
  for (auto& b : v) b = f32_to_bf16_bits(d(rng));
  return v;
}

// Compares y[i * ldy + r] (i < m, r < nr) with exact(i, r, &mag); entries r >= nr must be left
// untouched (sentinel).
template <class Exact>
void expect_dot(const std::vector<float>& y, int64_t ldy, int64_t m, int nr, int64_t terms,
                Exact exact, const std::string& what) {
  for (int64_t i = 0; i < m; ++i) {
    for (int r = 0; r < ldy; ++r) {
      if (r >= nr) {
        ASSERT_EQ(y[i * ldy + r], -7.0f) << what << ": wrote row " << r << " >= nr " << nr;
        continue;
      }
      double mag = 0;
      const double e = exact(i, r, &mag);
      ASSERT_NEAR(y[i * ldy + r], e, sum_error_bound(terms, mag))
          << what << " m " << m << " nr " << nr << " i " << i << " r " << r;
    }
  }
}

// Every E8M0 code is the power of two 2^(b - 127) (b = 0: the subnormal 2^-127), 255 is NaN.
TEST(CpuPanels, E8m0ValueOfEveryCode) {
  for (int b = 0; b < 255; ++b) {
    const float want = std::ldexp(1.0f, b - 127);
    EXPECT_EQ(f32_to_bits(e8m0_value(static_cast<uint8_t>(b))), f32_to_bits(want)) << b;
    EXPECT_GT(want, 0.0f) << b;  // none flushed to zero
  }
  EXPECT_TRUE(std::isnan(e8m0_value(255)));
}

TEST(CpuPanels, Fp8DecodeAndScaleAreBitIdenticalToScalar) {
  std::mt19937 rng(41);
  const int64_t k = 384, ldw = 400, ldp = 416;
  const auto w = random_bytes(rng, kPanelRows * ldw, true);
  const PanelKernels& ref = panel_kernels(Isa::Scalar);
  for (Isa isa : simd_isas()) {
    const PanelKernels& kern = panel_kernels(isa);
    std::vector<std::vector<uint8_t>> scale_sets = {random_scales(rng, 3, 100, 150)};
    // Extreme scales (0: 2^-127 subnormal, 254): AVX2 multiplies in float32 like the scalar
    // twin; AVX-512 takes its per-element path outside [kMinFastScale, kMaxFastScale].
    scale_sets.push_back({0, 127, 254});
    scale_sets.push_back({9, 10, 246});
    scale_sets.push_back({247, 255, 1});
    for (const auto& s : scale_sets) {
      for (int nr = 1; nr <= kPanelRows; ++nr) {
        std::vector<uint16_t> want(kPanelRows * ldp, 0xABCD), got(kPanelRows * ldp, 0xABCD);
        ref.decode_fp8(w.data(), ldw, s.data(), nr, k, want.data(), ldp);
        kern.decode_fp8(w.data(), ldw, s.data(), nr, k, got.data(), ldp);
        for (int r = 0; r < kPanelRows; ++r)
          for (int64_t p = 0; p < k; ++p)
            ASSERT_EQ(got[r * ldp + p], want[r * ldp + p])
                << isa_name(isa) << " nr " << nr << " row " << r << " pos " << p;
        if (kern.decode_fp8_f32 == nullptr) continue;
        // The float32 panel: the widening of the twin's BF16 panel, bit for bit.
        std::vector<float> wide(kPanelRows * ldp, -3.0f);
        kern.decode_fp8_f32(w.data(), ldw, s.data(), nr, k, wide.data(), ldp);
        for (int r = 0; r < kPanelRows; ++r)
          for (int64_t p = 0; p < k; ++p)
            ASSERT_EQ(f32_to_bits(wide[r * ldp + p]), uint32_t{want[r * ldp + p]} << 16)
                << isa_name(isa) << " float32 nr " << nr << " row " << r << " pos " << p;
      }
    }
    std::normal_distribution<float> d(0.0f, 3.0f);
    std::vector<float> a(k);
    for (auto& v : a) v = d(rng);
    a[3] = 0.0f;
    a[4] = -0.0f;
    // A float32 subnormal input and scale 0 (2^-127, subnormal products): every level rounds
    // in integer RNE like the scalar twin.
    a[5] = 1e-39f;
    const std::vector<uint8_t> s = {126, 200, 0};
    std::vector<uint16_t> want(k), got(k);
    ref.scale_act_bf16(a.data(), s.data(), k, want.data());
    kern.scale_act_bf16(a.data(), s.data(), k, got.data());
    EXPECT_EQ(got, want) << isa_name(isa);
  }
}

TEST(CpuPanels, Fp4DecodeIsBitIdenticalToScalar) {
  std::mt19937 rng(42);
  const int64_t k = 384, ldw = k / 2 + 5, lds = k / 32 + 3, ldp = 400;
  const auto w = random_bytes(rng, kPanelRows * ldw, false);
  const auto s0 = random_scales(rng, kPanelRows * lds, 110, 140);
  const PanelKernels& ref = panel_kernels(Isa::Scalar);
  for (Isa isa : simd_isas()) {
    const PanelKernels& kern = panel_kernels(isa);
    auto s = s0;
    s[0] = 0;  // extreme scales: see the FP8 test
    s[1] = 254;
    s[lds + 5] = 9;
    s[2 * lds + 2] = 247;
    s[lds + 10] = 250;  // in the last, unpaired 128 values
    s[3 * lds + 4] = 255;  // NaN (never in a checkpoint): every level writes the same words
    for (int nr = 1; nr <= kPanelRows; ++nr) {
      std::vector<uint16_t> want(kPanelRows * ldp, 0xABCD), got(kPanelRows * ldp, 0xABCD);
      ref.decode_fp4(w.data(), ldw, s.data(), lds, nr, k, want.data(), ldp);
      kern.decode_fp4(w.data(), ldw, s.data(), lds, nr, k, got.data(), ldp);
      // The levels may lay K out in different panel orders: compare the value of every K.
      for (int r = 0; r < kPanelRows; ++r)
        for (int64_t p = 0; p < k; ++p) {
          const int64_t kk = panel_position_to_k(kern.fp4_order, p);
          int64_t pr = 0;
          while (panel_position_to_k(ref.fp4_order, pr) != kk) ++pr;
          ASSERT_EQ(got[r * ldp + p], want[r * ldp + pr])
              << isa_name(isa) << " nr " << nr << " row " << r << " k " << kk;
        }
      if (kern.decode_fp4_f32 == nullptr) continue;
      // The float32 panel (same order as the BF16 one): the widening of got, bit for bit.
      std::vector<float> wide(kPanelRows * ldp, -3.0f);
      kern.decode_fp4_f32(w.data(), ldw, s.data(), lds, nr, k, wide.data(), ldp);
      for (int r = 0; r < kPanelRows; ++r)
        for (int64_t p = 0; p < k; ++p)
          ASSERT_EQ(f32_to_bits(wide[r * ldp + p]), uint32_t{got[r * ldp + p]} << 16)
              << isa_name(isa) << " float32 nr " << nr << " row " << r << " pos " << p;
    }
  }
  // The twin's words: the rounded product, with -0 (code 8) written as +0 like code 0.
  EXPECT_EQ(fp4_panel_bits(8, 127), 0);
  EXPECT_EQ(fp4_panel_bits(0, 200), 0);
  EXPECT_EQ(fp4_panel_bits(9, 127), f32_to_bf16_bits(-0.5f));
  EXPECT_EQ(fp4_panel_bits(7, 130), f32_to_bf16_bits(48.0f));
}

TEST(CpuPanels, WidenBf16IsBitIdenticalToScalar) {
  std::mt19937 rng(46);
  // Every 16-bit pattern class: random words (NaNs, infinities, subnormals, signed zeros).
  std::vector<uint16_t> x(1031);
  for (auto& v : x) v = static_cast<uint16_t>(rng());
  x[0] = 0x8000;
  x[1] = 0x7F80;
  x[2] = 0x0001;
  std::vector<float> want(x.size());
  panel_kernels(Isa::Scalar).widen_bf16(x.data(), static_cast<int64_t>(x.size()), want.data());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(f32_to_bits(want[i]), uint32_t{x[i]} << 16) << i;
  for (Isa isa : simd_isas()) {
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{16}, int64_t{17}, int64_t{31}, int64_t{1031}}) {
      std::vector<float> got(x.size() + 1, -7.0f);
      panel_kernels(isa).widen_bf16(x.data(), n, got.data());
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(f32_to_bits(got[i]), f32_to_bits(want[i])) << isa_name(isa) << " n " << n << " i " << i;
      EXPECT_EQ(got[n], -7.0f) << isa_name(isa) << " wrote past n = " << n;
    }
  }
}

// fp8_rows_dot takes any number of rows within a 128-row block: panels of kPanelRows for the
// tiles and for several activation rows, all rows at once for the row-by-row GEMV (whose sums are
// reduced 16 rows at a time: 17 and 37 rows leave partial groups).
TEST(CpuPanels, Fp8RowsDotMatchesFloat64ForAnyRowCount) {
  std::mt19937 rng(43);
  const int max_rows = 37;
  const int64_t k = 512, ldw = k + 64, lda = k + 32, ldy = max_rows + 3;
  const auto w8 = random_bytes(rng, max_rows * ldw, true);
  const auto a = random_bf16(rng, 9 * lda, 1.0f);
  for (Isa isa : simd_isas()) {
    const PanelKernels& kern = panel_kernels(isa);
    for (const GemvOrder order : {GemvOrder::Rows, GemvOrder::Tiles}) {
      GemvOrderScope scope(order);
      for (int64_t m = 1; m <= 9; ++m) {
        for (int nr : {1, 2, 3, kPanelRows, kPanelRows + 1, 16, 17, max_rows}) {
          std::vector<float> y(m * ldy, -7.0f);
          kern.fp8_rows_dot(w8.data(), ldw, nr, a.data(), lda, m, k, y.data(), ldy);
          expect_dot(y, ldy, m, nr, k, [&](int64_t i, int r, double* mag) {
            double e = 0;
            for (int64_t p = 0; p < k; ++p) {
              const double t = double(e4m3_value(w8[r * ldw + panel_position_to_k(PanelOrder::Fp8, p)])) *
                               bf16_bits_to_f32(a[i * lda + p]);
              e += t;
              *mag += std::fabs(t);
            }
            return e;
          }, std::string("fp8_rows_dot ") + isa_name(isa) + " " + gemv_order_name(order));
        }
      }
    }
  }
}

// fp4_rows_dot takes any number of rows: panels of kPanelRows for the tiles and for several
// activation rows, all rows at once for the row-by-row GEMV (whose sums are reduced 16 rows at a
// time: 17 and 37 rows leave partial groups). K = 896 ends with a 3-chunk tail after a group of
// 4 chunks (one load of 16 block scales).
TEST(CpuPanels, Fp4RowsDotMatchesFloat64ForAnyRowCount) {
  std::mt19937 rng(44);
  const int max_rows = 37;
  const int64_t k = 896, ldw = k / 2 + 64, lda = k + 32, ldy = max_rows + 3, lds = k / 32 + 1;
  const auto w4 = random_bytes(rng, max_rows * ldw, false);
  const auto s4 = random_scales(rng, max_rows * lds, 118, 132);
  const auto a = random_bf16(rng, 5 * lda, 1.0f);
  for (Isa isa : simd_isas()) {
    const PanelKernels& kern = panel_kernels(isa);
    for (const GemvOrder order : {GemvOrder::Rows, GemvOrder::Tiles}) {
      GemvOrderScope scope(order);
      for (int64_t m = 1; m <= 5; ++m) {
        for (int nr : {1, 2, 3, kPanelRows, kPanelRows + 1, 16, 17, max_rows}) {
          std::vector<float> y(m * ldy, -7.0f);
          kern.fp4_rows_dot(w4.data(), ldw, s4.data(), lds, nr, a.data(), lda, m, k, y.data(), ldy);
          expect_dot(y, ldy, m, nr, k, [&](int64_t i, int r, double* mag) {
            double e = 0;
            for (int64_t p = 0; p < k; ++p) {
              const int64_t kk = panel_position_to_k(kern.fp4_order, p);
              const uint8_t b = w4[r * ldw + kk / 2];
              const double t = double(e2m1_value(kk % 2 ? b >> 4 : b & 15)) *
                               e8m0_value(s4[r * lds + kk / 32]) * bf16_bits_to_f32(a[i * lda + p]);
              e += t;
              *mag += std::fabs(t);
            }
            return e;
          }, std::string("fp4_rows_dot ") + isa_name(isa) + " " + gemv_order_name(order));
        }
      }
    }
  }
}

// The FMA decode GEMV (fp8_fma_gemv.cpp) and its scalar twin against float64, on codes of every
// kind: uniformly random bytes (a zero or subnormal code, e = 0, in nearly every 64-byte chunk:
// the per-lane fix-up path), codes with no e = 0 (the shift decode alone), and rows of zeros and
// subnormals only (both signs). K = 576 is not a multiple of 128. Up to 2 panels and a row.
TEST(CpuPanels, Fp8FmaGemvMatchesFloat64) {
  std::mt19937 rng(47);
  constexpr int kRows = 2 * kPanelRows + 1;
  const int64_t k = 576, ldw = k + 64, lda = k + 16, ldy = kRows;
  std::vector<uint8_t> mixed = random_bytes(rng, kRows * ldw, true);
  std::vector<uint8_t> normal = mixed, low = mixed;
  for (auto& b : normal)
    if ((b & 0x78) == 0) b |= 0x08;
  std::uniform_int_distribution<int> dl(0, 15);
  for (auto& b : low) b = static_cast<uint8_t>((dl(rng) & 7) | (dl(rng) & 8) << 4);  // e = 0, both signs
  std::vector<float> a(9 * lda);
  std::normal_distribution<float> d(0.0f, 1.0f);
  for (auto& v : a) v = bf16_bits_to_f32(f32_to_bf16_bits(d(rng)));
  using Kernel = void (*)(const uint8_t*, int64_t, int, const float*, int64_t, int64_t, int64_t, float*, int64_t);
  std::vector<std::pair<Kernel, std::string>> kernels{{scalar::fp8_rows_dot_f32, "scalar"}};
  if (detected_isa() >= Isa::Avx512) kernels.push_back({avx512::fp8_rows_dot_f32, "avx512"});
  for (const auto& [kernel, name] : kernels) {
    for (const auto* w : {&mixed, &normal, &low}) {
      for (int64_t m = 1; m <= 9; ++m) {
        for (int nr = 1; nr <= kRows; ++nr) {
          std::vector<float> y(m * ldy, -7.0f);
          kernel(w->data(), ldw, nr, a.data(), lda, m, k, y.data(), ldy);
          expect_dot(y, ldy, m, nr, k, [&](int64_t i, int r, double* mag) {
            double e = 0;
            for (int64_t p = 0; p < k; ++p) {
              const int64_t kk = panel_position_to_k(PanelOrder::Fp8Dwords, p);
              const double t = 256.0 * e4m3_value((*w)[r * ldw + kk]) * a[i * lda + p];
              e += t;
              *mag += std::fabs(t);
            }
            return e;
          }, "fp8_rows_dot_f32 " + name);
        }
      }
    }
  }
}

TEST(CpuPanels, ScaleActF32IsBitIdenticalToScalar) {
  if (detected_isa() < Isa::Avx512) GTEST_SKIP() << "needs AVX-512";
  std::mt19937 rng(48);
  const int64_t k = 1024;
  std::vector<float> a(k);
  std::normal_distribution<float> d(0.0f, 1.0f);
  for (auto& v : a) v = d(rng);
  std::vector<uint8_t> scales = random_scales(rng, k / 128, 0, 254);
  scales[0] = 0;    // 2^-127: results below the normal range
  scales[1] = 254;  // 2^127
  std::vector<float> want(k), got(k);
  scalar::scale_act_f32(a.data(), scales.data(), k, want.data());
  avx512::scale_act_f32(a.data(), scales.data(), k, got.data());
  for (int64_t p = 0; p < k; ++p) {
    ASSERT_EQ(f32_to_bits(got[p]), f32_to_bits(want[p])) << p;
    ASSERT_EQ(want[p], a[p] * std::ldexp(1.0f, scales[p / 128] - 135)) << p;
  }
}

TEST(CpuPanels, DotKernelsMatchFloat64) {
  std::mt19937 rng(44);
  const int64_t kp = 1056;  // > one 512 K chunk of dot_f32, not a multiple of it
  const int64_t ldp = kp + 32, lda = kp + 16;
  const auto pb = random_bf16(rng, kPanelRows * ldp, 1.0f);
  const auto ab = random_bf16(rng, 9 * lda, 1.0f);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> pf(kWidePanelRows * ldp), af(9 * lda);
  for (auto& v : pf) v = d(rng);
  for (auto& v : af) v = d(rng);
  for (Isa isa : simd_isas()) {
    const PanelKernels& kern = panel_kernels(isa);
    for (int64_t m = 1; m <= 9; ++m) {
      for (int nr = 1; nr <= kPanelRows; ++nr) {
        // dot_bf16 reads all kPanelRows panel rows (rows >= nr are zero by contract).
        std::vector<uint16_t> panel = pb;
        for (int r = nr; r < kPanelRows; ++r) std::fill(panel.begin() + r * ldp, panel.begin() + (r + 1) * ldp, 0);
        std::vector<float> y(m * kPanelRows, -7.0f);
        kern.dot_bf16(panel.data(), ldp, nr, ab.data(), lda, m, kp, y.data(), kPanelRows);
        expect_dot(y, kPanelRows, m, nr, kp, [&](int64_t i, int r, double* mag) {
          double e = 0;
          for (int64_t p = 0; p < kp; ++p) {
            const double t = double(bf16_bits_to_f32(panel[r * ldp + p])) * bf16_bits_to_f32(ab[i * lda + p]);
            e += t;
            *mag += std::fabs(t);
          }
          return e;
        }, std::string("dot_bf16 ") + isa_name(isa));
        // dot_bf16w_f32 reads only rows < nr, any k (tails of every length).
        for (int64_t k : {int64_t{1}, int64_t{7}, int64_t{17}, int64_t{100}, kp - 3}) {
          std::fill(y.begin(), y.end(), -7.0f);
          kern.dot_bf16w_f32(pb.data(), ldp, nr, af.data(), lda, m, k, y.data(), kPanelRows);
          expect_dot(y, kPanelRows, m, nr, k, [&](int64_t i, int r, double* mag) {
            double e = 0;
            for (int64_t p = 0; p < k; ++p) {
              const double t = double(bf16_bits_to_f32(pb[r * ldp + p])) * af[i * lda + p];
              e += t;
              *mag += std::fabs(t);
            }
            return e;
          }, std::string("dot_bf16w_f32 k ") + std::to_string(k) + " " + isa_name(isa));
        }
      }
      for (int nr : {1, 3, 4, 5, 8}) {
        std::vector<float> panel = pf;
        for (int r = nr; r < kWidePanelRows; ++r) std::fill(panel.begin() + r * ldp, panel.begin() + (r + 1) * ldp, 0.0f);
        std::vector<float> y(m * kWidePanelRows, -7.0f);
        kern.dot_f32(panel.data(), ldp, nr, af.data(), lda, m, kp, y.data(), kWidePanelRows);
        expect_dot(y, kWidePanelRows, m, nr, kp, [&](int64_t i, int r, double* mag) {
          double e = 0;
          for (int64_t p = 0; p < kp; ++p) {
            const double t = double(panel[r * ldp + p]) * af[i * lda + p];
            e += t;
            *mag += std::fabs(t);
          }
          return e;
        }, std::string("dot_f32 ") + isa_name(isa));
      }
    }
  }
}

}  // namespace
}  // namespace dsv4::cpu

namespace dsv4::cpu {
namespace {

// The tile layouts built with AVX-512 transposes equal their definitions element by element:
// to_vnni (16-row blocks transposed, a partial last block through a zero-padded copy), and store (whole 16 x 16
// accumulator tiles transposed, partial ones copied).
TEST(CpuPanels, TileLayoutsMatchTheirDefinitions) {
  if (detected_isa() < Isa::Avx512Bf16) GTEST_SKIP() << "needs AVX-512 BF16";
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> bits(0, 0xFFFF);
  for (int64_t m : {1, 15, 16, 17, 32, 45, 128}) {
    for (int64_t kp : {32, 96, 512}) {
      const int64_t lda = kp + 32;
      std::vector<uint16_t> a(m * lda);
      for (auto& v : a) v = static_cast<uint16_t>(bits(rng));
      std::vector<uint16_t> out((m + 15) / 16 * 16 * kp, 0xABCD);
      amx::to_vnni(a.data(), lda, m, kp, out.data());
      for (int64_t t = 0; t * 16 < m; ++t)
        for (int64_t r = 0; r < kp / 2; ++r)
          for (int64_t i = 0; i < 16; ++i)
            for (int64_t h = 0; h < 2; ++h) {
              const int64_t row = t * 16 + i;
              const uint16_t want = row < m ? a[row * lda + 2 * r + h] : uint16_t{0};
              ASSERT_EQ(out[t * 16 * kp + (r * 16 + i) * 2 + h], want) << m << " " << kp << " " << t << " " << r << " " << i;
            }
    }
  }
  std::uniform_real_distribution<float> val(-1.f, 1.f);
  for (int nr : {1, 7, 16, 17, 31, 32}) {
    for (int64_t m : {1, 9, 16, 20, 32, 33, 77, 128}) {
      TileAcc acc;
      for (auto& pass : acc.c)
        for (auto& tile : pass)
          for (float& v : tile) v = val(rng);
      const int64_t ldy = 40;
      std::vector<float> y(m * ldy, -7.f);
      amx::store(acc, nr, m, y.data(), ldy);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t n = 0; n < ldy; ++n) {
          const float want = n < nr ? acc.c[i / 32][(n / 16) * 2 + (i % 32) / 16][(n % 16) * 16 + i % 16] : -7.f;
          ASSERT_EQ(y[i * ldy + n], want) << nr << " " << m << " " << i << " " << n;
        }
    }
  }
}

}  // namespace
}  // namespace dsv4::cpu
