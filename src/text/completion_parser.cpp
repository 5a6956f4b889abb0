// One-shot completion parsing: an original implementation of the official parser's rules
// (chat-encoding.md section 3), used as the strict verdict, plus the public entry points.
#include "text/completion_parser.h"

#include <array>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "text/chat_templates.h"
#include "text/pyjson.h"

namespace dsv4::text {

namespace {

struct Found {
  size_t next = 0;        // position after the stop (or end of text)
  std::string_view gap;   // text between pos and the stop
  int stop = -1;          // index into stops, -1 when none occurs
};

// Earliest occurrence of any stop at or after pos.
Found read_until(std::string_view text, size_t pos, std::initializer_list<std::string_view> stops) {
  size_t best = std::string_view::npos;
  int which = -1;
  int k = 0;
  for (std::string_view s : stops) {
    const size_t at = text.find(s, pos);
    if (at != std::string_view::npos && (best == std::string_view::npos || at < best)) {
      best = at;
      which = k;
    }
    ++k;
  }
  if (which < 0) return {text.size(), text.substr(pos), -1};
  const size_t len = std::data(stops)[which].size();
  return {best + len, text.substr(pos, best - pos), which};
}

// Python str.isspace() code points (what re's \s matches in a str pattern).
bool is_py_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// Decodes one UTF-8 code point at s[i]; returns its length (1 for invalid bytes, cp = 0xFFFD).
size_t decode_utf8(std::string_view s, size_t i, uint32_t& cp) {
  const auto b = static_cast<unsigned char>(s[i]);
  size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) {
    cp = 0xFFFD;
    return 1;
  }
  cp = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
  for (size_t k = 1; k < n; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c >> 6) != 2) {
      cp = 0xFFFD;
      return 1;
    }
    cp = (cp << 6) | (c & 0x3F);
  }
  return n;
}

}  // namespace

std::optional<std::string> match_invoke_head(std::string_view head) {
  size_t i = 0;
  while (i < head.size()) {
    uint32_t cp = 0;
    const size_t n = decode_utf8(head, i, cp);
    if (!is_py_space(cp)) break;
    i += n;
  }
  constexpr std::string_view kName = "name=\"";
  if (head.substr(i, kName.size()) != kName) return std::nullopt;
  const size_t start = i + kName.size();
  // Non-greedy (.*?) followed by ">\n$ ($ also matches before a final newline).
  for (size_t at = head.find("\">\n", start); at != std::string_view::npos; at = head.find("\">\n", at + 1)) {
    const std::string_view rest = head.substr(at + 3);
    if (rest.empty() || rest == "\n") return std::string(head.substr(start, at - start));
  }
  return std::nullopt;
}

ParamHeader match_param_header(std::string_view text) {
  ParamHeader h;
  constexpr std::string_view kName = " name=\"";
  if (text.size() < kName.size()) {
    h.status = kName.starts_with(text) ? ParamHeader::Status::NeedMore : ParamHeader::Status::Bad;
    return h;
  }
  if (!text.starts_with(kName)) {
    h.status = ParamHeader::Status::Bad;
    return h;
  }
  constexpr std::string_view kStr = "\" string=\"";
  for (size_t at = text.find(kStr, kName.size()); at != std::string_view::npos;
       at = text.find(kStr, at + 1)) {
    const std::string_view rest = text.substr(at + kStr.size());
    for (const bool flag : {true, false}) {
      const std::string_view tail = flag ? "true\">" : "false\">";
      if (rest.starts_with(tail)) {
        h.status = ParamHeader::Status::Ok;
        h.key = std::string(text.substr(kName.size(), at - kName.size()));
        h.is_string = flag;
        h.length = at + kStr.size() + tail.size();
        return h;
      }
    }
    // A partial "true\">" / "false\">" at the very end may still complete.
    if (std::string_view("true\">").starts_with(rest) || std::string_view("false\">").starts_with(rest)) {
      h.status = ParamHeader::Status::NeedMore;
      return h;
    }
  }
  h.status = ParamHeader::Status::NeedMore;
  return h;
}

std::string arguments_open_piece(bool first_param, std::string_view key, bool is_string) {
  std::string out = first_param ? "{" : ", ";
  py_append_string(out, key);
  out += ": ";
  if (is_string) out += '"';
  return out;
}

