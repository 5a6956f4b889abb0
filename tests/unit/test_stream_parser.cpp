#include <random>

#include <gtest/gtest.h>

#include "core/error.h"
#include "dsv4/chat.h"
#include "tests/unit/chat_test_data.h"
#include "tests/unit/completion_corpus.h"
#include "text/chat_templates.h"
#include "text/completion_parser.h"

namespace {

using dsv4::Delta;
using dsv4::ParsedMessage;
using dsv4::ThinkingMode;

const std::string kEos(dsv4::text::kEos);

struct Sample {
  std::string text;
  ThinkingMode mode;
};

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    const size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += n;
  }
  return true;
}

bool contains_marker(std::string_view s) {
  namespace t = dsv4::text;
  for (std::string_view m : {t::kBos, t::kEos, t::kThinkOpen, t::kThinkClose, t::kDsml})
    if (s.find(m) != std::string_view::npos) return true;
  return false;
}

void expect_same(const ParsedMessage& a, const ParsedMessage& b) {
  EXPECT_EQ(a.reasoning_content, b.reasoning_content);
  EXPECT_EQ(a.content, b.content);
  EXPECT_EQ(a.truncated, b.truncated);
  EXPECT_EQ(a.error, b.error);
  ASSERT_EQ(a.tool_calls.size(), b.tool_calls.size());
  for (size_t k = 0; k < a.tool_calls.size(); ++k) {
    EXPECT_EQ(a.tool_calls[k].name, b.tool_calls[k].name);
    EXPECT_EQ(a.tool_calls[k].arguments, b.tool_calls[k].arguments);
    EXPECT_EQ(a.tool_calls[k].complete, b.tool_calls[k].complete);
  }
}

// Feeds `pieces`, checks the delta invariants and returns the final message.
ParsedMessage stream(const std::vector<std::string_view>& pieces, ThinkingMode mode, bool utf8_input) {
  dsv4::StreamParser p(mode);
  std::vector<Delta> all;
  for (std::string_view piece : pieces) {
    auto d = p.push(piece);
    all.insert(all.end(), d.begin(), d.end());
  }
  auto d = p.finish();
  all.insert(all.end(), d.begin(), d.end());
  ParsedMessage fold;
  for (const Delta& x : all) {
    switch (x.kind) {
      case Delta::Kind::Reasoning: fold.reasoning_content += x.text; break;
      case Delta::Kind::Content: fold.content += x.text; break;
      case Delta::Kind::ToolCallStart:
        EXPECT_EQ(x.tool_index, static_cast<int>(fold.tool_calls.size()));
        fold.tool_calls.push_back({x.text, "", false});
        break;
      case Delta::Kind::ToolArguments:
        EXPECT_EQ(x.tool_index, static_cast<int>(fold.tool_calls.size()) - 1);
        if (!fold.tool_calls.empty()) fold.tool_calls.back().arguments += x.text;
        break;
    }
    if (x.kind == Delta::Kind::Reasoning || x.kind == Delta::Kind::Content) {
      EXPECT_FALSE(contains_marker(x.text)) << x.text;
      EXPECT_FALSE(x.text.empty());
    }
    if (utf8_input) {
      EXPECT_TRUE(valid_utf8(x.text)) << "delta splits a UTF-8 sequence: " << x.text;
    }
  }
  const ParsedMessage& m = p.message();
  EXPECT_EQ(fold.reasoning_content, m.reasoning_content);
  EXPECT_EQ(fold.content, m.content);
  EXPECT_EQ(fold.tool_calls.size(), m.tool_calls.size());
  for (size_t k = 0; k < std::min(fold.tool_calls.size(), m.tool_calls.size()); ++k) {
    EXPECT_EQ(fold.tool_calls[k].name, m.tool_calls[k].name);
    EXPECT_EQ(fold.tool_calls[k].arguments, m.tool_calls[k].arguments);
  }
  return m;
}

std::vector<std::string_view> split_bytes(std::string_view s) {
  std::vector<std::string_view> v;
  for (size_t i = 0; i < s.size(); ++i) v.push_back(s.substr(i, 1));
  return v;
}

std::vector<std::string_view> split_random(std::string_view s, uint32_t seed, size_t max_len) {
  std::mt19937 rng(seed);
  std::vector<std::string_view> v;
  size_t i = 0;
  while (i < s.size()) {
    const size_t n = std::min(s.size() - i, 1 + rng() % max_len);
    v.push_back(s.substr(i, n));
    i += n;
  }
  return v;
}

