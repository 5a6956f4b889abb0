// OpenAI request parsing/validation, error JSON, SSE framing, and the response builders
// (non-streaming and chunk streams) fed with scripted completion text.
#include <gtest/gtest.h>

#include "http.h"
#include "openai.h"

using namespace dsv4;
using namespace dsv4::server;

namespace {

ServerLimits limits() {
  ServerLimits l;
  l.model_name = "tiny";
  l.max_context = 100;
  l.vocab_size = 1000;
  return l;
}

json body(const char* text) { return parse_body(text); }

// Runs `fn` and returns the ApiError it throws (fails the test when it does not throw).
template <typename Fn>
ApiError error_of(Fn&& fn) {
  try {
    fn();
  } catch (const ApiException& e) {
    return e.error;
  }
  ADD_FAILURE() << "no ApiException thrown";
  return {};
}

ApiError chat_error(const char* text) {
  return error_of([&] { parse_chat_request(body(text), limits()); });
}

const std::string kEos = "<｜end▁of▁sentence｜>";

}  // namespace

TEST(OpenAIRequest, ParsesChatFields) {
  const ChatRequest r = parse_chat_request(body(R"({
      "model": "tiny", "messages": [{"role": "system", "content": "be brief"},
                                    {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]}],
      "temperature": 0, "top_p": 0.5, "seed": 7, "max_completion_tokens": 12, "stop": ["x", ""],
      "stream": true, "stream_options": {"include_usage": true}, "presence_penalty": 1.5})"),
                                           limits());
  EXPECT_EQ(r.model, "tiny");
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.0f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.presence_penalty, 1.5f);
  ASSERT_TRUE(r.sampling.seed.has_value());
  EXPECT_EQ(*r.sampling.seed, 7u);
  EXPECT_EQ(r.max_tokens.value(), 12);
  EXPECT_EQ(r.stop, std::vector<std::string>{"x"});
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.mode, ThinkingMode::Chat);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[1]["content"], "hi there");
  EXPECT_FALSE(r.has_tools);
}

TEST(OpenAIRequest, DefaultsComeFromServerLimits) {
  ServerLimits l = limits();
  l.defaults.temperature = 0.6f;
  const ChatRequest r = parse_chat_request(body(R"({"messages": [{"role": "user", "content": "x"}]})"), l);
  EXPECT_EQ(r.model, "tiny");  // model may be omitted
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.6f);
  EXPECT_FALSE(r.max_tokens.has_value());
}

TEST(OpenAIRequest, ThinkingSwitches) {
  auto mode = [](const char* text) { return parse_chat_request(body(text), limits()); };
  const char* msgs = R"("messages": [{"role": "user", "content": "x"}])";
  auto with = [&](const std::string& extra) {
    std::string s = "{";
    s.append(msgs).append(",").append(extra).append("}");
    return s;
  };
  EXPECT_EQ(mode(with(R"("reasoning_effort": "high")").c_str()).mode, ThinkingMode::Thinking);
  const ChatRequest mx = mode(with(R"("reasoning_effort": "max")").c_str());
  EXPECT_EQ(mx.mode, ThinkingMode::Thinking);
  EXPECT_EQ(mx.effort, ReasoningEffort::Max);
  EXPECT_EQ(mode(with(R"("chat_template_kwargs": {"thinking": true})").c_str()).mode, ThinkingMode::Thinking);
  EXPECT_EQ(mode(with(R"("reasoning_effort": "high", "chat_template_kwargs": {"thinking": false})").c_str()).mode,
            ThinkingMode::Chat);
  EXPECT_EQ(mode(with(R"("thinking": {"type": "enabled"})").c_str()).mode, ThinkingMode::Thinking);
  EXPECT_EQ(chat_error(with(R"("reasoning_effort": "extreme")").c_str()).param, "reasoning_effort");
}

TEST(OpenAIRequest, ToolsAttachToSystemMessage) {
  const char* tools = R"("tools": [{"type": "function", "function": {"name": "get_weather", "description": "d",
                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])";
  const ChatRequest a = parse_chat_request(
      body((std::string(R"({"messages": [{"role": "user", "content": "weather?"}],)") + tools + "}").c_str()), limits());
  EXPECT_TRUE(a.has_tools);
  ASSERT_EQ(a.messages.size(), 2u);  // a system message was created in front
  EXPECT_EQ(a.messages[0]["role"], "system");
  EXPECT_EQ(a.messages[0]["tools"][0]["function"]["name"], "get_weather");
  // parameters keep their key order (the encoder serialises in insertion order)
  EXPECT_EQ(a.messages[0]["tools"][0]["function"].begin().key(), "name");
  const ChatRequest b = parse_chat_request(
      body((std::string(R"({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}],)") +
            tools + R"(, "tool_choice": "none"})").c_str()),
      limits());
  EXPECT_FALSE(b.has_tools);
  EXPECT_FALSE(b.messages[0].contains("tools"));
  EXPECT_EQ(chat_error((std::string(R"({"messages": [{"role": "user", "content": "q"}],)") + tools +
                        R"(, "tool_choice": {"type": "function", "function": {"name": "nope"}}})").c_str()).param,
            "tool_choice");
}