OfficialParse parse_completion_official(std::string_view text, ThinkingMode mode) {
  OfficialParse r;
  auto fail = [&](std::string why) {
    r.error = std::move(why);
    r.msg = ParsedMessage{};
    return r;
  };
  size_t pos = 0;
  std::string_view reasoning;
  if (mode == ThinkingMode::Thinking) {
    const Found f = read_until(text, 0, {kThinkClose, kToolCallsStart});
    if (f.stop != 0) return fail("Invalid thinking format: missing </think>");
    reasoning = f.gap;
    pos = f.next;
  }
  Found f = read_until(text, pos, {kEos, kToolCallsStart});
  const std::string_view content = f.gap;
  pos = f.next;
  std::vector<ToolCall> calls;
  int stop_is_eos_or_none = f.stop;  // 0 = EOS, -1 = none
  if (f.stop == 1) {
    while (pos < text.size()) {
      Found g = read_until(text, pos, {kInvokeOpen, kToolCallsEnd});
      pos = g.next;
      if (g.gap != ">\n") return fail("Invalid tool call format: expected \">\\n\" before an invoke or the block end");
      if (g.stop == 1) break;
      if (g.stop < 0) return fail("Invalid tool call format: tool-call block not closed");
      Found h = read_until(text, pos, {kParamOpen, kInvokeClose});
      pos = h.next;
      std::optional<std::string> name = match_invoke_head(h.gap);
      if (!name) return fail("Invalid tool call format: bad invoke header");
      ToolCall call;
      call.name = std::move(*name);
      std::vector<std::string> keys;
      std::string args;
      int stop = h.stop;
      while (stop == 0) {
        Found b = read_until(text, pos, {kParamCloseBare});
        pos = b.next;
        const ParamHeader ph = match_param_header(b.gap);
        const std::string_view body = b.gap;
        std::string_view value;
        bool ok = ph.status == ParamHeader::Status::Ok;
        if (ok) {
          if (body.ends_with("<") && body.size() - 1 >= ph.length)
            value = body.substr(ph.length, body.size() - 1 - ph.length);
          else if (body.ends_with("<\n") && body.size() - 2 >= ph.length)
            value = body.substr(ph.length, body.size() - 2 - ph.length);
          else
            ok = false;
        }
        if (!ok) return fail("Invalid tool call format: bad parameter");
        for (const auto& k : keys)
          if (k == ph.key) return fail("Invalid tool call format: duplicate parameter \"" + ph.key + "\"");
        keys.push_back(ph.key);
        args += arguments_open_piece(keys.size() == 1, ph.key, ph.is_string);
        if (ph.is_string) {
          py_append_string_body(args, value);
          args += '"';
        } else {
          args += value;
        }
        Found g2 = read_until(text, pos, {kParamOpen, kInvokeClose});
        pos = g2.next;
        stop = g2.stop;
        if (g2.gap != ">\n") return fail("Invalid tool call format: expected \">\\n\" after a parameter");
      }
      args += keys.empty() ? "{}" : "}";
      call.arguments = std::move(args);
      calls.push_back(std::move(call));
    }
    Found t = read_until(text, pos, {kEos});
    if (!t.gap.empty()) return fail("Invalid format: unexpected text after the tool-call block");
    pos = t.next;
    stop_is_eos_or_none = t.stop;
  } else if (f.stop != 0) {
    return fail("Invalid format: missing EOS token");
  }
  if (pos != text.size() || stop_is_eos_or_none > 0) return fail("Invalid format: unexpected text after EOS token");
  static constexpr std::array<std::string_view, 5> kSpecial = {kBos, kEos, kThinkOpen, kThinkClose, kDsml};
  for (const auto& [what, s] : {std::pair<const char*, std::string_view>{"content", content},
                                std::pair<const char*, std::string_view>{"reasoning", reasoning}}) {
    for (std::string_view tok : kSpecial)
      if (s.find(tok) != std::string_view::npos)
        return fail("Unexpected special token '" + std::string(tok) + "' in " + what);
  }
  r.msg.reasoning_content = std::string(reasoning);
  r.msg.content = std::string(content);
  r.msg.tool_calls = std::move(calls);
  return r;
}

}  // namespace dsv4::text

namespace dsv4 {

ordered_json ParsedMessage::to_json() const {
  ordered_json j = ordered_json::object();
  j["role"] = "assistant";
  j["content"] = content;
  j["reasoning_content"] = reasoning_content;
  j["tool_calls"] = ordered_json::array();
  for (const ToolCall& c : tool_calls) {
    ordered_json fn = ordered_json::object();
    fn["name"] = c.name;
    fn["arguments"] = c.arguments;
    ordered_json call = ordered_json::object();
    call["type"] = "function";
    call["function"] = std::move(fn);
    j["tool_calls"].push_back(std::move(call));
  }
  return j;
}

ParsedMessage parse_completion(std::string_view text, ThinkingMode mode) {
  StreamParser p(mode);
  p.push(text);
  p.finish();
  return p.message();
}

ParsedMessage parse_completion_strict(std::string_view text, ThinkingMode mode) {
  text::OfficialParse r = text::parse_completion_official(text, mode);
  if (!r.error.empty()) throw Error(r.error);
  return r.msg;
}

}  // namespace dsv4
