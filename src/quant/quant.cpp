// Scalar number formats (BF16, E4M3, E8M0, E2M1) and the act_quant block quantiser. Everything
// here is defined on bits so that the results do not depend on the FPU rounding mode except where
// noted (std::nearbyint, which runs in the default round-to-nearest-even mode).
#include "quant/quant.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

namespace dsv4::quant {

namespace {

constexpr uint32_t f32_bits(float f) { return std::bit_cast<uint32_t>(f); }
constexpr float bits_f32(uint32_t u) { return std::bit_cast<float>(u); }

// 2^k as a float for k in [-149, 127] (exact; subnormal below -126), built on the bits.
constexpr float pow2f(int k) {
  return k >= -126 ? bits_f32(static_cast<uint32_t>(k + 127) << 23) : bits_f32(1u << (k + 149));
}

// The format's definition of E4M3 code `code`; e4m3_to_f32 reads it from a table made at compile
// time (constant-initialised, so correct even when called from another file's static init).
constexpr float e4m3_value(uint8_t code) {
  const bool neg = (code & 0x80u) != 0;
  const int e = (code >> 3) & 0xF;
  const int m = code & 0x7;
  float v = 0.0f;
  if (e == 0xF && m == 0x7) {
    v = std::numeric_limits<float>::quiet_NaN();
  } else if (e == 0) {
    v = static_cast<float>(m) * pow2f(-9);  // subnormal: m/8 * 2^-6
  } else {
    v = static_cast<float>(8 + m) * pow2f(e - 10);  // (1 + m/8) * 2^(e-7)
  }
  return neg ? -v : v;
}
constexpr std::array<float, 256> kE4m3 = [] {
  std::array<float, 256> t{};
  for (int c = 0; c < 256; ++c) t[static_cast<size_t>(c)] = e4m3_value(static_cast<uint8_t>(c));
  return t;
}();

constexpr float kE2M1Grid[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};

// Per-block exponent k of the power-of-two scale (spec 6.2). A block holding NaN gets k = 129 and
// one holding an infinity k = 128, both stored as the E8M0 NaN byte 255 (inputs should be finite).
inline int block_scale_exp(const float* x, int64_t len, float floor, float fmax_inv) {
  float amax = floor;
  bool nan = false;
  for (int64_t i = 0; i < len; ++i) {
    amax = std::max(amax, std::fabs(x[i]));
    nan |= std::isnan(x[i]);
  }
  if (nan) return ceil_log2_bits(std::numeric_limits<float>::quiet_NaN());
  const float t = amax * fmax_inv;  // one float32 multiplication
  return ceil_log2_bits(t);
}

// E8M0 byte for exponent k; k beyond the E8M0 range (non-finite blocks) gives 255 = NaN.
inline uint8_t e8m0_byte(int k) {
  const int b = k + 127;
  if (b < 0) return 0;
  if (b > 255) return 255;
  return static_cast<uint8_t>(b);
}

}  // namespace

// ---------------------------------------------------------------- BF16
float bf16_to_f32(uint16_t b) { return bits_f32(static_cast<uint32_t>(b) << 16); }

uint16_t f32_to_bf16(float f) {
  const uint32_t u = f32_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // quiet NaN
  // Round to nearest even on the 16 dropped bits; a carry into the exponent is the correct result
  // (including overflow to infinity).
  const uint32_t lsb = (u >> 16) & 1u;
  return static_cast<uint16_t>((u + 0x7FFFu + lsb) >> 16);
}

// ---------------------------------------------------------------- E4M3 (e4m3fn)
float e4m3_to_f32(uint8_t code) { return kE4m3[code]; }

uint8_t f32_to_e4m3(float f) {
  const uint32_t u = f32_bits(f);
  const uint32_t au = u & 0x7FFFFFFFu;
  if (au > 0x7F800000u) return 0x7F;                  // NaN
  const uint8_t sign = (u >> 31) != 0 ? 0x80 : 0x00;
  if (au >= f32_bits(kFp8Max)) return sign | 0x7E;    // satfinite (also +-inf)
  // The codes are monotonic in magnitude, so code = (biased exponent)*8 + (significand - 8) with
  // the significand rounded on the quantum of the binade; a carry moves to the next binade.
  if (au < 0x3C800000u) {  // below 2^-6 (zero and float32 subnormals too): quantum 2^-9
    // a * 2^9 < 8 is exact; adding and removing 2^23 rounds it to an integer, to nearest even
    const float q = (bits_f32(au) * 512.0f + 8388608.0f) - 8388608.0f;
    return sign | static_cast<uint8_t>(q);
  }
  // Round the 23-bit significand to 3 bits, to nearest even, on the bits (a carry into the
  // exponent field is the next binade's code); then code = (e + 7) * 8 + m3, e = exponent - 127.
  const uint32_t r = au + 0x7FFFFu + ((au >> 20) & 1u);
  return sign | static_cast<uint8_t>((((r >> 23) - 120u) << 3) | ((r >> 20) & 7u));
}

// ---------------------------------------------------------------- E8M0
float e8m0_to_f32(uint8_t b) {
  if (b == 255) return std::numeric_limits<float>::quiet_NaN();
  return pow2f(static_cast<int>(b) - 127);
}

// ---------------------------------------------------------------- E2M1
float e2m1_to_f32(uint8_t nibble) {
  const float v = kE2M1Grid[nibble & 0x7];
  return (nibble & 0x8) ? -v : v;
}

uint8_t f32_to_e2m1(float f) {
  // E2M1 has no NaN: NaN maps to +6 (code 0x7), the saturated value, like a satfinite cast.
  if (std::isnan(f)) return 0x7;
  const uint8_t sign = std::signbit(f) ? 0x8 : 0x0;
  const float a = std::fabs(f);
  int idx = 7;  // saturate at 6
  for (int i = 0; i < 7; ++i) {
    const float mid = 0.5f * (kE2M1Grid[i] + kE2M1Grid[i + 1]);  // exact in float32
    if (a < mid) { idx = i; break; }
    if (a == mid) { idx = (i % 2 == 0) ? i : i + 1; break; }  // tie: even code = mantissa 0
  }
  return sign | static_cast<uint8_t>(idx);
}

void pack_e2m1(const uint8_t* nibbles, int64_t n, uint8_t* packed) {
  for (int64_t j = 0; 2 * j < n; ++j) {
    const uint8_t lo = nibbles[2 * j] & 0xF;
    const uint8_t hi = 2 * j + 1 < n ? (nibbles[2 * j + 1] & 0xF) : 0;
    packed[j] = static_cast<uint8_t>(lo | (hi << 4));
  }
}

void unpack_e2m1(const uint8_t* packed, int64_t n, uint8_t* nibbles) {
  for (int64_t i = 0; i < n; ++i) nibbles[i] = (i % 2 == 0) ? (packed[i / 2] & 0xF) : (packed[i / 2] >> 4);
}

// ---------------------------------------------------------------- fast_round_scale
// For a normal float32 t the kernel's recipe is k = (exponent_field - 127) + (mantissa != 0), i.e.
// ceil(log2 t). For t = 0 and subnormal t (never reached through act_quant's amax floors) we return
// the smallest E8M0-representable k >= -127 with 2^k >= t: -127 for t <= 2^-127, else -126.
// Infinity gives 128 and NaN 129 (both map to the E8M0 NaN byte). The sign bit is ignored.
int ceil_log2_bits(float t) {
  const uint32_t u = f32_bits(t) & 0x7FFFFFFFu;
  const int ef = static_cast<int>(u >> 23);
  const uint32_t mant = u & 0x7FFFFFu;
  if (ef == 0) return mant <= 0x400000u ? -127 : -126;
  return (ef - 127) + (mant != 0 ? 1 : 0);
}

// ---------------------------------------------------------------- block quantisation
void quantize_e4m3_blocks(const float* x, int64_t n, int block, uint8_t* codes, uint8_t* scales) {
  for (int64_t b0 = 0, bi = 0; b0 < n; b0 += block, ++bi) {
    const int64_t len = std::min<int64_t>(block, n - b0);
    const int k = block_scale_exp(x + b0, len, kFp8AmaxFloor, kFp8MaxInv);
    scales[bi] = e8m0_byte(k);
    const float s = pow2f(std::clamp(k, -149, 127));
    for (int64_t i = 0; i < len; ++i)
      codes[b0 + i] = f32_to_e4m3(std::clamp(x[b0 + i] / s, -kFp8Max, kFp8Max));
  }
}

void quantize_e2m1_blocks(const float* x, int64_t n, int block, uint8_t* nibbles, uint8_t* scales) {
  for (int64_t b0 = 0, bi = 0; b0 < n; b0 += block, ++bi) {
    const int64_t len = std::min<int64_t>(block, n - b0);
    const int k = block_scale_exp(x + b0, len, kFp4AmaxFloor, kFp4MaxInv);
    scales[bi] = e8m0_byte(k);
    const float s = pow2f(std::clamp(k, -149, 127));
    for (int64_t i = 0; i < len; ++i)
      nibbles[b0 + i] = f32_to_e2m1(std::clamp(x[b0 + i] / s, -kFp4Max, kFp4Max));
  }
}

void fp8_sim(float* v, int64_t n, int block) {
  for (int64_t b0 = 0; b0 < n; b0 += block) {
    const int64_t len = std::min<int64_t>(block, n - b0);
    const int k = block_scale_exp(v + b0, len, kFp8AmaxFloor, kFp8MaxInv);
    const float s = pow2f(std::clamp(k, -149, 127));
    for (int64_t i = 0; i < len; ++i) {
      const uint8_t q = f32_to_e4m3(std::clamp(v[b0 + i] / s, -kFp8Max, kFp8Max));
      v[b0 + i] = bf16_round(e4m3_to_f32(q) * s);
    }
  }
}

void fp4_sim(float* v, int64_t n, int block) {
  for (int64_t b0 = 0; b0 < n; b0 += block) {
    const int64_t len = std::min<int64_t>(block, n - b0);
    const int k = block_scale_exp(v + b0, len, kFp4AmaxFloor, kFp4MaxInv);
    const float s = pow2f(std::clamp(k, -149, 127));
    for (int64_t i = 0; i < len; ++i) {
      const uint8_t q = f32_to_e2m1(std::clamp(v[b0 + i] / s, -kFp4Max, kFp4Max));
      v[b0 + i] = bf16_round(e2m1_to_f32(q) * s);
    }
  }
}

}  // namespace dsv4::quant
