// Sampler: exact masks (top-k, top-p, min-p), exact penalties, greedy, and distribution checks
// with fixed seeds.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include "core/error.h"
#include "runtime/sampler.h"

using dsv4::Sampler;
using dsv4::SamplingParams;

namespace {

std::vector<int32_t> ids_of(const std::vector<Sampler::Candidate>& c) {
  std::vector<int32_t> r;
  for (const auto& x : c) r.push_back(x.id);
  return r;
}

// log of a distribution, so softmax(logits) == probs exactly up to rounding.
std::vector<float> log_probs(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

}  // namespace

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTies) {
  SamplingParams p;
  p.temperature = 0.0f;
  Sampler s(p);
  std::vector<float> l = {0.5f, 3.0f, -1.0f, 3.0f, 2.0f};
  EXPECT_EQ(s.sample(l, {}), 1);
  std::vector<float> nan_first = {NAN, 1.0f, 2.0f};
  EXPECT_EQ(Sampler::argmax(nan_first), 2);
}

TEST(Sampler, TopKKeepsExactlyKLargest) {
  SamplingParams p;
  p.top_k = 3;
  std::vector<float> l = {1.0f, 5.0f, 2.0f, 4.0f, 3.0f, 0.0f};
  std::vector<Sampler::Candidate> c;
  Sampler::candidates(l, p, c);
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{1, 3, 4}));
  // renormalised softmax over {5, 4, 3}
  const double z = std::exp(5.0) + std::exp(4.0) + std::exp(3.0);
  EXPECT_NEAR(c[0].p, std::exp(5.0) / z, 1e-6);
  EXPECT_NEAR(c[2].p, std::exp(3.0) / z, 1e-6);
}

TEST(Sampler, TopPKeepsSmallestPrefixReachingMass) {
  SamplingParams p;
  p.top_p = 0.75f;
  std::vector<float> l = log_probs({0.1, 0.4, 0.3, 0.2});
  std::vector<Sampler::Candidate> c;
  Sampler::candidates(l, p, c);
  // sorted: 0.4 (1), 0.3 (2) -> 0.7 < 0.75, + 0.2 (3) -> 0.9 >= 0.75
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_NEAR(c[0].p, 0.4 / 0.9, 1e-6);
  p.top_p = 0.65f;
  Sampler::candidates(l, p, c);
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{1, 2}));
  p.top_p = 0.01f;  // always at least the top token
  Sampler::candidates(l, p, c);
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{1}));
  EXPECT_FLOAT_EQ(c[0].p, 1.0f);
}

TEST(Sampler, MinPDropsBelowFractionOfMax) {
  SamplingParams p;
  p.min_p = 0.5f;
  std::vector<float> l = log_probs({0.1, 0.4, 0.3, 0.2});
  std::vector<Sampler::Candidate> c;
  Sampler::candidates(l, p, c);
  // threshold 0.2: keeps 0.4, 0.3, 0.2 (id order: no sort without top-k/top-p)
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{1, 2, 3}));
  p.min_p = 0.6f;  // threshold 0.24
  Sampler::candidates(l, p, c);
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{1, 2}));
  EXPECT_NEAR(c[0].p + c[1].p, 1.0, 1e-6);
}

TEST(Sampler, TemperatureScalesLogits) {
  SamplingParams p;
  p.temperature = 2.0f;
  std::vector<float> l = {2.0f, 0.0f};
  std::vector<Sampler::Candidate> c;
  Sampler::candidates(l, p, c);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_NEAR(c[0].p, 1.0 / (1.0 + std::exp(-1.0)), 1e-6);
}

TEST(Sampler, NegInfLogitsAreNeverCandidates) {
  SamplingParams p;
  std::vector<float> l = {-INFINITY, 0.0f, -INFINITY, 1.0f};
  std::vector<Sampler::Candidate> c;
  Sampler::candidates(l, p, c);
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{1, 3}));
  std::vector<float> none = {-INFINITY, NAN};
  EXPECT_THROW(Sampler::candidates(none, p, c), dsv4::Error);
}

TEST(Sampler, PenaltiesExact) {
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  std::vector<float> l = {4.0f, -4.0f, 1.0f, 3.0f};
  const std::vector<int32_t> window = {0, 1, 1, 0, 0, 99};  // 99 is outside the vocab: ignored
  Sampler::apply_penalties(l, window, p);
  EXPECT_FLOAT_EQ(l[0], 4.0f / 2.0f - 0.5f - 0.25f * 3);
  EXPECT_FLOAT_EQ(l[1], -4.0f * 2.0f - 0.5f - 0.25f * 2);
  EXPECT_FLOAT_EQ(l[2], 1.0f);
  EXPECT_FLOAT_EQ(l[3], 3.0f);
}

