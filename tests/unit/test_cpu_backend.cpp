// The SIMD backend (kernels/cpu/cpu_backend.h) against the reference backend, op by op, on random
// data: the results may differ only by float32 summation order and the final BF16 rounding.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "dsv4/engine.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/formats.h"
#include "kernels/cpu/linear.h"
#include "kernels/ref/mhc.h"
#include "model/backend.h"
#include "tests/unit/ckpt_fixture.h"

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
    fast->linear_fp8(m, xr, dsv4::Rows{y1.data(), n, rows});
    ref->linear_fp8(m, xr, dsv4::Rows{y2.data(), n, rows});
    expect_rows_close(y1, y2, 1e-6, "linear_fp8");
  }
  {
    const auto w = d.bytes(rows * k / 2, false);
    const auto s = d.scales(rows * k / 32);
    const Fp4Mat m{w.data(), s.data(), rows, k};
    std::vector<float> y1(n * rows), y2(n * rows);
    fast->linear_fp4(m, xr, dsv4::Rows{y1.data(), n, rows});
    ref->linear_fp4(m, xr, dsv4::Rows{y2.data(), n, rows});
    expect_rows_close(y1, y2, 1e-6, "linear_fp4");
  }
  {
    const auto wf = d.floats(rows * k, true);
    std::vector<uint16_t> w(rows * k);
    for (size_t i = 0; i < w.size(); ++i) w[i] = f32_to_bf16_bits(wf[i]);
    const Bf16Mat m{w.data(), rows, k};
    std::vector<float> y1(n * rows), y2(n * rows);
    fast->linear_bf16(m, xr, dsv4::Rows{y1.data(), n, rows});
    ref->linear_bf16(m, xr, dsv4::Rows{y2.data(), n, rows});
    expect_rows_close(y1, y2, 1e-6, "linear_bf16");
    const auto xf = d.floats(n * k, false);
    fast->linear_f32(m, ConstRows{xf.data(), n, k}, dsv4::Rows{y1.data(), n, rows});
    ref->linear_f32(m, ConstRows{xf.data(), n, k}, dsv4::Rows{y2.data(), n, rows});
    expect_rows_close(y1, y2, 1e-6, "linear_f32");
  }
  {
    const int64_t fr = 24, fc = 100;  // cols % 16 != 0: padded copy path
    const auto f = d.floats(fr * fc, false);
    const auto xf = d.floats(n * fc, false);
    std::vector<float> y1(n * fr), y2(n * fr);
    fast->linear_f32w(f.data(), fr, fc, ConstRows{xf.data(), n, fc}, dsv4::Rows{y1.data(), n, fr});
    ref->linear_f32w(f.data(), fr, fc, ConstRows{xf.data(), n, fc}, dsv4::Rows{y2.data(), n, fr});
    expect_rows_close(y1, y2, 1e-6, "linear_f32w");
    const auto f2 = d.floats(fr * 128, false);
    const auto x2 = d.floats(n * 128, false);
    fast->linear_f32w(f2.data(), fr, 128, ConstRows{x2.data(), n, 128}, dsv4::Rows{y1.data(), n, fr});
    ref->linear_f32w(f2.data(), fr, 128, ConstRows{x2.data(), n, 128}, dsv4::Rows{y2.data(), n, fr});
    expect_rows_close(y1, y2, 1e-6, "linear_f32w in place");
    // One row (decode): the mixes are split in 4-row units, with a remainder (22 rows, padded
    // copy) and without (24 rows, in place).
    for (const int64_t r : {int64_t{22}, int64_t{24}}) {
      std::vector<float> z1(r), z2(r);
      fast->linear_f32w(f2.data(), r, 128, ConstRows{x2.data(), 1, 128}, dsv4::Rows{z1.data(), 1, r});
      ref->linear_f32w(f2.data(), r, 128, ConstRows{x2.data(), 1, 128}, dsv4::Rows{z2.data(), 1, r});
      expect_rows_close(z1, z2, 1e-6, "linear_f32w one row");
    }
    // A prefill batch (the threads split the activation rows, in tiles of 12 with a remainder):
    // 24 rows in place and 22 rows / 100 columns through padded panel copies.
    const int64_t many = 41;
    const auto xm = d.floats(many * 128, false);
    for (const auto& [r, c] : {std::pair<int64_t, int64_t>{24, 128}, {22, 100}}) {
      std::vector<float> z1(many * r), z2(many * r);
      fast->linear_f32w(f2.data(), r, c, ConstRows{xm.data(), many, 128}, dsv4::Rows{z1.data(), many, r});
      ref->linear_f32w(f2.data(), r, c, ConstRows{xm.data(), many, 128}, dsv4::Rows{z2.data(), many, r});
      expect_rows_close(z1, z2, 1e-6, "linear_f32w many rows");
    }
  }
}

