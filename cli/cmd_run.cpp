// dsv4 run: one prompt, the answer streamed to stdout as it is generated.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/command.h"
#include "cli/gen_common.h"
#include "core/error.h"

namespace dsv4::cli {
namespace {

struct RunFlags {
  ModelFlags model;
  SamplingFlags sampling;
  ThinkFlags think;
  std::string prompt;
  std::string prompt_file;
  std::string system;
  bool raw = false;
  bool hide_reasoning = false;
  bool show_prompt = false;
  bool verbose = false;
};

int run(const RunFlags& f) {
  if (f.prompt.empty() == f.prompt_file.empty())
    throw_error("run: give exactly one of -p/--prompt and -f/--file");
  std::string prompt_text = f.prompt;
  if (!f.prompt_file.empty()) {
    std::ifstream in(f.prompt_file, std::ios::binary);
    if (!in) throw_error("run: cannot read prompt file ", f.prompt_file);
    std::ostringstream ss;
    ss << in.rdbuf();
    prompt_text = ss.str();
  }
  const bool progress = f.verbose || is_tty(stderr);
  GenerateOptions go = generate_options(f.sampling, f.model.model_dir);
  Loaded m = load_model(f.model, progress);

  const bool thinking = (f.think.think || !f.think.effort.empty()) && !f.think.no_think;
  const ThinkingMode mode = thinking ? ThinkingMode::Thinking : ThinkingMode::Chat;
  std::string text = prompt_text;
  if (!f.raw) {
    ordered_json msgs = ordered_json::array();
    if (!f.system.empty()) msgs.push_back({{"role", "system"}, {"content", f.system}});
    msgs.push_back({{"role", "user"}, {"content", prompt_text}});
    EncodeOptions eo;
    eo.thinking_mode = mode;
    eo.reasoning_effort = parse_reasoning_effort(thinking ? f.think.effort : "");
    text = encode_messages(msgs, eo);
  }
  if (f.show_prompt) std::fprintf(stderr, "%s\n", text.c_str());
  std::vector<int32_t> tokens = m.tok->encode(text, true);

  SessionOptions so = session_options(f.model);
  auto session = m.engine->new_session(so);
  install_interrupt_handler();
  clear_interrupt();
  const auto t_prefill = std::chrono::steady_clock::now();
  if (progress)
    go.prefill_progress = [show = progress_lines([&](uint64_t done, uint64_t total) {
                             const double s =
                                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t_prefill).count();
                             char buf[96];
                             std::snprintf(buf, sizeof buf, "prefill %llu/%llu (%.1f tok/s)",
                                           static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
                                           s > 0 ? static_cast<double>(done) / s : 0.0);
                             return std::string(buf);
                           })](int64_t done, int64_t total) mutable {
      show(static_cast<uint64_t>(done), static_cast<uint64_t>(total));
      return true;
    };
  Generation gen(*session, *m.tok, std::move(tokens), go, f.model.ctx, m.engine->info().vocab_size);

  Style style{is_tty(stdout)};
  ChatPrinter printer(stdout, style, !f.hide_reasoning);
  StreamParser parser(mode);
  run_to_end(gen, [&](std::string_view piece) {
    if (f.raw) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    } else {
      printer.print(parser.push(piece));
    }
    return true;
  });
  if (f.raw) {
    std::fputs("\n", stdout);
  } else {
    std::vector<Delta> tail = parser.push("<｜end▁of▁sentence｜>");
    for (auto& d : parser.finish()) tail.push_back(std::move(d));
    printer.print(tail);
    printer.end();
  }
  std::fflush(stdout);
  std::fprintf(stderr, "%s\n", timing_line(gen.stats(), gen.finish_reason()).c_str());
  return gen.finish_reason() == FinishReason::Cancelled ? 130 : 0;
}

}  // namespace
}  // namespace dsv4::cli

DSV4_COMMAND(run) {
  auto flags = std::make_shared<dsv4::cli::RunFlags>();
  return {"run", "Generate one answer for a prompt, streamed to stdout", [flags](CLI::App& a) {
            dsv4::cli::add_model_flags(a, flags->model);
            dsv4::cli::add_sampling_flags(a, flags->sampling);
            dsv4::cli::add_think_flags(a, flags->think);
            a.add_option("-p,--prompt", flags->prompt, "The prompt (a user message unless --raw)");
            a.add_option("-f,--file", flags->prompt_file, "Read the prompt from a file");
            a.add_option("--system", flags->system, "System message (chat encoding only)");
            a.add_flag("--raw", flags->raw, "Use the prompt as raw text: no chat encoding, no BOS added");
            a.add_flag("--hide-reasoning", flags->hide_reasoning, "Do not print the reasoning (thinking mode)");
            a.add_flag("--show-prompt", flags->show_prompt, "Print the rendered prompt to stderr");
            a.add_flag("-v,--verbose", flags->verbose, "Progress on stderr even when it is not a terminal");
            return std::function<int()>([flags] { return dsv4::cli::run(*flags); });
          }};
}
