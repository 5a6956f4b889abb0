// The FP4 decode GEMV on integer dot products (fp4_int_gemv.cpp): the integer form of quantised
// activations is exact, the AVX-512 and AVX2 kernels equal their scalar twins bit for bit, and the dot
// products match float64 sums within the float32 bound.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/formats.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/linear_kernels.h"
#include "tests/unit/cpu_test_util.h"

namespace dsv4::cpu {
namespace {

using testing::sum_error_bound;

// m rows of k activations after act_quant (BF16 bits, exact), with the cases the integer form
// must handle: large outliers (most values then sit far below the chunk maximum, so some need
// R), a chunk of zeros, a chunk below act_quant's amax floor (1e-4), signed zeros.
std::vector<uint16_t> quantised_rows(std::mt19937& rng, int64_t m, int64_t k, int64_t ld) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<uint16_t> a(m * ld, 0);
  std::vector<float> x(k), q(k);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < k; ++j) x[j] = d(rng);
    x[5] = 3000.0f;  // chunk 0: an outlier
    x[7] = -0.0f;
    if (k >= 256) std::fill(x.begin() + 128, x.begin() + 256, 0.0f);
    if (k >= 384)
      for (int64_t j = 256; j < 384; ++j) x[j] *= 1e-6f;
    act_quant_dequant(x.data(), k, q.data());
    for (int64_t j = 0; j < k; ++j) {
      a[i * ld + j] = f32_to_bf16_bits(q[j]);
      EXPECT_EQ(bf16_bits_to_f32(a[i * ld + j]), q[j]) << "act_quant output is not BF16-exact";
    }
  }
  return a;
}

TEST(CpuFp4Int, ActivationFormIsExactAndSimdMatchesScalar) {
  std::mt19937 rng(51);
  const int64_t k = 1024, ld = k + 32, m = 3;
  const auto a = quantised_rows(rng, m, k, ld);
  int with_r = 0, without_r = 0;
  for (int64_t i = 0; i < m; ++i) {
    const uint16_t* row = a.data() + i * ld;
    std::vector<int16_t> h(k, 99), r(k, 99);
    std::vector<float> fac(k / 128, -1.0f);
    std::vector<uint8_t> rnz(k / 128, 9);
    scalar::fp4_int_act(row, k, h.data(), r.data(), fac.data(), rnz.data());
    for (int64_t c = 0; c < k / 128; ++c) {
      int eb = 0;
      for (int64_t p = 128 * c; p < 128 * (c + 1); ++p) eb = std::max(eb, (row[p] >> 7) & 0xFF);
      if (eb == 0) {
        EXPECT_EQ(fac[c], 0.0f) << "chunk " << c;
      } else {
        EXPECT_EQ(fac[c], std::ldexp(1.0f, eb - 127 - 15)) << "chunk " << c;
      }
      bool any = false;
      for (int64_t p = 128 * c; p < 128 * (c + 1); ++p) {
        ASSERT_GE(r[p], -4) << p;
        ASSERT_LE(r[p], 3) << p;
        any |= r[p] != 0;
        // value = (8 h + r) x 2^(E - 17), E = eb - 127.
        const double back = std::ldexp(8.0 * h[p] + r[p], eb - 127 - 17);
        ASSERT_EQ(back, double(bf16_bits_to_f32(row[p]))) << "row " << i << " pos " << p;
      }
      EXPECT_EQ(rnz[c], any ? 1 : 0) << "chunk " << c;
      (any ? with_r : without_r)++;
    }
    for (const Isa isa : {Isa::Avx2, Isa::Avx512}) {
      if (detected_isa() < isa) continue;
      std::vector<int16_t> h2(k, 77), r2(k, 77);
      std::vector<float> fac2(k / 128, -2.0f);
      std::vector<uint8_t> rnz2(k / 128, 7);
      (isa == Isa::Avx2 ? avx2::fp4_int_act : avx512::fp4_int_act)(row, k, h2.data(), r2.data(),
                                                                   fac2.data(), rnz2.data());
      const std::string what = std::string(isa_name(isa)) + " row " + std::to_string(i);
      EXPECT_EQ(h2, h) << what;
      EXPECT_EQ(r2, r) << what;
      EXPECT_EQ(fac2, fac) << what;
      EXPECT_EQ(rnz2, rnz) << what;
    }
  }
  // Both kinds of chunk occur, so both paths of the dot kernel run below.
  EXPECT_GT(with_r, 0);
  EXPECT_GT(without_r, 0);
}

