// Rewind to any earlier position (inside and across window wraps and compressor blocks, with and
// without checkpoints, with checkpoint thinning), then continue: the same logits as a fresh run
// of the same token prefix. Prefix reuse for re-rendered conversations.
#include <gtest/gtest.h>

#include "ckpt_fixture.h"
#include "session_test_util.h"

namespace dsv4::testing {
namespace {

// Fresh run: the prompt prefilled in one call (it is at least `window` long, so its layout is the
// decode layout the rewound session uses for rows after the prompt), then token-by-token decode.
Logits fresh(EngineImpl& eng, const std::vector<int32_t>& toks, int64_t P, int64_t q,
             const std::vector<int32_t>& cont, int64_t ctx) {
  const int64_t V = eng.info().vocab_size;
  SessionOptions so;
  so.max_context = ctx;
  so.checkpoint_interval = 0;
  auto s = eng.new_session(so);
  const int64_t pre = std::min(P, q);
  prefill(*s, std::span(toks).first(static_cast<size_t>(pre)), V);
  for (int64_t i = pre; i < q; ++i) decode(*s, toks[static_cast<size_t>(i)], V);
  return decode_all(*s, cont, V);
}

TEST(Rewind, ContinueEqualsFreshRun) {
  struct Case {
    const char* set;
    int64_t P, N;
    std::vector<int64_t> targets;
    int64_t interval;
    int max_ckpts;
  };
  // tiny-a: window 8, ratios 4 and 16; tiny-d: window 128, ratios 4 and 128.
  const Case cases[] = {
      {"tiny-a", 40, 100, {97, 81, 64, 63, 41, 33, 17, 9}, 16, 3},
      {"tiny-a", 40, 60, {45, 12}, 0, 0},  // no checkpoints: recompute from 0
      {"tiny-d", 130, 160, {157, 131}, 64, 8},
  };
  for (const Case& c : cases) {
    EngineImpl& eng = tiny_engine(c.set, Numerics::Reference);
    const int64_t V = eng.info().vocab_size, W = eng.weights().config.window;
    const auto toks = token_stream(c.N, V, 21);
    const auto cont = token_stream(5, V, 77);
    SessionOptions so;
    so.max_context = c.N + 8;
    so.checkpoint_interval = c.interval;
    so.max_checkpoints = c.max_ckpts;
    so.prefill_chunk = 23;
    auto s = eng.new_session(so);
    prefill(*s, std::span(toks).first(static_cast<size_t>(c.P)), V);
    decode_all(*s, std::span(toks).subspan(static_cast<size_t>(c.P)), V);
    auto* si = dynamic_cast<SessionImpl*>(s.get());
    if (c.max_ckpts > 0) {
      EXPECT_LE(si->n_checkpoints(), static_cast<size_t>(c.max_ckpts));
    }
    if (c.interval > 0) {
      EXPECT_GT(s->checkpoint_bytes(), 0u);
    }
    for (int64_t q : c.targets) {
      ASSERT_GE(q, W);  // fresh-run layout equivalence (see fresh())
      // go back to the full timeline first (re-decode), then rewind to q
      if (s->position() < c.N) {
        s->rewind(std::min<int64_t>(s->position(), c.N));
        for (int64_t i = s->position(); i < c.N; ++i) decode(*s, toks[static_cast<size_t>(i)], V);
      }
      s->rewind(q);
      ASSERT_EQ(s->position(), q);
      ASSERT_EQ(s->tokens(), std::vector<int32_t>(toks.begin(), toks.begin() + q));
      const Logits got = decode_all(*s, cont, V);
      EXPECT_TRUE(same_bits(fresh(eng, toks, c.P, q, cont, c.N + 8), got)) << c.set << " rewind to " << q;
      s->rewind(q);  // drop the continuation again
    }
  }
}

TEST(Rewind, BadPositionsAndZero) {
  EngineImpl& eng = tiny_engine("tiny-a", Numerics::Reference);
  const int64_t V = eng.info().vocab_size;
  const auto toks = token_stream(20, V, 2);
  auto s = eng.new_session({});
  prefill(*s, toks, V);
  expect_error([&] { s->rewind(21); }, {"rewind", "21", "[0, 20]"});
  expect_error([&] { s->rewind(-1); }, {"rewind"});
  s->rewind(0);
  EXPECT_EQ(s->position(), 0);
  auto f = eng.new_session({});
  EXPECT_TRUE(same_bits(prefill(*f, toks, V), prefill(*s, toks, V)));
}

TEST(PrefixReuse, LongestCommonPrefix) {
  const std::vector<int32_t> a{1, 2, 3, 4}, b{1, 2, 9}, e{};
  EXPECT_EQ(common_prefix(a, b), 2);
  EXPECT_EQ(common_prefix(a, a), 4);
  EXPECT_EQ(common_prefix(a, e), 0);
  EXPECT_EQ(common_prefix(std::vector<int32_t>{5}, a), 0);
}

// A re-rendered conversation that shares a prefix with the live session: reuse_prefix keeps the
// common part, the caller prefills the rest; logits equal a fresh prefill of the new prompt.
TEST(PrefixReuse, ReRenderedConversationMatchesFreshPrefill) {
  EngineImpl& eng = tiny_engine("tiny-a", Numerics::Reference);
  const int64_t V = eng.info().vocab_size;
  const auto turn1 = token_stream(60, V, 4);  // prompt + answer of turn 1
  SessionOptions so;
  so.max_context = 200;
  so.checkpoint_interval = 16;
  auto s = eng.new_session(so);
  prefill(*s, std::span(turn1).first(30), V);
  decode_all(*s, std::span(turn1).subspan(30), V);
  // turn 2: the history diverges at token 45 (e.g. dropped reasoning), then new user text
  std::vector<int32_t> p2(turn1.begin(), turn1.begin() + 45);
  const auto tail = token_stream(25, V, 8);
  p2.insert(p2.end(), tail.begin(), tail.end());
  const int64_t kept = s->reuse_prefix(p2);
  EXPECT_EQ(kept, 45);
  const Logits got = prefill(*s, std::span(p2).subspan(static_cast<size_t>(kept)), V);
  auto f = eng.new_session(so);
  EXPECT_TRUE(same_bits(prefill(*f, p2, V), got));
  // the same prompt again: everything but the last token is reused
  EXPECT_EQ(s->reuse_prefix(p2), static_cast<int64_t>(p2.size()) - 1);
  EXPECT_TRUE(same_bits(got, prefill(*s, std::span(p2).last(1), V)));
}

}  // namespace
}  // namespace dsv4::testing

