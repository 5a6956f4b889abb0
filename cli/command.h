// Subcommand registry: each cli/cmd_*.cpp registers one subcommand with CLI11 at static-init time.
#pragma once
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace dsv4::cli {

struct Command {
  std::string name;
  std::string help;
  // Adds options to `sub` and returns the action to run after parsing (returns the exit code).
  std::function<std::function<int()>(CLI::App& sub)> setup;
};

bool register_command(Command c);

}  // namespace dsv4::cli

// Usage in a .cpp:  DSV4_COMMAND(my_name) { return {"name", "help", [](CLI::App& a) {...}}; }
#define DSV4_COMMAND(ident)                                                   \
  static ::dsv4::cli::Command dsv4_make_command_##ident();                   \
  [[maybe_unused]] static const bool dsv4_registered_##ident =               \
      ::dsv4::cli::register_command(dsv4_make_command_##ident());             \
  static ::dsv4::cli::Command dsv4_make_command_##ident()