TEST(OpenAIRequest, AssistantToolCallsAndToolResults) {
  const ChatRequest r = parse_chat_request(body(R"({"messages": [
      {"role": "user", "content": "weather in Paris?"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "18C"}]})"),
                                           limits());
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[1]["content"], "");
  EXPECT_EQ(r.messages[1]["tool_calls"][0]["function"]["arguments"], "{\"city\": \"Paris\"}");
  EXPECT_EQ(r.messages[2]["tool_call_id"], "call_1");
  const std::string prompt = render_chat_prompt(r);
  EXPECT_NE(prompt.find("<tool_result>18C</tool_result>"), std::string::npos);
  EXPECT_NE(prompt.find("invoke name=\"get_weather\""), std::string::npos);
  EXPECT_EQ(prompt.substr(prompt.size() - std::string("<｜Assistant｜></think>").size()), "<｜Assistant｜></think>");
}

TEST(OpenAIRequest, RejectsBadRequestsWithParam) {
  EXPECT_EQ(error_of([] { parse_body("{nope"); }).status, 400);
  EXPECT_EQ(error_of([] { parse_body("[1, 2]"); }).status, 400);
  EXPECT_EQ(error_of([] { parse_body(""); }).status, 400);
  EXPECT_EQ(chat_error(R"({})").param, "messages");
  EXPECT_EQ(chat_error(R"({"messages": []})").param, "messages");
  EXPECT_EQ(chat_error(R"({"messages": "hi"})").code, "invalid_type");
  const ApiError role = chat_error(R"({"messages": [{"role": "wizard", "content": "x"}]})");
  EXPECT_EQ(role.status, 400);
  EXPECT_EQ(role.param, "messages[0].role");
  EXPECT_NE(role.message.find("wizard"), std::string::npos);
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": 5}]})").param, "messages[0].content");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user"}]})").param, "messages[0].content");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]})").param,
            "messages");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"})").param, "temperature");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": "x"}], "temperature": 3})").code, "invalid_value");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": "x"}], "top_p": 0})").param, "top_p");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})").param, "max_tokens");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 1.5})").param, "max_tokens");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": "x"}], "n": 2})").param, "n");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": "x"}], "stop": [1]})").param, "stop[0]");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": "x"}], "stream": "yes"})").param, "stream");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]})").param,
            "tools[0].function");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})").param,
            "messages[0].content[0].type");
  const ApiError model = chat_error(R"({"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]})");
  EXPECT_EQ(model.status, 404);
  EXPECT_EQ(model.code, "model_not_found");
}

TEST(OpenAIRequest, CompletionPrompts) {
  const CompletionRequest a = parse_completion_request(body(R"({"prompt": "Once upon"})"), limits());
  EXPECT_EQ(a.prompt, "Once upon");
  EXPECT_EQ(a.max_tokens.value(), 16);  // OpenAI's default for /v1/completions
  const CompletionRequest b = parse_completion_request(body(R"({"prompt": [[5, 6, 7]], "max_tokens": 3})"), limits());
  EXPECT_TRUE(b.prompt_is_tokens);
  EXPECT_EQ(b.prompt_tokens, (std::vector<int32_t>{5, 6, 7}));
  EXPECT_EQ(error_of([] { parse_completion_request(body(R"({"prompt": [5, 1000]})"), limits()); }).param, "prompt");
  EXPECT_EQ(error_of([] { parse_completion_request(body(R"({"prompt": ["a", "b"]})"), limits()); }).param, "prompt");
  EXPECT_EQ(error_of([] { parse_completion_request(body(R"({})"), limits()); }).param, "prompt");
  EXPECT_EQ(error_of([] { parse_completion_request(body(R"({"prompt": "x", "echo": true})"), limits()); }).param, "echo");
}

TEST(OpenAIRequest, ContextCheck) {
  EXPECT_EQ(check_context(10, std::nullopt, limits()), -1);
  EXPECT_EQ(check_context(10, 90, limits()), 90);
  const ApiError e = error_of([] { check_context(10, 91, limits()); });
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.code, "context_length_exceeded");
  EXPECT_NE(e.message.find("100"), std::string::npos);
  EXPECT_EQ(error_of([] { check_context(100, std::nullopt, limits()); }).code, "context_length_exceeded");
}

