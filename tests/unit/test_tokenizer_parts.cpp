// Tokenizer mechanisms on small hand-built tokenizer.json files: byte-level alphabet, merges in
// both JSON forms and by rank, added-token matching (longest, passes, lstrip/rstrip/single_word),
// decoding, the streaming detokenizer, and clear errors for malformed files.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "dsv4/tokenizer.h"
#include "text/byte_level.h"
#include "text/pretokenizer.h"
#include "text/regex_dialect.h"
#include "text/utf8.h"

namespace {

using nlohmann::json;
using dsv4::Tokenizer;
using dsv4::text::bytes_to_byte_level;

// A byte-level tokenizer whose ids 0..255 are the bytes; extra symbols get ids from 256 on, in
// the order given; merges as "l r" strings or [l, r] arrays.
json toy_json(const std::vector<std::string>& extra, const std::vector<std::pair<std::string, std::string>>& merges,
              bool array_merges, const std::string& split = R"( ?[A-Za-z]+|\s+|[0-9]+|[^\sA-Za-z0-9]+)") {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[bytes_to_byte_level(std::string(1, char(b)))] = b;
  for (size_t i = 0; i < extra.size(); ++i) vocab[extra[i]] = 256 + int(i);
  json m = json::array();
  for (const auto& [l, r] : merges) {
    if (array_merges) m.push_back(json::array({l, r}));
    else m.push_back(l + " " + r);
  }
  json j;
  j["version"] = "1.0";
  j["added_tokens"] = json::array();
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers",
                         json::array({{{"type", "Split"}, {"pattern", {{"Regex", split}}}, {"behavior", "Isolated"}, {"invert", false}},
                                      {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}})}};
  j["decoder"] = {{"type", "ByteLevel"}};
  j["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", m}};
  return j;
}

json added(int id, const std::string& content, bool special = true, bool normalized = false, bool lstrip = false,
           bool rstrip = false, bool single_word = false) {
  return {{"id", id}, {"content", content}, {"single_word", single_word}, {"lstrip", lstrip},
          {"rstrip", rstrip}, {"normalized", normalized}, {"special", special}};
}

std::vector<int32_t> ids_of(std::string_view bytes) {
  std::vector<int32_t> v;
  for (char c : bytes) v.push_back(uint8_t(c));
  return v;
}

const std::vector<std::string> kAbcExtra = {"ab", "abc", "Ġa", "Ġab"};
const std::vector<std::pair<std::string, std::string>> kAbcMerges = {{"a", "b"}, {"ab", "c"}, {"Ġ", "a"}, {"Ġ", "ab"}};

}  // namespace

TEST(TokenizerByteLevel, AlphabetMatchesSpec) {
  using dsv4::text::byte_from_char;
  using dsv4::text::byte_to_char;
  EXPECT_EQ(byte_to_char(' '), U'\u0120');   // Ġ
  EXPECT_EQ(byte_to_char('\n'), U'\u010A');  // Ċ
  EXPECT_EQ(byte_to_char(0), U'\u0100');
  EXPECT_EQ(byte_to_char('!'), U'!');
  EXPECT_EQ(byte_to_char('~'), U'~');
  EXPECT_EQ(byte_to_char(127), char32_t(256 + 33));
  EXPECT_EQ(byte_to_char(160), char32_t(256 + 33 + 33));
  EXPECT_EQ(byte_to_char(161), U'\u00A1');
  EXPECT_EQ(byte_to_char(173), char32_t(256 + 67));  // the last remapped byte
  EXPECT_EQ(byte_to_char(174), U'\u00AE');
  EXPECT_EQ(byte_to_char(255), U'\u00FF');
  std::vector<bool> seen(400, false);
  for (int b = 0; b < 256; ++b) {
    const char32_t c = byte_to_char(uint8_t(b));
    ASSERT_LT(c, 400u);
    EXPECT_FALSE(seen[c]) << "byte " << b;
    seen[c] = true;
    EXPECT_EQ(byte_from_char(c), b);
  }
  EXPECT_EQ(byte_from_char(U'A' + 0x1000), -1);
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(char(b));
  std::string back;
  EXPECT_TRUE(dsv4::text::byte_level_to_bytes(bytes_to_byte_level(all), back));
  EXPECT_EQ(back, all);
  EXPECT_EQ(bytes_to_byte_level(" \n"), "\xC4\xA0\xC4\x8A");
}

