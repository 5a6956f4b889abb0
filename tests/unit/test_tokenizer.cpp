// The DeepSeek-V4 tokenizer (tests/js/tokenizer, written by scripts/fetch_tokenizer.sh, which
// scripts/setup.sh runs) against the spec's vectors and the official API prompt token counts.
// These tests fail, not skip, when the files are missing.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "dsv4/tokenizer.h"
#include "text/byte_level.h"
#include "text/utf8.h"

namespace {

const std::string kTokDir = std::string(DSV4_TEST_DATA) + "/../js/tokenizer";

const dsv4::Tokenizer& v4() {
  static const dsv4::Tokenizer t = [] {
    if (!std::filesystem::exists(kTokDir + "/tokenizer.json"))
      throw std::runtime_error(kTokDir + "/tokenizer.json is missing: run scripts/fetch_tokenizer.sh (setup.sh does)");
    return dsv4::Tokenizer::load(kTokDir);
  }();
  return t;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open " + path);
  return nlohmann::json::parse(f);
}

const std::string kBos = "<\xEF\xBD\x9C" "begin\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>";
const std::string kUser = "<\xEF\xBD\x9CUser\xEF\xBD\x9C>";
const std::string kAssistant = "<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>";

}  // namespace

TEST(TokenizerV4, SpecVectors) {
  const auto doc = read_json(std::string(DSV4_TEST_DATA) + "/spec/tokenizer/tokenizer_vectors.json");
  ASSERT_GE(doc["vectors"].size(), 10u);
  for (const auto& v : doc["vectors"]) {
    const std::string text = v["text"];
    const auto expect = v["ids"].get<std::vector<int32_t>>();
    const auto ids = v4().encode(text);
    EXPECT_EQ(ids, expect) << v["name"] << " (" << v["confidence"] << ")";
    EXPECT_EQ(v4().decode(ids), text) << v["name"];
  }
}

TEST(TokenizerV4, ApiPromptTokenCounts) {
  // Chat-mode prompt = BOS <｜User｜> text <｜Assistant｜> </think>; the API counted prompt_tokens.
  const auto doc = read_json(std::string(DSV4_TEST_DATA) + "/spec/api_greedy/api_vectors.json");
  ASSERT_EQ(doc.size(), 5u);
  for (const auto& v : doc) {
    const std::string prompt = kBos + kUser + v["prompt"].get<std::string>() + kAssistant + "</think>";
    const auto ids = v4().encode(prompt);
    EXPECT_EQ(int64_t(ids.size()), v["prompt_tokens"].get<int64_t>()) << v["id"];
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids.front(), 0);
    EXPECT_EQ(ids.back(), 128822);
    EXPECT_EQ(v4().decode(ids), prompt);
  }
}

TEST(TokenizerV4, ApiCompletionTokensAreVocabularyTokens) {
  // Every greedy token the API streamed back is one entry of the vocabulary with exactly those bytes.
  const auto doc = read_json(std::string(DSV4_TEST_DATA) + "/spec/api_greedy/api_vectors.json");
  size_t checked = 0;
  for (const auto& v : doc) {
    for (const auto& step : v["steps"]) {
      std::string bytes;
      for (int b : step["token_bytes"]) bytes.push_back(char(b));
      const auto id = v4().token_id(dsv4::text::bytes_to_byte_level(bytes));
      ASSERT_TRUE(id.has_value()) << v["id"] << ": \"" << bytes << "\" is not a vocabulary token";
      EXPECT_EQ(v4().token_to_piece(*id), bytes);
      ++checked;
    }
  }
  EXPECT_GE(checked, 15u);
}

TEST(TokenizerV4, SpecialTokenIds) {
  const dsv4::Tokenizer& t = v4();
  EXPECT_EQ(t.vocab_size(), 129280);
  EXPECT_EQ(t.bos_id(), 0);
  EXPECT_EQ(t.eos_id(), 1);
  EXPECT_EQ(t.token_id(kBos), 0);
  EXPECT_EQ(t.token_id(kUser), 128803);
  EXPECT_EQ(t.token_id(kAssistant), 128804);
  EXPECT_EQ(t.token_id("<think>"), 128821);
  EXPECT_EQ(t.token_id("</think>"), 128822);
  EXPECT_EQ(t.token_id("\xEF\xBD\x9C" "DSML\xEF\xBD\x9C"), 128825);
  EXPECT_EQ(t.token_id("<\xEF\xBD\x9Clatest_reminder\xEF\xBD\x9C>"), 128828);
  EXPECT_EQ(t.token_id("<\xEF\xBD\x9C" "action\xEF\xBD\x9C>"), 128829);
  EXPECT_EQ(t.token_id("<\xEF\xBD\x9Cread_url\xEF\xBD\x9C>"), 128845);
  EXPECT_EQ(t.token_id("<\xEF\xBD\x9Cimage\xEF\xBD\x9C>"), 129279);
  EXPECT_EQ(t.token_to_piece(128822), "</think>");
  EXPECT_EQ(t.token_to_piece(223), " ");  // spec vectors: "1 + 1" has a lone space id 223
}

TEST(TokenizerV4, NeverAddsBosOrEos) {
  const auto ids = v4().encode("Hello");
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0], 19923);
  EXPECT_TRUE(v4().encode("").empty());
}