void check_all_splits(const Sample& s, int random_seeds) {
  SCOPED_TRACE(s.text);
  const bool utf8 = valid_utf8(s.text);
  const ParsedMessage one = dsv4::parse_completion(s.text, s.mode);
  EXPECT_FALSE(contains_marker(one.content));
  EXPECT_FALSE(contains_marker(one.reasoning_content));
  const auto official = dsv4::text::parse_completion_official(s.text, s.mode);
  if (official.error.empty()) {
    EXPECT_EQ(one.to_json(), official.msg.to_json());
    EXPECT_EQ(one.error, "");
  } else {
    EXPECT_EQ(one.error, official.error);
  }
  expect_same(stream({s.text}, s.mode, utf8), one);
  expect_same(stream(split_bytes(s.text), s.mode, utf8), one);
  for (int seed = 1; seed <= random_seeds; ++seed)
    expect_same(stream(split_random(s.text, static_cast<uint32_t>(seed), 1 + seed * 3), s.mode, utf8), one);
}

std::vector<Sample> handmade_samples() {
  const std::string call =
      "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n"
      "<｜DSML｜parameter name=\"city\" string=\"true\">東京 \"quoted\"\n😀</｜DSML｜parameter>\n"
      "<｜DSML｜parameter name=\"days\" string=\"false\">[1, 2.5]</｜DSML｜parameter>\n"
      "</｜DSML｜invoke>\n<｜DSML｜invoke name=\"noargs\">\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>";
  return {
      {"", ThinkingMode::Chat},
      {"", ThinkingMode::Thinking},
      {kEos, ThinkingMode::Chat},
      {"</think>" + kEos, ThinkingMode::Thinking},
      {"思考 é😀</think>答案 ｜ not a marker <｜ also < not" + kEos, ThinkingMode::Thinking},
      {"ends with newlines\n\n" + kEos, ThinkingMode::Chat},
      {"ends with newlines\n\n", ThinkingMode::Chat},
      {"partial marker at the end <｜end▁of", ThinkingMode::Chat},
      {"partial </thi", ThinkingMode::Thinking},
      {"r</think>" + call + kEos, ThinkingMode::Thinking},
      {"r</think>text" + call, ThinkingMode::Thinking},
      {"r" + call + kEos, ThinkingMode::Thinking},  // tool block inside the reasoning
      {"stray <think> and </think> and <｜begin▁of▁sentence｜> and ｜DSML｜ here" + kEos, ThinkingMode::Chat},
      {"a" + kEos + "junk after eos </think>", ThinkingMode::Chat},
      {call + "junk" + kEos, ThinkingMode::Chat},
      {"\n\n<｜DSML｜tool_calls>", ThinkingMode::Chat},
      {"\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n</｜DSML｜invoke>", ThinkingMode::Chat},
      {"\n\n<｜DSML｜tool_calls>x", ThinkingMode::Chat},
      {"\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" string=\"true\">v/｜DSML｜parameter>\n"
       "</｜DSML｜invoke>\n</｜DSML｜tool_calls>" + kEos, ThinkingMode::Chat},
      {"\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" string=\"true\">v<\n/｜DSML｜parameter>\n"
       "</｜DSML｜invoke>\n</｜DSML｜tool_calls>" + kEos, ThinkingMode::Chat},
      {"\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" string=\"false\">{\"x\": \"<｜DSML｜\"}</｜DSML｜parameter>\n"
       "</｜DSML｜invoke>\n</｜DSML｜tool_calls>" + kEos, ThinkingMode::Chat},
  };
}

TEST(StreamParser, HandmadeSamplesAnySplit) {
  for (const Sample& s : handmade_samples()) check_all_splits(s, 8);
}

TEST(StreamParser, OfficialParseCasesAnySplit) {
  const auto cases = dsv4::testing::read_encoding_json("parse_cases.json");
  for (const auto& c : cases)
    check_all_splits({c.at("completion").get<std::string>(),
                      dsv4::parse_thinking_mode(c.at("thinking_mode").get<std::string>())},
                     8);
}

TEST(StreamParser, GeneratedCompletionsAnySplit) {
  for (uint32_t seed = 1; seed <= 150; ++seed) {
    const auto g = dsv4::testing::generate_completion(seed);
    check_all_splits({g.text, g.mode}, 4);
  }
}

