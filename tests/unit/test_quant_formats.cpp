// Exhaustive tests of the scalar number formats (BF16, E4M3, E8M0, E2M1) and fast_round_scale.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "quant/quant.h"

using namespace dsv4::quant;

namespace {

// Independent E4M3 decode straight from the format definition, in double.
double e4m3_ref(int c) {
  const int s = c >> 7, e = (c >> 3) & 15, m = c & 7;
  const double mag = e == 0 ? (m / 8.0) * std::pow(2.0, -6) : (1.0 + m / 8.0) * std::pow(2.0, e - 7);
  return s ? -mag : mag;
}

bool is_e4m3_nan(int c) { return (c & 0x7F) == 0x7F; }

// Independent nearest-code search over all finite codes (ties to the even code).
uint8_t e4m3_nearest(float f) {
  const double a = std::fabs(static_cast<double>(f));
  int best = 0;
  double bd = std::numeric_limits<double>::infinity();
  for (int c = 0; c <= 0x7E; ++c) {
    const double d = std::fabs(a - e4m3_ref(c));
    if (d < bd || (d == bd && (c & 1) == 0)) { bd = d; best = c; }
  }
  return static_cast<uint8_t>(best | (std::signbit(f) ? 0x80 : 0));
}

// Independent BF16 RNE: compare the distances to the two bf16 neighbours in double.
uint16_t bf16_ref(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  if (std::isnan(f)) return static_cast<uint16_t>((u >> 16) | 0x40);
  const uint16_t down = static_cast<uint16_t>(u >> 16);
  if ((u & 0xFFFF) == 0) return down;
  const uint16_t up = static_cast<uint16_t>(down + 1);  // next magnitude (may be inf)
  auto val = [](uint16_t b) { return static_cast<double>(std::bit_cast<float>(uint32_t{b} << 16)); };
  const double x = std::fabs(static_cast<double>(f));
  const double dd = x - std::fabs(val(down));
  if ((up & 0x7FFF) == 0x7F80) {  // rounding up would give infinity: the overflow threshold
    const double thr = std::fabs(val(down)) + std::ldexp(1.0, 127 - 8);  // half an ulp above max
    return x >= thr ? up : down;
  }
  const double du = std::fabs(val(up)) - x;
  if (dd < du) return down;
  if (du < dd) return up;
  return (down & 1) ? up : down;
}

}  // namespace

