#include <gtest/gtest.h>

#include "core/error.h"
#include "dsv4/chat.h"
#include "tests/unit/chat_test_data.h"
#include "text/chat_encoding.h"
#include "text/chat_templates.h"

namespace {

using dsv4::ordered_json;
using dsv4::testing::encoding_data_path;
using dsv4::testing::read_encoding_json;
using dsv4::testing::read_text_file;

dsv4::EncodeOptions options_of(const ordered_json& c) {
  dsv4::EncodeOptions o;
  o.thinking_mode = dsv4::parse_thinking_mode(c.at("thinking_mode").get<std::string>());
  const ordered_json& kw = c.at("kwargs");
  if (kw.contains("drop_thinking")) o.drop_thinking = kw["drop_thinking"].get<bool>();
  if (kw.contains("add_default_bos_token")) o.add_default_bos_token = kw["add_default_bos_token"].get<bool>();
  if (kw.contains("reasoning_effort") && !kw["reasoning_effort"].is_null())
    o.reasoning_effort = dsv4::parse_reasoning_effort(kw["reasoning_effort"].get<std::string>());
  if (c.contains("context")) o.context = c["context"];
  return o;
}

TEST(ChatEncoding, AllEncodeCasesByteExact) {
  const ordered_json cases = read_encoding_json("encode_cases.json");
  ASSERT_EQ(cases.size(), 26u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const std::string got = dsv4::encode_messages(c.at("messages"), options_of(c));
    EXPECT_EQ(got, c.at("expected_prompt").get<std::string>());
  }
}

TEST(ChatEncoding, OfficialTestInput1) {
  ordered_json in = read_encoding_json("test_input_1.json");
  ordered_json messages = in.at("messages");
  messages[0]["tools"] = in.at("tools");
  dsv4::EncodeOptions o;
  o.thinking_mode = dsv4::ThinkingMode::Thinking;
  EXPECT_EQ(dsv4::encode_messages(messages, o), read_text_file(encoding_data_path("test_output_1.txt")));
}

TEST(ChatEncoding, TemplateConstantsMatchDataFiles) {
  EXPECT_EQ(dsv4::text::kToolsTemplate, read_text_file(encoding_data_path("templates/tools_template.txt")));
  EXPECT_EQ(dsv4::text::kReasoningEffortMaxPrefix,
            read_text_file(encoding_data_path("templates/reasoning_effort_max_prefix.txt")));
  EXPECT_EQ(dsv4::text::kResponseFormatTemplate,
            read_text_file(encoding_data_path("templates/response_format_template.txt")));
}

TEST(ChatEncoding, MarkerBytes) {
  EXPECT_EQ(dsv4::text::kBos, "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
  EXPECT_EQ(dsv4::text::kEos, "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
  EXPECT_EQ(dsv4::text::kDsml, "\xef\xbd\x9c" "DSML\xef\xbd\x9c");
  EXPECT_EQ(dsv4::text::kUserTag, "<\xef\xbd\x9c" "User\xef\xbd\x9c>");
}

// Incremental rendering: prompt(context) + encode(new, context) == prompt(context + new) when the
// context ends with a finished assistant turn (chat mode).
TEST(ChatEncoding, ContextExtendsPromptIncrementally) {
  const ordered_json all = ordered_json::parse(R"([
    {"role": "system", "content": "S"},
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "Hi!"},
    {"role": "user", "content": "How are you?"}])");
  ordered_json ctx = ordered_json::array({all[0], all[1], all[2]});
  ordered_json tail = ordered_json::array({all[3]});
  dsv4::EncodeOptions o;
  const std::string head = dsv4::encode_messages(ctx, o);
  o.context = ctx;
  EXPECT_EQ(head + dsv4::encode_messages(tail, o), dsv4::encode_messages(all, {}));
}

TEST(ChatEncoding, ToolResultsSortedAcrossContext) {
  // The tool calls are in the context, the results in the new messages (reverse order).
  const ordered_json ctx = ordered_json::parse(R"([
    {"role": "user", "content": "q"},
    {"role": "assistant", "content": "", "tool_calls": [
      {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
      {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]}])");
  const ordered_json msgs = ordered_json::parse(R"([
    {"role": "tool", "tool_call_id": "b", "content": "B"},
    {"role": "tool", "tool_call_id": "a", "content": "A"}])");
  dsv4::EncodeOptions o;
  o.context = ctx;
  EXPECT_EQ(dsv4::encode_messages(msgs, o),
            "<｜User｜><tool_result>A</tool_result>\n\n<tool_result>B</tool_result><｜Assistant｜></think>");
}

TEST(ChatEncoding, UserTextAfterToolResultsMergesIntoOneTurn) {
  const ordered_json msgs = ordered_json::parse(R"([
    {"role": "tool", "tool_call_id": "x", "content": "R"},
    {"role": "user", "content": "thanks"}])");
  EXPECT_EQ(dsv4::encode_messages(msgs, {}),
            "<｜begin▁of▁sentence｜><｜User｜><tool_result>R</tool_result>\n\nthanks<｜Assistant｜></think>");
}

