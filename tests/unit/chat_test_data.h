// Shared helpers of the chat encoding / parsing tests: reading tests/data/spec/encoding files.
#pragma once
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace dsv4::testing {

inline std::string encoding_data_path(const std::string& name) {
  return std::string(DSV4_TEST_DATA) + "/spec/encoding/" + name;
}

inline std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << "cannot open " << path;
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline nlohmann::ordered_json read_encoding_json(const std::string& name) {
  return nlohmann::ordered_json::parse(read_text_file(encoding_data_path(name)));
}

}  // namespace dsv4::testing
