// The SIMD backend (kernels/cpu/cpu_backend.h) against the reference backend, op by op, on random
// data: the results may differ only by float32 summation order and the final BF16 rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/formats.h"
#include "model/backend.h"

namespace dsv4::cpu {
namespace {

struct Data {
  std::mt19937 rng{21};
  std::vector<uint8_t> bytes(size_t n, bool e4m3) {
    std::uniform_int_distribution<int> d(0, 255);
    std::vector<uint8_t> v(n);
    for (auto& b : v) {
      b = static_cast<uint8_t>(d(rng));
      if (e4m3 && (b & 0x7F) == 0x7F) b = 0x30;
    }
    return v;
  }
  std::vector<uint8_t> scales(size_t n) {
    std::uniform_int_distribution<int> d(118, 130);
    std::vector<uint8_t> v(n);
    for (auto& b : v) b = static_cast<uint8_t>(d(rng));
    return v;
  }
  std::vector<float> floats(size_t n, bool bf16) {
    std::normal_distribution<float> d(0.f, 1.f);
    std::vector<float> v(n);
    for (auto& x : v) x = bf16 ? bf16_bits_to_f32(f32_to_bf16_bits(d(rng))) : d(rng);
    return v;
  }
};

// |a - b| within 2 BF16 ulps of the larger magnitude (or `abs_tol`): one rounding each side of a
// boundary plus float32 order effects.
void expect_rows_close(const std::vector<float>& a, const std::vector<float>& b, double abs_tol,
                       const char* what) {
  ASSERT_EQ(a.size(), b.size());
  double scale = 0;
  for (float v : b) scale = std::max(scale, double(std::fabs(v)));
  int bad = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double tol = std::ldexp(std::max(std::fabs(a[i]), std::fabs(b[i])), -7) + abs_tol * scale;
    if (!(std::fabs(a[i] - b[i]) <= tol) && bad++ < 5)
      ADD_FAILURE() << what << " [" << i << "]: simd " << a[i] << " ref " << b[i];
  }
  EXPECT_EQ(bad, 0) << what;
}

TEST(CpuBackend, LinearsAgreeWithReferenceBackend) {
  auto fast = make_cpu_backend(2);
  auto ref = make_reference_backend();
  EXPECT_STREQ(fast->name(), "cpu-simd");
  Data d;
  const int64_t n = 5, rows = 136, k = 256;
  const auto x = d.floats(n * k, true);
  const ConstRows xr{x.data(), n, k};
  {
    const auto w = d.bytes(rows * k, true);
    const auto s = d.scales(2 * 2);
    const Fp8Mat m{w.data(), s.data(), rows, k};
    std::vector<float> y1(n * rows), y2(n * rows);
    fast->linear_fp8(m, xr, Rows{y1.data(), n, rows});
    ref->linear_fp8(m, xr, Rows{y2.data(), n, rows});
    expect_rows_close(y1, y2, 1e-6, "linear_fp8");
  }
  {
    const auto w = d.bytes(rows * k / 2, false);
    const auto s = d.scales(rows * k / 32);
    const Fp4Mat m{w.data(), s.data(), rows, k};
    std::vector<float> y1(n * rows), y2(n * rows);
    fast->linear_fp4(m, xr, Rows{y1.data(), n, rows});
    ref->linear_fp4(m, xr, Rows{y2.data(), n, rows});
    expect_rows_close(y1, y2, 1e-6, "linear_fp4");
  }
  {
    const auto wf = d.floats(rows * k, true);
    std::vector<uint16_t> w(rows * k);
    for (size_t i = 0; i < w.size(); ++i) w[i] = f32_to_bf16_bits(wf[i]);
    const Bf16Mat m{w.data(), rows, k};
    std::vector<float> y1(n * rows), y2(n * rows);
    fast->linear_bf16(m, xr, Rows{y1.data(), n, rows});
    ref->linear_bf16(m, xr, Rows{y2.data(), n, rows});
    expect_rows_close(y1, y2, 1e-6, "linear_bf16");
    const auto xf = d.floats(n * k, false);
    fast->linear_f32(m, ConstRows{xf.data(), n, k}, Rows{y1.data(), n, rows});
    ref->linear_f32(m, ConstRows{xf.data(), n, k}, Rows{y2.data(), n, rows});
    expect_rows_close(y1, y2, 1e-6, "linear_f32");
  }
  {
    const int64_t fr = 24, fc = 100;  // cols % 16 != 0: padded copy path
    const auto f = d.floats(fr * fc, false);
    const auto xf = d.floats(n * fc, false);
    std::vector<float> y1(n * fr), y2(n * fr);
    fast->linear_f32w(f.data(), fr, fc, ConstRows{xf.data(), n, fc}, Rows{y1.data(), n, fr});
    ref->linear_f32w(f.data(), fr, fc, ConstRows{xf.data(), n, fc}, Rows{y2.data(), n, fr});
    expect_rows_close(y1, y2, 1e-6, "linear_f32w");
    const auto f2 = d.floats(fr * 128, false);
    const auto x2 = d.floats(n * 128, false);
    fast->linear_f32w(f2.data(), fr, 128, ConstRows{x2.data(), n, 128}, Rows{y1.data(), n, fr});
    ref->linear_f32w(f2.data(), fr, 128, ConstRows{x2.data(), n, 128}, Rows{y2.data(), n, fr});
    expect_rows_close(y1, y2, 1e-6, "linear_f32w in place");
  }
}

}  // namespace
}  // namespace dsv4::cpu
