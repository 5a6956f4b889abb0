// Test doubles for the generation/server tests: a deterministic fake Engine whose logits are a
// pure function of the session's token history (so batching/interleaving bugs change outputs),
// optionally steered by a script, and a byte-level toy tokenizer with the DeepSeek markers as
// added tokens.
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "dsv4/engine.h"
#include "dsv4/tokenizer.h"
#include "text/byte_level.h"

namespace dsv4::test {

// The favoured next token for a history, or -1 for "no preference" (pure pseudo-random logits).
using NextFn = std::function<int32_t(const std::vector<int32_t>& history)>;

struct FakeStats {
  std::atomic<int64_t> prefill_calls{0}, prefill_tokens{0}, decode_calls{0}, rewinds{0};
};

class FakeSession : public Session {
 public:
  FakeSession(int64_t vocab, int64_t max_ctx, NextFn next, FakeStats* stats, int decode_sleep_us)
      : vocab_(vocab), max_ctx_(max_ctx), next_(std::move(next)), stats_(stats), sleep_us_(decode_sleep_us) {}
  // Processes one token per internal chunk, reporting progress after each (false stops early and
  // leaves no logits, like the engine).
  void prefill(std::span<const int32_t> tokens, std::span<float> logits, const ProgressFn& progress) override {
    stats_->prefill_calls++;
    const auto total = static_cast<int64_t>(tokens.size());
    for (int64_t i = 0; i < total; ++i) {
      push(tokens[static_cast<size_t>(i)]);
      stats_->prefill_tokens++;
      if (progress && !progress(i + 1, total)) return;
    }
    if (!logits.empty()) fill(logits);
  }
  void decode(int32_t token, std::span<float> logits) override {
    if (sleep_us_ > 0) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us_));
    push(token);
    stats_->decode_calls++;
    fill(logits);
  }
  int64_t position() const override { return static_cast<int64_t>(tokens_.size()); }
  const std::vector<int32_t>& tokens() const override { return tokens_; }
  void reset() override { tokens_.clear(); }
  uint64_t kv_bytes() const override { return 0; }
  uint64_t checkpoint_bytes() const override { return 0; }
  void rewind(int64_t pos) override {
    if (pos < 0 || pos > position()) throw std::runtime_error("fake: bad rewind");
    tokens_.resize(static_cast<size_t>(pos));  // the logits are a function of the tokens only
    stats_->rewinds++;
  }
  int64_t reuse_prefix(std::span<const int32_t> prompt) override {
    const int64_t keep = std::max<int64_t>(0, std::min<int64_t>(common_prefix(tokens_, prompt),
                                                                static_cast<int64_t>(prompt.size()) - 1));
    rewind(keep);
    return keep;
  }
  void save(const std::string&) const override { throw std::runtime_error("fake: no save"); }
  void load(const std::string&) override { throw std::runtime_error("fake: no load"); }

 private:
  void push(int32_t t) {
    if (static_cast<int64_t>(tokens_.size()) >= max_ctx_) throw std::runtime_error("fake: context overflow");
    if (t < 0 || t >= vocab_) throw std::runtime_error("fake: token out of range");
    tokens_.push_back(t);
  }
  void fill(std::span<float> logits) {
    uint64_t h = 1469598103934665603ull;
    for (int32_t t : tokens_) h = (h ^ static_cast<uint64_t>(t)) * 1099511628211ull;
    for (size_t i = 0; i < logits.size(); ++i) {
      uint64_t x = h + 0x9e3779b97f4a7c15ull * (i + 1);
      x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
      x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
      x ^= x >> 31;
      logits[i] = static_cast<float>(static_cast<double>(x >> 11) * 0x1.0p-53 * 6.0 - 3.0);
    }
    const int32_t fav = next_ ? next_(tokens_) : -1;
    if (fav >= 0) logits[static_cast<size_t>(fav)] = 50.0f;
  }
  int64_t vocab_, max_ctx_;
  NextFn next_;
  FakeStats* stats_;
  int sleep_us_;
  std::vector<int32_t> tokens_;
};

inline SessionOptions sopts(int64_t max_context) {
  SessionOptions o;
  o.max_context = max_context;
  return o;
}

class FakeEngine : public Engine {
 public:
  FakeEngine(int64_t vocab, NextFn next = {}, int decode_sleep_us = 0)
      : next_(std::move(next)), sleep_us_(decode_sleep_us) {
    info_.vocab_size = vocab;
    info_.n_layers = 1;
    info_.max_context = 1 << 20;
  }
  const ModelInfo& info() const override { return info_; }
  std::unique_ptr<Session> new_session(const SessionOptions& opts) override {
    return std::make_unique<FakeSession>(info_.vocab_size, opts.max_context, next_, &stats, sleep_us_);
  }
  FakeStats stats;

 private:
  ModelInfo info_;
  NextFn next_;
  int sleep_us_;
};

// Byte-level toy tokenizer: ids 0..255 are the bytes, then the DeepSeek markers as added tokens.
// EOS is id 256 so byte tokens never collide with it.
inline const std::vector<std::string>& toy_markers() {
  static const std::vector<std::string> m = {
      "<｜end▁of▁sentence｜>", "<｜begin▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>",
      "<think>", "</think>", "｜DSML｜"};
  return m;
}
inline constexpr int32_t kToyEos = 256;
inline constexpr int32_t kToyVocab = 256 + 7;

inline Tokenizer toy_tokenizer() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[text::bytes_to_byte_level(std::string(1, static_cast<char>(b)))] = b;
  nlohmann::json added = nlohmann::json::array();
  for (size_t i = 0; i < toy_markers().size(); ++i)
    added.push_back({{"id", 256 + static_cast<int>(i)}, {"content", toy_markers()[i]}, {"single_word", false},
                     {"lstrip", false}, {"rstrip", false}, {"normalized", false}, {"special", true}});
  nlohmann::json j;
  j["version"] = "1.0";
  j["added_tokens"] = added;
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers",
                         nlohmann::json::array({{{"type", "ByteLevel"}, {"add_prefix_space", false},
                                                 {"trim_offsets", true}, {"use_regex", false}}})}};
  j["decoder"] = {{"type", "ByteLevel"}};
  j["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}};
  return Tokenizer::from_json_string(j.dump(), "toy");
}

// Steers the fake model to emit `text` (tokenised with the toy tokenizer, markers included) after
// the history first reaches `prompt_len` tokens, then EOS.
inline NextFn script(const Tokenizer& tok, const std::string& text, size_t prompt_len) {
  std::vector<int32_t> ids = tok.encode(text, true);
  ids.push_back(kToyEos);
  return [ids, prompt_len](const std::vector<int32_t>& h) -> int32_t {
    if (h.size() < prompt_len) return -1;
    const size_t k = h.size() - prompt_len;
    return k < ids.size() ? ids[k] : kToyEos;
  };
}

}  // namespace dsv4::test
