// The scalar parts and constants the AVX-512 and AVX2 twins of the reference's row ops share
// (ref_rows.cpp, ref_rows_avx2.cpp): what each row op computes once per row or block from the
// lanes' float64 sums, and the exp polynomial and E2M1 grid they vectorise. Plain code with no
// target attributes, so both levels' files call it.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/ref/fmath.h"
#include "kernels/ref/mhc.h"
#include "kernels/ref/sinkhorn.h"
#include "quant/quant.h"

namespace dsv4::cpu::ref_rows_shared {

// ref's mean32_of_squares from the float64 sum of the (float32) squares of n values.
inline float mean_of_squares(double sum_squares, int64_t n) {
  const float inv_n = static_cast<float>(1.0 / static_cast<double>(n));
  return static_cast<float>(sum_squares) * inv_n;
}

// ref::rms_scale from the float64 sum of the squares.
inline float rms_scale(double sum_squares, int64_t n, float eps) {
  return ref::rsqrt32(mean_of_squares(sum_squares, n) + eps);
}

// ref::head_norm_bf16's factor from the float64 sum of the BF16-rounded squares.
inline float head_norm_scale(double sum_bf16_squares, int64_t n, float eps) {
  const float mean = ref::bf16r(mean_of_squares(sum_bf16_squares, n));
  const float d = ref::bf16r(mean + ref::bf16r(eps));
  return ref::bf16r(ref::rsqrt32(d));
}

// hc_pre_finish up to the weighted collapse: the mixes (dots x the RMS factor r) through the
// Sinkhorn split into `split`.
inline void hc_split(float r, const float* dots, int hc, const float* scale, const float* base, int iters,
                     float hc_eps, ref::HcSplit split) {
  const int mix = (2 + hc) * hc;
  thread_local std::vector<float> mixes;
  mixes.resize(static_cast<size_t>(mix));
  for (int i = 0; i < mix; ++i) mixes[static_cast<size_t>(i)] = dots[i] * r;
  ref::hc_split_sinkhorn(mixes.data(), scale, base, hc, iters, hc_eps, split.pre, split.post, split.comb);
}

// log1p(y) in float64 for y >= 0 (the twins' ref::log1p32 before its float32 rounding). Below
// kLog1pTiny, 1 + y is not exact: y - y^2 / 2 (the next term is under 2^-59 relative). Else
// u = 1 + y = 2^k m with m in [sqrt(1/2), sqrt(2)), f = m - 1 (exact), s = f / (2 + f), and
// log(1 + f) = 2 atanh(s) = 2 s + s R(s^2) with R(z) = sum_j 2 z^j / (2j + 1) to z^kLog1pTerms
// (s^2 <= 0.0295, so the first term left out is under 2^-57 relative), arranged so that the
// exact f is added last: log u = k ln2_hi - ((f^2/2 - (s (f^2/2 + R) + k ln2_lo)) - f).
inline constexpr double kLog1pTiny = 0x1p-29;
inline constexpr double kSqrt2 = 1.4142135623730951;
inline constexpr int kLog1pTerms = 11;
inline constexpr double kLog1pCoef[kLog1pTerms] = {2.0 / 3,  2.0 / 5,  2.0 / 7,  2.0 / 9,  2.0 / 11, 2.0 / 13,
                                                   2.0 / 15, 2.0 / 17, 2.0 / 19, 2.0 / 21, 2.0 / 23};

// exp(x) in float64 for |x| <= kExpClamp: x = n ln2 + r with |r| <= ln2 / 2 (Cody-Waite, the
// product n * kLn2Hi exact), e^r by its Taylor series to r^13 (truncation < 2^-57 relative),
// Horner on FMA with kExpInvFact[i] = 1 / i!, then times 2^n. Beyond the clamp the float32
// result is 0 or inf either way.
inline constexpr double kLog2e = 1.4426950408889634;
inline constexpr double kLn2Hi = 0x1.62e42fefa3800p-1;
inline constexpr double kLn2Lo = 0x1.ef35793c76730p-45;
inline constexpr double kExpClamp = 120.0;
inline constexpr int kExpDegree = 13;
inline constexpr double kExpInvFact[kExpDegree + 1] = {
    1.0,        1.0,         1.0 / 2,      1.0 / 6,        1.0 / 24,        1.0 / 120,        1.0 / 720,
    1.0 / 5040, 1.0 / 40320, 1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800};

// quant::fp4_sim on the E2M1 grid {0, .5, 1, 1.5, 2, 3, 4, 6}: the midpoints between grid
// values; a value's code is the number of midpoints below its magnitude, plus one at a tie with
// an odd one (ties go to the even code), as quant::f32_to_e2m1 does.
inline constexpr float kE2m1Mid[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};

// The power-of-two block scale of quant::fp4_sim and quant::fp8_sim from the block's largest
// magnitude (or NaN), with the format's amax floor and f32(1 / fmax).
inline float block_scale(bool has_nan, float amax, float floor, float fmax_inv) {
  const int k = has_nan ? quant::ceil_log2_bits(std::numeric_limits<float>::quiet_NaN())
                        : quant::ceil_log2_bits(std::max(floor, amax) * fmax_inv);
  return std::ldexp(1.0f, std::clamp(k, -149, 127));
}

}  // namespace dsv4::cpu::ref_rows_shared