TEST(TokenizerBpe, StringAndArrayMergesAgree) {
  for (bool arrays : {false, true}) {
    const Tokenizer t = Tokenizer::from_json_string(toy_json(kAbcExtra, kAbcMerges, arrays).dump());
    // "abc" -> abc; " abc" -> Ġ abc (a b, then ab c, rank before Ġ ab); " ab" -> Ġab; " a" -> Ġa;
    // " cab" -> Ġ c ab
    EXPECT_EQ(t.encode("abc abc ab a cab"), (std::vector<int32_t>{257, 32, 257, 259, 258, 32, 'c', 256}))
        << (arrays ? "array merges" : "string merges");
    EXPECT_EQ(t.vocab_size(), 260);
    EXPECT_EQ(t.token_id("Ġab"), 259);
    EXPECT_EQ(t.token_id("Ġabc"), std::nullopt);
    EXPECT_EQ(t.token_to_vocab_string(258), "Ġa");
    EXPECT_EQ(t.token_to_piece(258), " a");
  }
}

TEST(TokenizerBpe, LowestRankMergesFirst) {
  // "abc" with "b c" ranked before "a b" must become a + bc, and the reverse order ab + c.
  const Tokenizer bc_first = Tokenizer::from_json_string(toy_json({"bc", "ab"}, {{"b", "c"}, {"a", "b"}}, false).dump());
  EXPECT_EQ(bc_first.encode("abc"), (std::vector<int32_t>{'a', 256}));
  const Tokenizer ab_first = Tokenizer::from_json_string(toy_json({"bc", "ab"}, {{"a", "b"}, {"b", "c"}}, false).dump());
  EXPECT_EQ(ab_first.encode("abc"), (std::vector<int32_t>{257, 'c'}));
  // Equal pairs merge left to right: "aaa" -> aa + a; "aaaa" -> aaaa via aa + aa.
  const Tokenizer aa = Tokenizer::from_json_string(toy_json({"aa", "aaaa"}, {{"a", "a"}, {"aa", "aa"}}, true).dump());
  EXPECT_EQ(aa.encode("aaa"), (std::vector<int32_t>{256, 'a'}));
  EXPECT_EQ(aa.encode("aaaa"), (std::vector<int32_t>{257}));
  EXPECT_EQ(aa.encode("aaaaaaa"), (std::vector<int32_t>{257, 256, 'a'}));
  // Long pieces (heap path with many candidates) stay consistent.
  const std::string many(1001, 'a');
  std::vector<int32_t> expect(250, 257);
  expect.push_back('a');
  EXPECT_EQ(aa.encode(many), expect);
}

TEST(TokenizerBpe, BytesWithoutMergesAndInvalidUtf8) {
  const Tokenizer t = Tokenizer::from_json_string(toy_json({}, {}, false).dump());
  const std::string s = "h\xC3\xA9 \xE4\xB8\x96\xF0\x9F\x98\x80\t\r\n";
  EXPECT_EQ(t.encode(s), ids_of(s));
  const std::string bad = "a\xFF\xC3(\xE4\xB8";  // invalid and truncated UTF-8: bytes, never an error
  EXPECT_EQ(t.decode_bytes(t.encode(bad)), bad);
  EXPECT_EQ(t.decode(t.encode(bad)), "a\xEF\xBF\xBD\xEF\xBF\xBD(\xEF\xBF\xBD");
}

