#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "runtime/session_file.h"

using namespace dsv4;

namespace {

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

std::vector<uint8_t> read_all(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_all(const std::string& p, const std::vector<uint8_t>& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

class SessionFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("dsv4_session_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "s.dsv4s").string();
    fp_ = bytes_of("model-fingerprint-v1");
    kv_.resize(10000);
    for (size_t i = 0; i < kv_.size(); ++i) kv_[i] = static_cast<uint8_t>(i * 7 + 3);
    tokens_ = bytes_of("0 1 2 3 4 5");
    SessionWriter w(fp_);
    w.add("tokens", tokens_);
    w.add("kv", kv_);
    w.add("empty", {});
    w.write(path_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Expects the reader to throw an Error whose message contains `needle`.
  void expect_error(const std::string& needle, const std::vector<uint8_t>& fp) {
    try {
      SessionReader r(path_, fp);
      FAIL() << "no error, expected one containing '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
  void expect_error(const std::string& needle) { expect_error(needle, fp_); }

  std::filesystem::path dir_;
  std::string path_;
  std::vector<uint8_t> fp_, kv_, tokens_;
};

// Offset of the first payload byte of the "kv" section: header is magic(8) version(4) fplen(4) fp
// count(4), per section 4+name+8+8+4, header crc(4); payloads in order tokens, kv, empty.
size_t kv_payload_offset(size_t fp_len, size_t tokens_len) {
  size_t h = 8 + 4 + 4 + fp_len + 4;
  for (size_t name : {6u, 2u, 5u}) h += 4 + name + 8 + 8 + 4;
  return h + 4 + tokens_len;
}

}  // namespace

TEST(SessionFile, Crc32KnownValues) {
  const std::string s = "123456789";
  EXPECT_EQ(crc32(s.data(), s.size()), 0xCBF43926u);
  EXPECT_EQ(crc32("", 0), 0u);
  std::vector<uint8_t> big(1000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 131 + 17);
  // Chaining and the slicing-by-8 path agree with byte-at-a-time.
  uint32_t bytewise = 0;
  for (uint8_t b : big) bytewise = crc32(&b, 1, bytewise);
  EXPECT_EQ(crc32(big.data(), big.size()), bytewise);
  EXPECT_EQ(crc32(big.data() + 333, 667, crc32(big.data(), 333)), bytewise);
}

TEST_F(SessionFileTest, RoundTrip) {
  SessionReader r(path_, fp_);
  EXPECT_EQ(r.names(), (std::vector<std::string>{"tokens", "kv", "empty"}));
  auto kv = r.section("kv");
  EXPECT_EQ(std::vector<uint8_t>(kv.begin(), kv.end()), kv_);
  auto t = r.section("tokens");
  EXPECT_EQ(std::vector<uint8_t>(t.begin(), t.end()), tokens_);
  EXPECT_TRUE(r.has("empty"));
  EXPECT_EQ(r.section("empty").size(), 0u);
  EXPECT_FALSE(r.has("nope"));
  EXPECT_THROW(r.section("nope"), Error);
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));
  EXPECT_EQ(read_all(path_).size(), kv_payload_offset(fp_.size(), tokens_.size()) + kv_.size());
}

TEST_F(SessionFileTest, WrongMagic) {
  auto b = read_all(path_);
  b[0] = 'X';
  write_all(path_, b);
  expect_error("bad magic");
  write_all(path_, bytes_of("hello"));
  expect_error("bad magic");
}

TEST_F(SessionFileTest, OtherVersion) {
  auto b = read_all(path_);
  b[8] = 2;
  write_all(path_, b);
  expect_error("format version 2, this build reads version 1");
}

TEST_F(SessionFileTest, OtherModelFingerprint) {
  expect_error("different model", bytes_of("model-fingerprint-v2"));
  expect_error("different model", bytes_of("short"));
  expect_error("different model", {});
}

TEST_F(SessionFileTest, Truncated) {
  const auto b = read_all(path_);
  for (size_t keep : {size_t{4}, size_t{10}, size_t{30}, size_t{60}, b.size() - 1, b.size() - kv_.size() / 2}) {
    write_all(path_, std::vector<uint8_t>(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(keep)));
    expect_error("truncated");
  }
  write_all(path_, std::vector<uint8_t>(b.begin(), b.end() - 1));
  expect_error("section 'kv' ends at byte");
}

TEST_F(SessionFileTest, BadSectionChecksumNamesSection) {
  auto b = read_all(path_);
  b[kv_payload_offset(fp_.size(), tokens_.size()) + 1234] ^= 0x10;
  write_all(path_, b);
  expect_error("section 'kv' checksum mismatch");
  b = read_all(path_);
  b[kv_payload_offset(fp_.size(), tokens_.size()) - 1] ^= 0x01;  // last byte of "tokens"
  write_all(path_, b);
  expect_error("section 'tokens' checksum mismatch");
}

TEST_F(SessionFileTest, BadHeaderChecksum) {
  auto b = read_all(path_);
  b[8 + 4 + 4 + 2] ^= 0x20;  // a fingerprint byte: caught by the header CRC, not as "other model"
  write_all(path_, b);
  expect_error("header checksum mismatch");
}

TEST_F(SessionFileTest, TrailingBytesAndWriterErrors) {
  auto b = read_all(path_);
  b.push_back(0);
  write_all(path_, b);
  expect_error("trailing bytes");
  SessionWriter w(fp_);
  w.add("a", tokens_);
  EXPECT_THROW(w.add("a", tokens_), Error);
  EXPECT_THROW(w.add("", tokens_), Error);
  EXPECT_THROW(w.write((dir_ / "no_such_dir" / "x").string()), Error);
  EXPECT_THROW(SessionReader((dir_ / "missing").string(), fp_), Error);
}
