#include "cli/gen_common.h"
#include "runtime/session_io.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>

#include "core/error.h"

namespace dsv4::cli {

void add_model_flags(CLI::App& app, ModelFlags& f) {
  app.add_option("-m,--model", f.model_dir, "Model directory (config.json, safetensors, tokenizer.json)")
      ->required();
  app.add_option("--tokenizer", f.tokenizer_dir, "Directory with tokenizer.json (default: the model's)");
  app.add_option("--numerics", f.numerics, "fast (SIMD, default) or reference (scalar oracle)")
      ->check(CLI::IsMember({"fast", "reference"}));
  add_weight_memory_flag(app, f.weights);
  app.add_option("-t,--threads", f.threads, "Compute threads (0 = all)");
  app.add_option("-c,--ctx", f.ctx, "Context length per session in tokens (KV memory is sized from it)")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 24));
  app.add_option("--chunk,--ubatch-size", f.chunk,
                 "Prompt rows per forward call in prefill (larger: faster prefill, more activation "
                 "memory, about 0.65 MB per row at V4-Flash widths)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--mem-limit", f.mem_limit,
                 "Refuse a KV cache larger than this per session, before any work (e.g. 512M, 8G)");
}

void add_weight_memory_flag(CLI::App& app, std::string& value) {
  app.add_option("--weights", value,
                 "Where the weights lie: private (read into this process's memory; fastest decode), "
                 "mmap (the files mapped in place, read on first use, shared page cache) or auto "
                 "(private when the checkpoint fits in 80% of the available memory, else mmap)")
      ->check(CLI::IsMember({"auto", "mmap", "private"}));
}

WeightMemory parse_weight_memory(const std::string& value) {
  if (value == "mmap") return WeightMemory::Mapped;
  if (value == "private") return WeightMemory::Private;
  if (value == "auto") return WeightMemory::Auto;
  throw_error("--weights must be auto, mmap or private, got '", value, "'");
}

SessionOptions session_options(const ModelFlags& f) {
  SessionOptions so;
  so.max_context = f.ctx;
  so.prefill_chunk = f.chunk;
  if (!f.mem_limit.empty()) so.mem_limit = parse_byte_size(f.mem_limit);
  return so;
}

Loaded load_model(const ModelFlags& f, bool verbose) {
  Loaded l;
  const auto t0 = std::chrono::steady_clock::now();
  if (verbose) std::fprintf(stderr, "loading %s ...\n", f.model_dir.c_str());
  EngineOptions eo;
  eo.model_dir = f.model_dir;
  eo.numerics = f.numerics == "reference" ? Numerics::Reference : Numerics::Fast;
  eo.threads = f.threads;
  eo.weight_memory = parse_weight_memory(f.weights);
  if (verbose || is_tty(stderr)) eo.populate_progress = weight_progress("");
  l.tok = std::make_unique<Tokenizer>(Tokenizer::load(f.tokenizer_dir.empty() ? f.model_dir : f.tokenizer_dir));
  l.engine = Engine::load(eo);
  l.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const ModelInfo& mi = l.engine->info();
  if (mi.vocab_size < l.tok->vocab_size())
    throw_error(f.model_dir, ": the tokenizer has ", l.tok->vocab_size(), " tokens but the model's vocabulary is ",
                mi.vocab_size);
  if (mi.max_context > 0 && f.ctx > mi.max_context)
    std::fprintf(stderr,
                 "warning: --ctx %lld is longer than the model's context of %lld (max_position_embeddings); "
                 "positions past it are computed all the same\n",
                 static_cast<long long>(f.ctx), static_cast<long long>(mi.max_context));
  if (verbose)
    std::fprintf(stderr, "loaded in %.2f s: %d layers, vocab %lld, max context %lld, weights %s\n",
                 l.seconds, mi.n_layers, static_cast<long long>(mi.vocab_size),
                 static_cast<long long>(mi.max_context), weight_memory_name(mi.weight_memory));
  return l;
}

void add_sampling_flags(CLI::App& app, SamplingFlags& f) {
  app.add_option("--temp,--temperature", f.temp, "Sampling temperature (0 = greedy; default from generation_config.json, else 1.0)");
  app.add_option("--top-p", f.top_p, "Nucleus sampling mass (1 = off)");
  app.add_option("--top-k", f.top_k, "Keep the k most likely tokens (0 = off)");
  app.add_option("--min-p", f.min_p, "Drop tokens below min_p * p(max) (0 = off)");
  app.add_option("--repeat-penalty", f.repeat_penalty, "Repetition penalty over the last --repeat-last-n tokens (1 = off)");
  app.add_option("--repeat-last-n", f.repeat_last_n, "Window of the penalties (default 64, -1 = whole context)");
  app.add_option("--presence-penalty", f.presence_penalty, "OpenAI-style presence penalty");
  app.add_option("--frequency-penalty", f.frequency_penalty, "OpenAI-style frequency penalty");
  app.add_option("-s,--seed", f.seed, "RNG seed (default: random)");
  app.add_option("-n,--max-tokens,--n-predict", f.max_tokens, "Maximum tokens to generate (-1 = until EOS or context end)");
  app.add_option("--stop", f.stop, "Stop string (repeatable); not printed");
}

