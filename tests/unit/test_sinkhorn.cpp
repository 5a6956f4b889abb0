#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "kernels/ref/sinkhorn.h"

using dsv4::ref::hc_split_sinkhorn;

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
}  // namespace

TEST(Sinkhorn, MatchesNumericsVector) {
  const auto& t = vectors().at("hc_split_sinkhorn");
  const auto mixes = floats(t.at("mixes")), scale = floats(t.at("hc_scale")), base = floats(t.at("hc_base"));
  const int hc = 4;
  ASSERT_EQ(mixes.size(), static_cast<size_t>((2 + hc) * hc));
  float pre[4], post[4], comb[16];
  hc_split_sinkhorn(mixes.data(), scale.data(), base.data(), hc, 20, 1e-6f, pre, post, comb);
  for (int j = 0; j < hc; ++j) {
    EXPECT_NEAR(pre[j], t.at("pre")[j].get<double>(), 1e-6) << j;
    EXPECT_NEAR(post[j], t.at("post")[j].get<double>(), 2e-6) << j;
    double rs = 0, cs = 0;
    for (int k = 0; k < hc; ++k) {
      EXPECT_NEAR(comb[j * hc + k], t.at("comb")[j][k].get<double>(), 1e-5) << j << "," << k;
      rs += comb[j * hc + k];
      cs += comb[k * hc + j];
    }
    EXPECT_NEAR(rs, t.at("comb_row_sums")[j].get<double>(), 1e-5);
    EXPECT_NEAR(cs, t.at("comb_col_sums")[j].get<double>(), 1e-5);
  }
}

TEST(Sinkhorn, OpByOpFirstStepsAndDoublyStochastic) {
  std::mt19937 rng(2);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  // Sinkhorn converges slowly on strongly skewed matrices, so wide logits get more iterations.
  for (auto [hc, spread, iters, row_tol] : {std::tuple{2, 0.5f, 20, 1e-3}, std::tuple{4, 0.5f, 20, 1e-3},
                                            std::tuple{4, 2.0f, 400, 1e-4}}) {
    const int nm = (2 + hc) * hc;
    for (int trial = 0; trial < 50; ++trial) {
      std::vector<float> mixes(nm), base(nm), pre(hc), post(hc), comb(hc * hc);
      for (auto& v : mixes) v = nd(rng) * spread;
      for (auto& v : base) v = nd(rng) * 0.1f;
      const float scale[3] = {0.7f, 1.3f, 0.9f};
      const float eps = 1e-6f;
      hc_split_sinkhorn(mixes.data(), scale, base.data(), hc, iters, eps, pre.data(), post.data(), comb.data());
      for (int j = 0; j < hc; ++j) {
        const float z = static_cast<float>(double(mixes[j]) * scale[0] + base[j]);
        const float sig = 1.0f / (1.0f + static_cast<float>(std::exp(-double(z))));
        EXPECT_EQ(pre[j], sig + eps);
        EXPECT_GT(post[j], 0.0f);
        EXPECT_LT(post[j], 2.0f);
      }
      for (int j = 0; j < hc; ++j) {
        double rs = 0, cs = 0;
        for (int k = 0; k < hc; ++k) {
          EXPECT_GT(comb[j * hc + k], 0.0f);
          rs += comb[j * hc + k];
          cs += comb[k * hc + j];
        }
        EXPECT_NEAR(cs, 1.0, 1e-5);  // columns normalised last
        EXPECT_NEAR(rs, 1.0, row_tol);
      }
    }
  }
  // One iteration = row softmax + eps then one column normalisation, by hand.
  const float mixes[8] = {0, 0, 0, 0, 1.0f, 0.0f, 0.0f, 2.0f};  // hc = 2
  const float base[8] = {};
  const float scale[3] = {1, 1, 1};
  float pre[2], post[2], comb[4];
  hc_split_sinkhorn(mixes, scale, base, 2, 1, 0.0f, pre, post, comb);
  EXPECT_EQ(pre[0], 0.5f);
  EXPECT_EQ(post[1], 1.0f);
  const float e1 = static_cast<float>(std::exp(-1.0)), e2 = static_cast<float>(std::exp(-2.0));
  const float r0 = static_cast<float>(1.0 + double(e1)), r1 = static_cast<float>(double(e2) + 1.0);
  float C[4] = {1.0f / r0, e1 / r0, e2 / r1, 1.0f / r1};
  const float c0 = static_cast<float>(double(C[0]) + C[2]), c1 = static_cast<float>(double(C[1]) + C[3]);
  EXPECT_EQ(comb[0], C[0] / c0);
  EXPECT_EQ(comb[1], C[1] / c1);
  EXPECT_EQ(comb[2], C[2] / c0);
  EXPECT_EQ(comb[3], C[3] / c1);
}

TEST(Sinkhorn, RejectsBadArguments) {
  float m[24] = {}, s[3] = {}, b[24] = {}, pre[4], post[4], comb[16];
  EXPECT_THROW(hc_split_sinkhorn(m, s, b, 4, 0, 1e-6f, pre, post, comb), dsv4::Error);
  EXPECT_THROW(hc_split_sinkhorn(m, s, b, 0, 20, 1e-6f, pre, post, comb), dsv4::Error);
}
