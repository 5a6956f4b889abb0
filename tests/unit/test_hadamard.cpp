#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/error.h"
#include "kernels/ref/hadamard.h"
#include "quant/quant.h"

using dsv4::ref::hadamard;
using dsv4::ref::hadamard_exact_f32;

namespace {
int hsign(int i, int j) { return (__builtin_popcount(static_cast<unsigned>(i & j)) & 1) ? -1 : 1; }

// Sylvester matrix built recursively: H_2n = [[H, H], [H, -H]].
std::vector<int> sylvester(int n) {
  std::vector<int> h{1};
  for (int m = 1; m < n; m *= 2) {
    std::vector<int> g(static_cast<size_t>(4 * m * m));
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < m; ++j) {
        const int v = h[static_cast<size_t>(i * m + j)];
        g[static_cast<size_t>(i * 2 * m + j)] = v;
        g[static_cast<size_t>(i * 2 * m + j + m)] = v;
        g[static_cast<size_t>((i + m) * 2 * m + j)] = v;
        g[static_cast<size_t>((i + m) * 2 * m + j + m)] = -v;
      }
    h = std::move(g);
  }
  return h;
}
}  // namespace

TEST(Hadamard, NaturalOrderSylvesterAndHHIsNI) {
  for (int n : {1, 2, 4, 8, 16}) {
    const auto h = sylvester(n);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) ASSERT_EQ(h[static_cast<size_t>(i * n + j)], hsign(i, j));
    // Columns of the transform (unit vectors in) equal the matrix columns; H.H = n I.
    std::vector<float> cols(static_cast<size_t>(n * n));
    for (int j = 0; j < n; ++j) {
      std::vector<float> e(static_cast<size_t>(n), 0.0f);
      e[static_cast<size_t>(j)] = 1.0f;
      hadamard_exact_f32(e.data(), n, cols.data() + j * n);
      for (int i = 0; i < n; ++i) ASSERT_EQ(cols[static_cast<size_t>(j * n + i)], hsign(i, j));
      std::vector<float> twice(static_cast<size_t>(n));
      hadamard_exact_f32(cols.data() + j * n, n, twice.data());
      for (int i = 0; i < n; ++i) ASSERT_EQ(twice[static_cast<size_t>(i)], i == j ? n : 0);
    }
  }
}

TEST(Hadamard, MatchesDirectSumAndIsOrthonormal) {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int n : {2, 32, 64, 128}) {
    const double scale32 = static_cast<float>(std::pow(double(n), -0.5));
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<float> x(static_cast<size_t>(n));
      for (auto& v : x) v = dsv4::quant::bf16_round(nd(rng));
      auto y = x;
      hadamard(y.data(), n);
      double nx = 0, ny = 0;
      for (int i = 0; i < n; ++i) {
        double s = 0;  // direct O(n^2) sum: exact for these well-scaled bf16 values
        for (int j = 0; j < n; ++j) s += hsign(i, j) * double(x[static_cast<size_t>(j)]);
        const float expect = dsv4::quant::bf16_round(static_cast<float>(s) * static_cast<float>(scale32));
        ASSERT_EQ(y[static_cast<size_t>(i)], expect) << "n " << n << " i " << i;
        nx += double(x[static_cast<size_t>(i)]) * x[static_cast<size_t>(i)];
        ny += double(y[static_cast<size_t>(i)]) * y[static_cast<size_t>(i)];
      }
      EXPECT_NEAR(ny / nx, 1.0, 0.02);  // norm preserved up to the bf16 output rounding
    }
  }
}

TEST(Hadamard, ExactBeyondDoubleDynamicRange) {
  // 1 + 2^-24 + 2^-80 rounds to 1 + 2^-23 in float32; summing in double first would lose 2^-80 and
  // then round the tie 1 + 2^-24 to 1.0.
  const float a = std::ldexp(1.0f, -24), b = std::ldexp(1.0f, -80);
  const float x[4] = {1.0f, a, b, 0.0f};
  float y[4];
  hadamard_exact_f32(x, 4, y);
  EXPECT_EQ(y[0], 1.0f + std::ldexp(1.0f, -23));  // 1 + a + b
  EXPECT_EQ(y[1], 1.0f - a);                      // 1 - a + b
  EXPECT_EQ(y[2], 1.0f);                          // 1 + a - b
  EXPECT_EQ(y[3], 1.0f - a);                      // 1 - a - b
}

TEST(Hadamard, TwoNonzeroInputsEqualOneFloatOperation) {
  // With two nonzero inputs every output is one IEEE float32 addition/subtraction, which is
  // correctly rounded: an independent check of the exact path over the whole float range.
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> lg(-149.0f, 120.0f);
  for (int trial = 0; trial < 3000; ++trial) {
    const int n = 8, p = static_cast<int>(rng() % 8), q = (p + 1 + static_cast<int>(rng() % 7)) % 8;
    std::vector<float> x(8, 0.0f);
    x[static_cast<size_t>(p)] = std::exp2(lg(rng)) * ((rng() & 1) ? -1.0f : 1.0f);
    x[static_cast<size_t>(q)] = std::exp2(lg(rng)) * ((rng() & 1) ? -1.0f : 1.0f);
    std::vector<float> y(8);
    hadamard_exact_f32(x.data(), n, y.data());
    for (int i = 0; i < n; ++i) {
      const float xp = hsign(i, p) * x[static_cast<size_t>(p)], xq = hsign(i, q) * x[static_cast<size_t>(q)];
      ASSERT_EQ(y[static_cast<size_t>(i)], xp + xq) << "trial " << trial << " i " << i;
    }
  }
}

TEST(Hadamard, RejectsNonPowerOfTwo) {
  float x[6] = {};
  EXPECT_THROW(hadamard(x, 6), dsv4::Error);
  EXPECT_THROW(hadamard(x, 0), dsv4::Error);
}
