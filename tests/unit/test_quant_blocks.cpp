// act_quant block quantisation and the FP8/FP4 quantise-dequantise simulations: the spec's numerics
// vectors, plus properties (fixed points, block independence, scale rule).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <fstream>
#include <limits>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/ref/hadamard.h"
#include "quant/quant.h"

using namespace dsv4::quant;

namespace {

const nlohmann::json& vectors() {
  static const nlohmann::json j = [] {
    std::ifstream in(std::string(DSV4_TEST_DATA) + "/spec/numerics/numerics_vectors.json");
    if (!in) throw std::runtime_error("cannot open numerics_vectors.json");
    return nlohmann::json::parse(in);
  }();
  return j;
}

std::vector<float> floats(const nlohmann::json& a) {
  std::vector<float> v;
  for (const auto& x : a) v.push_back(static_cast<float>(x.get<double>()));
  return v;
}

void check_fp8_vector(const char* name, int block) {
  const auto& t = vectors().at(name);
  const auto in = floats(t.at("input_bf16"));
  const auto deq = floats(t.at("dequant_bf16"));
  const int64_t n = static_cast<int64_t>(in.size());
  for (float x : in) ASSERT_EQ(bf16_round(x), x) << "input is bf16";
  std::vector<uint8_t> codes(in.size()), scales(static_cast<size_t>((n + block - 1) / block));
  quantize_e4m3_blocks(in.data(), n, block, codes.data(), scales.data());
  ASSERT_EQ(scales.size(), t.at("scale_log2").size());
  for (size_t b = 0; b < scales.size(); ++b)
    EXPECT_EQ(static_cast<int>(scales[b]) - 127, t.at("scale_log2")[b].get<int>()) << name << " block " << b;
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(codes[i], t.at("e4m3_codes")[i].get<int>()) << name << " element " << i;
    EXPECT_EQ(e4m3_to_f32(codes[i]) * e8m0_to_f32(scales[i / static_cast<size_t>(block)]), deq[i]) << i;
  }
  auto sim = in;
  fp8_sim(sim.data(), n, block);
  for (size_t i = 0; i < in.size(); ++i) EXPECT_EQ(sim[i], deq[i]) << name << " element " << i;
}

std::vector<float> random_bf16(std::mt19937& rng, size_t n, float lo_log2, float hi_log2) {
  std::uniform_real_distribution<float> lg(lo_log2, hi_log2);
  std::vector<float> v(n);
  for (auto& x : v) {
    x = bf16_round(std::exp2(lg(rng)) * ((rng() & 1) ? -1.0f : 1.0f));
    if (rng() % 16 == 0) x = 0.0f;
  }
  return v;
}

}  // namespace

TEST(QuantBlocks, ActQuantFp8Block128Vector) { check_fp8_vector("act_quant_fp8_block128", 128); }
TEST(QuantBlocks, KvFp8SimBlock64Vector) { check_fp8_vector("kv_fp8_sim_block64_448dims", 64); }

TEST(QuantBlocks, IndexerHadamardThenFp4Vector) {
  const auto& t = vectors().at("indexer_hadamard_then_fp4_block32");
  auto x = floats(t.at("input_bf16"));
  const auto had = floats(t.at("hadamard_bf16"));
  const auto deq = floats(t.at("dequant_bf16"));
  ASSERT_EQ(x.size(), 128u);
  dsv4::ref::hadamard(x.data(), 128);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(x[i], had[i]) << "hadamard element " << i;
  std::vector<uint8_t> nib(128), scales(4);
  quantize_e2m1_blocks(had.data(), 128, 32, nib.data(), scales.data());
  for (size_t b = 0; b < 4; ++b)
    EXPECT_EQ(static_cast<int>(scales[b]) - 127, t.at("fp4_scale_log2")[b].get<int>()) << "block " << b;
  for (size_t i = 0; i < 128; ++i) {
    EXPECT_EQ(nib[i], t.at("e2m1_codes")[i].get<int>()) << "element " << i;
    EXPECT_EQ(e2m1_to_f32(nib[i]) * e8m0_to_f32(scales[i / 32]), deq[i]) << i;
  }
  auto sim = had;
  fp4_sim(sim.data(), 128, 32);
  for (size_t i = 0; i < 128; ++i) EXPECT_EQ(sim[i], deq[i]) << "element " << i;
}

