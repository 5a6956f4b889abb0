#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace dsv4 {

void validate(const SamplingParams& p) {
  auto bad = [](const char* field, double v, const char* want) {
    throw_error("sampling: ", field, " = ", v, " is out of range (expected ", want, ")");
  };
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f) bad("temperature", p.temperature, ">= 0");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) bad("top_p", p.top_p, "in (0, 1]");
  if (p.top_k < 0) bad("top_k", p.top_k, ">= 0");
  if (!(p.min_p >= 0.0f && p.min_p < 1.0f)) bad("min_p", p.min_p, "in [0, 1)");
  if (!(p.repetition_penalty > 0.0f) || !std::isfinite(p.repetition_penalty))
    bad("repetition_penalty", p.repetition_penalty, "> 0");
  if (!(p.presence_penalty >= -2.0f && p.presence_penalty <= 2.0f))
    bad("presence_penalty", p.presence_penalty, "in [-2, 2]");
  if (!(p.frequency_penalty >= -2.0f && p.frequency_penalty <= 2.0f))
    bad("frequency_penalty", p.frequency_penalty, "in [-2, 2]");
  if (p.penalty_last_n < -1) bad("penalty_last_n", p.penalty_last_n, ">= -1");
}

SamplingParams sampling_defaults(const std::string& model_dir) {
  SamplingParams p;
  const std::filesystem::path file = std::filesystem::path(model_dir) / "generation_config.json";
  std::ifstream in(file);
  if (!in) return p;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw_error(file.string(), ": invalid JSON: ", e.what());
  }
  auto num = [&](const char* key, auto& dst) {
    if (!j.contains(key) || j[key].is_null()) return;
    if (!j[key].is_number()) throw_error(file.string(), ": field ", key, " must be a number");
    dst = j[key].get<std::remove_reference_t<decltype(dst)>>();
  };
  num("temperature", p.temperature);
  num("top_p", p.top_p);
  num("top_k", p.top_k);
  num("repetition_penalty", p.repetition_penalty);
  if (j.contains("do_sample") && j["do_sample"].is_boolean() && !j["do_sample"].get<bool>())
    p.temperature = 0.0f;
  try {
    validate(p);
  } catch (const Error& e) {
    throw_error(file.string(), ": ", e.what());
  }
  return p;
}

// ---- RNG ------------------------------------------------------------------------------------

static uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

Rng::Rng(uint64_t seed) {
  for (auto& w : s_) w = splitmix64(seed);
}

uint64_t Rng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

// ---- sampler --------------------------------------------------------------------------------

static uint64_t pick_seed(const SamplingParams& p) {
  if (p.seed) return *p.seed;
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

Sampler::Sampler(const SamplingParams& params)
    : params_(params), seed_(pick_seed(params)), rng_(seed_) {
  validate(params_);
}

void Sampler::apply_penalties(std::span<float> logits, std::span<const int32_t> window,
                              const SamplingParams& p) {
  const bool rep = p.repetition_penalty != 1.0f;
  if (window.empty() || (!rep && p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f)) return;
  std::vector<int32_t> ids(window.begin(), window.end());
  std::sort(ids.begin(), ids.end());
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j < ids.size() && ids[j] == ids[i]) ++j;
    const int32_t id = ids[i];
    const auto count = static_cast<float>(j - i);
    i = j;
    if (id < 0 || static_cast<size_t>(id) >= logits.size()) continue;  // not a vocab row
    float& l = logits[static_cast<size_t>(id)];
    if (rep) l = l > 0.0f ? l / p.repetition_penalty : l * p.repetition_penalty;
    l -= p.presence_penalty + p.frequency_penalty * count;
  }
}

int32_t Sampler::argmax(std::span<const float> logits) {
  if (logits.empty()) throw_error("sampler: empty logits");
  size_t best = 0;
  while (best + 1 < logits.size() && std::isnan(logits[best])) ++best;
  for (size_t i = best + 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;  // NaN never wins; ties keep the lowest id
  return static_cast<int32_t>(best);
}

static bool before(const Sampler::Candidate& a, const Sampler::Candidate& b) {
  return a.p > b.p || (a.p == b.p && a.id < b.id);
}

void Sampler::candidates(std::span<const float> logits, const SamplingParams& p,
                         std::vector<Candidate>& out) {
  if (logits.empty()) throw_error("sampler: empty logits");
  const float inv_t = 1.0f / std::max(p.temperature, 1e-5f);
  out.clear();
  for (size_t i = 0; i < logits.size(); ++i) {
    const float l = logits[i] * inv_t;
    if (std::isnan(l) || l == -std::numeric_limits<float>::infinity()) continue;
    out.push_back({static_cast<int32_t>(i), l});  // p holds the scaled logit until the softmax
  }
  if (out.empty()) throw_error("sampler: every logit is NaN or -inf");
  bool sorted = false;
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < out.size()) {
    std::nth_element(out.begin(), out.begin() + p.top_k, out.end(), before);
    out.resize(static_cast<size_t>(p.top_k));
    std::sort(out.begin(), out.end(), before);
    sorted = true;
  }
  float max_l = -std::numeric_limits<float>::infinity();
  for (const auto& c : out) max_l = std::max(max_l, c.p);
  double sum = 0.0;
  for (auto& c : out) {
    c.p = std::exp(c.p - max_l);
    sum += c.p;
  }
  const auto inv_sum = static_cast<float>(1.0 / sum);
  float p_max = 0.0f;
  for (auto& c : out) {
    c.p *= inv_sum;
    p_max = std::max(p_max, c.p);
  }
  if (p.top_p < 1.0f) {
    if (!sorted) std::sort(out.begin(), out.end(), before);
    double cum = 0.0;
    size_t keep = out.size();
    for (size_t i = 0; i < out.size(); ++i) {
      cum += out[i].p;
      if (cum >= p.top_p) {
        keep = i + 1;
        break;
      }
    }
    out.resize(keep);
  }
  if (p.min_p > 0.0f) {
    const float threshold = p.min_p * p_max;
    std::erase_if(out, [&](const Candidate& c) { return c.p < threshold; });
  }
  double kept = 0.0;
  for (const auto& c : out) kept += c.p;
  const auto renorm = static_cast<float>(1.0 / kept);
  for (auto& c : out) c.p *= renorm;
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history) {
  std::span<const int32_t> window = history;
  if (params_.penalty_last_n >= 0 && window.size() > static_cast<size_t>(params_.penalty_last_n))
    window = window.subspan(window.size() - static_cast<size_t>(params_.penalty_last_n));
  apply_penalties(logits, window, params_);
  if (params_.temperature <= 0.0f) return argmax(logits);
  candidates(logits, params_, cand_);
  const double u = rng_.uniform();
  double cum = 0.0;
  for (const auto& c : cand_) {
    cum += c.p;
    if (u < cum) return c.id;
  }
  return cand_.back().id;  // rounding left u just above the last cumulative sum
}

}  // namespace dsv4
