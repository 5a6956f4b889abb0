// Chat encoding and completion parsing throughput (prompt rendering per request, parsing per
// generated token piece).
#include <string>

#include <benchmark/benchmark.h>

#include "dsv4/chat.h"

namespace {

dsv4::ordered_json conversation(int turns) {
  dsv4::ordered_json tools = dsv4::ordered_json::parse(R"([{"type": "function", "function": {
      "name": "get_weather", "description": "Get the weather for a specific location",
      "parameters": {"type": "object", "properties": {"location": {"type": "string"},
      "days": {"type": "integer"}}, "required": ["location"]}}}])");
  dsv4::ordered_json m = dsv4::ordered_json::array();
  m.push_back({{"role", "system"}, {"content", "You are a helpful assistant."}, {"tools", tools}});
  for (int t = 0; t < turns; ++t) {
    std::string q = "What is the weather in city number ";
    q += std::to_string(t);
    m.push_back({{"role", "user"}, {"content", q}});
    const std::string id = std::string("c").append(std::to_string(t));
    m.push_back({{"role", "assistant"},
                 {"reasoning_content", "The user wants the weather; call the tool."},
                 {"content", ""},
                 {"tool_calls", {{{"id", id}, {"type", "function"},
                                  {"function", {{"name", "get_weather"},
                                                {"arguments", R"({"location": "Paris", "days": 3, "x": 1.5})"}}}}}}});
    m.push_back({{"role", "tool"}, {"tool_call_id", id}, {"content", "18C, sunny"}});
  }
  return m;
}

void BM_EncodeMessages(benchmark::State& state) {
  const auto msgs = conversation(static_cast<int>(state.range(0)));
  dsv4::EncodeOptions o;
  o.thinking_mode = dsv4::ThinkingMode::Thinking;
  size_t bytes = 0;
  for (auto _ : state) {
    const std::string s = dsv4::encode_messages(msgs, o);
    bytes += s.size();
    benchmark::DoNotOptimize(s.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_EncodeMessages)->Arg(1)->Arg(16)->Arg(128);

std::string completion() {
  std::string s;
  // (appends one by one: GCC 12 warns falsely on chained string concatenation here)
  for (int i = 0; i < 200; ++i) {
    s += "Reasoning step ";
    s += std::to_string(i);
    s += " with some text. ";
  }
  s += "</think>";
  for (int i = 0; i < 200; ++i) {
    s += "Answer sentence ";
    s += std::to_string(i);
    s += ", 你好 <b>. ";
  }
  s += "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n"
       "<｜DSML｜parameter name=\"location\" string=\"true\">Paris, \"France\"</｜DSML｜parameter>\n"
       "<｜DSML｜parameter name=\"days\" string=\"false\">3</｜DSML｜parameter>\n"
       "</｜DSML｜invoke>\n</｜DSML｜tool_calls><｜end▁of▁sentence｜>";
  return s;
}

void BM_ParseCompletion(benchmark::State& state) {
  const std::string text = completion();
  for (auto _ : state) benchmark::DoNotOptimize(dsv4::parse_completion(text, dsv4::ThinkingMode::Thinking));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_ParseCompletion);

// Pieces of ~4 bytes, like decoded tokens.
void BM_StreamParserPieces(benchmark::State& state) {
  const std::string text = completion();
  for (auto _ : state) {
    dsv4::StreamParser p(dsv4::ThinkingMode::Thinking);
    size_t n = 0;
    for (size_t i = 0; i < text.size(); i += 4) n += p.push(std::string_view(text).substr(i, 4)).size();
    n += p.finish().size();
    benchmark::DoNotOptimize(n);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_StreamParserPieces);

}  // namespace
