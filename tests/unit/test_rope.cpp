#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "kernels/ref/rope.h"
#include "quant/quant.h"

using namespace dsv4;

namespace {

const nlohmann::json& vectors() {
  static const nlohmann::json j = [] {
    std::ifstream in(std::string(DSV4_TEST_DATA) + "/spec/numerics/numerics_vectors.json");
    if (!in) throw std::runtime_error("cannot open numerics_vectors.json");
    return nlohmann::json::parse(in);
  }();
  return j;
}

ModelConfig flash_like() {
  ModelConfig c;
  c.head_dim = 512;
  c.rope_head_dim = 64;
  c.rope_theta = 10000.0;
  c.compress_rope_theta = 160000.0;
  c.rope_factor = 16.0;
  c.original_seq_len = 65536;
  c.beta_fast = 32.0;
  c.beta_slow = 1.0;
  return c;
}

void check_table(const char* name, const ref::RopeFreqs& f) {
  const auto& t = vectors().at(name);
  ASSERT_EQ(f.inv_freq.size(), t.at("inv_freq_f32").size());
  for (size_t i = 0; i < f.inv_freq.size(); ++i)
    EXPECT_EQ(f.inv_freq[i], static_cast<float>(t.at("inv_freq_f32")[i].get<double>())) << name << " i " << i;
  for (const auto& [pos, angles] : t.at("angle_examples_rad").items()) {
    const int64_t p = std::stoll(pos);
    for (size_t i = 0; i < angles.size(); ++i)
      EXPECT_EQ(static_cast<float>(p) * f.inv_freq[i], static_cast<float>(angles[i].get<double>()))
          << name << " p " << p << " i " << i;
  }
}

}  // namespace

TEST(Rope, PlainTableMatchesTestdata) {
  check_table("rope_window_only_layers_theta10000_plain", ref::rope_freqs(flash_like(), 0));
}

TEST(Rope, YarnTableMatchesOpByOpTestdata) {
  check_table("rope_compressed_layers_theta160000_yarn", ref::rope_freqs(flash_like(), 4));
  // Same table for every compressed ratio.
  EXPECT_EQ(ref::rope_freqs(flash_like(), 4).inv_freq, ref::rope_freqs(flash_like(), 128).inv_freq);
}

TEST(Rope, YarnRampShape) {
  // low = 15, high = 25 for the Flash numbers: up to low (fast rotations) the frequency is
  // unchanged, from high on it is divided by the factor, in between interpolated.
  auto cfg = flash_like();
  const auto y = ref::rope_freqs(cfg, 4).inv_freq;
  cfg.original_seq_len = 0;  // YaRN off
  const auto p = ref::rope_freqs(cfg, 4).inv_freq;
  for (int i = 0; i < 32; ++i) {
    if (i <= 15) {
      EXPECT_EQ(y[i], p[i]) << i;
    }
    if (i >= 25) {
      EXPECT_EQ(y[i], p[i] / 16.0f) << i;
    }
    if (i > 15 && i < 25) {
      EXPECT_LT(y[i], p[i]);
      EXPECT_GT(y[i], p[i] / 16.0f);
    }
  }
}

TEST(Rope, RopeDimsFromConfig) {
  auto cfg = flash_like();
  cfg.rope_head_dim = 32;
  const auto f = ref::rope_freqs(cfg, 0);
  ASSERT_EQ(f.inv_freq.size(), 16u);
  EXPECT_EQ(f.inv_freq[0], 1.0f);
  EXPECT_EQ(f.inv_freq[8], static_cast<float>(1.0f / static_cast<float>(std::pow(10000.0, 0.5))));
  cfg.rope_head_dim = 7;
  EXPECT_THROW(ref::rope_freqs(cfg, 0), Error);
}

TEST(Rope, CosSinCorrectlyRoundedAndApply) {
  const auto f = ref::rope_freqs(flash_like(), 4);
  std::vector<float> c(32), s(32);
  for (int64_t p : {0LL, 1LL, 1000LL, 65535LL, 1000003LL}) {
    ref::rope_cos_sin(f, p, c.data(), s.data());
    for (int i = 0; i < 32; ++i) {
      const float a = static_cast<float>(p) * f.inv_freq[static_cast<size_t>(i)];
      EXPECT_EQ(c[static_cast<size_t>(i)], static_cast<float>(std::cos(double(a))));
      EXPECT_EQ(s[static_cast<size_t>(i)], static_cast<float>(std::sin(double(a))));
      EXPECT_NEAR(double(c[i]) * c[i] + double(s[i]) * s[i], 1.0, 1e-6);
    }
  }
  // Apply: formula check and the inverse undoing the rotation up to bf16 rounding.
  ref::rope_cos_sin(f, 777, c.data(), s.data());
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::vector<float> x(64);
  for (auto& v : x) v = quant::bf16_round(nd(rng));
  auto y = x;
  ref::rope_apply(y.data(), c.data(), s.data(), 32, false);
  for (int i = 0; i < 32; ++i) {
    const double a = x[2 * i], b = x[2 * i + 1];
    EXPECT_EQ(y[2 * i], quant::bf16_round(static_cast<float>(a * c[i] - b * s[i])));
    EXPECT_EQ(y[2 * i + 1], quant::bf16_round(static_cast<float>(b * c[i] + a * s[i])));
  }
  auto z = y;
  ref::rope_apply(z.data(), c.data(), s.data(), 32, true);
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(z[i], x[i], 0.02 * (std::fabs(x[i]) + 0.05)) << i;
  // Position 0 is the identity.
  ref::rope_cos_sin(f, 0, c.data(), s.data());
  auto w = x;
  ref::rope_apply(w.data(), c.data(), s.data(), 32, false);
  EXPECT_EQ(w, x);
}
