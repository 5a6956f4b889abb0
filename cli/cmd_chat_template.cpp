// dsv4 chat-template: renders a conversation (JSON array of messages) to the exact DeepSeek-V4
// prompt string, printed to stdout with nothing appended.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include "cli/command.h"
#include "core/error.h"
#include "dsv4/chat.h"

namespace {

std::string read_all(const std::string& path) {
  if (path == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
  std::ifstream f(path, std::ios::binary);
  if (!f) dsv4::throw_error(path, ": cannot open file");
  std::string s((std::istreambuf_iterator<char>(f)), {});
  if (f.bad()) dsv4::throw_error(path, ": read error");
  return s;
}

}  // namespace

DSV4_COMMAND(chat_template) {
  struct Opts {
    std::string messages;
    std::string mode = "chat";
    bool drop_thinking = true;
    std::string effort;
    bool no_bos = false;
  };
  auto o = std::make_shared<Opts>();
  return {"chat-template", "Render a conversation to the exact DeepSeek-V4 prompt string",
          [o](CLI::App& a) {
            a.add_option("--messages", o->messages, "JSON file with an array of messages ('-' = stdin)")
                ->required();
            a.add_option("--mode", o->mode, "Thinking mode")->check(CLI::IsMember({"chat", "thinking"}));
            a.add_option("--drop-thinking", o->drop_thinking,
                         "Drop reasoning of turns before the last user message (true|false)");
            a.add_option("--reasoning-effort", o->effort, "Reasoning effort")
                ->check(CLI::IsMember({"max", "high"}));
            a.add_flag("--no-bos", o->no_bos, "Do not prepend <｜begin▁of▁sentence｜>");
            return std::function<int()>([o] {
              dsv4::EncodeOptions opts;
              opts.thinking_mode = dsv4::parse_thinking_mode(o->mode);
              opts.drop_thinking = o->drop_thinking;
              opts.reasoning_effort = dsv4::parse_reasoning_effort(o->effort);
              opts.add_default_bos_token = !o->no_bos;
              const std::string text = read_all(o->messages);
              dsv4::ordered_json messages;
              try {
                messages = dsv4::ordered_json::parse(text);
              } catch (const dsv4::ordered_json::parse_error& e) {
                dsv4::throw_error(o->messages, ": invalid JSON (", e.what(), ")");
              }
              if (!messages.is_array())
                dsv4::throw_error(o->messages, ": expected a JSON array of messages, got ", messages.type_name());
              const std::string prompt = dsv4::encode_messages(messages, opts);
              std::fwrite(prompt.data(), 1, prompt.size(), stdout);
              std::fflush(stdout);
              return 0;
            });
          }};
}
