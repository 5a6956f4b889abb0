// DeepSeek-V4 completion parsing (chat-encoding.md section 3). The public entry points are in
// include/dsv4/chat.h; this header exposes the pieces shared by the one-shot parser
// (completion_parser.cpp) and the streaming parser (stream_parser.cpp).
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "dsv4/chat.h"

namespace dsv4::text {

// The official parser's verdict: `error` is empty iff it accepts `text`; `msg` is its result then.
struct OfficialParse {
  std::string error;
  ParsedMessage msg;
};
OfficialParse parse_completion_official(std::string_view text, ThinkingMode mode);

// Head of an invoke (the text between "<｜DSML｜invoke" and the next parameter / invoke end):
// Python re.match(r'^\s*name="(.*?)">\n$', head, re.DOTALL) -> the tool name.
std::optional<std::string> match_invoke_head(std::string_view head);

// Start of a parameter body (the text after "<｜DSML｜parameter"): ` name="KEY" string="true|false">`.
struct ParamHeader {
  enum class Status { Ok, NeedMore, Bad } status = Status::NeedMore;
  std::string key;
  bool is_string = false;
  size_t length = 0;  // bytes of the header (value starts there)
};
// Finds the shortest key for which the header is complete (regex ` name="(.*?)" string="(true|false)">`
// semantics). `text` may be incomplete: NeedMore when the header could still complete.
ParamHeader match_param_header(std::string_view text);

// Arguments text of a call from its parameters, as the official parser builds it:
// "{" + join(", ", json(key) + ": " + (string ? json(value) : raw value)) + "}". The streaming
// parser emits exactly these pieces.
std::string arguments_open_piece(bool first_param, std::string_view key, bool is_string);

}  // namespace dsv4::text
