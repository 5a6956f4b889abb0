// Chunked prefill (any chunk size, cancellation), sessions on disk (save / load / continue,
// corrupted or mismatched files rejected).
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "ckpt_fixture.h"
#include "session_test_util.h"

namespace dsv4::testing {
namespace {

// Chunk sizes that are not multiples of 4 or of the HCA ratio, on prompts longer than the window
// and than several compressor blocks: identical logits to one-shot prefill, then identical decode.
TEST(ChunkedPrefill, AnyChunkSizeBitIdenticalToOneShot) {
  struct Case {
    const char* set;
    int64_t P, D;
    std::vector<int64_t> chunks;
  };
  for (const Case& c : {Case{"tiny-a", 90, 6, {1, 7, 33}}, Case{"tiny-d", 270, 2, {37}}}) {
    EngineImpl& eng = tiny_engine(c.set, Numerics::Reference);
    const int64_t V = eng.info().vocab_size;
    const auto toks = token_stream(c.P + c.D, V, 11);
    auto run = [&](int64_t chunk) {
      SessionOptions so;
      so.max_context = c.P + c.D;
      so.prefill_chunk = chunk;
      auto s = eng.new_session(so);
      Logits l = prefill(*s, std::span(toks).first(static_cast<size_t>(c.P)), V);
      const Logits d = decode_all(*s, std::span(toks).subspan(static_cast<size_t>(c.P)), V);
      l.insert(l.end(), d.begin(), d.end());
      return l;
    };
    const Logits one = run(c.P);
    for (int64_t ch : c.chunks) EXPECT_TRUE(same_bits(one, run(ch))) << c.set << " chunk " << ch;
  }
}

// A cancelled prefill stops after a whole chunk and leaves a valid session at that position;
// prefilling the rest gives the uninterrupted result.
TEST(ChunkedPrefill, CancelAfterChunkThenResume) {
  EngineImpl& eng = tiny_engine("tiny-a", Numerics::Reference);
  const int64_t V = eng.info().vocab_size, P = 70;
  const auto toks = token_stream(P, V, 3);
  SessionOptions so;
  so.max_context = P;
  so.prefill_chunk = 12;
  auto full = eng.new_session(so);
  const Logits want = prefill(*full, toks, V);
  auto s = eng.new_session(so);
  Logits l(static_cast<size_t>(V), -7.0f);
  std::vector<int64_t> seen;
  s->prefill(toks, l, [&](int64_t done, int64_t total) {
    EXPECT_EQ(total, P);
    seen.push_back(done);
    return done < 30;  // "Ctrl-C" while the third chunk runs
  });
  EXPECT_EQ(seen, (std::vector<int64_t>{12, 24, 36}));
  EXPECT_EQ(s->position(), 36);
  EXPECT_EQ(l[0], -7.0f);  // no logits for an unfinished prompt
  const Logits got = prefill(*s, std::span(toks).subspan(36), V);
  EXPECT_TRUE(same_bits(want, got));
}

TEST(SessionIo, SaveLoadContinueBitIdentical) {
  for (const char* set : {"tiny-a", "tiny-d"}) {
    EngineImpl& eng = tiny_engine(set, Numerics::Reference);
    const int64_t V = eng.info().vocab_size;
    const int64_t P = std::string(set) == "tiny-a" ? 37 : 131, D1 = 6, D2 = std::string(set) == "tiny-a" ? 20 : 5;
    const auto toks = token_stream(P + D1 + D2, V, 5);
    TempDir dir;
    for (KvCacheLayout from : {KvCacheLayout::Compact, KvCacheLayout::Bf16}) {
      SessionOptions so;
      so.max_context = P + D1 + D2;
      so.kv_layout = from;
      so.checkpoint_interval = 16;
      auto a = eng.new_session(so);
      prefill(*a, std::span(toks).first(static_cast<size_t>(P)), V);
      decode_all(*a, std::span(toks).subspan(static_cast<size_t>(P), static_cast<size_t>(D1)), V);
      const std::string path = dir.file("s.dsv4s");
      a->save(path);
      const auto rest = std::span(toks).subspan(static_cast<size_t>(P + D1));
      const Logits want = decode_all(*a, rest, V);
      for (KvCacheLayout to : {KvCacheLayout::Compact, KvCacheLayout::Bf16}) {
        SessionOptions so2 = so;
        so2.kv_layout = to;
        auto b = eng.new_session(so2);
        b->load(path);
        EXPECT_EQ(b->position(), P + D1);
        EXPECT_EQ(b->tokens(), std::vector<int32_t>(toks.begin(), toks.begin() + P + D1));
        EXPECT_TRUE(same_bits(want, decode_all(*b, rest, V))) << set;
        // the checkpoints came along: rewinding the loaded session works too
        b->rewind(P + D1);
        EXPECT_TRUE(same_bits(want, decode_all(*b, rest, V))) << set << " after rewind";
      }
    }
  }
}

// A session that ran the MTP block saves its pending hidden row; a session of the same engine
// that does not run it (no MTP input buffer) loads the file and continues the main model bit for
// bit, and one that does run it continues its MTP logits too.
TEST(SessionIo, MtpPendingRowLoadsIntoAnySession) {
  EngineImpl& eng = tiny_engine("tiny-a", Numerics::Reference, true);
  const int64_t V = eng.info().vocab_size;
  const auto toks = token_stream(30, V, 13);
  TempDir dir;
  std::map<int64_t, std::vector<float>> mtp_a, mtp_c;
  SessionOptions with;
  with.max_context = 64;
  with.on_mtp_logits = [&](int64_t pos, std::span<const float> l) { mtp_a[pos].assign(l.begin(), l.end()); };
  auto a = eng.new_session(with);
  prefill(*a, std::span(toks).first(20), V);
  const std::string path = dir.file("mtp.dsv4s");
  a->save(path);
  const auto rest = std::span(toks).subspan(20);
  const Logits want = decode_all(*a, rest, V);
  SessionOptions without;
  without.max_context = 64;
  auto b = eng.new_session(without);
  b->load(path);
  EXPECT_TRUE(same_bits(want, decode_all(*b, rest, V)));
  SessionOptions with_c = with;
  with_c.on_mtp_logits = [&](int64_t pos, std::span<const float> l) { mtp_c[pos].assign(l.begin(), l.end()); };
  auto c = eng.new_session(with_c);
  c->load(path);
  EXPECT_TRUE(same_bits(want, decode_all(*c, rest, V)));
  ASSERT_FALSE(mtp_c.empty());
  for (const auto& [pos, l] : mtp_c) EXPECT_TRUE(same_bits(mtp_a.at(pos), l)) << pos;
}

TEST(SessionIo, CorruptedOrMismatchedFilesRejected) {
  EngineImpl& eng = tiny_engine("tiny-a", Numerics::Reference);
  const int64_t V = eng.info().vocab_size;
  const auto toks = token_stream(40, V, 9);
  TempDir dir;
  SessionOptions so;
  so.max_context = 64;
  auto a = eng.new_session(so);
  prefill(*a, toks, V);
  const std::string good = dir.file("good.dsv4s");
  a->save(good);
  const std::string bytes = read_file(good);
  auto load = [&](const std::string& content, SessionOptions o = {}) {
    if (o.max_context == 4096) o.max_context = 64;
    const std::string p = dir.file("bad.dsv4s");
    write_file(p, content);
    auto b = eng.new_session(o);
    b->load(p);
  };
  expect_error([&] { load(bytes.substr(0, bytes.size() - 10)); }, {"bad.dsv4s", "truncated"});
  std::string flipped = bytes;
  flipped[flipped.size() - 100] ^= 0x10;
  expect_error([&] { load(flipped); }, {"checksum mismatch"});
  std::string version = bytes;
  version[8] = 9;  // format version field after the magic
  expect_error([&] { load(version); }, {"format version 9"});
  expect_error([&] { load("not a session file at all"); }, {"bad magic"});
  SessionOptions small;
  small.max_context = 20;
  expect_error([&] { load(bytes, small); }, {"position 40", "max_context 20"});
  // another model
  EngineImpl& other = tiny_engine("tiny-d", Numerics::Reference);
  expect_error([&] { other.new_session(so)->load(good); }, {"different model"});
  // other numerics
  EngineImpl& fast = tiny_engine("tiny-a", Numerics::Fast);
  expect_error([&] { fast.new_session(so)->load(good); }, {"numerics reference"});
  // MTP bound vs not
  EngineImpl& mtp = tiny_engine("tiny-a", Numerics::Reference, true);
  expect_error([&] { mtp.new_session(so)->load(good); }, {"blocks"});
  // a file rejected by validation leaves the session as it was
  auto b = eng.new_session(so);
  prefill(*b, std::span(toks).first(5), V);
  EXPECT_THROW(b->load(dir.file("missing.dsv4s")), Error);
  EXPECT_EQ(b->position(), 5);
  EXPECT_NO_THROW(b->load(good));
  EXPECT_EQ(b->position(), 40);
}

}  // namespace
}  // namespace dsv4::testing