TEST(OpenAIResponse, ErrorJsonShape) {
  const json j = ApiError(401, "bad key", "invalid_request_error", {}, "invalid_api_key").to_json();
  EXPECT_EQ(j["error"]["message"], "bad key");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_TRUE(j["error"]["param"].is_null());
  EXPECT_EQ(j["error"]["code"], "invalid_api_key");
}

TEST(Sse, FramingAndApiKey) {
  EXPECT_EQ(sse_event("{\"a\":1}"), "data: {\"a\":1}\n\n");
  EXPECT_EQ(sse_event("two\nlines"), "data: two\ndata: lines\n\n");
  EXPECT_EQ(sse_json(json{{"x", "a\nb"}}), "data: {\"x\":\"a\\nb\"}\n\n");  // JSON escapes the newline
  EXPECT_EQ(std::string(kSseDone), "data: [DONE]\n\n");
  EXPECT_TRUE(api_key_ok("", "", ""));
  EXPECT_TRUE(api_key_ok("k1", "Bearer k1", ""));
  EXPECT_TRUE(api_key_ok("k1", "", "k1"));
  EXPECT_FALSE(api_key_ok("k1", "Bearer k12", ""));
  EXPECT_FALSE(api_key_ok("k1", "k1", ""));
  EXPECT_FALSE(api_key_ok("k1", "", ""));
}