GenerateOptions generate_options(const SamplingFlags& f, const std::string& model_dir) {
  GenerateOptions o;
  SamplingParams& p = o.sampling;
  p = sampling_defaults(model_dir);
  if (f.temp) p.temperature = *f.temp;
  if (f.top_p) p.top_p = *f.top_p;
  if (f.top_k) p.top_k = *f.top_k;
  if (f.min_p) p.min_p = *f.min_p;
  if (f.repeat_penalty) p.repetition_penalty = *f.repeat_penalty;
  if (f.repeat_last_n) p.penalty_last_n = *f.repeat_last_n;
  if (f.presence_penalty) p.presence_penalty = *f.presence_penalty;
  if (f.frequency_penalty) p.frequency_penalty = *f.frequency_penalty;
  if (f.seed) p.seed = *f.seed;
  validate(p);
  if (f.max_tokens == 0 || f.max_tokens < -1) throw_error("--max-tokens must be >= 1 or -1, got ", f.max_tokens);
  o.max_tokens = f.max_tokens;
  o.stop = f.stop;
  o.cancel = &interrupt_flag();
  return o;
}

void add_think_flags(CLI::App& app, ThinkFlags& f) {
  auto* t = app.add_flag("--think", f.think, "Thinking mode: the model reasons first (shown dimmed)");
  auto* n = app.add_flag("--no-think", f.no_think, "Chat mode without reasoning (default)");
  t->excludes(n);
  app.add_option("--reasoning-effort", f.effort, "high or max (max adds the official prefix; implies --think)")
      ->check(CLI::IsMember({"high", "max"}));
}

bool is_tty(FILE* f) { return isatty(fileno(f)) != 0; }

std::function<void(uint64_t, uint64_t)> progress_lines(std::function<std::string(uint64_t, uint64_t)> text) {
  return [text = std::move(text), tty = is_tty(stderr), quarter = 0](uint64_t done, uint64_t total) mutable {
    if (tty) {
      std::fprintf(stderr, "\r%s%s", text(done, total).c_str(), done >= total ? "\n" : "");
      std::fflush(stderr);
      return;
    }
    const int q = done >= total ? 4 : static_cast<int>(4 * done / std::max<uint64_t>(total, 1));
    if (q <= quarter) return;
    quarter = q;
    std::string line = text(done, total);
    line.erase(line.find_last_not_of(' ') + 1);  // the padding that clears a redrawn line
    std::fprintf(stderr, "%s\n", line.c_str());
  };
}

std::function<void(uint64_t, uint64_t)> weight_progress(const char* prefix) {
  return progress_lines([prefix](uint64_t done, uint64_t total) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "%sreading weights %.1f / %.1f GB", prefix, done / 1e9, total / 1e9);
    return std::string(buf);
  });
}

static std::atomic<bool> g_interrupt{false};

extern "C" void dsv4_on_sigint(int) {
  if (g_interrupt.load()) std::_Exit(130);  // second Ctrl-C before the first was handled
  g_interrupt.store(true);
}

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = dsv4_on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
}

const std::atomic<bool>& interrupt_flag() { return g_interrupt; }
void clear_interrupt() { g_interrupt.store(false); }

std::string timing_line(const GenerationStats& s, FinishReason r) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "prefill %lld tok (%lld cached) %.1f tok/s | decode %lld tok %.1f tok/s | finish %s",
                static_cast<long long>(s.prompt_tokens - s.cached_tokens),
                static_cast<long long>(s.cached_tokens), s.prefill_tok_per_s(),
                static_cast<long long>(s.generated_tokens), s.decode_tok_per_s(), to_string(r));
  return buf;
}

ChatPrinter::ChatPrinter(FILE* out, Style style, bool show_reasoning)
    : out_(out), style_(style), show_reasoning_(show_reasoning) {}

void ChatPrinter::print(const std::vector<Delta>& deltas) {
  for (const Delta& d : deltas) {
    switch (d.kind) {
      case Delta::Kind::Reasoning:
        if (!show_reasoning_) break;
        if (where_ != Where::Reasoning) {
          std::fputs(style_.on ? style_.dim() : "<think>\n", out_);
          where_ = Where::Reasoning;
        }
        std::fputs(d.text.c_str(), out_);
        break;
      case Delta::Kind::Content:
        if (where_ == Where::Reasoning) std::fprintf(out_, "%s\n", style_.on ? style_.reset() : "\n</think>\n");
        if (where_ == Where::Tool) std::fputs("\n", out_);
        where_ = Where::Content;
        std::fputs(d.text.c_str(), out_);
        break;
      case Delta::Kind::ToolCallStart:
        if (where_ == Where::Reasoning) std::fprintf(out_, "%s\n", style_.on ? style_.reset() : "\n</think>\n");
        if (wrote_ && where_ != Where::Reasoning) std::fputs("\n", out_);
        std::fprintf(out_, "%s[tool call] %s%s ", style_.cyan(), d.text.c_str(), style_.reset());
        where_ = Where::Tool;
        break;
      case Delta::Kind::ToolArguments:
        std::fputs(d.text.c_str(), out_);
        break;
    }
    wrote_ = true;
  }
  std::fflush(out_);
}

void ChatPrinter::end() {
  if (where_ == Where::Reasoning) std::fputs(style_.on ? style_.reset() : "\n</think>", out_);
  if (wrote_) std::fputs("\n", out_);
  where_ = Where::None;
  wrote_ = false;
  std::fflush(out_);
}

}  // namespace dsv4::cli