// Every prefix of a completion is a possible truncated output (with and without the EOS the
// reference appends): no crash, and the stream agrees with the one-shot parser.
TEST(StreamParser, EveryPrefixOfToolCallCompletions) {
  int done = 0;
  for (uint32_t seed = 1; done < 12 && seed < 500; ++seed) {
    const auto g = dsv4::testing::generate_completion(seed);
    if (g.calls.empty()) continue;
    ++done;
    const size_t block = g.text.find(dsv4::text::kToolCallsStart) + dsv4::text::kToolCallsStart.size();
    const size_t block_end = g.text.rfind(dsv4::text::kToolCallsEnd) + dsv4::text::kToolCallsEnd.size();
    for (size_t n = 0; n <= g.text.size(); ++n) {
      const std::string prefix = g.text.substr(0, n);
      for (const std::string& t : {prefix, prefix + kEos}) {
        SCOPED_TRACE(t);
        const ParsedMessage one = dsv4::parse_completion(t, g.mode);
        const bool utf8 = valid_utf8(t);
        expect_same(stream(split_random(t, static_cast<uint32_t>(n), 5), g.mode, utf8), one);
        if (n >= block && n < block_end) {  // cut inside the tool-call block
          EXPECT_TRUE(one.truncated);
          if (t.size() > prefix.size()) {
            EXPECT_FALSE(one.error.empty());
          }
        }
      }
    }
  }
  EXPECT_EQ(done, 12);
}

TEST(StreamParser, DeltasArriveEarlyAndOpenAIStyle) {
  dsv4::StreamParser p(ThinkingMode::Thinking);
  auto d = p.push("Let me think");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, Delta::Kind::Reasoning);
  EXPECT_EQ(d[0].text, "Let me think");
  d = p.push(".</thi");  // "</thi" is held back
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].text, ".");
  d = p.push("nk>Sure");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].kind, Delta::Kind::Content);
  EXPECT_EQ(d[0].text, "Sure");
  d = p.push("\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"q\" string=\"true\">ab");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0], (Delta{Delta::Kind::ToolCallStart, "f", 0}));
  EXPECT_EQ(d[1], (Delta{Delta::Kind::ToolArguments, "{\"q\": \"ab", 0}));
  d = p.push("\"c</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0], (Delta{Delta::Kind::ToolArguments, "\\\"c\"}", 0}));
  EXPECT_FALSE(p.saw_eos());
  d = p.push(kEos + "ignored");
  EXPECT_TRUE(d.empty());
  EXPECT_TRUE(p.saw_eos());
  p.finish();
  EXPECT_TRUE(p.finished());
  EXPECT_EQ(p.message().content, "Sure");
  ASSERT_EQ(p.message().tool_calls.size(), 1u);
  EXPECT_EQ(p.message().tool_calls[0].arguments, "{\"q\": \"ab\\\"c\"}");
  EXPECT_TRUE(p.message().tool_calls[0].complete);
  EXPECT_EQ(p.message().error, "Invalid format: unexpected text after EOS token");
}

// The official parser reads a parameter value up to "/｜DSML｜parameter" even across an EOS; this
// parser stops at the EOS (generation stops there) and reports the difference as an error.
TEST(StreamParser, EosInsideParameterValueEndsTheMessage) {
  const std::string text =
      "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" string=\"true\">x" + kEos +
      "y</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>" + kEos;
  EXPECT_EQ(dsv4::text::parse_completion_official(text, ThinkingMode::Chat).error, "");
  const ParsedMessage one = dsv4::parse_completion(text, ThinkingMode::Chat);
  EXPECT_EQ(one.error, "Invalid tool call format: EOS token inside a tool call");
  EXPECT_TRUE(one.truncated);
  ASSERT_EQ(one.tool_calls.size(), 1u);
  EXPECT_EQ(one.tool_calls[0].arguments, "{\"a\": \"x");
  EXPECT_FALSE(one.tool_calls[0].complete);
  expect_same(stream(split_bytes(text), ThinkingMode::Chat, true), one);
}

TEST(StreamParser, PushAfterFinishIsAnError) {
  dsv4::StreamParser p(ThinkingMode::Chat);
  p.finish();
  EXPECT_THROW(p.push("x"), dsv4::Error);
}

}  // namespace
