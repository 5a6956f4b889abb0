#include <cstdio>

#include "cli/command.h"

DSV4_COMMAND(version) {
  return {"version", "Print the dsv4 version", [](CLI::App&) {
            return std::function<int()>([] {
              std::printf("dsv4 0.1.0\n");
              return 0;
            });
          }};
}
