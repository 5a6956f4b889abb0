// dsv4 — command-line front end. Subcommands live in cli/cmd_*.cpp and register themselves.
#include <algorithm>
#include <cstdio>
#include <vector>

#include "cli/command.h"
#include "core/error.h"

namespace dsv4::cli {

static std::vector<Command>& registry() {
  static std::vector<Command> r;
  return r;
}

bool register_command(Command c) {
  registry().push_back(std::move(c));
  return true;
}

}  // namespace dsv4::cli

int main(int argc, char** argv) {
  using namespace dsv4::cli;
  CLI::App app{"dsv4 — inference engine for DeepSeek-V4 (Flash / Pro) checkpoints"};
  app.require_subcommand(1);
  auto& cmds = registry();
  std::sort(cmds.begin(), cmds.end(), [](const Command& a, const Command& b) { return a.name < b.name; });
  std::function<int()> action;
  for (auto& c : cmds) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    auto act = c.setup(*sub);
    sub->callback([&action, act]() { action = act; });
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return action ? action() : 0;
  } catch (const dsv4::Error& e) {
    std::fprintf(stderr, "dsv4: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dsv4: error: %s\n", e.what());
    return 1;
  }
}
