// dsv4 chat API: DeepSeek-V4 prompt rendering (the official `encode_messages`) and completion
// parsing (one-shot and streaming). Messages and tools are OpenAI-style JSON passed through as
// nlohmann::ordered_json (key order matters: the encoder serialises tool schemas in insertion
// order, exactly like Python's json.dumps).
//
// Bad input (messages not an array, unknown role, content of the wrong type, malformed tool_calls,
// bad option strings) throws dsv4::Error naming the message index and the field.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace dsv4 {

using ordered_json = nlohmann::ordered_json;

// "chat": the generation prefix is <｜Assistant｜></think> (no reasoning).
// "thinking": the generation prefix is <｜Assistant｜><think> (model reasons first).
enum class ThinkingMode { Chat, Thinking };
// Only Max changes the prompt (a fixed prefix, thinking mode only); High is accepted and ignored.
enum class ReasoningEffort { None, High, Max };

// Parse "chat" / "thinking"; throws dsv4::Error on anything else.
ThinkingMode parse_thinking_mode(std::string_view s);
// Parse "" (none) / "high" / "max"; throws dsv4::Error on anything else.
ReasoningEffort parse_reasoning_effort(std::string_view s);

struct EncodeOptions {
  ThinkingMode thinking_mode = ThinkingMode::Chat;
  // Drop the reasoning of assistant turns before the last user message (thinking mode only;
  // ignored when any message carries a non-empty "tools" list).
  bool drop_thinking = true;
  ReasoningEffort reasoning_effort = ReasoningEffort::None;
  // Prepend <｜begin▁of▁sentence｜> (only when `context` is empty).
  bool add_default_bos_token = true;
  // Messages already rendered earlier (a JSON array, or null for none). The returned string then
  // covers only `messages`, so prompt(context) + encode_messages(messages, {.context=context})
  // extends an earlier prompt incrementally.
  ordered_json context = nullptr;
};

// Renders a conversation (JSON array of messages: role system|user|assistant|tool|
// latest_reminder|developer; tools attached to the system or developer message, as in the official
// encoder) to the exact prompt string of DeepSeek's encoding_dsv4.py. A conversation ending with a
// user/developer message ends with the generation prefix.
// Content is a string (or null); tool messages may also carry a list of content blocks.
// tool_calls[].function.arguments is a JSON string (an already-decoded object is accepted too);
// it is re-serialised exactly like Python json.loads + json.dumps (integers of any size kept).
// Limitation: integers beyond 64 bits elsewhere (e.g. in tool schemas) have already been turned
// into doubles by nlohmann's parser, so they print as floats where Python would print them exactly.
std::string encode_messages(const ordered_json& messages, const EncodeOptions& opts = {});

// ---- completion parsing ---------------------------------------------------------------------

struct ToolCall {
  std::string name;
  // Arguments as a JSON object text in Python json.dumps style, e.g. {"location": "Paris", "days": 3}.
  // When `complete` is false (generation ended inside this call) it is the prefix built so far.
  std::string arguments;
  bool complete = true;
};

struct ParsedMessage {
  std::string reasoning_content;
  std::string content;
  std::vector<ToolCall> tool_calls;
  // Generation ended inside the reasoning (no </think>) or inside the tool-call block.
  bool truncated = false;
  // Empty iff DeepSeek's strict parser accepts the text; otherwise its complaint, e.g.
  // "Invalid format: missing EOS token". The fields above are then a best-effort recovery
  // (marker strings are never left in content or reasoning).
  std::string error;

  // {"role": "assistant", "content", "reasoning_content", "tool_calls": [{"type": "function",
  //  "function": {"name", "arguments"}}]} - the dict the official parser returns.
  ordered_json to_json() const;
};

// Parses the generated text, decoded WITH special tokens and including the final
// <｜end▁of▁sentence｜> (as the reference does, append the EOS string yourself when generation
// stopped at the length limit). Never throws on bad model output: see ParsedMessage::error.
ParsedMessage parse_completion(std::string_view text, ThinkingMode mode);
// Same, but throws dsv4::Error (message = ParsedMessage::error) where the official parser raises.
ParsedMessage parse_completion_strict(std::string_view text, ThinkingMode mode);

// One streaming event. Text deltas never contain (part of) a marker string (</think>, ｜DSML｜,
// <｜end▁of▁sentence｜>, ...) and never end inside a UTF-8 sequence.
struct Delta {
  enum class Kind {
    Reasoning,      // text: reasoning text
    Content,        // text: answer text
    ToolCallStart,  // text: the tool name; tool_index: 0, 1, ... (order of the calls)
    ToolArguments,  // text: next fragment of the arguments JSON of call tool_index
  };
  Kind kind = Kind::Content;
  std::string text;
  int tool_index = -1;
  bool operator==(const Delta&) const = default;
};

// Incremental parser: feed decoded text pieces in order (any split, also inside UTF-8 sequences or
// markers). Concatenating the deltas reproduces the final message; the final message equals
// parse_completion() of the concatenated input.
class StreamParser {
 public:
  explicit StreamParser(ThinkingMode mode);
  ~StreamParser();
  StreamParser(StreamParser&&) noexcept;
  StreamParser& operator=(StreamParser&&) noexcept;

  std::vector<Delta> push(std::string_view piece);
  // End of generation: flushes held-back text and returns the last deltas; afterwards message()
  // holds the final result (same as parse_completion of everything pushed).
  std::vector<Delta> finish();
  const ParsedMessage& message() const;  // valid after finish()
  bool finished() const;
  // True once <｜end▁of▁sentence｜> was seen (later input is ignored, as by the reference).
  bool saw_eos() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dsv4