namespace dsv4::testing {
namespace {

// The MTP block's state (it runs one position behind) is part of what rewind restores: MTP logits
// after a rewind equal those of a fresh run, and replayed positions are not reported twice.
TEST(Rewind, MtpContinuesLikeFreshRun) {
  EngineImpl& eng = tiny_engine("tiny-a", Numerics::Reference, true);
  const int64_t V = eng.info().vocab_size, P = 20, N = 60, q = 37;
  const auto toks = token_stream(N, V, 31);
  const auto cont = token_stream(4, V, 32);
  std::map<int64_t, Logits> got, want;
  std::map<int64_t, Logits>* sink = &got;
  int64_t reported_before = 0;
  SessionOptions so;
  so.max_context = N + 8;
  so.checkpoint_interval = 16;
  so.on_mtp_logits = [&](int64_t pos, std::span<const float> l) { (*sink)[pos] = Logits(l.begin(), l.end()); };
  auto s = eng.new_session(so);
  prefill(*s, std::span(toks).first(P), V);
  decode_all(*s, std::span(toks).subspan(P), V);
  reported_before = static_cast<int64_t>(got.size());
  got.clear();
  s->rewind(q);
  EXPECT_TRUE(got.empty()) << "replay reported MTP logits";
  decode_all(*s, cont, V);
  EXPECT_EQ(reported_before, N - 1);
  sink = &want;
  auto f = eng.new_session(so);
  prefill(*f, std::span(toks).first(P), V);
  decode_all(*f, std::span(toks).subspan(P, q - P), V);
  want.clear();
  decode_all(*f, cont, V);
  ASSERT_EQ(got.size(), 4u);
  ASSERT_EQ(want.size(), 4u);
  for (const auto& [pos, l] : want) {
    ASSERT_TRUE(got.count(pos)) << pos;
    EXPECT_TRUE(same_bits(l, got[pos])) << "MTP at " << pos;
  }
}

}  // namespace
}  // namespace dsv4::testing