TEST(QuantE4M3, DecodeAllCodes) {
  for (int c = 0; c < 256; ++c) {
    const float v = e4m3_to_f32(static_cast<uint8_t>(c));
    if (is_e4m3_nan(c)) {
      EXPECT_TRUE(std::isnan(v)) << c;
      continue;
    }
    EXPECT_EQ(static_cast<double>(v), e4m3_ref(c)) << "code " << c;
    EXPECT_EQ(std::signbit(v), c >= 128) << c;
  }
  EXPECT_EQ(e4m3_to_f32(0x7E), 448.0f);
  EXPECT_EQ(e4m3_to_f32(0xFE), -448.0f);
  EXPECT_EQ(e4m3_to_f32(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(e4m3_to_f32(0x08), std::ldexp(1.0f, -6));
  EXPECT_EQ(e4m3_to_f32(0x38), 1.0f);
}

TEST(QuantE4M3, EncodeDecodeRoundTrip) {
  for (int c = 0; c < 256; ++c) {
    if (is_e4m3_nan(c)) continue;
    EXPECT_EQ(f32_to_e4m3(e4m3_to_f32(static_cast<uint8_t>(c))), c) << "code " << c;
  }
}

TEST(QuantE4M3, MidpointsRoundToEven) {
  for (int c = 0; c < 0x7E; ++c) {
    for (int sign : {0, 0x80}) {
      const float lo = e4m3_to_f32(static_cast<uint8_t>(c | sign));
      const float hi = e4m3_to_f32(static_cast<uint8_t>((c + 1) | sign));
      const float mid = 0.5f * (lo + hi);  // exact: 4 significant bits + 1
      ASSERT_EQ(static_cast<double>(mid), 0.5 * (static_cast<double>(lo) + hi));
      const int even = (c % 2 == 0) ? c : c + 1;
      EXPECT_EQ(f32_to_e4m3(mid), even | sign) << "midpoint between codes " << c << " and " << c + 1;
      // Just off the midpoint goes to the nearer neighbour.
      const float below = std::nextafter(mid, lo), above = std::nextafter(mid, hi);
      EXPECT_EQ(f32_to_e4m3(below), c | sign) << c;
      EXPECT_EQ(f32_to_e4m3(above), (c + 1) | sign) << c;
    }
  }
}

TEST(QuantE4M3, SaturationAndNaN) {
  EXPECT_EQ(f32_to_e4m3(448.0f), 0x7E);
  EXPECT_EQ(f32_to_e4m3(464.0f), 0x7E);  // the midpoint to the non-existent 480
  EXPECT_EQ(f32_to_e4m3(500.0f), 0x7E);
  EXPECT_EQ(f32_to_e4m3(1e30f), 0x7E);
  EXPECT_EQ(f32_to_e4m3(-1e30f), 0xFE);
  EXPECT_EQ(f32_to_e4m3(std::numeric_limits<float>::infinity()), 0x7E);
  EXPECT_EQ(f32_to_e4m3(-std::numeric_limits<float>::infinity()), 0xFE);
  EXPECT_EQ(f32_to_e4m3(std::numeric_limits<float>::quiet_NaN()), 0x7F);
  EXPECT_EQ(f32_to_e4m3(-std::numeric_limits<float>::quiet_NaN()), 0x7F);
  EXPECT_EQ(f32_to_e4m3(0.0f), 0x00);
  EXPECT_EQ(f32_to_e4m3(-0.0f), 0x80);
  EXPECT_EQ(f32_to_e4m3(std::ldexp(1.0f, -11)), 0x00);   // below half the smallest subnormal
  EXPECT_EQ(f32_to_e4m3(-std::ldexp(1.0f, -10)), 0x80);  // tie with 0 -> even (zero), sign kept
  EXPECT_EQ(f32_to_e4m3(std::ldexp(1.0f, -149)), 0x00);
}

// f32_to_e4m3 works on the bits; this is the definition it replaced (frexp for the binade,
// nearbyint on the binade's quantum), compared over every 4099th float32 bit pattern (both signs,
// NaN, infinities, subnormals; the whole range of 2^32 matched when the bit version was written).
TEST(QuantE4M3, EncodeMatchesTheFrexpDefinition) {
  auto by_frexp = [](float f) -> uint8_t {
    if (std::isnan(f)) return 0x7F;
    const uint8_t sign = std::signbit(f) ? 0x80 : 0x00;
    const float a = std::fabs(f);
    if (a >= 448.0f) return sign | 0x7E;
    int e2;
    std::frexp(a, &e2);
    const int e = e2 - 1;
    if (a == 0.0f || e < -6) return sign | static_cast<uint8_t>(std::nearbyint(a * std::ldexp(1.0f, 9)));
    const float q = std::nearbyint(a * std::ldexp(1.0f, 3 - e));
    return sign | static_cast<uint8_t>((e + 7) * 8 + static_cast<int>(q) - 8);
  };
  for (uint64_t b = 0; b <= 0xFFFFFFFFull; b += 4099) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(b));
    ASSERT_EQ(f32_to_e4m3(f), by_frexp(f)) << "bits " << std::hex << b;
  }
}

TEST(QuantE4M3, MatchesNearestCodeSearch) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> mag(-14.0f, 9.5f);
  for (int i = 0; i < 20000; ++i) {
    float f = std::exp2(mag(rng));
    if (rng() & 1) f = -f;
    ASSERT_EQ(f32_to_e4m3(f), e4m3_nearest(f)) << f;
  }
}

TEST(QuantE8M0, AllBytes) {
  for (int b = 0; b < 256; ++b) {
    const float v = e8m0_to_f32(static_cast<uint8_t>(b));
    if (b == 255) {
      EXPECT_TRUE(std::isnan(v));
      continue;
    }
    EXPECT_EQ(static_cast<double>(v), std::ldexp(1.0, b - 127)) << b;
    EXPECT_GT(v, 0.0f);
  }
}

TEST(QuantE2M1, AllNibbles) {
  const float table[16] = {0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0f, -0.5, -1, -1.5, -2, -3, -4, -6};
  for (int n = 0; n < 16; ++n) {
    const float v = e2m1_to_f32(static_cast<uint8_t>(n));
    EXPECT_EQ(v, table[n]) << n;
    EXPECT_EQ(std::signbit(v), n >= 8) << n;
    EXPECT_EQ(f32_to_e2m1(v), n) << n;
  }
}

TEST(QuantE2M1, TiesToEvenMantissaAndSaturation) {
  struct Case { float in; uint8_t code; };
  const Case cases[] = {{0.25f, 0}, {0.75f, 2}, {1.25f, 2}, {1.75f, 4}, {2.5f, 4}, {3.5f, 6}, {5.0f, 6},
                        {0.2499f, 0}, {0.2501f, 1}, {0.74f, 1}, {4.99f, 6}, {5.01f, 7},
                        {6.0f, 7}, {7.0f, 7}, {1e9f, 7}, {-5.0f, 14}, {-0.25f, 8}, {-100.0f, 15}};
  for (const auto& c : cases) EXPECT_EQ(f32_to_e2m1(c.in), c.code) << c.in;
  EXPECT_EQ(f32_to_e2m1(std::numeric_limits<float>::infinity()), 7);
  EXPECT_EQ(f32_to_e2m1(-std::numeric_limits<float>::infinity()), 15);
  EXPECT_EQ(f32_to_e2m1(-0.0f), 8);
}