TEST(ChatEncoding, ToolArgumentsAsDecodedObject) {
  const ordered_json msgs = ordered_json::parse(R"([
    {"role": "user", "content": "q"},
    {"role": "assistant", "content": "", "tool_calls": [
      {"id": "x", "type": "function", "function": {"name": "f", "arguments": {"s": "v", "n": 2.50}}}]}])");
  const std::string got = dsv4::encode_messages(msgs, {});
  EXPECT_NE(got.find("<｜DSML｜parameter name=\"s\" string=\"true\">v</｜DSML｜parameter>\n"
                     "<｜DSML｜parameter name=\"n\" string=\"false\">2.5</｜DSML｜parameter>"),
            std::string::npos)
      << got;
}

TEST(ChatEncoding, BigIntegerToolArgumentKeptExactly) {
  const ordered_json msgs = ordered_json::parse(R"([
    {"role": "user", "content": "q"},
    {"role": "assistant", "content": "", "tool_calls": [
      {"type": "function", "function": {"name": "f", "arguments": "{\"n\": 123456789012345678901234567890, \"x\": 1E400}"}}]}])");
  const std::string got = dsv4::encode_messages(msgs, {});
  EXPECT_NE(got.find(">123456789012345678901234567890</"), std::string::npos) << got;
  EXPECT_NE(got.find(">Infinity</"), std::string::npos) << got;
}

void expect_error(const ordered_json& msgs, const std::string& needle, const dsv4::EncodeOptions& o = {}) {
  try {
    dsv4::encode_messages(msgs, o);
    ADD_FAILURE() << "no error for " << msgs.dump();
  } catch (const dsv4::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(ChatEncoding, BadInputNamesIndexAndField) {
  expect_error(ordered_json::parse(R"({"role": "user"})"), "messages: expected an array");
  expect_error(ordered_json::parse(R"([{"role": "user", "content": "a"}, 3])"), "messages[1]: expected an object");
  expect_error(ordered_json::parse(R"([{"content": "a"}])"), "messages[0].role: missing");
  expect_error(ordered_json::parse(R"([{"role": "robot", "content": "a"}])"), "messages[0].role: unknown role \"robot\"");
  expect_error(ordered_json::parse(R"([{"role": "user", "content": 5}])"), "messages[0].content: expected a string, got number");
  expect_error(ordered_json::parse(R"([{"role": "user", "content": [{"type": "text", "text": "a"}]}])"),
               "messages[0].content: expected a string, got array");
  expect_error(ordered_json::parse(R"([{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": {}}])"),
               "messages[1].tool_calls: expected an array, got object");
  expect_error(ordered_json::parse(R"([{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}])"),
               "messages[0].tool_calls[0].function.name: expected a string");
  expect_error(ordered_json::parse(R"([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": 3}}]}])"),
               "messages[0].tool_calls[0].function.arguments: expected a JSON string, got number");
  expect_error(ordered_json::parse(R"([{"role": "assistant", "tool_calls": [{"type": "function"}]}])"),
               "messages[0].tool_calls[0].function: missing");
  expect_error(ordered_json::parse(R"([{"role": "system", "content": "", "tools": [{"type": "function"}]}])"),
               "messages[0].tools[0].function: expected an object");
  expect_error(ordered_json::parse(R"([{"role": "tool", "content": 1.5}])"), "messages[0].content: expected a string or an array");
  expect_error(ordered_json::parse(R"([{"role": "developer", "content": ""}])"),
               "messages[0].content: a developer message needs non-empty content");
  expect_error(ordered_json::parse(R"([{"role": "user", "content": "a", "task": "dance"}])"),
               "messages[0].task: unknown task \"dance\"");
  dsv4::EncodeOptions o;
  o.context = ordered_json::parse(R"([{"role": "user", "content": false}])");
  expect_error(ordered_json::parse(R"([{"role": "user", "content": "a"}])"), "context[0].content", o);
}

TEST(ChatEncoding, OptionStrings) {
  EXPECT_EQ(dsv4::parse_thinking_mode("thinking"), dsv4::ThinkingMode::Thinking);
  EXPECT_EQ(dsv4::parse_reasoning_effort("max"), dsv4::ReasoningEffort::Max);
  EXPECT_EQ(dsv4::parse_reasoning_effort(""), dsv4::ReasoningEffort::None);
  EXPECT_THROW(dsv4::parse_thinking_mode("think"), dsv4::Error);
  EXPECT_THROW(dsv4::parse_reasoning_effort("low"), dsv4::Error);
}

}  // namespace