TEST(Sampler, PenaltyWindowIsLastN) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.repetition_penalty = 10.0f;
  p.penalty_last_n = 1;
  Sampler s(p);
  std::vector<float> l = {5.0f, 4.0f, 1.0f};
  // only the last history token (1) is penalised: 0 stays the argmax
  EXPECT_EQ(s.sample(l, std::vector<int32_t>{0, 1}), 0);
  std::vector<float> l2 = {5.0f, 4.0f, 1.0f};
  EXPECT_EQ(s.sample(l2, std::vector<int32_t>{1, 0}), 1);  // 0 -> 0.5, 1 stays 4
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedDiffers) {
  SamplingParams p;
  p.seed = 1234;
  std::vector<float> base(1000);
  for (size_t i = 0; i < base.size(); ++i) base[i] = static_cast<float>(std::sin(i * 0.37));
  auto run = [&](SamplingParams q) {
    Sampler s(q);
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) {
      auto l = base;
      out.push_back(s.sample(l, {}));
    }
    return out;
  };
  EXPECT_EQ(run(p), run(p));
  SamplingParams q = p;
  q.seed = 1235;
  EXPECT_NE(run(p), run(q));
}

TEST(Sampler, DistributionMatchesSoftmax) {
  // 4 tokens with probabilities 0.1 0.2 0.3 0.4; 40k draws; each frequency within 4 sigma.
  const std::vector<double> probs = {0.1, 0.2, 0.3, 0.4};
  SamplingParams p;
  p.seed = 42;
  Sampler s(p);
  std::vector<int> counts(4, 0);
  const int n = 40000;
  for (int i = 0; i < n; ++i) {
    auto l = log_probs(probs);
    counts[static_cast<size_t>(s.sample(l, {}))]++;
  }
  for (size_t i = 0; i < probs.size(); ++i) {
    const double sigma = std::sqrt(n * probs[i] * (1 - probs[i]));
    EXPECT_NEAR(counts[i], n * probs[i], 4 * sigma) << "token " << i;
  }
}

TEST(Sampler, TopPDistributionOnlySurvivors) {
  SamplingParams p;
  p.seed = 7;
  p.top_p = 0.65f;  // keeps {1: 0.4, 2: 0.3} -> 4/7, 3/7
  Sampler s(p);
  std::map<int32_t, int> counts;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    auto l = log_probs({0.1, 0.4, 0.3, 0.2});
    counts[s.sample(l, {})]++;
  }
  EXPECT_EQ(counts.size(), 2u);
  const double pr = 4.0 / 7.0, sigma = std::sqrt(n * pr * (1 - pr));
  EXPECT_NEAR(counts[1], n * pr, 4 * sigma);
}

TEST(Rng, UniformInUnitIntervalAndMeanHalf) {
  dsv4::Rng r(99);
  double sum = 0;
  for (int i = 0; i < 100000; ++i) {
    const double u = r.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 100000, 0.5, 0.005);
  dsv4::Rng a(5), b(5);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.next(), b.next());
}

TEST(Sampler, ValidateRejectsOutOfRange) {
  SamplingParams p;
  p.top_p = 0.0f;
  EXPECT_THROW(dsv4::validate(p), dsv4::Error);
  p = {};
  p.temperature = -1.0f;
  EXPECT_THROW(dsv4::validate(p), dsv4::Error);
  p = {};
  p.min_p = 1.0f;
  EXPECT_THROW(dsv4::validate(p), dsv4::Error);
  p = {};
  p.presence_penalty = 3.0f;
  try {
    dsv4::validate(p);
    FAIL();
  } catch (const dsv4::Error& e) {
    EXPECT_NE(std::string(e.what()).find("presence_penalty"), std::string::npos);
  }
}

TEST(Sampler, DefaultsFromGenerationConfig) {
  const auto dir = std::filesystem::temp_directory_path() / "dsv4_test_genconfig";
  std::filesystem::create_directories(dir);
  EXPECT_FLOAT_EQ(dsv4::sampling_defaults(dir.string()).temperature, 1.0f);  // no file: spec
  {
    std::ofstream(dir / "generation_config.json")
        << R"({"do_sample": true, "temperature": 0.6, "top_p": 0.95, "bos_token_id": 0})";
  }
  auto p = dsv4::sampling_defaults(dir.string());
  EXPECT_FLOAT_EQ(p.temperature, 0.6f);
  EXPECT_FLOAT_EQ(p.top_p, 0.95f);
  { std::ofstream(dir / "generation_config.json") << R"({"do_sample": false})"; }
  EXPECT_FLOAT_EQ(dsv4::sampling_defaults(dir.string()).temperature, 0.0f);
  { std::ofstream(dir / "generation_config.json") << R"({"top_p": 7})"; }
  EXPECT_THROW(dsv4::sampling_defaults(dir.string()), dsv4::Error);
  { std::ofstream(dir / "generation_config.json") << "{oops"; }
  EXPECT_THROW(dsv4::sampling_defaults(dir.string()), dsv4::Error);
  std::filesystem::remove_all(dir);
}
