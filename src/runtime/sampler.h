// Token sampling: logits (one row of vocab floats) -> one token id. Spec section 10.
//
// Order of operations (fixed, documented because users compare against other engines):
//   1. penalties on the recent-token window: repetition (divide positive / multiply negative
//      logits by `repetition_penalty`), then presence (- presence_penalty once per distinct
//      token) and frequency (- frequency_penalty * count), OpenAI style;
//   2. temperature <= 0: greedy argmax (ties -> lowest id), nothing else applies;
//   3. logits / temperature, top-k, softmax, top-p (smallest prefix of the sorted distribution
//      whose mass reaches top_p), min-p (drop p < min_p * p_max), renormalise;
//   4. one uniform draw from the per-request RNG, inverse CDF over the survivors in a fixed order
//      (probability descending, id ascending when top-k/top-p sorted them; id order otherwise)
//      -> an exact categorical sample.
// Everything is deterministic given (logits, history, seed): no threads, no global state.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace dsv4 {

struct SamplingParams {
  float temperature = 1.0f;        // <= 0: greedy
  float top_p = 1.0f;              // (0, 1]; 1 = off
  int top_k = 0;                   // 0 = off
  float min_p = 0.0f;              // [0, 1); 0 = off
  float repetition_penalty = 1.0f; // > 0; 1 = off (llama.cpp --repeat-penalty)
  float presence_penalty = 0.0f;   // OpenAI presence_penalty, [-2, 2]
  float frequency_penalty = 0.0f;  // OpenAI frequency_penalty, [-2, 2]
  int penalty_last_n = 64;         // window of recent tokens the penalties look at; -1 = all
  std::optional<uint64_t> seed;    // unset: drawn from std::random_device
};

// Throws dsv4::Error naming the field when a value is out of range.
void validate(const SamplingParams& p);

// Defaults from the model directory's generation_config.json when present (temperature, top_p,
// top_k; do_sample=false means greedy); otherwise the spec defaults (T = 1, top_p = 1).
SamplingParams sampling_defaults(const std::string& model_dir);

// xoshiro256** seeded through splitmix64: small, fast, and identical on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next();
  double uniform();  // [0, 1), 53 random bits
 private:
  uint64_t s_[4];
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  const SamplingParams& params() const { return params_; }
  uint64_t seed() const { return seed_; }

  // Samples one token. `logits` is modified in place (penalties, temperature); `history` is the
  // token timeline so far (prompt + generated), of which the last penalty_last_n count.
  int32_t sample(std::span<float> logits, std::span<const int32_t> history);

  // Building blocks, public so they can be tested exactly.
  static void apply_penalties(std::span<float> logits, std::span<const int32_t> window,
                              const SamplingParams& p);
  static int32_t argmax(std::span<const float> logits);
  struct Candidate {
    int32_t id;
    float p;
  };
  // Step 3 of the header comment on already-penalised logits: the surviving candidates,
  // normalised, in sampling order. `out` is reused across calls (no allocation when warm).
  static void candidates(std::span<const float> logits, const SamplingParams& p,
                         std::vector<Candidate>& out);

 private:
  SamplingParams params_;
  uint64_t seed_;
  Rng rng_;
  std::vector<Candidate> cand_;
};

}  // namespace dsv4