TEST(QuantE2M1, PackingLowNibbleIsEvenElement) {
  const uint8_t nib[5] = {0x1, 0x2, 0xF, 0x8, 0x7};
  uint8_t packed[3] = {0xAA, 0xAA, 0xAA};
  pack_e2m1(nib, 5, packed);
  EXPECT_EQ(packed[0], 0x21);
  EXPECT_EQ(packed[1], 0x8F);
  EXPECT_EQ(packed[2], 0x07);
  uint8_t back[5];
  unpack_e2m1(packed, 5, back);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(back[i], nib[i]);
  // convert.py's decoding of one byte: low = element 2j, high = element 2j+1.
  const uint8_t byte = 0x93;  // low 0x3 = 1.5, high 0x9 = -0.5
  uint8_t two[2];
  unpack_e2m1(&byte, 2, two);
  EXPECT_EQ(e2m1_to_f32(two[0]), 1.5f);
  EXPECT_EQ(e2m1_to_f32(two[1]), -0.5f);
}

TEST(QuantBF16, RoundNearestEvenVsBitLevelReference) {
  std::mt19937 rng(11);
  for (int i = 0; i < 200000; ++i) {
    const uint32_t u = static_cast<uint32_t>(rng());
    const float f = std::bit_cast<float>(u);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(f))));
      continue;
    }
    ASSERT_EQ(f32_to_bf16(f), bf16_ref(f)) << std::hex << u;
  }
}

TEST(QuantBF16, ExactTiesAndSpecials) {
  std::mt19937 rng(12);
  for (int i = 0; i < 20000; ++i) {
    const uint32_t hi = static_cast<uint32_t>(rng()) & 0xFFFF;
    if ((hi & 0x7F80) == 0x7F80) continue;  // inf/nan exponents
    const uint32_t u = (hi << 16) | 0x8000u;  // exactly halfway
    const float f = std::bit_cast<float>(u);
    const uint16_t expect = (hi & 1) ? static_cast<uint16_t>(hi + 1) : static_cast<uint16_t>(hi);
    ASSERT_EQ(f32_to_bf16(f), expect) << std::hex << u;
    ASSERT_EQ(f32_to_bf16(f), bf16_ref(f)) << std::hex << u;
  }
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(f32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // rounds up to inf
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x7F7F7FFFu)), 0x7F7F);
  const uint16_t qn = f32_to_bf16(std::bit_cast<float>(0x7F800001u));  // signalling NaN payload low
  EXPECT_TRUE(std::isnan(bf16_to_f32(qn)));
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xC000), -2.0f);
  for (uint32_t b = 0; b < 65536; ++b) {  // every bf16 is a fixed point
    const float f = bf16_to_f32(static_cast<uint16_t>(b));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_bf16(f), b);
  }
}

TEST(QuantScale, CeilLog2BitsVsFrexp) {
  auto ref = [](float t) {
    int e;
    const float m = std::frexp(t, &e);  // t = m 2^e, m in [0.5, 1)
    return m == 0.5f ? e - 1 : e;
  };
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> lg(-125.0f, 127.0f);
  for (int i = 0; i < 20000; ++i) {
    const float t = std::exp2(lg(rng));
    ASSERT_EQ(ceil_log2_bits(t), ref(t)) << t;
  }
  for (int k = -126; k <= 127; ++k) {
    const float p = std::ldexp(1.0f, k);
    EXPECT_EQ(ceil_log2_bits(p), k);
    EXPECT_EQ(ceil_log2_bits(std::nextafter(p, std::numeric_limits<float>::infinity())), k + 1);
    if (k > -126) {
      EXPECT_EQ(ceil_log2_bits(std::nextafter(p, 0.0f)), k);
    }
  }
  // Documented behaviour outside the normal range.
  EXPECT_EQ(ceil_log2_bits(0.0f), -127);
  EXPECT_EQ(ceil_log2_bits(std::ldexp(1.0f, -127)), -127);
  EXPECT_EQ(ceil_log2_bits(std::ldexp(1.0f, -140)), -127);
  EXPECT_EQ(ceil_log2_bits(std::ldexp(1.5f, -127)), -126);
  EXPECT_EQ(ceil_log2_bits(std::numeric_limits<float>::infinity()), 128);
}