TEST(OpenAIResponse, ChatCompletionWithToolCalls) {
  const std::string text =
      "Let me check.\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n"
      "<｜DSML｜parameter name=\"city\" string=\"true\">Paris</｜DSML｜parameter>\n"
      "<｜DSML｜parameter name=\"days\" string=\"false\">3</｜DSML｜parameter>\n"
      "</｜DSML｜invoke>\n</｜DSML｜tool_calls>" + kEos;
  const ParsedMessage msg = parse_completion(text, ThinkingMode::Chat);
  Usage u{10, 5, 2};
  const json r = chat_completion_response("chatcmpl-abc", "tiny", 123, msg, FinishReason::Eos, u);
  EXPECT_EQ(r["object"], "chat.completion");
  const json& c = r["choices"][0];
  EXPECT_EQ(c["finish_reason"], "tool_calls");
  EXPECT_EQ(c["message"]["content"], "Let me check.");
  EXPECT_EQ(c["message"]["tool_calls"][0]["id"], "call_abc_0");
  EXPECT_EQ(c["message"]["tool_calls"][0]["type"], "function");
  EXPECT_EQ(c["message"]["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(c["message"]["tool_calls"][0]["function"]["arguments"], "{\"city\": \"Paris\", \"days\": 3}");
  EXPECT_EQ(r["usage"]["total_tokens"], 15);
  EXPECT_EQ(r["usage"]["prompt_tokens_details"]["cached_tokens"], 2);
}

TEST(OpenAIResponse, ChatCompletionThinkingAndLength) {
  const ParsedMessage msg = parse_completion("I should greet.</think>Hello!" + kEos, ThinkingMode::Thinking);
  const json r = chat_completion_response("chatcmpl-x", "tiny", 1, msg, FinishReason::Length, {});
  EXPECT_EQ(r["choices"][0]["message"]["reasoning_content"], "I should greet.");
  EXPECT_EQ(r["choices"][0]["message"]["content"], "Hello!");
  EXPECT_FALSE(r["choices"][0]["message"].contains("tool_calls"));
  EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
}

namespace {

// Feeds `text` to a stream builder in pieces of `step` bytes and reassembles the chunks the way an
// OpenAI client does.
struct Reassembled {
  std::string role, reasoning, content;
  std::vector<std::string> names, args, ids;
  std::string finish;
  json usage;
  size_t chunks = 0;
};

Reassembled stream_text(const std::string& text, size_t step, ThinkingMode mode, FinishReason fr, bool usage) {
  ChatStreamBuilder b("chatcmpl-s1", "tiny", 5, mode, usage);
  std::vector<json> all;
  for (size_t i = 0; i < text.size(); i += step)
    for (auto& c : b.push(std::string_view(text).substr(i, step))) all.push_back(std::move(c));
  for (auto& c : b.finish(fr, Usage{7, 9, 0})) all.push_back(std::move(c));
  Reassembled r;
  r.chunks = all.size();
  for (const json& c : all) {
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    EXPECT_EQ(c["id"], "chatcmpl-s1");
    if (c.contains("usage") && !c["usage"].is_null()) r.usage = c["usage"];
    if (c["choices"].empty()) continue;
    const json& ch = c["choices"][0];
    if (!ch["finish_reason"].is_null()) r.finish = ch["finish_reason"];
    const json& d = ch["delta"];
    if (d.contains("role")) r.role = d["role"];
    if (d.contains("reasoning_content")) r.reasoning += d["reasoning_content"].get<std::string>();
    if (d.contains("content")) r.content += d["content"].get<std::string>();
    if (d.contains("tool_calls")) {
      for (const json& t : d["tool_calls"]) {
        const size_t k = t["index"].get<size_t>();
        if (k >= r.names.size()) {
          r.names.resize(k + 1);
          r.args.resize(k + 1);
          r.ids.resize(k + 1);
        }
        if (t.contains("id")) r.ids[k] = t["id"];
        if (t["function"].contains("name")) r.names[k] = t["function"]["name"];
        if (t["function"].contains("arguments")) r.args[k] += t["function"]["arguments"].get<std::string>();
      }
    }
  }
  return r;
}

}  // namespace

TEST(ChatStream, ReasoningThenContentAnySplit) {
  const std::string text = "Think about it.</think>The answer is 42.";
  for (size_t step : {1u, 3u, 7u, 100u}) {
    const Reassembled r = stream_text(text, step, ThinkingMode::Thinking, FinishReason::Eos, false);
    EXPECT_EQ(r.role, "assistant");
    EXPECT_EQ(r.reasoning, "Think about it.") << "step " << step;
    EXPECT_EQ(r.content, "The answer is 42.") << "step " << step;
    EXPECT_EQ(r.finish, "stop");
    EXPECT_TRUE(r.usage.is_null());
  }
}

TEST(ChatStream, ToolCallDeltasAndUsageChunk) {
  const std::string text =
      "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n"
      "<｜DSML｜parameter name=\"city\" string=\"true\">Paris</｜DSML｜parameter>\n</｜DSML｜invoke>\n"
      "<｜DSML｜invoke name=\"get_time\">\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>";
  for (size_t step : {1u, 5u, 1000u}) {
    const Reassembled r = stream_text(text, step, ThinkingMode::Chat, FinishReason::Eos, true);
    ASSERT_EQ(r.names.size(), 2u) << "step " << step;
    EXPECT_EQ(r.names[0], "get_weather");
    EXPECT_EQ(r.args[0], "{\"city\": \"Paris\"}");
    EXPECT_EQ(r.ids[0], "call_s1_0");
    EXPECT_EQ(r.names[1], "get_time");
    EXPECT_EQ(r.args[1], "{}");
    EXPECT_EQ(r.content, "");
    EXPECT_EQ(r.finish, "tool_calls");
    EXPECT_EQ(r.usage["prompt_tokens"], 7);
    EXPECT_EQ(r.usage["completion_tokens"], 9);
  }
}

TEST(ChatStream, StreamMatchesNonStreaming) {
  const std::string text = "Sure.\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n"
                           "<｜DSML｜parameter name=\"x\" string=\"false\">[1, 2]</｜DSML｜parameter>\n"
                           "</｜DSML｜invoke>\n</｜DSML｜tool_calls>";
  const Reassembled r = stream_text(text, 2, ThinkingMode::Chat, FinishReason::Eos, false);
  const json full = chat_completion_response("chatcmpl-s1", "tiny", 5, parse_completion(text + kEos, ThinkingMode::Chat),
                                             FinishReason::Eos, {});
  const json& m = full["choices"][0]["message"];
  EXPECT_EQ(r.content, m["content"].get<std::string>());
  EXPECT_EQ(r.names[0], m["tool_calls"][0]["function"]["name"].get<std::string>());
  EXPECT_EQ(r.args[0], m["tool_calls"][0]["function"]["arguments"].get<std::string>());
  EXPECT_EQ(r.ids[0], m["tool_calls"][0]["id"].get<std::string>());
}

TEST(ChatStream, LengthCutInsideReasoning) {
  const Reassembled r = stream_text("still thinking about", 4, ThinkingMode::Thinking, FinishReason::Length, false);
  EXPECT_EQ(r.reasoning, "still thinking about");
  EXPECT_EQ(r.content, "");
  EXPECT_EQ(r.finish, "length");
}

TEST(OpenAIResponse, TextCompletionShapes) {
  const json r = text_completion_response("cmpl-1", "tiny", 9, "abc", FinishReason::Stop, Usage{3, 4, 0});
  EXPECT_EQ(r["object"], "text_completion");
  EXPECT_EQ(r["choices"][0]["text"], "abc");
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(r["usage"]["total_tokens"], 7);
  const json c = text_completion_chunk("cmpl-1", "tiny", 9, "d", nullptr);
  EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
  const json m = models_response("tiny", 42);
  EXPECT_EQ(m["object"], "list");
  EXPECT_EQ(m["data"][0]["id"], "tiny");
  EXPECT_NE(new_request_id("chatcmpl"), new_request_id("chatcmpl"));
  EXPECT_EQ(new_request_id("cmpl").rfind("cmpl-", 0), 0u);
}
