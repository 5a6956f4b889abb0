// OpenAI-compatible API surface: request parsing/validation (JSON -> typed request, or an
// ApiError with the HTTP status and the OpenAI error object) and response JSON builders
// (chat.completion, chat.completion.chunk, text_completion, models, errors).
//
// Nothing here touches the engine; the tokenizer is used only to count prompt tokens.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "dsv4/chat.h"
#include "runtime/generate.h"
#include "runtime/sampler.h"

namespace dsv4::server {

using json = nlohmann::ordered_json;

// An error the client caused (or could retry): HTTP status + the OpenAI error fields.
struct ApiError {
  ApiError() = default;
  ApiError(int s, std::string msg, std::string t = "invalid_request_error", std::string p = {},
           std::string c = {})
      : status(s), message(std::move(msg)), type(std::move(t)), param(std::move(p)), code(std::move(c)) {}
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // empty -> null
  std::string code;   // empty -> null
  json to_json() const;  // {"error": {"message", "type", "param", "code"}}
};

// Thrown by the parsers below (caught by the HTTP layer and turned into the response).
struct ApiException {
  ApiError error;
};
[[noreturn]] void fail(int status, std::string message, std::string param = {},
                       std::string code = {}, std::string type = "invalid_request_error");

// Server-wide facts a request is validated against.
struct ServerLimits {
  std::string model_name;              // what /v1/models lists and requests must name
  int64_t max_context = 4096;          // per-session context (--ctx)
  SamplingParams defaults;             // generation_config.json defaults
  int32_t vocab_size = 0;              // for token-id validation in /detokenize
  int64_t min_reuse = 256;             // GenerateOptions::min_reuse for every request
};

// Fields common to both generation endpoints.
struct GenerationRequest {
  std::string model;
  SamplingParams sampling;
  std::optional<int64_t> max_tokens;  // max_tokens / max_completion_tokens
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;          // stream_options.include_usage
};

struct ChatRequest : GenerationRequest {
  json messages;                       // normalised for dsv4::encode_messages (tools attached)
  bool has_tools = false;              // tools are rendered into the prompt
  ThinkingMode mode = ThinkingMode::Chat;
  ReasoningEffort effort = ReasoningEffort::None;
};

struct CompletionRequest : GenerationRequest {
  std::string prompt;                  // raw text (tokenised with special tokens)
  std::vector<int32_t> prompt_tokens;  // when the prompt was given as token ids
  bool prompt_is_tokens = false;
};

// Parsing: body text -> request. Every problem throws ApiException (400, or 404 for an unknown
// model) naming the offending parameter.
json parse_body(std::string_view body);
ChatRequest parse_chat_request(const json& body, const ServerLimits& limits);
CompletionRequest parse_completion_request(const json& body, const ServerLimits& limits);

// The prompt string of a chat request (throws ApiException 400 when the encoder rejects it).
std::string render_chat_prompt(const ChatRequest& req);

// Checks prompt + max_tokens against the context; returns the effective max_tokens (-1 means
// "until the context is full"). Throws ApiException 400 code context_length_exceeded.
int64_t check_context(int64_t prompt_tokens, std::optional<int64_t> max_tokens,
                      const ServerLimits& limits);

GenerateOptions generate_options(const GenerationRequest& req, int64_t max_tokens,
                                 const ServerLimits& limits);

// ---- responses ------------------------------------------------------------------------------

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
  json to_json() const;
};

// OpenAI finish_reason: "stop" (EOS / stop string), "length" (max_tokens / context),
// "tool_calls" (the message carries tool calls).
std::string finish_reason_string(FinishReason r, bool has_tool_calls);

// Tool-call ids are "call_" + the request id + "_" + index: unique per response and stable
// between the streamed and the non-streamed form.
std::string tool_call_id(const std::string& request_id, int index);

// Non-streaming chat response from the generated text (EOS string appended as the reference
// does), parsed in the request's mode.
json chat_completion_response(const std::string& id, const std::string& model, int64_t created,
                              const ParsedMessage& msg, FinishReason finish, const Usage& usage);

// Builds the stream of chat.completion.chunk objects from decoded text pieces. The first chunk
// carries the role; reasoning / content / tool calls come as deltas; finish() gives the final
// chunk (finish_reason) and, with include_usage, the usage chunk (choices: []).
class ChatStreamBuilder {
 public:
  ChatStreamBuilder(std::string id, std::string model, int64_t created, ThinkingMode mode,
                    bool include_usage);
  std::vector<json> push(std::string_view text);
  std::vector<json> finish(FinishReason finish, const Usage& usage);
  const ParsedMessage& message() const { return parser_.message(); }  // after finish()

 private:
  json chunk(json delta, const json& finish_reason = nullptr) const;
  void append(std::vector<json>& out, const std::vector<Delta>& deltas);

  std::string id_, model_;
  int64_t created_;
  bool include_usage_;
  StreamParser parser_;
  bool sent_role_ = false;
  int tool_calls_ = 0;
};

json text_completion_response(const std::string& id, const std::string& model, int64_t created,
                              const std::string& text, FinishReason finish, const Usage& usage);
json text_completion_chunk(const std::string& id, const std::string& model, int64_t created,
                           const std::string& text, const json& finish_reason);
json usage_chunk(const std::string& object, const std::string& id, const std::string& model,
                 int64_t created, const Usage& usage);
json models_response(const std::string& model, int64_t created);

// A fresh request id ("chatcmpl-..." / "cmpl-..."): a counter plus random bits.
std::string new_request_id(const char* prefix);

}  // namespace dsv4::server