// run_units / for_units: every unit in exactly one piece, on a pool and serially. Work worth
// waking the threads is split into several pieces; a few nanoseconds of work is one call.
TEST(CpuBackend, RunUnitsCoversEveryUnitOnce) {
  for (int threads : {1, 2, 3}) {
    auto be = make_cpu_backend(threads);
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{7}, int64_t{1000}}) {
      for (double unit_ns : {0.001, 1e5}) {
        std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
        std::atomic<int> pieces{0};
        be->for_units(n, unit_ns, [&](int64_t b, int64_t e) {
          EXPECT_LT(b, e);
          ++pieces;
          for (int64_t i = b; i < e; ++i) ++seen[static_cast<size_t>(i)];
        });
        for (int64_t i = 0; i < n; ++i) EXPECT_EQ(seen[static_cast<size_t>(i)].load(), 1) << n << " " << i;
        if (n == 0) EXPECT_EQ(pieces.load(), 0);
        else if (threads == 1 || n == 1 || unit_ns < 1) EXPECT_EQ(pieces.load(), 1) << threads << " " << n;
        else EXPECT_GT(pieces.load(), 1) << threads << " " << n;
      }
    }
  }
  auto ref = make_reference_backend();
  int calls = 0;
  ref->for_units(50, 1e6, [&](int64_t b, int64_t e) {
    EXPECT_EQ(b, 0);
    EXPECT_EQ(e, 50);
    ++calls;
  });
  EXPECT_EQ(calls, 1);
}

// OutRows::round_bf16: the kernels round each output as its thread finishes; the result equals
// the unrounded product rounded afterwards, on every path (in-register decode at 1 and 3 rows,
// panels at 40 rows; FP8, grouped FP4, BF16) and with a row count that is not a panel multiple.
TEST(CpuBackend, KernelsRoundOutputsToBf16Exactly) {
  ThreadPool pool(2);
  Data d;
  const int64_t n = 136, k = 256;
  auto expect_rounded = [](const std::vector<float>& raw, const std::vector<float>& rounded,
                           const char* what) {
    ASSERT_EQ(raw.size(), rounded.size());
    int bad = 0;
    for (size_t i = 0; i < raw.size(); ++i) {
      const float want = bf16_bits_to_f32(f32_to_bf16_bits(raw[i]));
      if (std::memcmp(&want, &rounded[i], 4) != 0 && bad++ < 5)
        ADD_FAILURE() << what << " [" << i << "]: " << rounded[i] << " want " << want;
    }
    EXPECT_EQ(bad, 0) << what;
  };
  const auto w8 = d.bytes(n * k, true);
  const auto s8 = d.scales(2 * 2);
  const auto w4 = d.bytes(n * k / 2, false);
  const auto s4 = d.scales(n * k / 32);
  const auto wf = d.floats(n * k, true);
  std::vector<uint16_t> wb(n * k);
  for (size_t i = 0; i < wb.size(); ++i) wb[i] = f32_to_bf16_bits(wf[i]);
  for (int64_t m : {int64_t{1}, int64_t{3}, int64_t{40}}) {
    const auto x = d.floats(m * k, false);
    const cpu::Rows xr{x.data(), m, k};
    std::vector<float> raw(m * n), rounded(m * n);
    linear_fp8({w8.data(), s8.data(), n, k}, xr, {raw.data(), n}, &pool);
    linear_fp8({w8.data(), s8.data(), n, k}, xr, {rounded.data(), n, true}, &pool);
    expect_rounded(raw, rounded, "linear_fp8");
    linear_bf16({wb.data(), n, k}, xr, {raw.data(), n}, &pool, Bf16Act::RoundToBf16);
    linear_bf16({wb.data(), n, k}, xr, {rounded.data(), n, true}, &pool, Bf16Act::RoundToBf16);
    expect_rounded(raw, rounded, "linear_bf16");
    linear_bf16({wb.data(), n, k}, xr, {raw.data(), n}, &pool, Bf16Act::Float32);
    linear_bf16({wb.data(), n, k}, xr, {rounded.data(), n, true}, &pool, Bf16Act::Float32);
    expect_rounded(raw, rounded, "linear_bf16 float32 activations");
    // Two groups: m rows, and one row gathered from the end of x.
    const int32_t last = static_cast<int32_t>(m - 1);
    std::vector<float> raw1(n), rounded1(n);
    const Fp4Weight f4{w4.data(), s4.data(), n, k};
    const Fp4Group raw_groups[] = {{f4, x.data(), k, nullptr, m, {raw.data(), n}},
                                   {f4, x.data(), k, &last, 1, {raw1.data(), n}}};
    const Fp4Group rounded_groups[] = {{f4, x.data(), k, nullptr, m, {rounded.data(), n, true}},
                                       {f4, x.data(), k, &last, 1, {rounded1.data(), n, true}}};
    linear_fp4_grouped(raw_groups, &pool);
    linear_fp4_grouped(rounded_groups, &pool);
    expect_rounded(raw, rounded, "linear_fp4_grouped");
    expect_rounded(raw1, rounded1, "linear_fp4_grouped gathered row");
  }
}