TEST(TokenizerPreTokenizer, BehaviorsSplitAsSpecified) {
  // The classic example "the-final--countdown" split on "-".
  const auto pieces = [](const std::string& behavior, bool invert = false) {
    const json j = {{"type", "Sequence"},
                    {"pretokenizers", json::array({{{"type", "Split"}, {"pattern", {{"String", "-"}}},
                                                    {"behavior", behavior}, {"invert", invert}},
                                                   {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
    const auto pt = dsv4::text::PreTokenizer::from_json(j, "test");
    auto scratch = pt.make_scratch();
    const std::string text = "the-final--countdown";
    std::vector<dsv4::text::ByteSpan> spans;
    pt.split(text, spans, *scratch);
    std::vector<std::string> out;
    for (const auto& sp : spans) out.push_back(text.substr(sp.begin, sp.end - sp.begin));
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(pieces("Isolated"), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(pieces("Removed"), (V{"the", "final", "countdown"}));
  EXPECT_EQ(pieces("MergedWithPrevious"), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(pieces("MergedWithNext"), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(pieces("Contiguous"), (V{"the", "-", "final", "--", "countdown"}));
  EXPECT_EQ(pieces("Removed", true), (V{"-", "-", "-"}));
}

TEST(TokenizerPreTokenizer, LookaheadStopsAtPieceEnd) {
  // DeepSeek's whitespace rule "\s+(?!\S)|\s+": "a   b" gives "a", "  ", " b" only if the split
  // sees the whole piece; each piece of an earlier step is its own subject.
  const json j = {{"type", "Sequence"},
                  {"pretokenizers",
                   json::array({{{"type", "Split"}, {"pattern", {{"Regex", "\\p{N}{1,3}"}}}, {"behavior", "Isolated"}},
                                {{"type", "Split"}, {"pattern", {{"Regex", " ?\\p{L}+|\\s+(?!\\S)|\\s+"}}}, {"behavior", "Isolated"}},
                                {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
  const auto pt = dsv4::text::PreTokenizer::from_json(j, "test");
  auto scratch = pt.make_scratch();
  const std::string text = "a   b  12345  ";
  std::vector<dsv4::text::ByteSpan> spans;
  pt.split(text, spans, *scratch);
  std::vector<std::string> out;
  for (const auto& sp : spans) out.push_back(text.substr(sp.begin, sp.end - sp.begin));
  EXPECT_EQ(out, (std::vector<std::string>{"a", "  ", " b", "  ", "123", "45", "  "}));
}

TEST(TokenizerAddedTokens, LongestLeftmostAndAllowSpecial) {
  json j = toy_json(kAbcExtra, kAbcMerges, false);
  j["added_tokens"] = json::array({added(300, "<s>"), added(301, "<ss>"), added(302, "<s><s>")});
  const Tokenizer t = Tokenizer::from_json_string(j.dump());
  EXPECT_EQ(t.encode("ab<s>abc"), (std::vector<int32_t>{256, 300, 257}));
  EXPECT_EQ(t.encode("<ss><s><s><s>"), (std::vector<int32_t>{301, 302, 300}));
  EXPECT_EQ(t.encode("<s"), ids_of("<s"));
  // Without added-token matching the strings are plain text.
  EXPECT_EQ(t.encode("<s>", false), ids_of("<s>"));
  EXPECT_EQ(t.vocab_size(), 303);
  EXPECT_TRUE(t.is_special(300));
  EXPECT_FALSE(t.is_special(257));
  EXPECT_EQ(t.token_id("<ss>"), 301);
  EXPECT_EQ(t.token_to_piece(302), "<s><s>");
  // Ids between the vocabulary and the added tokens name nothing: they decode to nothing.
  const std::vector<int32_t> gap = {'x', 290, 'y'};
  EXPECT_EQ(t.decode(gap), "xy");
}

TEST(TokenizerAddedTokens, NonNormalizedPassComesFirst) {
  // "ab" (normalized) starts further left than "b<" (not normalized), but HF matches the
  // non-normalized tokens over the whole text first.
  json j = toy_json(kAbcExtra, kAbcMerges, false);
  j["added_tokens"] = json::array({added(300, "ab", false, true), added(301, "b<", true, false)});
  const Tokenizer t = Tokenizer::from_json_string(j.dump());
  EXPECT_EQ(t.encode("ab<"), (std::vector<int32_t>{'a', 301}));
  EXPECT_EQ(t.encode("xab"), (std::vector<int32_t>{'x', 300}));
}

TEST(TokenizerAddedTokens, StripAndSingleWord) {
  json j = toy_json(kAbcExtra, kAbcMerges, false);
  j["added_tokens"] = json::array({added(300, "<L>", true, false, true, false), added(301, "<R>", true, false, false, true),
                                   added(302, "cc", true, false, false, false, true)});
  const Tokenizer t = Tokenizer::from_json_string(j.dump());
  EXPECT_EQ(t.encode("a \t<L> a"), (std::vector<int32_t>{'a', 300, 258}));
  EXPECT_EQ(t.encode("a<R>  \n a"), (std::vector<int32_t>{'a', 301, 'a'}));
  EXPECT_EQ(t.encode("cc"), (std::vector<int32_t>{302}));
  EXPECT_EQ(t.encode("x cc."), (std::vector<int32_t>{'x', 32, 302, '.'}));
  EXPECT_EQ(t.encode("acc"), ids_of("acc"));  // a word character before: no match
}

TEST(TokenizerDecode, RoundTripAndErrors) {
  json j = toy_json(kAbcExtra, kAbcMerges, false);
  j["added_tokens"] = json::array({added(300, "<s>")});
  const Tokenizer t = Tokenizer::from_json_string(j.dump());
  const std::string s = "abc <s> ab\tc\n\n  abca \xE2\x82\xAC";
  EXPECT_EQ(t.decode(t.encode(s)), s);
  const std::vector<int32_t> bad = {1, 303};
  EXPECT_THROW(t.decode(bad), dsv4::Error);
  EXPECT_THROW(t.token_to_piece(-1), dsv4::Error);
}

TEST(TokenizerDecode, ConcurrentEncodesAgree) {
  const Tokenizer t = Tokenizer::from_json_string(toy_json(kAbcExtra, kAbcMerges, true).dump());
  std::string text;
  for (int i = 0; i < 200; ++i) text += "abc ab a cab abcabc \n";
  const auto expect = t.encode(text);
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      for (int r = 0; r < 20; ++r) ok[k] += t.encode(text) == expect;
    });
  for (auto& th : threads) th.join();
  for (int k = 0; k < 4; ++k) EXPECT_EQ(ok[k], 20);
}

TEST(TokenizerStream, SplitCharactersAreHeldBackProperty) {
  // Byte-level ids without merges: every id is one byte, so characters are split across ids.
  const Tokenizer t = Tokenizer::from_json_string(toy_json({}, {}, false).dump());
  std::mt19937 rng(1234);
  const std::vector<std::string> atoms = {"a", " ", "\xC3\xA9", "\xE4\xB8\x96", "\xF0\x9F\x98\x80", "\xFF", "\xC3",
                                          "\xE4\xB8", "\xF0\x9F\x98", "\xED\xA0\x80", "\x80", "\n"};
  for (int trial = 0; trial < 300; ++trial) {
    std::string bytes;
    const int n = int(rng() % 12);
    for (int i = 0; i < n; ++i) bytes += atoms[rng() % atoms.size()];
    const auto ids = ids_of(bytes);
    const std::string expect = t.decode(ids);
    ASSERT_TRUE(dsv4::text::is_valid_utf8(expect));
    dsv4::StreamDecoder sd(t);
    std::string got;
    for (int32_t id : ids) {
      const std::string chunk = sd.push(id);
      ASSERT_TRUE(dsv4::text::is_valid_utf8(chunk)) << "trial " << trial;
      got += chunk;
    }
    const std::string tail = sd.flush();
    ASSERT_TRUE(dsv4::text::is_valid_utf8(tail));
    got += tail;
    EXPECT_EQ(got, expect) << "trial " << trial;
    EXPECT_EQ(sd.pending_bytes(), 0u);
  }
}

TEST(TokenizerStream, HoldsBackUntilComplete) {
  const Tokenizer t = Tokenizer::from_json_string(toy_json({}, {}, false).dump());
  dsv4::StreamDecoder sd(t);
  EXPECT_EQ(sd.push(0xF0), "");
  EXPECT_EQ(sd.push(0x9F), "");
  EXPECT_EQ(sd.push(0x98), "");
  EXPECT_EQ(sd.pending_bytes(), 3u);
  EXPECT_EQ(sd.push(0x80), "\xF0\x9F\x98\x80");
  EXPECT_EQ(sd.push('a'), "a");
  EXPECT_EQ(sd.push(0xE4), "");
  EXPECT_EQ(sd.push('b'), "\xEF\xBF\xBD" "b");  // cut short by an ASCII byte: replaced at once
  EXPECT_EQ(sd.push(0xE4), "");
  EXPECT_EQ(sd.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(sd.flush(), "");
}

// ---- malformed files ----------------------------------------------------------------------

namespace {

std::string error_for(const std::string& file_text) {
  const auto dir = std::filesystem::temp_directory_path() / ("dsv4_tok_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = (dir / "tokenizer.json").string();
  std::ofstream(path, std::ios::binary) << file_text;
  std::string msg;
  try {
    Tokenizer::load(dir.string());
    msg = "(no error)";
  } catch (const dsv4::Error& e) {
    msg = e.what();
  }
  std::filesystem::remove_all(dir);
  EXPECT_NE(msg.find(path), std::string::npos) << "message does not name the file: " << msg;
  return msg;
}

}  // namespace

TEST(TokenizerErrors, MalformedFilesNameFileAndProblem) {
  const json good = toy_json(kAbcExtra, kAbcMerges, false);
  EXPECT_NE(error_for("{\"model\": ").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_for("[1, 2]").find("JSON object"), std::string::npos);
  json j = good;
  j.erase("model");
  EXPECT_NE(error_for(j.dump()).find("missing \"model\""), std::string::npos);
  j = good;
  j["model"].erase("vocab");
  EXPECT_NE(error_for(j.dump()).find("missing \"vocab\""), std::string::npos);
  j = good;
  j["model"].erase("merges");
  EXPECT_NE(error_for(j.dump()).find("missing \"merges\""), std::string::npos);
  j = good;
  j["model"]["merges"].push_back("ab zz");
  const std::string unknown = error_for(j.dump());
  EXPECT_NE(unknown.find("model.merges[4]"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("unknown symbol \"zz\""), std::string::npos) << unknown;
  j = good;
  j["model"]["merges"].push_back("b c");  // "bc" is not in the vocabulary
  EXPECT_NE(error_for(j.dump()).find("\"bc\" is not in model.vocab"), std::string::npos);
  j = good;
  j["model"]["merges"].push_back("abc");
  EXPECT_NE(error_for(j.dump()).find("one space"), std::string::npos);
  j = good;
  j["model"]["merges"].push_back(json::array({"a"}));
  EXPECT_NE(error_for(j.dump()).find("model.merges[4]"), std::string::npos);
  j = good;
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "([a-z]+";
  const std::string regex = error_for(j.dump());
  EXPECT_NE(regex.find("bad regex"), std::string::npos) << regex;
  EXPECT_NE(regex.find("pretokenizers[0]"), std::string::npos) << regex;
  j = good;
  j["model"]["vocab"].erase("a");
  EXPECT_NE(error_for(j.dump()).find("byte-level symbol \"a\""), std::string::npos);
  j = good;
  j["model"]["vocab"]["ab"] = "x";
  EXPECT_NE(error_for(j.dump()).find("model.vocab[\"ab\"]"), std::string::npos);
  j = good;
  j["added_tokens"] = json::array({{{"id", 5}}});
  EXPECT_NE(error_for(j.dump()).find("added_tokens[0]: missing \"content\""), std::string::npos);
  j = good;
  j["model"]["type"] = "WordPiece";
  EXPECT_NE(error_for(j.dump()).find("only BPE"), std::string::npos);
  j = good;
  j["normalizer"] = {{"type", "NFKC"}};
  EXPECT_NE(error_for(j.dump()).find("normalizer"), std::string::npos);
  j = good;
  j["pre_tokenizer"]["pretokenizers"].erase(1);
  EXPECT_NE(error_for(j.dump()).find("ByteLevel"), std::string::npos);
  j = good;
  j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Sideways";
  EXPECT_NE(error_for(j.dump()).find("Sideways"), std::string::npos);
}

TEST(TokenizerErrors, MissingDirectoryAndBadConfig) {
  try {
    Tokenizer::load("/nonexistent/dsv4-model");
    FAIL();
  } catch (const dsv4::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dsv4-model/tokenizer.json"), std::string::npos);
  }
  const auto dir = std::filesystem::temp_directory_path() / ("dsv4_tokcfg_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << toy_json(kAbcExtra, kAbcMerges, false).dump();
  std::ofstream(dir / "tokenizer_config.json") << R"({"bos_token": "<nope>"})";
  try {
    Tokenizer::load(dir.string());
    ADD_FAILURE() << "no error";
  } catch (const dsv4::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json: bos_token \"<nope>\""), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(TokenizerRegexDialect, OnigurumaEscapesBecomePcre2) {
  using dsv4::text::translate_oniguruma;
  EXPECT_EQ(translate_oniguruma("\\s+(?!\\S)", "t"), "\\p{White_Space}+(?!\\P{White_Space})");
  EXPECT_EQ(translate_oniguruma("[^\\s\\p{L}]\\h", "t"), "[^\\p{White_Space}\\p{L}][0-9A-Fa-f]");
  EXPECT_EQ(translate_oniguruma("\\\\s\\[\\s\\]", "t"), "\\\\s\\[\\p{White_Space}\\]");  // escaped backslash stays
  EXPECT_EQ(translate_oniguruma("[]s]\\w", "t"),
            "[]s][\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]");
  EXPECT_EQ(translate_oniguruma("\\p{N}{1,3}", "t"), "\\p{N}{1,3}");
  EXPECT_THROW(translate_oniguruma("[\\W]", "t"), dsv4::Error);
}

TEST(TokenizerRegexDialect, WhitespaceIsUnicodeWhiteSpace) {
  // U+180E MONGOLIAN VOWEL SEPARATOR is not White_Space (PCRE2's own \s would take it), U+0085 is.
  const json j = {{"type", "Sequence"},
                  {"pretokenizers",
                   json::array({{{"type", "Split"}, {"pattern", {{"Regex", "\\s+(?!\\S)|\\s+"}}}, {"behavior", "Isolated"}},
                                {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
  const auto pt = dsv4::text::PreTokenizer::from_json(j, "test");
  auto scratch = pt.make_scratch();
  const auto pieces = [&](const std::string& text) {
    std::vector<dsv4::text::ByteSpan> spans;
    pt.split(text, spans, *scratch);
    std::vector<std::string> out;
    for (const auto& sp : spans) out.push_back(text.substr(sp.begin, sp.end - sp.begin));
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(pieces(" \xE1\xA0\x8E"), (V{" ", "\xE1\xA0\x8E"}));
  EXPECT_EQ(pieces("a\xC2\x85 b"), (V{"a", "\xC2\x85", " ", "b"}));
}
