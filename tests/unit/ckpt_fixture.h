// Test helpers: temporary copies of the tiny checkpoints that tests patch to produce malformed
// inputs (header JSON, index, config, truncation), and an assertion on dsv4::Error messages.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace dsv4::testing {

namespace fs = std::filesystem;
using nlohmann::json;

inline std::string tiny_ckpt(const char* name) { return std::string(DSV4_TEST_DATA) + "/" + name + "/ckpt"; }

// A fresh directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "dsv4-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string read_file(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
inline void write_file(const std::string& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(s.data(), static_cast<std::streamsize>(s.size()));
}
inline json read_json(const std::string& p) { return json::parse(read_file(p)); }
inline void write_json(const std::string& p, const json& j) { write_file(p, j.dump(2)); }

// Copies a checkpoint directory (flat) into `dst`.
inline void copy_ckpt(const std::string& src, const std::string& dst) {
  for (const auto& e : fs::directory_iterator(src)) fs::copy_file(e.path(), fs::path(dst) / e.path().filename());
}

struct Shard {
  json header;
  std::string data;
};
inline Shard read_shard(const std::string& p) {
  std::string s = read_file(p);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(s[static_cast<size_t>(i)]);
  return {json::parse(s.substr(8, n)), s.substr(8 + n)};
}
inline void write_shard(const std::string& p, const Shard& sh) {
  std::string h = sh.header.dump();
  std::string out(8, '\0');
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  write_file(p, out + h + sh.data);
}

inline const char* kTinyShard = "model-00001-of-00001.safetensors";

// Runs fn, expects a dsv4::Error whose message contains every `needle`.
inline void expect_error(const std::function<void()>& fn, std::initializer_list<std::string> needles) {
  try {
    fn();
    ADD_FAILURE() << "expected dsv4::Error containing '" << *needles.begin() << "'";
  } catch (const dsv4::Error& e) {
    const std::string m = e.what();
    for (const auto& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "message: " << m << "\nmissing: " << n;
  }
}

}  // namespace dsv4::testing
