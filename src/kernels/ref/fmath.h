// Float32 elementary functions with the rounding the golden reference uses (NOTES.md section 9):
// transcendentals computed in double and rounded once to float32 (correctly rounded for the
// purposes of the reference), fma32 = one rounding of a*b+c, and the bf16 rounding helper.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace dsv4::ref {

// Round a float32 to the nearest bf16 value (RNE), returned as float. NaN stays NaN.
inline float bf16r(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return f;  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  u &= 0xffff0000u;
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

inline float bf16_bits_to_f32(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

inline float exp32(float x) { return static_cast<float>(std::exp(static_cast<double>(x))); }
inline float log1p32(float x) { return static_cast<float>(std::log1p(static_cast<double>(x))); }
inline float fma32(float a, float b, float c) {
  return static_cast<float>(static_cast<double>(a) * b + c);  // exact product in double, one rounding
}
inline float rsqrt32(float v) { return static_cast<float>(1.0 / std::sqrt(static_cast<double>(v))); }
inline float sigmoid32(float z) {
  float d = 1.0f + exp32(-z);
  return 1.0f / d;
}
inline float silu32(float g) {
  float d = 1.0f + exp32(-g);
  return g / d;
}
inline float softplus32(float x) { return x > 20.0f ? x : log1p32(exp32(x)); }

}  // namespace dsv4::ref
