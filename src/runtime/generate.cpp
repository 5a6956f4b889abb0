#include "runtime/generate.h"

#include <algorithm>

#include "core/error.h"

namespace dsv4 {

// ---- stop strings ---------------------------------------------------------------------------

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  for (auto& s : stops)
    if (!s.empty()) stops_.push_back(std::move(s));
}

std::string StopMatcher::push(std::string_view text) {
  if (stopped_) return {};
  held_.append(text);
  if (stops_.empty()) return std::exchange(held_, {});
  // A complete stop string: release what precedes the earliest one, drop the rest.
  size_t best = std::string::npos;
  for (const auto& s : stops_) {
    const size_t at = held_.find(s);
    if (at < best) {
      best = at;
      matched_ = s;
    }
  }
  if (best != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, best);
    held_.clear();
    return out;
  }
  // Hold back the longest suffix that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const auto& s : stops_) {
    const size_t max_len = std::min(s.size() - 1, held_.size());
    for (size_t len = max_len; len > keep; --len) {
      if (held_.compare(held_.size() - len, len, s, 0, len) == 0) {
        keep = len;
        break;
      }
    }
  }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopMatcher::flush() {
  if (stopped_) return {};
  return std::exchange(held_, {});
}

// ---- generation -----------------------------------------------------------------------------

const char* to_string(FinishReason r) {
  switch (r) {
    case FinishReason::None: return "none";
    case FinishReason::Eos: return "eos";
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Context: return "context";
    case FinishReason::Cancelled: return "cancelled";
  }
  return "?";
}

double GenerationStats::prefill_tok_per_s() const {
  const int64_t n = prompt_tokens - cached_tokens;
  return prefill_seconds > 0.0 ? static_cast<double>(n) / prefill_seconds : 0.0;
}

double GenerationStats::decode_tok_per_s() const {
  return decode_seconds > 0.0 ? static_cast<double>(decode_calls) / decode_seconds : 0.0;
}

using Clock = std::chrono::steady_clock;
static double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int64_t Generation::reusable_prefix(const Session& s, std::span<const int32_t> prompt) {
  if (prompt.empty()) return 0;
  return std::min<int64_t>(common_prefix(s.tokens(), prompt), static_cast<int64_t>(prompt.size()) - 1);
}

Generation::Generation(Session& session, const Tokenizer& tok, std::vector<int32_t> prompt,
                       GenerateOptions opts, int64_t max_context, int64_t vocab_size)
    : session_(session),
      prompt_(std::move(prompt)),
      opts_(std::move(opts)),
      max_context_(max_context),
      sampler_(opts_.sampling),
      decoder_(tok),
      stop_(opts_.stop) {
  if (prompt_.empty()) throw_error("generate: the prompt is empty (0 tokens)");
  if (static_cast<int64_t>(prompt_.size()) >= max_context_)
    throw_error("generate: the prompt has ", prompt_.size(), " tokens but the context holds ",
                max_context_, " (at least one more is needed to generate)");
  if (opts_.max_tokens == 0 || opts_.max_tokens < -1)
    throw_error("generate: max_tokens must be >= 1 or -1 (unlimited), got ", opts_.max_tokens);
  if (opts_.prefill_chunk < 0) throw_error("generate: prefill_chunk must be >= 0 (0 = whole prompt)");
  if (vocab_size < 1) throw_error("generate: vocab_size must be >= 1, got ", vocab_size);
  if (opts_.stop_tokens.empty()) opts_.stop_tokens.push_back(tok.eos_id());
  logits_.resize(static_cast<size_t>(vocab_size));
  const int64_t keep = opts_.min_reuse > 0 ? reusable_prefix(session_, prompt_) : 0;
  if (keep > 0 && keep >= opts_.min_reuse) {
    if (keep < session_.position()) session_.rewind(keep);
    fed_ = keep;
  } else if (session_.position() > 0) {
    session_.reset();
  }
  stats_.prompt_tokens = static_cast<int64_t>(prompt_.size());
  stats_.cached_tokens = fed_;
  history_ = prompt_;
}

void Generation::finish(FinishReason r, StepResult& res) {
  if (r != FinishReason::Stop) {
    std::string tail = stop_.push(decoder_.flush());
    if (stop_.stopped()) {
      r = FinishReason::Stop;
    } else {
      tail += stop_.flush();
    }
    res.text += tail;
    text_ += tail;
  }
  finish_ = r;
  res.finished = true;
}

void Generation::accept(int32_t token, StepResult& res) {
  res.token = token;
  out_.push_back(token);
  history_.push_back(token);
  ++stats_.generated_tokens;
  if (std::find(opts_.stop_tokens.begin(), opts_.stop_tokens.end(), token) !=
      opts_.stop_tokens.end())
    return finish(FinishReason::Eos, res);
  std::string piece = stop_.push(decoder_.push(token));
  text_ += piece;
  res.text += piece;
  if (stop_.stopped()) return finish(FinishReason::Stop, res);
  if (opts_.max_tokens > 0 && static_cast<int64_t>(out_.size()) >= opts_.max_tokens)
    return finish(FinishReason::Length, res);
  if (session_.position() >= max_context_) return finish(FinishReason::Context, res);
}

StepResult Generation::step() {
  StepResult res;
  if (finished()) {
    res.finished = true;
    return res;
  }
  if (cancelled()) {
    finish(FinishReason::Cancelled, res);
    return res;
  }
  const auto total = static_cast<int64_t>(prompt_.size());
  if (fed_ < total) {
    const int64_t n = opts_.prefill_chunk > 0 ? std::min(opts_.prefill_chunk, total - fed_) : total - fed_;
    const bool last = fed_ + n == total;
    const int64_t start = session_.position();
    const int64_t base = fed_;
    const ProgressFn progress = [this, base](int64_t done, int64_t) {
      if (opts_.prefill_progress && !opts_.prefill_progress(base + done, prompt_size())) return false;
      return !cancelled();
    };
    const auto t0 = Clock::now();
    session_.prefill(std::span<const int32_t>(prompt_).subspan(static_cast<size_t>(fed_),
                                                               static_cast<size_t>(n)),
                     last ? std::span<float>(logits_) : std::span<float>(), progress);
    stats_.prefill_seconds += seconds_since(t0);
    if (session_.position() != start + n) {  // the progress callback stopped it part-way
      fed_ = session_.position() - start + base;
      finish(FinishReason::Cancelled, res);
      return res;
    }
    fed_ += n;
    if (!last) return res;
    have_logits_ = true;
  }
  const auto t0 = Clock::now();
  if (!have_logits_) {
    session_.decode(out_.back(), logits_);
    ++stats_.decode_calls;
  }
  have_logits_ = false;
  const int32_t token = sampler_.sample(logits_, history_);
  if (stats_.generated_tokens > 0) stats_.decode_seconds += seconds_since(t0);
  accept(token, res);
  return res;
}

void run_to_end(Generation& g, const std::function<bool(std::string_view text)>& on_text) {
  while (!g.finished()) {
    StepResult r = g.step();
    if (!r.text.empty() && on_text && !on_text(r.text)) g.cancel();
  }
}

}  // namespace dsv4
