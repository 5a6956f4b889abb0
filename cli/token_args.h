// Parsing of "--tokens 5,17,9" lists shared by the CLI commands.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"

namespace dsv4::cli {

inline std::vector<int32_t> parse_token_list(const std::string& s) {
  std::vector<int32_t> out;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    const std::string item = s.substr(i, j - i);
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || v < 0 || v > INT32_MAX)
      throw_error("--tokens: '", item, "' is not a token id (expected comma-separated integers >= 0)");
    out.push_back(static_cast<int32_t>(v));
    i = j + 1;
  }
  if (out.empty()) throw_error("--tokens: empty list");
  return out;
}

}  // namespace dsv4::cli
