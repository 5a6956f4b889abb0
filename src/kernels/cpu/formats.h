// Scalar value definitions of the weight/activation formats as the CPU kernels use them
// (spec 3.3): E4M3 (bias 7, no inf, 0x7F/0xFF NaN), E2M1 nibbles, E8M0 scales, BF16 bits.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace dsv4::cpu {

inline float bits_to_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t f32_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float bf16_bits_to_f32(uint16_t b) { return bits_to_f32(uint32_t{b} << 16); }

// Round to nearest even; NaN stays a quiet NaN.
inline uint16_t f32_to_bf16_bits(float f) {
  uint32_t u = f32_to_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// v[0, n) rounded in place to the nearest BF16 values (f32_to_bf16_bits).
inline void round_to_bf16(float* v, int64_t n) {
  for (int64_t j = 0; j < n; ++j) v[j] = bf16_bits_to_f32(f32_to_bf16_bits(v[j]));
}

inline float e4m3_value(uint8_t c) {
  const int e = (c >> 3) & 0xF, m = c & 7;
  float mag;
  if (e == 15 && m == 7) {
    mag = std::numeric_limits<float>::quiet_NaN();
  } else if (e == 0) {
    mag = std::ldexp(static_cast<float>(m), -9);
  } else {
    mag = std::ldexp(1.0f + m / 8.0f, e - 7);
  }
  return (c & 0x80) ? -mag : mag;
}

inline float e2m1_value(uint8_t nibble) {
  static constexpr float kMag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  const float v = kMag[nibble & 7];
  return (nibble & 8) ? -v : v;
}

// 2^(b - 127) built from its bits (the scale of every FP8 block of a GEMV's activations: a libm
// ldexp call each was 0.3% of a decode step): b is the float32 exponent field, and b = 0 is the
// subnormal 2^-127 (mantissa bit 22).
inline float e8m0_value(uint8_t b) {
  if (b == 255) return std::numeric_limits<float>::quiet_NaN();
  return bits_to_f32(b == 0 ? 0x00400000u : uint32_t{b} << 23);
}

// The reference's fast_round_scale exponent: ceil(log2(t)) from the float32 bits (spec 6.2).
inline int ceil_log2_f32(float t) {
  const uint32_t u = f32_to_bits(t);
  return static_cast<int>((u >> 23) & 0xFF) - 127 + ((u & 0x7FFFFF) != 0 ? 1 : 0);
}

// |v| <= 448 rounded to the E4M3 grid, ties to even, without libm: in the subnormal range
// (|v| < 2^-6, multiples of 2^-9) adding and subtracting 2^14 rounds in the default RNE mode;
// above it the float32 mantissa is rounded to 3 bits with an integer add (a carry moves into the
// exponent, as it should). Zero keeps its sign; NaN is not expected (activations are finite).
inline float round_to_e4m3_grid(float v) {
  const uint32_t u = f32_to_bits(v);
  const uint32_t sign = u & 0x80000000u, mag = u ^ sign;
  const float a = bits_to_f32(mag);
  uint32_t r;
  if (a < 0.015625f) {
    r = f32_to_bits((a + 16384.0f) - 16384.0f);
  } else {
    r = (mag + 0x7FFFFu + ((mag >> 20) & 1u)) & 0xFFF00000u;
  }
  return bits_to_f32(r | sign);
}

// 2^k as a float for -126 <= k <= 127.
inline float pow2_f32(int k) { return bits_to_f32(static_cast<uint32_t>(k + 127) << 23); }

// The BF16 panel word of FP4 code `code` (a nibble) under E8M0 scale byte `scale`: the product
// rounded to BF16, with a zero product (code 0 or 8) written as +0 (the AVX-512 decoder keeps
// zeros zero with a saturating subtract, which has no -0; products and sums are the same either
// way). A NaN scale (255) stays NaN, as in the AVX2 decoder's float product.
inline uint16_t fp4_panel_bits(uint8_t code, uint8_t scale) {
  const float v = e2m1_value(code) * e8m0_value(scale);
  return v == 0.0f ? uint16_t{0} : f32_to_bf16_bits(v);
}

}  // namespace dsv4::cpu
