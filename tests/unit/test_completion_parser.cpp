#include <gtest/gtest.h>

#include "core/error.h"
#include "dsv4/chat.h"
#include "tests/unit/chat_test_data.h"
#include "tests/unit/completion_corpus.h"
#include "text/chat_templates.h"
#include "text/completion_parser.h"

namespace {

using dsv4::ordered_json;
using dsv4::ThinkingMode;

const std::string kEos(dsv4::text::kEos);

bool has_marker(const std::string& s) {
  namespace t = dsv4::text;
  for (std::string_view m : {t::kBos, t::kEos, t::kThinkOpen, t::kThinkClose, t::kDsml})
    if (s.find(m) != std::string::npos) return true;
  return false;
}

TEST(CompletionParser, OfficialParseCases) {
  const ordered_json cases = dsv4::testing::read_encoding_json("parse_cases.json");
  ASSERT_EQ(cases.size(), 9u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const std::string text = c.at("completion").get<std::string>();
    const ThinkingMode mode = dsv4::parse_thinking_mode(c.at("thinking_mode").get<std::string>());
    const dsv4::ParsedMessage lenient = dsv4::parse_completion(text, mode);
    if (c.contains("expected")) {
      EXPECT_EQ(dsv4::parse_completion_strict(text, mode).to_json(), c["expected"]);
      EXPECT_EQ(lenient.to_json(), c["expected"]);
      EXPECT_EQ(lenient.error, "");
      EXPECT_FALSE(lenient.truncated);
    } else {
      // "AssertionError: <message>" in Python; the same message here.
      const std::string expected = c.at("expected_error").get<std::string>();
      const std::string message = expected.substr(expected.find(": ") + 2);
      try {
        dsv4::parse_completion_strict(text, mode);
        ADD_FAILURE() << "accepted";
      } catch (const dsv4::Error& e) {
        EXPECT_EQ(std::string(e.what()), message);
      }
      EXPECT_EQ(lenient.error, message);
      EXPECT_FALSE(has_marker(lenient.content));
      EXPECT_FALSE(has_marker(lenient.reasoning_content));
    }
  }
}

TEST(CompletionParser, RecoveredFieldsOfOfficialErrorCases) {
  auto p = dsv4::parse_completion("reasoning without end" + kEos, ThinkingMode::Thinking);
  EXPECT_EQ(p.reasoning_content, "reasoning without end");
  EXPECT_EQ(p.content, "");
  EXPECT_TRUE(p.truncated);
  p = dsv4::parse_completion("<think>x" + kEos, ThinkingMode::Chat);
  EXPECT_EQ(p.content, "x");
  EXPECT_FALSE(p.truncated);
  p = dsv4::parse_completion("no eos here", ThinkingMode::Chat);
  EXPECT_EQ(p.content, "no eos here");
}

// Encoder output of an assistant turn parses back to the same message (arguments in Python
// json.dumps form).
TEST(CompletionParser, ParsesWhatTheEncoderRenders) {
  int checked = 0, with_calls = 0;
  for (uint32_t seed = 1; seed <= 400; ++seed) {
    const auto g = dsv4::testing::generate_completion(seed);
    if (has_marker(g.content) || has_marker(g.reasoning)) continue;
    SCOPED_TRACE(g.text);
    const dsv4::ParsedMessage p = dsv4::parse_completion_strict(g.text, g.mode);
    EXPECT_EQ(p.content, g.content);
    EXPECT_EQ(p.reasoning_content, g.reasoning);
    ASSERT_EQ(p.tool_calls.size(), g.calls.size());
    for (size_t k = 0; k < g.calls.size(); ++k) {
      EXPECT_EQ(p.tool_calls[k].name, g.calls[k].first);
      EXPECT_EQ(p.tool_calls[k].arguments, g.calls[k].second);
    }
    const dsv4::ParsedMessage l = dsv4::parse_completion(g.text, g.mode);
    EXPECT_EQ(l.to_json(), p.to_json());
    EXPECT_EQ(l.error, "");
    ++checked;
    with_calls += !g.calls.empty();
  }
  EXPECT_GT(checked, 100);
  EXPECT_GT(with_calls, 30);
}

const char* kCall =
    "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n"
    "<｜DSML｜parameter name=\"a\" string=\"true\">x</｜DSML｜parameter>\n"
    "</｜DSML｜invoke>\n</｜DSML｜tool_calls>";

TEST(CompletionParser, BlockWithoutEosAccepted) {
  const auto p = dsv4::parse_completion_strict(std::string("ok") + kCall, ThinkingMode::Chat);
  EXPECT_EQ(p.content, "ok");
  ASSERT_EQ(p.tool_calls.size(), 1u);
  EXPECT_EQ(p.tool_calls[0].arguments, "{\"a\": \"x\"}");
}

TEST(CompletionParser, StrictErrors) {
  struct Case {
    std::string text;
    ThinkingMode mode;
    const char* error;
  };
  const std::string call(kCall);
  const std::vector<Case> cases = {
      {"a" + kEos + "b", ThinkingMode::Chat, "Invalid format: unexpected text after EOS token"},
      {call + "x" + kEos, ThinkingMode::Chat, "Invalid format: unexpected text after the tool-call block"},
      {"r" + call + kEos, ThinkingMode::Thinking, "Invalid thinking format: missing </think>"},
      {"r</think>a</think>" + kEos, ThinkingMode::Thinking, "Unexpected special token '</think>' in content"},
      {"r<think></think>a" + kEos, ThinkingMode::Thinking, "Unexpected special token '<think>' in reasoning"},
      {"\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" string=\"true\">1</｜DSML｜parameter>\n"
       "<｜DSML｜parameter name=\"a\" string=\"true\">2</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>" + kEos,
       ThinkingMode::Chat, "Invalid tool call format: duplicate parameter \"a\""},
      {"\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke nam=\"f\">\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>" + kEos,
       ThinkingMode::Chat, "Invalid tool call format: bad invoke header"},
      {"\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" string=\"yes\">1</｜DSML｜parameter>\n"
       "</｜DSML｜invoke>\n</｜DSML｜tool_calls>" + kEos,
       ThinkingMode::Chat, "Invalid tool call format: bad parameter"},
      {"\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" string=\"true\">1" + kEos,
       ThinkingMode::Chat, "Invalid tool call format: bad parameter"},
      {"\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n</｜DSML｜invoke>" + kEos, ThinkingMode::Chat,
       "Invalid tool call format: expected \">\\n\" before an invoke or the block end"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(dsv4::text::parse_completion_official(c.text, c.mode).error, c.error);
    EXPECT_EQ(dsv4::parse_completion(c.text, c.mode).error, c.error);
    EXPECT_THROW(dsv4::parse_completion_strict(c.text, c.mode), dsv4::Error);
  }
}

// Regex corner cases the official parser accepts.
TEST(CompletionParser, HeaderRegexSemantics) {
  using dsv4::text::match_invoke_head;
  using dsv4::text::match_param_header;
  EXPECT_EQ(match_invoke_head(" name=\"f\">\n").value_or("?"), "f");
  EXPECT_EQ(match_invoke_head("\t\u3000 name=\"a\">\nb\">\n").value_or("?"), "a\">\nb");
  EXPECT_EQ(match_invoke_head(" name=\"f\">\n\n").value_or("?"), "f");  // $ before a final newline
  EXPECT_FALSE(match_invoke_head(" name=\"f\">\nx").has_value());
  EXPECT_FALSE(match_invoke_head(" name=\"f\">").has_value());
  auto h = match_param_header(" name=\"k\" string=\"x\" string=\"false\">v<");
  ASSERT_EQ(h.status, dsv4::text::ParamHeader::Status::Ok);
  EXPECT_EQ(h.key, "k\" string=\"x");
  EXPECT_FALSE(h.is_string);
  EXPECT_EQ(match_param_header(" name=\"k\" string=\"tr").status, dsv4::text::ParamHeader::Status::NeedMore);
  EXPECT_EQ(match_param_header(" nam").status, dsv4::text::ParamHeader::Status::NeedMore);
  EXPECT_EQ(match_param_header("name=").status, dsv4::text::ParamHeader::Status::Bad);
  // A value ending in "<\n" before "/｜DSML｜parameter" (no "<" directly before it).
  const std::string text =
      "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" string=\"true\">v<\n/｜DSML｜parameter>\n"
      "</｜DSML｜invoke>\n</｜DSML｜tool_calls>" + kEos;
  const auto p = dsv4::parse_completion_strict(text, ThinkingMode::Chat);
  ASSERT_EQ(p.tool_calls.size(), 1u);
  EXPECT_EQ(p.tool_calls[0].arguments, "{\"a\": \"v\"}");
  EXPECT_EQ(dsv4::parse_completion(text, ThinkingMode::Chat).to_json(), p.to_json());
}

// Generation cut at the length limit (the reference appends EOS): clear result, no crash.
TEST(CompletionParser, TruncatedOutput) {
  auto p = dsv4::parse_completion("thinking about it" + kEos, ThinkingMode::Thinking);
  EXPECT_TRUE(p.truncated);
  EXPECT_FALSE(p.error.empty());
  EXPECT_EQ(p.reasoning_content, "thinking about it");
  const std::string cut =
      "r</think>c\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" string=\"true\">hal";
  p = dsv4::parse_completion(cut + kEos, ThinkingMode::Thinking);
  EXPECT_TRUE(p.truncated);
  EXPECT_FALSE(p.error.empty());
  EXPECT_EQ(p.content, "c");
  ASSERT_EQ(p.tool_calls.size(), 1u);
  EXPECT_EQ(p.tool_calls[0].name, "f");
  EXPECT_FALSE(p.tool_calls[0].complete);
  EXPECT_EQ(p.tool_calls[0].arguments, "{\"a\": \"hal");
  // A chat answer cut at the limit parses cleanly as content.
  p = dsv4::parse_completion("partial answ" + kEos, ThinkingMode::Chat);
  EXPECT_FALSE(p.truncated);
  EXPECT_EQ(p.error, "");
  EXPECT_EQ(p.content, "partial answ");
}

}  // namespace
