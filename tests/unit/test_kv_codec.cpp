#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/error.h"
#include "quant/quant.h"
#include "runtime/kv_codec.h"

using namespace dsv4;

namespace {

// Random BF16 rows with a mix of magnitudes, zeros, negative zeros, near-floor tiny values and huge
// ones, so that blocks hit the amax floor, subnormal E4M3 codes and the 448 saturation point.
std::vector<float> random_rows(std::mt19937& rng, int64_t n, int dim) {
  std::uniform_real_distribution<float> lg(-40.0f, 20.0f);
  std::vector<float> v(static_cast<size_t>(n * dim));
  for (size_t i = 0; i < v.size(); ++i) {
    const unsigned kind = rng() % 16;
    float x = std::exp2(lg(rng));
    if (kind == 0) x = 0.0f;
    if (kind == 1) x = -0.0f;
    if (kind == 2) x = std::ldexp(1.0f, -30);
    if (kind == 3) x = 448.0f * std::ldexp(1.0f, static_cast<int>(rng() % 20));
    if (kind == 4) x = 6.0f * std::ldexp(1.0f, -126);
    if ((rng() & 1) && x != 0.0f) x = -x;
    v[i] = quant::bf16_round(x);
  }
  // Some whole rows tiny (every block takes the floor) or all zero.
  if (n > 2) {
    for (int d = 0; d < dim; ++d) v[static_cast<size_t>(dim + d)] = quant::bf16_round(std::ldexp(1.0f, -60) * (d % 3));
    for (int d = 0; d < dim; ++d) v[static_cast<size_t>(2 * dim + d)] = (d % 2) ? -0.0f : 0.0f;
  }
  return v;
}

void expect_bits_equal(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_EQ(std::bit_cast<uint32_t>(a[i]), std::bit_cast<uint32_t>(b[i])) << "element " << i << ": " << a[i] << " vs " << b[i];
}

ModelConfig cfg_of(int head_dim, int rope, int index_dim) {
  ModelConfig c;
  c.head_dim = head_dim;
  c.rope_head_dim = rope;
  c.index_head_dim = index_dim;
  return c;
}

}  // namespace

TEST(KvCodec, EntrySizesFromConfig) {
  EXPECT_EQ(kv_entry_bytes(cfg_of(512, 64, 128)), 583u);  // V4-Flash: 448 + 7 + 128
  EXPECT_EQ(index_key_bytes(cfg_of(512, 64, 128)), 68u);  // 64 + 4
  EXPECT_EQ(kv_entry_bytes(cfg_of(128, 64, 128)), 64u + 1u + 128u);  // tiny presets
  EXPECT_EQ(kv_entry_bytes(cfg_of(192, 64, 64)), 128u + 2u + 128u);
  EXPECT_EQ(index_key_bytes(cfg_of(192, 64, 64)), 32u + 2u);
  const KvEntryCodec c(512, 64);
  EXPECT_EQ(c.code_bytes(), 448u);
  EXPECT_EQ(c.scale_bytes(), 7u);
  EXPECT_EQ(c.rope_bytes(), 128u);
  EXPECT_THROW(KvEntryCodec(64, 128), Error);
  EXPECT_THROW(IndexKeyCodec(0), Error);
}

TEST(KvCodec, KvEntryRoundTripIsBitExact) {
  std::mt19937 rng(31);
  for (auto [hd, rope] : {std::pair{512, 64}, std::pair{128, 64}, std::pair{160, 64}}) {
    const KvEntryCodec codec(hd, rope);
    const int64_t n = 40;
    auto v = random_rows(rng, n, hd);
    for (int64_t r = 0; r < n; ++r) quant::fp8_sim(v.data() + r * hd, hd - rope, 64);  // RoPE part stays bf16
    std::vector<uint8_t> buf(static_cast<size_t>(n) * codec.entry_bytes());
    codec.encode(v.data(), n, buf.data());
    std::vector<float> back(v.size());
    codec.decode(buf.data(), n, back.data());
    expect_bits_equal(v, back);
    // Aligned stride gives the same values; padding bytes are left alone.
    const size_t stride = (codec.entry_bytes() + 63) / 64 * 64;
    std::vector<uint8_t> abuf(static_cast<size_t>(n) * stride, 0xCD);
    codec.encode(v.data(), n, abuf.data(), stride);
    std::vector<float> back2(v.size());
    codec.decode(abuf.data(), n, back2.data(), stride);
    expect_bits_equal(v, back2);
    EXPECT_EQ(abuf[stride - 1], 0xCD);
  }
}

