// Row-wise kernels (RMSNorm, softmax, RoPE, Hadamard): scalar twin and AVX-512 vs float64, odd
// widths (masked tails), several rows with a row stride.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/rowwise.h"
#include "tests/unit/cpu_test_util.h"

namespace dsv4::cpu {
namespace {

using testing::IsaScope;
using testing::isas_to_test;

std::vector<float> randn(std::mt19937& rng, size_t n, float sd = 1.0f) {
  std::normal_distribution<float> d(0.f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

constexpr double kU = 1.0 / (1 << 24);

TEST(CpuRowwise, RmsNormMatchesFloat64) {
  std::mt19937 rng(31);
  const int64_t rows = 3, n = 4099, ld = 4100;
  const auto x = randn(rng, rows * ld, 2.0f), w = randn(rng, n);
  for (Isa isa : isas_to_test()) {
    IsaScope scope(isa);
    std::vector<float> y(rows * ld, 0.0f);
    rms_norm(x.data(), ld, rows, n, w.data(), 1e-6f, y.data(), ld);
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0;
      for (int64_t i = 0; i < n; ++i) ss += double(x[r * ld + i]) * x[r * ld + i];
      const double inv = 1.0 / std::sqrt(ss / n + 1e-6);
      for (int64_t i = 0; i < n; ++i) {
        const double ref = w[i] * (x[r * ld + i] * inv);
        // sum of squares: gamma_n relative; then 3 roundings.
        ASSERT_NEAR(y[r * ld + i], ref, std::fabs(ref) * (n * kU + 8 * kU)) << isa_name(isa) << " " << i;
      }
    }
  }
}

TEST(CpuRowwise, SoftmaxMatchesFloat64) {
  std::mt19937 rng(32);
  const int64_t rows = 2, n = 77;
  const auto x0 = randn(rng, rows * n, 4.0f);
  for (Isa isa : isas_to_test()) {
    IsaScope scope(isa);
    std::vector<float> x = x0;
    softmax(x.data(), n, rows, n);
    for (int64_t r = 0; r < rows; ++r) {
      double m = -1e300, s = 0;
      for (int64_t i = 0; i < n; ++i) m = std::max(m, double(x0[r * n + i]));
      for (int64_t i = 0; i < n; ++i) s += std::exp(x0[r * n + i] - m);
      for (int64_t i = 0; i < n; ++i) {
        const double ref = std::exp(x0[r * n + i] - m) / s;
        // exp within a few ulps, the sum gamma_n: relative error bound.
        ASSERT_NEAR(x[r * n + i], ref, ref * (n * kU + 16 * kU)) << isa_name(isa) << " " << i;
      }
    }
  }
}

TEST(CpuRowwise, RopeMatchesFloat64AndInverts) {
  std::mt19937 rng(33);
  const int64_t rows = 3, ld = 90, off = 40, npairs = 25;  // 25 pairs: one masked tail
  const auto x0 = randn(rng, rows * ld);
  std::vector<float> c(rows * npairs), s(rows * npairs);
  std::uniform_real_distribution<float> ang(-3.1f, 3.1f);
  for (size_t i = 0; i < c.size(); ++i) {
    const float a = ang(rng);
    c[i] = std::cos(a);
    s[i] = std::sin(a);
  }
  for (Isa isa : isas_to_test()) {
    IsaScope scope(isa);
    std::vector<float> x = x0;
    rope(x.data(), ld, rows, off, npairs, c.data(), s.data(), npairs, false);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < off; ++i) ASSERT_EQ(x[r * ld + i], x0[r * ld + i]);
      for (int64_t i = 0; i < npairs; ++i) {
        const double a = x0[r * ld + off + 2 * i], b = x0[r * ld + off + 2 * i + 1];
        const double cc = c[r * npairs + i], ss = s[r * npairs + i];
        const double tol = 4 * kU * (std::fabs(a) + std::fabs(b));
        ASSERT_NEAR(x[r * ld + off + 2 * i], a * cc - b * ss, tol) << isa_name(isa);
        ASSERT_NEAR(x[r * ld + off + 2 * i + 1], a * ss + b * cc, tol) << isa_name(isa);
      }
    }
    rope(x.data(), ld, rows, off, npairs, c.data(), s.data(), npairs, true);
    for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(x[i], x0[i], 1e-5 * (1 + std::fabs(x0[i])));
  }
}

TEST(CpuRowwise, HadamardMatchesFloat64) {
  std::mt19937 rng(34);
  for (int64_t n : {8, 128, 512}) {
    const int64_t rows = 3;
    const auto x0 = randn(rng, rows * n);
    for (Isa isa : isas_to_test()) {
      IsaScope scope(isa);
      std::vector<float> x = x0;
      hadamard(x.data(), n, rows, n);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t i = 0; i < n; ++i) {
          double ref = 0, mag = 0;
          for (int64_t j = 0; j < n; ++j) {
            const double sgn = (__builtin_popcountll(i & j) & 1) ? -1.0 : 1.0;
            ref += sgn * x0[r * n + j];
            mag += std::fabs(x0[r * n + j]);
          }
          ref /= std::sqrt(double(n));
          mag /= std::sqrt(double(n));
          ASSERT_NEAR(x[r * n + i], ref, mag * (std::log2(double(n)) + 2) * kU * 2)
              << isa_name(isa) << " n " << n << " i " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace dsv4::cpu
