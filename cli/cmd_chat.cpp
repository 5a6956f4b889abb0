// dsv4 chat: interactive multi-turn conversation. The session's KV state is kept between turns:
// when the re-rendered conversation extends what the session already holds, only the new tokens
// are prefilled.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/command.h"
#include "cli/gen_common.h"
#include "core/error.h"

namespace dsv4::cli {
namespace {

struct ChatFlags {
  ModelFlags model;
  SamplingFlags sampling;
  ThinkFlags think;
  std::string system;
  bool timing = false;
};

const char* kHelp =
    "commands:\n"
    "  /help              this text\n"
    "  /think on|off      thinking mode (the model reasons first; reasoning is shown dimmed)\n"
    "  /reset             forget the conversation (keeps the system message)\n"
    "  /save FILE         save the conversation messages as JSON\n"
    "  /load FILE         load messages saved by /save (or an OpenAI-style messages array)\n"
    "  /exit, /quit       leave (also Ctrl-D)\n"
    "  a line ending in \\ continues on the next line; Ctrl-C stops the answer being generated\n";

struct Conversation {
  ordered_json messages = ordered_json::array();
  bool thinking = false;
  std::string effort;
};

void save(const Conversation& c, const std::string& path) {
  std::ofstream out(path);
  if (!out) throw_error("/save: cannot write ", path);
  ordered_json j;
  j["thinking"] = c.thinking;
  j["messages"] = c.messages;
  out << j.dump(2) << "\n";
  if (!out) throw_error("/save: write failed for ", path);
}

void load(Conversation& c, const std::string& path) {
  std::ifstream in(path);
  if (!in) throw_error("/load: cannot read ", path);
  ordered_json j;
  try {
    j = ordered_json::parse(in);
  } catch (const std::exception& e) {
    throw_error("/load: ", path, " is not valid JSON: ", e.what());
  }
  ordered_json msgs = j.is_object() ? j.value("messages", ordered_json()) : j;
  if (!msgs.is_array()) throw_error("/load: ", path, ": expected a messages array (or {\"messages\": [...]})");
  for (size_t i = 0; i < msgs.size(); ++i)
    if (!msgs[i].is_object() || !msgs[i].contains("role") || !msgs[i]["role"].is_string())
      throw_error("/load: ", path, ": messages[", i, "] has no string 'role'");
  c.messages = msgs;
  if (j.is_object() && j.contains("thinking") && j["thinking"].is_boolean()) c.thinking = j["thinking"].get<bool>();
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return {};
  return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}

// Reads one user input (with \ continuation). Returns false at end of input.
bool read_input(std::string& out, bool interactive) {
  out.clear();
  for (;;) {
    if (interactive) {
      std::fputs(out.empty() ? "> " : ". ", stdout);
      std::fflush(stdout);
    }
    std::string line;
    if (!std::getline(std::cin, line)) {
      if (interrupt_flag().load()) {  // Ctrl-C at the prompt: drop the line, ask again
        clear_interrupt();
        std::cin.clear();
        std::fputs("\n", stdout);
        out.clear();
        continue;
      }
      return !out.empty();
    }
    if (!line.empty() && line.back() == '\\') {
      line.pop_back();
      out += line + "\n";
      continue;
    }
    out += line;
    return true;
  }
}

int chat(const ChatFlags& f) {
  const bool interactive = is_tty(stdin);
  GenerateOptions go = generate_options(f.sampling, f.model.model_dir);
  Loaded m = load_model(f.model, is_tty(stderr));
  SessionOptions so = session_options(f.model);
  auto session = m.engine->new_session(so);
  install_interrupt_handler();
  const Style style{is_tty(stdout)};

  Conversation conv;
  conv.thinking = (f.think.think || !f.think.effort.empty()) && !f.think.no_think;
  conv.effort = f.think.effort;
  auto reset = [&] {
    conv.messages = ordered_json::array();
    if (!f.system.empty()) conv.messages.push_back({{"role", "system"}, {"content", f.system}});
  };
  reset();
  if (interactive) std::fprintf(stderr, "dsv4 chat: /help for commands, Ctrl-D to leave\n");

  std::string input;
  while (read_input(input, interactive)) {
    const std::string cmd = trim(input);
    if (cmd.empty()) continue;
    if (cmd[0] == '/') {
      std::istringstream ss(cmd);
      std::string word, arg;
      ss >> word;
      std::getline(ss >> std::ws, arg);
      try {
        if (word == "/help") {
          std::fputs(kHelp, stdout);
        } else if (word == "/exit" || word == "/quit") {
          break;
        } else if (word == "/think") {
          if (arg == "on") conv.thinking = true;
          else if (arg == "off") conv.thinking = false;
          else throw_error("/think: expected on or off");
          std::printf("thinking %s\n", conv.thinking ? "on" : "off");
        } else if (word == "/reset") {
          reset();
          session->reset();
          std::printf("conversation cleared\n");
        } else if (word == "/save") {
          if (arg.empty()) throw_error("/save: give a file name");
          save(conv, arg);
          std::printf("saved %zu messages to %s\n", conv.messages.size(), arg.c_str());
        } else if (word == "/load") {
          if (arg.empty()) throw_error("/load: give a file name");
          load(conv, arg);
          std::printf("loaded %zu messages from %s (thinking %s)\n", conv.messages.size(), arg.c_str(),
                      conv.thinking ? "on" : "off");
        } else {
          throw_error("unknown command ", word, " (/help lists them)");
        }
      } catch (const Error& e) {
        std::fprintf(stderr, "%s\n", e.what());
      }
      continue;
    }

    const size_t before = conv.messages.size();
    conv.messages.push_back({{"role", "user"}, {"content", input}});
    const ThinkingMode mode = conv.thinking ? ThinkingMode::Thinking : ThinkingMode::Chat;
    EncodeOptions eo;
    eo.thinking_mode = mode;
    eo.reasoning_effort = parse_reasoning_effort(conv.thinking ? conv.effort : "");
    std::vector<int32_t> tokens;
    try {
      tokens = m.tok->encode(encode_messages(conv.messages, eo), true);
      clear_interrupt();
      Generation gen(*session, *m.tok, std::move(tokens), go, f.model.ctx, m.engine->info().vocab_size);
      StreamParser parser(mode);
      ChatPrinter printer(stdout, style, true);
      run_to_end(gen, [&](std::string_view piece) {
        printer.print(parser.push(piece));
        return true;
      });
      clear_interrupt();  // the Ctrl-C that stopped this answer must not count as a second one
      std::vector<Delta> tail = parser.push("<｜end▁of▁sentence｜>");
      for (auto& d : parser.finish()) tail.push_back(std::move(d));
      printer.print(tail);
      printer.end();
      if (gen.finish_reason() == FinishReason::Cancelled) std::printf("%s[interrupted]%s\n", style.dim(), style.reset());
      const ParsedMessage& msg = parser.message();
      ordered_json a = {{"role", "assistant"}, {"content", msg.content}};
      if (!msg.reasoning_content.empty()) a["reasoning_content"] = msg.reasoning_content;
      conv.messages.push_back(std::move(a));
      if (f.timing || gen.finish_reason() == FinishReason::Context)
        std::fprintf(stderr, "%s\n", timing_line(gen.stats(), gen.finish_reason()).c_str());
    } catch (const Error& e) {
      while (conv.messages.size() > before) conv.messages.erase(conv.messages.end() - 1);  // no turn
      std::fprintf(stderr, "error: %s\n", e.what());
    }
  }
  return 0;
}

}  // namespace
}  // namespace dsv4::cli

DSV4_COMMAND(chat) {
  auto flags = std::make_shared<dsv4::cli::ChatFlags>();
  return {"chat", "Interactive multi-turn chat (/help for commands)", [flags](CLI::App& a) {
            dsv4::cli::add_model_flags(a, flags->model);
            dsv4::cli::add_sampling_flags(a, flags->sampling);
            dsv4::cli::add_think_flags(a, flags->think);
            a.add_option("--system", flags->system, "System message");
            a.add_flag("--timing", flags->timing, "Print prefill/decode speed after every answer");
            return std::function<int()>([flags] { return dsv4::cli::chat(*flags); });
          }};
}
