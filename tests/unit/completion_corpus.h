// Test corpus of model completions for the completion-parser tests: assistant turns rendered by
// the encoder (so the expected parse is known) with reasoning, content, tool calls, unicode and
// near-miss marker text.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "dsv4/chat.h"
#include "text/pyjson.h"

namespace dsv4::testing {

struct GeneratedCompletion {
  ThinkingMode mode;
  std::string text;  // what the model would generate after the generation prefix (ends with EOS)
  std::string reasoning, content;
  std::vector<std::pair<std::string, std::string>> calls;  // name, expected arguments
};

inline std::string random_text(std::mt19937& rng, int max_pieces) {
  static const char* pieces[] = {
      "Hello", " world", "\n", "\n\n", "你好", "é", "😀", "<", ">", "/", "\"", "\\", "｜", "▁", "{", "}",
      "</thin", "<thi", "<｜end▁of", "｜DSM", "</｜DSML", "<｜DSML｜tool_call", "\n\n<", "\t", "a<", "<\n",
      "</b>", " 1.50 ", "x"};
  std::uniform_int_distribution<int> n(0, max_pieces);
  std::uniform_int_distribution<size_t> pick(0, std::size(pieces) - 1);
  std::string s;
  for (int k = n(rng); k > 0; --k) s += pieces[pick(rng)];
  return s;
}

inline ordered_json random_value(std::mt19937& rng, int depth) {
  std::uniform_int_distribution<int> kind(0, depth > 1 ? 5 : 7);
  switch (kind(rng)) {
    case 0: return random_text(rng, 4);
    case 1: return static_cast<int64_t>(rng() % 100000) - 500;
    case 2: return std::uniform_real_distribution<double>(-1e6, 1e6)(rng);
    case 3: return (rng() & 1) != 0;
    case 4: return nullptr;
    case 5: return 0.5;
    case 6: {
      ordered_json a = ordered_json::array();
      for (int k = static_cast<int>(rng() % 3); k > 0; --k) a.push_back(random_value(rng, depth + 1));
      return a;
    }
    default: {
      ordered_json o = ordered_json::object();
      for (int k = static_cast<int>(rng() % 3); k > 0; --k) o["k" + std::to_string(rng() % 50)] = random_value(rng, depth + 1);
      return o;
    }
  }
}

// Renders a random assistant turn through encode_messages and cuts the completion part out.
inline GeneratedCompletion generate_completion(uint32_t seed) {
  std::mt19937 rng(seed);
  GeneratedCompletion g;
  g.mode = (rng() & 1) ? ThinkingMode::Thinking : ThinkingMode::Chat;
  ordered_json user = {{"role", "user"}, {"content", "q"}};
  ordered_json asst = ordered_json::object();
  asst["role"] = "assistant";
  if (g.mode == ThinkingMode::Thinking) g.reasoning = random_text(rng, 6);
  g.content = random_text(rng, 6);
  asst["reasoning_content"] = g.reasoning;
  asst["content"] = g.content;
  const int ncalls = static_cast<int>(rng() % 4) - 1;  // -1 and 0: no tool calls
  if (ncalls > 0) {
    asst["tool_calls"] = ordered_json::array();
    for (int c = 0; c < ncalls; ++c) {
      ordered_json args = ordered_json::object();
      for (int k = static_cast<int>(rng() % 4); k > 0; --k) args["p" + std::to_string(k) + random_text(rng, 1)] = random_value(rng, 0);
      const std::string name = "tool_" + std::to_string(rng() % 7);
      asst["tool_calls"].push_back({{"id", "c" + std::to_string(c)},
                                    {"type", "function"},
                                    {"function", {{"name", name}, {"arguments", args.dump()}}}});
      g.calls.push_back({name, text::py_dumps(args)});
    }
  }
  EncodeOptions o;
  o.thinking_mode = g.mode;
  const std::string prompt = encode_messages(ordered_json::array({user}), o);
  const std::string full = encode_messages(ordered_json::array({user, asst}), o);
  g.text = full.substr(prompt.size());
  return g;
}

}  // namespace dsv4::testing