TEST(TokenizerV4, AllowSpecialFalseKeepsMarkersAsText) {
  const std::string text = kUser + "hi</think>";
  const auto plain = v4().encode(text, false);
  for (int32_t id : plain) EXPECT_LT(id, 128000) << "added token matched with allow_special=false";
  EXPECT_GT(plain.size(), 3u);
  EXPECT_EQ(v4().decode(plain), text);
  const auto special = v4().encode(text, true);
  EXPECT_EQ(special.front(), 128803);
  EXPECT_EQ(special.back(), 128822);
}

TEST(TokenizerV4, StreamDecoderOnSplitCharacters) {
  // Byte-level tokens of the mixed_script vector split two-byte characters across ids.
  const std::string text =
      "Hello! \xE6\xAF\x95\xE8\x80\x81\xE5\xB8\x88\xEF\xBC\x81 \xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB "
      "\xC4\xA0\xC3\x91\xC4\xA4\xC3\x90\xC2\xB2 \xE3\x81\x93\xE3\x82\x93\xE3\x81\xAB\xE3\x81\xA1\xE3\x81\xAF";
  const auto ids = v4().encode(text);
  bool some_partial = false;
  for (int32_t id : ids) some_partial |= !dsv4::text::is_valid_utf8(v4().token_to_piece(id));
  EXPECT_TRUE(some_partial) << "test text should contain tokens that cut a character";
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    // A random prefix of the ids (the stream may stop anywhere), then the full stream.
    const size_t n = trial == 0 ? ids.size() : rng() % (ids.size() + 1);
    const std::vector<int32_t> part(ids.begin(), ids.begin() + long(n));
    dsv4::StreamDecoder sd(v4());
    std::string got;
    for (int32_t id : part) {
      const std::string chunk = sd.push(id);
      ASSERT_TRUE(dsv4::text::is_valid_utf8(chunk));
      got += chunk;
    }
    got += sd.flush();
    EXPECT_EQ(got, v4().decode(part)) << "prefix of " << n << " ids";
    if (n == ids.size()) {
      EXPECT_EQ(got, text);
    }
  }
}

namespace {

std::string run_command(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *status = pclose(p);
  return out;
}

std::vector<int32_t> parse_ids(const std::string& s) {
  std::istringstream in(s);
  std::vector<int32_t> v;
  for (int32_t x; in >> x;) v.push_back(x);
  return v;
}

}  // namespace

TEST(TokenizerCli, FileIdsPrintsOnlyTheIdsOfTheWholeFile) {
  const std::string text = kUser + "Hello,\n\tworld  123456 \xE4\xBD\xA0\xE5\xA5\xBD\r\n" + kAssistant + "</think>";
  const auto path = std::filesystem::temp_directory_path() / ("dsv4_tok_cli_" + std::to_string(::getpid()) + ".txt");
  std::ofstream(path, std::ios::binary) << text;
  int status = -1;
  const std::string out =
      run_command(std::string(DSV4_BIN) + " tokenize --model " + kTokDir + " --file " + path.string() + " --ids", &status);
  std::filesystem::remove(path);
  EXPECT_EQ(status, 0);
  const auto expect = v4().encode(text);
  EXPECT_EQ(parse_ids(out), expect);
  EXPECT_EQ(expect.front(), 128803);  // no BOS added
  EXPECT_EQ(out.find_first_not_of("0123456789 \n"), std::string::npos) << out;
}

TEST(TokenizerCli, TextModePrintsIdsThenPieces) {
  int status = -1;
  const std::string out = run_command(std::string(DSV4_BIN) + " tokenize --model " + kTokDir + " 'Hello world'", &status);
  EXPECT_EQ(status, 0);
  const std::string first = out.substr(0, out.find('\n'));
  EXPECT_EQ(parse_ids(first), v4().encode("Hello world"));
  EXPECT_NE(out.find("\tHello\tHello\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\t\xC4\xA0world\t world\n"), std::string::npos) << out;  // vocab string, then bytes
  const std::string bad = run_command(std::string(DSV4_BIN) + " tokenize --model /nonexistent 'x' 2>&1", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(bad.find("/nonexistent/tokenizer.json"), std::string::npos) << bad;
}

TEST(TokenizerV4, ArbitraryBytesRoundTrip) {
  // Any byte string (invalid UTF-8 included) encodes without error and decodes to the same bytes.
  std::mt19937 rng(99);
  const std::string alphabet = std::string("a Z9\n\t\r.,!<>|_") + "\xE4\xBD\xA0\xEF\xBD\x9C\xE2\x96\x81\xC3\xA9\xF0\x9F\x98\x80";
  for (int trial = 0; trial < 200; ++trial) {
    std::string s;
    const int n = int(rng() % 64);
    for (int i = 0; i < n; ++i) s.push_back(trial % 2 ? char(rng() & 0xFF) : alphabet[rng() % alphabet.size()]);
    const auto ids = v4().encode(s);
    EXPECT_EQ(v4().decode_bytes(ids), s) << "trial " << trial;
    if (dsv4::text::is_valid_utf8(s)) {
      EXPECT_EQ(v4().decode(ids), s);
    }
  }
}