// hc_post over a column range equals the same columns of the whole row, bit for bit.
TEST(CpuBackend, HcPostColumnPiecesEqualTheWholeRow) {
  Data d;
  const int hc = 4;
  const int64_t dim = 300;
  const auto x = d.floats(hc * dim, false);
  const auto f = d.floats(dim, true);
  const auto post = d.floats(hc, false);
  const auto comb = d.floats(hc * hc, false);
  std::vector<float> whole(hc * dim), piece(hc * dim);
  ref::hc_post(x.data(), f.data(), hc, dim, post.data(), comb.data(), 0, dim, whole.data());
  for (int64_t d0 = 0; d0 < dim; d0 += 128) {
    const int64_t d1 = std::min(dim, d0 + 128), w = d1 - d0;
    ref::hc_post(x.data(), f.data(), hc, dim, post.data(), comb.data(), d0, d1, piece.data());
    for (int k = 0; k < hc; ++k)
      ASSERT_EQ(0, std::memcmp(&piece[k * w], &whole[k * dim + d0], static_cast<size_t>(w) * 4)) << d0 << " " << k;
  }
}

// The forward pass splits its light per-unit work and the linears' outputs over the threads:
// logits after a prefill of 70 tokens (many rows per unit loop) and two decodes are bit-identical
// for 1, 2 and 3 threads.
TEST(CpuBackend, EngineLogitsIndependentOfThreadCount) {
  std::vector<std::vector<float>> runs;
  for (int threads : {1, 2, 3}) {
    EngineOptions eo;
    eo.model_dir = testing::tiny_ckpt("tiny-a");
    eo.threads = threads;
    auto eng = Engine::load(eo);
    auto s = eng->new_session();
    std::vector<float> logits(static_cast<size_t>(eng->info().vocab_size)), all;
    std::vector<int32_t> prompt;
    for (int i = 0; i < 70; ++i) prompt.push_back((i * 37 + 11) % static_cast<int>(eng->info().vocab_size));
    s->prefill(prompt, logits);
    all = logits;
    for (int32_t t : {42, 7}) {
      s->decode(t, logits);
      all.insert(all.end(), logits.begin(), logits.end());
    }
    runs.push_back(all);
  }
  for (size_t i = 1; i < runs.size(); ++i)
    ASSERT_EQ(0, std::memcmp(runs[0].data(), runs[i].data(), runs[0].size() * sizeof(float))) << i;
}

}  // namespace
}  // namespace dsv4::cpu