TEST(QuantBlocks, ScaleIsSmallestPowerOfTwoAndFloors) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 2000; ++trial) {
    auto v = random_bf16(rng, 64, -20.0f, 12.0f);
    uint8_t codes[64], s8, nib[64], s4;
    quantize_e4m3_blocks(v.data(), 64, 64, codes, &s8);
    quantize_e2m1_blocks(v.data(), 64, 64, nib, &s4);
    float amax = 0.0f;
    for (float x : v) amax = std::max(amax, std::fabs(x));
    // FP8: k = ceil_log2(f32(max(amax,1e-4) * f32(1/448))), so 2^(k-1) < t <= 2^k.
    const float t8 = std::max(amax, 1e-4f) * static_cast<float>(1.0 / 448.0);
    const double s = std::ldexp(1.0, s8 - 127);
    EXPECT_LE(t8, s);
    EXPECT_GT(t8, s / 2);
    const float t4 = std::max(amax, 6.0f * std::ldexp(1.0f, -126)) * static_cast<float>(1.0 / 6.0);
    const double s_4 = std::ldexp(1.0, s4 - 127);
    EXPECT_LE(t4, s_4);
    EXPECT_GT(t4, s_4 / 2);
  }
  // All-zero blocks take the floors: FP8 2^ceil_log2(1e-4/448) = 2^-22, FP4 2^-126.
  float z[32] = {};
  uint8_t c[32], s;
  quantize_e4m3_blocks(z, 32, 32, c, &s);
  EXPECT_EQ(s, 127 - 22);
  quantize_e2m1_blocks(z, 32, 32, c, &s);
  EXPECT_EQ(s, 1);
}

TEST(QuantBlocks, SimsAreBf16ExactFixedPointsAndBlockwise) {
  std::mt19937 rng(4);
  for (int trial = 0; trial < 500; ++trial) {
    auto v = random_bf16(rng, 448, -30.0f, 10.0f);
    if (trial % 3 == 0) v[rng() % 448] = -0.0f;
    if (trial % 5 == 0) v[rng() % 448] = bf16_round(448.0f * std::ldexp(1.0f, 3));  // at a boundary
    for (int fmt = 0; fmt < 2; ++fmt) {
      const int block = fmt == 0 ? 64 : 32;
      auto a = v;
      if (fmt == 0) fp8_sim(a.data(), 448, block); else fp4_sim(a.data(), 448, block);
      for (float x : a) ASSERT_EQ(bf16_round(x), x);
      auto b = a;
      if (fmt == 0) fp8_sim(b.data(), 448, block); else fp4_sim(b.data(), 448, block);
      for (size_t i = 0; i < a.size(); ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(a[i]), std::bit_cast<uint32_t>(b[i])) << "sim not idempotent at " << i;
        // Sign is preserved (values that round to 0 become signed zeros).
        ASSERT_EQ(std::signbit(a[i]), std::signbit(v[i])) << i;
      }
      // Block independence: simulating one block alone gives the same values.
      std::vector<float> blk(v.begin() + block, v.begin() + 2 * block);
      if (fmt == 0) fp8_sim(blk.data(), block, block); else fp4_sim(blk.data(), block, block);
      for (int i = 0; i < block; ++i) ASSERT_EQ(blk[i], a[block + i]);
    }
  }
}

TEST(QuantBlocks, AdversarialScaleBoundaries) {
  // amax a hair above 224 * 2^k rounds down to 224 * 2^k, whose own scale is one step smaller; the
  // simulated values must still be a fixed point.
  for (int k = -10; k <= 10; ++k) {
    std::vector<float> v(64, 0.0f);
    v[0] = std::nextafter(224.0f * std::ldexp(1.0f, k), 1e30f);
    v[0] = bf16_round(std::nextafter(bf16_round(v[0]), 1e30f));
    v[1] = 3.0f * std::ldexp(1.0f, k);
    v[2] = -std::ldexp(1.0f, k - 9);
    auto a = v;
    fp8_sim(a.data(), 64, 64);
    auto b = a;
    fp8_sim(b.data(), 64, 64);
    for (int i = 0; i < 64; ++i) ASSERT_EQ(a[i], b[i]) << "k " << k << " i " << i;
    std::vector<float> w(32, 0.0f);
    w[0] = bf16_round(std::nextafter(3.0f * std::ldexp(1.0f, k), 1e30f) * 1.01f);
    w[1] = 0.5f * std::ldexp(1.0f, k);
    auto c = w;
    fp4_sim(c.data(), 32, 32);
    auto d = c;
    fp4_sim(d.data(), 32, 32);
    for (int i = 0; i < 32; ++i) ASSERT_EQ(c[i], d[i]) << "k " << k << " i " << i;
  }
}

TEST(QuantBlocks, PartialLastBlockAndNonFinite) {
  // A short last block is quantised on its own: 70 values with block 64 -> 2 scales.
  std::vector<float> v(70, 1.0f);
  v[69] = 100.0f;
  std::vector<uint8_t> codes(70), scales(2);
  quantize_e4m3_blocks(v.data(), 70, 64, codes.data(), scales.data());
  EXPECT_EQ(scales[0], 127 - 8);  // amax 1: 1/448 -> 2^-8
  EXPECT_EQ(scales[1], 127 - 2);  // amax 100: 100/448 -> 2^-2
  std::vector<float> bad(64, 1.0f);
  bad[5] = std::numeric_limits<float>::quiet_NaN();
  uint8_t c[64], s;
  quantize_e4m3_blocks(bad.data(), 64, 64, c, &s);
  EXPECT_EQ(s, 255);
  EXPECT_TRUE(std::isnan(e8m0_to_f32(s)));
  bad[5] = std::numeric_limits<float>::infinity();
  quantize_e2m1_blocks(bad.data(), 64, 64, c, &s);
  EXPECT_EQ(s, 255);
}
