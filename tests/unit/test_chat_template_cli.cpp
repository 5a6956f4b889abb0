// The dsv4 chat-template subcommand, run as a process: byte-exact output on encode cases, clean
// failure on bad input.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/unit/chat_test_data.h"

namespace {

struct CliRun {
  int status;
  std::string out, err;
};

CliRun run_cli(const std::string& args) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string err_path = (dir / ("dsv4_cli_err_" + std::to_string(::getpid()))).string();
  const std::string cmd = std::string(DSV4_BIN) + " chat-template " + args + " 2>" + err_path;
  CliRun r{};
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return {-1, "", "popen failed"};
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  r.status = ::pclose(p);
  r.err = dsv4::testing::read_text_file(err_path);
  std::filesystem::remove(err_path);
  return r;
}

std::string write_temp(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()) + ".json");
  std::ofstream(path, std::ios::binary) << text;
  return path.string();
}

TEST(ChatTemplateCli, MatchesEncodeCasesByteForByte) {
  const auto cases = dsv4::testing::read_encoding_json("encode_cases.json");
  int checked = 0;
  for (const auto& c : cases) {
    if (c.contains("context")) continue;  // not expressible on the command line
    const std::string name = c.at("name").get<std::string>();
    SCOPED_TRACE(name);
    const std::string conv = write_temp("dsv4_conv", c.at("messages").dump());
    std::string args = "--messages " + conv + " --mode " + c.at("thinking_mode").get<std::string>();
    const auto& kw = c.at("kwargs");
    if (kw.contains("drop_thinking")) args += kw["drop_thinking"].get<bool>() ? " --drop-thinking true" : " --drop-thinking false";
    if (kw.contains("reasoning_effort")) args += " --reasoning-effort " + kw["reasoning_effort"].get<std::string>();
    if (kw.contains("add_default_bos_token") && !kw["add_default_bos_token"].get<bool>()) args += " --no-bos";
    const CliRun r = run_cli(args);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, c.at("expected_prompt").get<std::string>());
    EXPECT_EQ(r.err, "");
    std::filesystem::remove(conv);
    ++checked;
  }
  EXPECT_EQ(checked, 25);
}

TEST(ChatTemplateCli, BadInputFailsWithOneLine) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"[{\"role\": \"user\", \"content\": \"a\"}", "invalid JSON"},
      {"{\"role\": \"user\"}", "expected a JSON array of messages"},
      {"[{\"role\": \"wizard\", \"content\": \"a\"}]", "messages[0].role: unknown role \"wizard\""},
      {"[{\"role\": \"user\", \"content\": 7}]", "messages[0].content: expected a string"},
  };
  for (const auto& [text, needle] : bad) {
    SCOPED_TRACE(text);
    const std::string conv = write_temp("dsv4_bad", text);
    const CliRun r = run_cli("--messages " + conv + " --mode chat");
    std::filesystem::remove(conv);
    EXPECT_NE(r.status, 0);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    ASSERT_FALSE(r.err.empty());
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "expected exactly one line: " << r.err;
  }
  const CliRun missing = run_cli("--messages /nonexistent/conv.json --mode chat");
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.err.find("/nonexistent/conv.json: cannot open file"), std::string::npos) << missing.err;
  const CliRun mode = run_cli("--messages x.json --mode fast");
  EXPECT_NE(mode.status, 0);
  const CliRun effort = run_cli("--messages x.json --reasoning-effort low");
  EXPECT_NE(effort.status, 0);
}

TEST(ChatTemplateCli, ReadsStdin) {
  const std::string conv = write_temp("dsv4_stdin", R"([{"role": "user", "content": "Hi"}])");
  const CliRun r = run_cli("--messages - --mode thinking --no-bos < " + conv);
  std::filesystem::remove(conv);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "<｜User｜>Hi<｜Assistant｜><think>");
}

}  // namespace