// Any number of rows: 4-row panels for several activation rows, all at once for one (kMaxRows).
TEST(CpuFp4Int, RowsDotMatchesScalarTwinAndFloat64) {
  constexpr int kMaxRows = 2 * kPanelRows + 3;
  std::mt19937 rng(52);
  std::uniform_int_distribution<int> byte(0, 255), scale(116, 134);
  for (int64_t k : {int64_t{128}, int64_t{640}, int64_t{2560}}) {
    const int64_t ldw = k / 2 + 64, lds = k / 32 + 3, ld = k + 32, ldc = k / 128 + 1, ldy = kMaxRows + 2;
    const int64_t mmax = 7;  // every mix of the 4-, 2- and 1-row blocks
    std::vector<uint8_t> w(kMaxRows * ldw), s(kMaxRows * lds);
    for (auto& b : w) b = static_cast<uint8_t>(byte(rng));
    for (auto& b : s) b = static_cast<uint8_t>(scale(rng));
    const auto a = quantised_rows(rng, mmax, k, ld);
    std::vector<int16_t> h(mmax * ld), r(mmax * ld);
    std::vector<float> fac(mmax * ldc);
    std::vector<uint8_t> rnz(mmax * ldc);
    for (int64_t i = 0; i < mmax; ++i)
      scalar::fp4_int_act(a.data() + i * ld, k, h.data() + i * ld, r.data() + i * ld,
                          fac.data() + i * ldc, rnz.data() + i * ldc);
    const Fp4IntRows rows{h.data(), r.data(), fac.data(), rnz.data(), ld, ldc};
    for (int64_t m = 1; m <= mmax; ++m) {
      for (int nr : {1, 2, 3, kPanelRows, kPanelRows + 1, kMaxRows}) {
        const std::string what = "k " + std::to_string(k) + " m " + std::to_string(m) + " nr " + std::to_string(nr);
        std::vector<float> want(m * ldy, -7.0f);
        scalar::fp4_rows_dot_int(w.data(), ldw, s.data(), lds, nr, rows, m, k, want.data(), ldy);
        for (int64_t i = 0; i < m; ++i) {
          for (int rr = 0; rr < ldy; ++rr) {
            if (rr >= nr) {
              ASSERT_EQ(want[i * ldy + rr], -7.0f) << what << ": wrote row " << rr;
              continue;
            }
            double e = 0, mag = 0;
            for (int64_t p = 0; p < k; ++p) {  // activations in PanelOrder::Fp4Words
              const int64_t kk = panel_position_to_k(PanelOrder::Fp4Words, p);
              const uint8_t b = w[rr * ldw + kk / 2];
              const double t = double(e2m1_value(kk % 2 ? b >> 4 : b & 15)) *
                               e8m0_value(s[rr * lds + kk / 32]) * bf16_bits_to_f32(a[i * ld + p]);
              e += t;
              mag += std::fabs(t);
            }
            ASSERT_NEAR(want[i * ldy + rr], e, sum_error_bound(k, mag)) << what << " i " << i << " r " << rr;
          }
        }
        for (const Isa isa : {Isa::Avx2, Isa::Avx512}) {
          if (detected_isa() < isa) continue;
          std::vector<float> got(m * ldy, -7.0f);
          (isa == Isa::Avx2 ? avx2::fp4_rows_dot_int : avx512::fp4_rows_dot_int)(
              w.data(), ldw, s.data(), lds, nr, rows, m, k, got.data(), ldy);
          for (size_t j = 0; j < got.size(); ++j)
            ASSERT_EQ(f32_to_bits(got[j]), f32_to_bits(want[j])) << isa_name(isa) << " " << what << " entry " << j;
        }
      }
    }
  }
}

}  // namespace
}  // namespace dsv4::cpu