TEST(KvCodec, KvEntryLayoutIsDocumented) {
  const KvEntryCodec codec(128, 64);
  std::vector<float> v(128, 0.0f);
  v[0] = 1.0f;      // E4M3 0x38 times scale
  v[1] = -448.0f;   // amax 448 -> scale 2^0
  v[64] = 1.5f;     // bf16 0x3FC0
  v[127] = -2.0f;   // bf16 0xC000
  std::vector<uint8_t> e(codec.entry_bytes());
  codec.encode(v.data(), 1, e.data());
  EXPECT_EQ(e[0], 0x38);
  EXPECT_EQ(e[1], 0xFE);
  EXPECT_EQ(e[64], 127);  // E8M0 of 2^0
  EXPECT_EQ(e[65], 0xC0);  // little-endian bf16
  EXPECT_EQ(e[66], 0x3F);
  EXPECT_EQ(e[65 + 126], 0x00);
  EXPECT_EQ(e[65 + 127], 0xC0);
}

TEST(KvCodec, IndexKeyRoundTripIsBitExact) {
  std::mt19937 rng(32);
  for (int dim : {128, 64, 96}) {
    const IndexKeyCodec codec(dim);
    const int64_t n = 50;
    auto v = random_rows(rng, n, dim);
    for (int64_t r = 0; r < n; ++r) quant::fp4_sim(v.data() + r * dim, dim, 32);
    std::vector<uint8_t> buf(static_cast<size_t>(n) * codec.entry_bytes());
    codec.encode(v.data(), n, buf.data());
    std::vector<float> back(v.size());
    codec.decode(buf.data(), n, back.data());
    expect_bits_equal(v, back);
  }
}

TEST(KvCodec, IndexKeyPackingLowNibbleEven) {
  const IndexKeyCodec codec(32);
  std::vector<float> v(32, 0.0f);
  v[0] = 6.0f;   // amax 6 -> scale 2^0, code 0x7
  v[1] = -0.5f;  // code 0x9
  std::vector<uint8_t> e(codec.entry_bytes());
  codec.encode(v.data(), 1, e.data());
  EXPECT_EQ(e[0], 0x97);
  EXPECT_EQ(e[16], 127);
}

TEST(KvCodec, RejectsValuesThatAreNotSimFixedPoints) {
  const KvEntryCodec codec(128, 64);
  std::vector<float> v(128, 0.0f);
  v[3] = 1.0f;
  v[4] = quant::bf16_round(1.0f + 1.0f / 64);  // needs more than E4M3's 3 mantissa bits at this scale
  std::vector<uint8_t> e(codec.entry_bytes());
  EXPECT_THROW(codec.encode(v.data(), 1, e.data()), Error);
  try {
    codec.encode(v.data(), 1, e.data());
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("dim 4"), std::string::npos) << err.what();
  }
  std::vector<float> w(128, 0.0f);
  w[100] = 1.0f + std::ldexp(1.0f, -20);  // not a bf16 value in a RoPE dim
  EXPECT_THROW(codec.encode(w.data(), 1, e.data()), Error);
  const IndexKeyCodec ik(32);
  std::vector<float> k(32, 0.0f);
  k[0] = 6.0f;
  k[1] = 2.5f;  // not on the E2M1 grid at scale 1
  std::vector<uint8_t> ke(ik.entry_bytes());
  EXPECT_THROW(ik.encode(k.data(), 1, ke.data()), Error);
}
