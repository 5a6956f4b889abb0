// Streaming completion parser: a state machine over the generated text that emits reasoning /
// content text and OpenAI-style tool-call deltas as soon as they are unambiguous. Text that might
// be the start of a marker (</think>, ｜DSML｜, <｜end▁of▁sentence｜>, the tool-call block start,
// a parameter end) is held back until the next piece decides it, and so is an incomplete UTF-8
// sequence at the end of a piece.
//
// Recovery rules where the official parser would raise (ParsedMessage::error says so):
//  * <｜end▁of▁sentence｜> ends the message anywhere (also inside the reasoning or a tool call:
//    truncated); text after it is ignored;
//  * the tool-call block start inside the reasoning ends the reasoning;
//  * stray markers (BOS, <think>, </think>, ｜DSML｜) in reasoning / content are removed;
//  * malformed DSML stops parsing; calls started so far stay (complete = false if unfinished).
#include <algorithm>
#include <array>
#include <span>

#include "core/error.h"
#include "text/chat_templates.h"
#include "text/completion_parser.h"
#include "text/pyjson.h"

namespace dsv4 {

namespace {

using namespace dsv4::text;

// Value terminators inside a parameter (see completion_parser.cpp: the body ends at the first
// "/｜DSML｜parameter" and must end with "<" or "<\n").
constexpr std::string_view kParamCloseNl = "<\n/｜DSML｜parameter";

struct Hit {
  size_t pos = 0;
  int marker = -1;      // index of the marker matching at pos, -1 if none
  bool partial = false; // buf[pos:] is a proper prefix of a marker (more text may complete it)
};

// Earliest position where a marker starts (fully, or - unless final - as an unfinished prefix).
Hit scan(std::string_view buf, std::span<const std::string_view> markers, bool final) {
  const size_t n = buf.size();
  for (size_t i = 0; i < n; ++i) {
    const std::string_view rest = buf.substr(i);
    bool partial = false;
    for (size_t k = 0; k < markers.size(); ++k) {
      const std::string_view m = markers[k];
      if (m[0] != rest[0]) continue;
      if (rest.starts_with(m)) return {i, static_cast<int>(k), false};
      if (!final && rest.size() < m.size() && m.starts_with(rest)) partial = true;
    }
    if (partial) return {i, -1, true};
  }
  return {n, -1, false};
}

// Length of the longest prefix of s that does not end inside a UTF-8 sequence.
size_t utf8_complete_prefix(std::string_view s) {
  const size_t n = s.size();
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    const auto b = static_cast<unsigned char>(s[n - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: look further back
    const size_t need = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

enum class LitResult { Match, NeedMore, Bad };

// buf must start with one of the options; returns which (in `which`).
LitResult literal(std::string_view buf, std::span<const std::string> options, size_t& which) {
  bool maybe = false;
  for (size_t k = 0; k < options.size(); ++k) {
    if (buf.starts_with(options[k])) {
      which = k;
      return LitResult::Match;
    }
    if (std::string_view(options[k]).starts_with(buf)) maybe = true;
  }
  return maybe ? LitResult::NeedMore : LitResult::Bad;
}

}  // namespace

struct StreamParser::Impl {
  enum class St { Reasoning, Content, ToolGap, InvokeHead, ParamHeader, ParamValue, AfterParam, AfterBlock, Done };

  ThinkingMode mode;
  St st;
  std::string buf;  // received, not yet consumed
  std::string all;  // everything received (for the strict verdict)
  ParsedMessage msg;
  std::vector<Delta> out;
  bool finished = false;
  bool saw_eos = false;
  bool value_is_string = false;
  int params_in_call = 0;

  explicit Impl(ThinkingMode m) : mode(m), st(m == ThinkingMode::Thinking ? St::Reasoning : St::Content) {}

  int call_index() const { return static_cast<int>(msg.tool_calls.size()) - 1; }

  void emit(Delta::Kind kind, std::string_view text, int index = -1) {
    if (text.empty() && kind != Delta::Kind::ToolCallStart) return;
    switch (kind) {
      case Delta::Kind::Reasoning: msg.reasoning_content += text; break;
      case Delta::Kind::Content: msg.content += text; break;
      case Delta::Kind::ToolCallStart: msg.tool_calls.push_back({std::string(text), "", false}); break;
      case Delta::Kind::ToolArguments: msg.tool_calls[static_cast<size_t>(index)].arguments += text; break;
    }
    if (!out.empty() && kind != Delta::Kind::ToolCallStart && out.back().kind == kind &&
        out.back().tool_index == index) {
      out.back().text += text;
    } else {
      out.push_back({kind, std::string(text), index});
    }
  }
  void emit_args(std::string_view text) { emit(Delta::Kind::ToolArguments, text, call_index()); }
  void emit_value(std::string_view raw) {
    if (!value_is_string) return emit_args(raw);
    std::string esc;
    py_append_string_body(esc, raw);
    emit_args(esc);
  }

  void consume(size_t n) { buf.erase(0, n); }
  void end(bool truncated) {
    msg.truncated = msg.truncated || truncated;
    st = St::Done;
    buf.clear();
  }

  // Reasoning / content: text up to the next marker. Returns false when more input is needed.
  bool step_text(bool final) {
    const bool reasoning = st == St::Reasoning;
    static constexpr std::array<std::string_view, 6> kReasoningMarkers = {
        kThinkClose, kToolCallsStart, kEos, kBos, kThinkOpen, kDsml};
    static constexpr std::array<std::string_view, 6> kContentMarkers = {
        kEos, kToolCallsStart, kBos, kThinkOpen, kThinkClose, kDsml};
    const std::span<const std::string_view> markers =
        reasoning ? std::span<const std::string_view>(kReasoningMarkers)
                  : std::span<const std::string_view>(kContentMarkers);
    const Delta::Kind kind = reasoning ? Delta::Kind::Reasoning : Delta::Kind::Content;
    const Hit h = scan(buf, markers, final);
    if (h.marker < 0) {
      const size_t n = final ? h.pos : utf8_complete_prefix(std::string_view(buf).substr(0, h.pos));
      emit(kind, std::string_view(buf).substr(0, n));
      consume(n);
      if (final) buf.clear();
      return false;
    }
    emit(kind, std::string_view(buf).substr(0, h.pos));
    const std::string_view m = markers[static_cast<size_t>(h.marker)];
    consume(h.pos + m.size());
    if (m == kThinkClose && reasoning) {
      st = St::Content;
    } else if (m == kToolCallsStart) {
      st = St::ToolGap;
    } else if (m == kEos) {
      saw_eos = true;
      end(reasoning);  // EOS before </think>: the reasoning was cut off
    }
    // any other marker is dropped
    return true;
  }

  bool step_literal(bool final) {
    // ToolGap:    ">\n<｜DSML｜invoke" | ">\n</｜DSML｜tool_calls>"
    // AfterParam: ">\n<｜DSML｜parameter" | ">\n</｜DSML｜invoke"
    // AfterBlock: EOS
    static const std::array<std::string, 3> kGap = {">\n" + std::string(kInvokeOpen),
                                                     ">\n" + std::string(kToolCallsEnd), std::string(kEos)};
    static const std::array<std::string, 3> kAfter = {">\n" + std::string(kParamOpen),
                                                      ">\n" + std::string(kInvokeClose), std::string(kEos)};
    static const std::array<std::string, 1> kBlockEnd = {std::string(kEos)};
    std::span<const std::string> opts = st == St::ToolGap      ? std::span<const std::string>(kGap)
                                        : st == St::AfterParam ? std::span<const std::string>(kAfter)
                                                               : std::span<const std::string>(kBlockEnd);
    if (buf.empty()) {
      if (final) end(st != St::AfterBlock);
      return false;
    }
    size_t which = 0;
    switch (literal(buf, opts, which)) {
      case LitResult::NeedMore:
        if (final) end(st != St::AfterBlock);  // cut off inside the expected markup
        return false;
      case LitResult::Bad: {
        // Malformed markup, or generation stopped (EOS) in the middle of the expected markup.
        size_t common = 0;
        for (const std::string& o : opts) {
          size_t k = 0;
          while (k < o.size() && k < buf.size() && o[k] == buf[k]) ++k;
          common = std::max(common, k);
        }
        bool eos = false, eos_full = false;
        for (size_t at = 0; at <= common && at < buf.size() && !eos; ++at) {
          const std::string_view rest = std::string_view(buf).substr(at);
          eos_full = rest.starts_with(kEos);
          eos = eos_full || kEos.starts_with(rest);
        }
        saw_eos = saw_eos || eos_full;
        end(st != St::AfterBlock && eos);
        return false;
      }
      case LitResult::Match: break;
    }
    consume(opts[which].size());
    if (opts[which] == kEos) {
      saw_eos = true;
      end(st != St::AfterBlock);
      return false;
    }
    if (st == St::ToolGap) {
      st = which == 0 ? St::InvokeHead : St::AfterBlock;
    } else {  // AfterParam
      if (which == 0) {
        st = St::ParamHeader;
      } else {
        close_call();
        st = St::ToolGap;
      }
    }
    return true;
  }

  void close_call() {
    emit_args(params_in_call == 0 ? "{}" : "}");
    msg.tool_calls.back().complete = true;
  }

  bool step_invoke_head(bool final) {
    static constexpr std::array<std::string_view, 3> kMarkers = {kParamOpen, kInvokeClose, kEos};
    const Hit h = scan(buf, kMarkers, final);
    if (h.marker < 0) {
      if (final) end(true);
      return false;
    }
    if (h.marker == 2) {
      saw_eos = true;
      end(true);
      return false;
    }
    std::optional<std::string> name = match_invoke_head(std::string_view(buf).substr(0, h.pos));
    if (!name) {
      end(false);
      return false;
    }
    consume(h.pos + kMarkers[static_cast<size_t>(h.marker)].size());
    emit(Delta::Kind::ToolCallStart, *name, static_cast<int>(msg.tool_calls.size()));
    params_in_call = 0;
    if (h.marker == 0) {
      st = St::ParamHeader;
    } else {
      close_call();
      st = St::ToolGap;
    }
    return true;
  }

  bool step_param_header(bool final) {
    // The header must complete before the parameter end and before an EOS (full, or a partial
    // one at the end of the buffer that may still complete).
    const size_t term = buf.find(kParamCloseBare);
    size_t eos = buf.find(kEos);
    const bool eos_full = eos != std::string::npos;
    if (!eos_full && !final) {
      for (size_t at = buf.size() > kEos.size() ? buf.size() - kEos.size() : 0; at < buf.size(); ++at) {
        if (kEos.starts_with(std::string_view(buf).substr(at))) {
          eos = at;
          break;
        }
      }
    }
    const size_t limit = std::min({term, eos, buf.size()});
    const ParamHeader h = match_param_header(std::string_view(buf).substr(0, limit));
    if (h.status == ParamHeader::Status::Bad) {
      end(false);
      return false;
    }
    if (h.status == ParamHeader::Status::NeedMore) {
      if (term < eos) {
        end(false);  // parameter ended without a valid header
      } else if (eos_full) {
        saw_eos = true;
        end(true);
      } else if (final) {
        end(true);
      }
      return false;
    }
    consume(h.length);
    emit_args(arguments_open_piece(params_in_call == 0, h.key, h.is_string));
    ++params_in_call;
    value_is_string = h.is_string;
    st = St::ParamValue;
    return true;
  }

  bool step_param_value(bool final) {
    static constexpr std::array<std::string_view, 4> kMarkers = {kParamCloseNl, kParamClose, kParamCloseBare, kEos};
    const Hit h = scan(buf, kMarkers, final);
    if (h.marker < 0) {
      const size_t n = final ? h.pos : utf8_complete_prefix(std::string_view(buf).substr(0, h.pos));
      emit_value(std::string_view(buf).substr(0, n));
      consume(n);
      if (final) end(true);
      return false;
    }
    emit_value(std::string_view(buf).substr(0, h.pos));
    consume(h.pos + kMarkers[static_cast<size_t>(h.marker)].size());
    if (h.marker >= 2) {  // "/｜DSML｜parameter" without "<": malformed; or EOS: cut off
      if (h.marker == 3) saw_eos = true;
      end(h.marker == 3);
      return false;
    }
    if (value_is_string) emit_args("\"");
    st = St::AfterParam;
    return true;
  }

  void run(bool final) {
    bool progress = true;
    while (progress) {
      switch (st) {
        case St::Reasoning:
        case St::Content: progress = step_text(final); break;
        case St::ToolGap:
        case St::AfterParam:
        case St::AfterBlock: progress = step_literal(final); break;
        case St::InvokeHead: progress = step_invoke_head(final); break;
        case St::ParamHeader: progress = step_param_header(final); break;
        case St::ParamValue: progress = step_param_value(final); break;
        case St::Done: buf.clear(); progress = false; break;
      }
    }
  }
};

StreamParser::StreamParser(ThinkingMode mode) : impl_(std::make_unique<Impl>(mode)) {}
StreamParser::~StreamParser() = default;
StreamParser::StreamParser(StreamParser&&) noexcept = default;
StreamParser& StreamParser::operator=(StreamParser&&) noexcept = default;

std::vector<Delta> StreamParser::push(std::string_view piece) {
  Impl& s = *impl_;
  if (s.finished) throw_error("StreamParser::push after finish()");
  s.all += piece;
  if (s.st != Impl::St::Done) {
    s.buf += piece;
    s.run(false);
  }
  return std::exchange(s.out, {});
}

std::vector<Delta> StreamParser::finish() {
  Impl& s = *impl_;
  if (s.finished) return {};
  s.run(true);
  s.finished = true;
  OfficialParse strict = parse_completion_official(s.all, s.mode);
  s.msg.error = std::move(strict.error);
  if (s.msg.error.empty()) {
    // The official parser accepts a few texts this parser cuts short (an EOS inside a tool-call
    // parameter value, which a model cannot produce because generation stops at EOS).
    const auto same_calls = [&] {
      if (strict.msg.tool_calls.size() != s.msg.tool_calls.size()) return false;
      for (size_t k = 0; k < s.msg.tool_calls.size(); ++k)
        if (strict.msg.tool_calls[k].name != s.msg.tool_calls[k].name ||
            strict.msg.tool_calls[k].arguments != s.msg.tool_calls[k].arguments)
          return false;
      return true;
    };
    if (strict.msg.content != s.msg.content || strict.msg.reasoning_content != s.msg.reasoning_content ||
        !same_calls())
      s.msg.error = "Invalid tool call format: EOS token inside a tool call";
  }
  return std::exchange(s.out, {});
}

const ParsedMessage& StreamParser::message() const { return impl_->msg; }
bool StreamParser::finished() const { return impl_->finished; }
bool StreamParser::saw_eos() const { return impl_->saw_eos; }

}  // namespace dsv4
