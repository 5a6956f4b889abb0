// The generation loop: prompt tokens -> (chunked) prefill -> sample -> decode -> ... with
// streaming text, stop conditions, timing and cancellation.
//
// A Generation is a resumable state machine: each step() does one unit of work (one prefill
// chunk or one decoded token). `dsv4 run`/`chat` call step() in a loop; the server's worker
// interleaves step() over every active request (continuous batching at the step level), so a
// request's tokens never depend on what else is running.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dsv4/engine.h"
#include "dsv4/tokenizer.h"
#include "runtime/sampler.h"

namespace dsv4 {

// Stop strings on decoded text. Text pushed in comes out unchanged except that (a) anything that
// could still be the start of a stop string is held back until it is decided, and (b) once a stop
// string is complete, the text before it is released and everything from it on is dropped.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);
  // Returns the text that is now safe to emit.
  std::string push(std::string_view text);
  // End of generation without a stop: releases the held-back text.
  std::string flush();
  bool stopped() const { return stopped_; }
  const std::string& matched() const { return matched_; }  // the stop string that ended it

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
  std::string matched_;
};

enum class FinishReason {
  None,       // still running
  Eos,        // the model emitted an end-of-sequence token
  Stop,       // a stop string matched
  Length,     // max_tokens reached
  Context,    // the session's context is full
  Cancelled,  // cancel flag set (Ctrl-C, client disconnect)
};
const char* to_string(FinishReason r);

struct GenerateOptions {
  SamplingParams sampling;
  int64_t max_tokens = -1;                // -1: until EOS / stop / context end
  std::vector<std::string> stop;          // stop strings (on decoded text, never emitted)
  std::vector<int32_t> stop_tokens;       // end-of-sequence ids; empty: the model's EOS
  // Prompt tokens per step(). 0 (default): the whole prompt in one prefill call, which is what
  // the reference computes (the engine chunks internally without changing results). A positive
  // value bounds how long one step takes, but a prefill that continues at a later position is
  // computed like token-by-token decode, which can differ from one-shot prefill in the last bits.
  int64_t prefill_chunk = 0;
  // Prefix reuse: when the session's timeline shares at least `min_reuse` leading tokens with the
  // prompt, the session is rewound to the shared prefix and only the rest is prefilled (multi-turn
  // chat). That rest is computed like token-by-token decode (see above), so it can differ in the
  // last bits from a fresh one-shot prefill. 0: never reuse (always a fresh, exact prefill).
  int64_t min_reuse = 1;
  const std::atomic<bool>* cancel = nullptr;
  // Called during prefill with (done, total) over the whole prompt; return false to cancel.
  ProgressFn prefill_progress;
};

struct GenerationStats {
  int64_t prompt_tokens = 0;     // whole prompt
  int64_t cached_tokens = 0;     // prompt tokens already in the session (prefix reuse)
  int64_t generated_tokens = 0;  // sampled tokens, the stop token included
  int64_t decode_calls = 0;      // single-token forward passes
  double prefill_seconds = 0.0;  // prefill forward passes
  double decode_seconds = 0.0;   // decode forward passes + their sampling
  double prefill_tok_per_s() const;
  double decode_tok_per_s() const;
};

// What one step produced: the token sampled in this step (-1 for a prefill chunk that was not the
// last) and the newly emitted text (after UTF-8 completion and stop-string hold-back).
struct StepResult {
  int32_t token = -1;
  std::string text;
  bool finished = false;
};

class Generation {
 public:
  // `session` may already hold a prefix of `prompt` (reused, not recomputed); otherwise it is
  // reset. Throws dsv4::Error if the prompt is empty or does not fit the session's context.
  Generation(Session& session, const Tokenizer& tok, std::vector<int32_t> prompt,
             GenerateOptions opts, int64_t max_context, int64_t vocab_size);

  StepResult step();
  void cancel() { cancel_requested_ = true; }  // the next step() finishes with Cancelled
  bool finished() const { return finish_ != FinishReason::None; }
  FinishReason finish_reason() const { return finish_; }
  const std::vector<int32_t>& output_tokens() const { return out_; }  // stop token included
  const std::string& text() const { return text_; }  // everything emitted so far
  const GenerationStats& stats() const { return stats_; }
  int64_t prefill_done() const { return fed_; }
  int64_t prompt_size() const { return static_cast<int64_t>(prompt_.size()); }
  uint64_t seed() const { return sampler_.seed(); }
  const std::string& matched_stop() const { return stop_.matched(); }

  // How many leading prompt tokens the session could keep (common prefix, at most size - 1).
  static int64_t reusable_prefix(const Session& s, std::span<const int32_t> prompt);

 private:
  bool cancelled() const {
    return cancel_requested_ || (opts_.cancel && opts_.cancel->load(std::memory_order_relaxed));
  }
  void finish(FinishReason r, StepResult& res);
  void accept(int32_t token, StepResult& res);

  Session& session_;
  std::vector<int32_t> prompt_;
  GenerateOptions opts_;
  int64_t max_context_;
  Sampler sampler_;
  StreamDecoder decoder_;
  StopMatcher stop_;
  std::vector<float> logits_;
  std::vector<int32_t> history_;  // prompt + output, for the penalties
  std::vector<int32_t> out_;
  std::string text_;
  int64_t fed_ = 0;  // prompt tokens in the session
  bool have_logits_ = false;
  bool cancel_requested_ = false;
  FinishReason finish_ = FinishReason::None;
  GenerationStats stats_;
};

// Runs a generation to the end, calling on_text with each non-empty piece of text; on_text
// returning false cancels (FinishReason::Cancelled).
void run_to_end(Generation& g, const std::function<bool(std::string_view text)>& on_text = {});

}  // namespace dsv4
