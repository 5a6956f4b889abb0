// Shared by `dsv4 run`, `chat` and `serve`: model/tokenizer flags and loading, llama-cli-style
// sampling flags, terminal detection and the Ctrl-C flag.
#pragma once
#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "dsv4/chat.h"
#include "dsv4/engine.h"
#include "dsv4/tokenizer.h"
#include "runtime/generate.h"

namespace dsv4::cli {

struct ModelFlags {
  std::string model_dir;
  std::string tokenizer_dir;  // default: model_dir
  std::string numerics = "fast";
  int threads = 0;
  int64_t ctx = 4096;
  std::string mem_limit;  // e.g. "8G": refuse a KV cache larger than this per session
  std::string weights = "auto";  // auto | mmap | private
  int64_t chunk = SessionOptions{}.prefill_chunk;  // rows per forward call in prefill
};
void add_model_flags(CLI::App& app, ModelFlags& f);
// --weights auto|mmap|private (EngineOptions::weight_memory); shared by every command that loads.
void add_weight_memory_flag(CLI::App& app, std::string& value);
WeightMemory parse_weight_memory(const std::string& value);
// Session options from the flags (context length, KV memory limit, prefill chunk).
SessionOptions session_options(const ModelFlags& f);

struct Loaded {
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Tokenizer> tok;
  double seconds = 0.0;
};
// Loads engine + tokenizer; prints progress on stderr when it is a terminal (or `verbose`).
Loaded load_model(const ModelFlags& f, bool verbose);

// Sampling flags; unset ones come from the model's generation_config.json.
struct SamplingFlags {
  std::optional<float> temp, top_p, min_p, repeat_penalty, presence_penalty, frequency_penalty;
  std::optional<int> top_k, repeat_last_n;
  std::optional<uint64_t> seed;
  int64_t max_tokens = -1;
  std::vector<std::string> stop;
};
void add_sampling_flags(CLI::App& app, SamplingFlags& f);
GenerateOptions generate_options(const SamplingFlags& f, const std::string& model_dir);

// Thinking flags shared by run and chat.
struct ThinkFlags {
  bool think = false;
  bool no_think = false;
  std::string effort;  // "" | high | max
};
void add_think_flags(CLI::App& app, ThinkFlags& f);

bool is_tty(FILE* f);

// Progress of long work on stderr, text(done, total) per call: redrawn in place on a terminal,
// one line per quarter of the total when stderr is a file or pipe (logs stay readable).
std::function<void(uint64_t, uint64_t)> progress_lines(std::function<std::string(uint64_t, uint64_t)> text);
// Weight loading, "PREFIX reading weights 1.2 / 14.5 GB".
std::function<void(uint64_t, uint64_t)> weight_progress(const char* prefix);

// SIGINT sets the flag instead of killing the process (a second Ctrl-C while the flag is still
// set exits). Call clear_interrupt() before each generation.
void install_interrupt_handler();
const std::atomic<bool>& interrupt_flag();
void clear_interrupt();

// "prefill 25 tok (310.2 tok/s) | decode 50 tok (21.4 tok/s) | finish eos"
std::string timing_line(const GenerationStats& s, FinishReason r);

// Terminal styles (empty strings when `on` is false).
struct Style {
  bool on = false;
  const char* dim() const { return on ? "\033[2m" : ""; }
  const char* bold() const { return on ? "\033[1m" : ""; }
  const char* cyan() const { return on ? "\033[36m" : ""; }
  const char* reset() const { return on ? "\033[0m" : ""; }
};

// Prints chat-mode output as it streams: reasoning dimmed (or between <think> lines when not a
// terminal), content plain, tool calls as `[tool call] name {args}`.
class ChatPrinter {
 public:
  ChatPrinter(FILE* out, Style style, bool show_reasoning);
  void print(const std::vector<Delta>& deltas);
  void end();  // closes an open reasoning block / tool call line and adds a final newline

 private:
  FILE* out_;
  Style style_;
  bool show_reasoning_;
  enum class Where { None, Reasoning, Content, Tool } where_ = Where::None;
  bool wrote_ = false;
};

}  // namespace dsv4::cli
