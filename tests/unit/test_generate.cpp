// Generation loop and stop strings, over a deterministic fake engine and a byte-level toy tokenizer.
#include <gtest/gtest.h>

#include "core/error.h"
#include "runtime/generate.h"
#include "tests/unit/fake_engine.h"

using namespace dsv4;
using dsv4::test::FakeEngine;

namespace {

std::string run_stop(std::vector<std::string> stops, const std::vector<std::string>& pieces, bool* stopped) {
  StopMatcher m(std::move(stops));
  std::string out;
  for (const auto& p : pieces) out += m.push(p);
  out += m.flush();
  *stopped = m.stopped();
  return out;
}

GenerateOptions greedy(int64_t max_tokens = -1) {
  GenerateOptions o;
  o.sampling.temperature = 0.0f;
  o.max_tokens = max_tokens;
  return o;
}

}  // namespace

TEST(StopMatcher, PassesTextWithoutStops) {
  bool stopped = false;
  EXPECT_EQ(run_stop({}, {"ab", "cd"}, &stopped), "abcd");
  EXPECT_FALSE(stopped);
}

TEST(StopMatcher, StopsAcrossPiecesAndNeverEmitsTheStop) {
  bool stopped = false;
  EXPECT_EQ(run_stop({"STOP"}, {"hel", "lo S", "TO", "P and more"}, &stopped), "hello ");
  EXPECT_TRUE(stopped);
}

TEST(StopMatcher, HoldsBackOnlyAPossiblePrefix) {
  StopMatcher m({"</end>"});
  EXPECT_EQ(m.push("a</e"), "a");  // "</e" may start the stop
  EXPECT_EQ(m.push("x"), "</ex");  // decided: not a stop
  EXPECT_EQ(m.push("<"), "");
  EXPECT_EQ(m.flush(), "<");       // end of text releases it
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, EarliestOfSeveralStopsWins) {
  bool stopped = false;
  EXPECT_EQ(run_stop({"world", "lo w"}, {"hello world"}, &stopped), "hel");
  EXPECT_TRUE(stopped);
  StopMatcher m({"world", "lo w"});
  m.push("hello world");
  EXPECT_EQ(m.matched(), "lo w");
}

TEST(Generation, ScriptedTextEndsAtEos) {
  const Tokenizer tok = test::toy_tokenizer();
  const std::vector<int32_t> prompt = tok.encode("Q: hi\nA:", true);
  FakeEngine eng(test::kToyVocab, test::script(tok, "Hello, world", prompt.size()));
  auto s = eng.new_session(test::sopts(128));
  Generation g(*s, tok, prompt, greedy(), 128, test::kToyVocab);
  std::string streamed;
  run_to_end(g, [&](std::string_view t) { streamed += t; return true; });
  EXPECT_EQ(g.finish_reason(), FinishReason::Eos);
  EXPECT_EQ(streamed, "Hello, world");
  EXPECT_EQ(g.text(), "Hello, world");
  EXPECT_EQ(g.output_tokens().back(), test::kToyEos);
  EXPECT_EQ(g.stats().generated_tokens, 13);  // 12 bytes + EOS
  EXPECT_EQ(g.stats().decode_calls, 12);      // the first token comes from the prefill logits
  EXPECT_EQ(g.stats().prompt_tokens, static_cast<int64_t>(prompt.size()));
  EXPECT_EQ(s->position(), static_cast<int64_t>(prompt.size()) + 12);  // EOS is not fed back
}

TEST(Generation, StopStringCutsTextAndFinishesWithStop) {
  const Tokenizer tok = test::toy_tokenizer();
  const std::vector<int32_t> prompt = tok.encode("x", true);
  FakeEngine eng(test::kToyVocab, test::script(tok, "one two STOP three", prompt.size()));
  auto s = eng.new_session(test::sopts(128));
  GenerateOptions o = greedy();
  o.stop = {"STOP"};
  Generation g(*s, tok, prompt, o, 128, test::kToyVocab);
  run_to_end(g);
  EXPECT_EQ(g.finish_reason(), FinishReason::Stop);
  EXPECT_EQ(g.text(), "one two ");
  EXPECT_EQ(g.matched_stop(), "STOP");
}

TEST(Generation, MaxTokensAndContextLimits) {
  const Tokenizer tok = test::toy_tokenizer();
  const std::vector<int32_t> prompt = tok.encode("abcd", true);
  FakeEngine eng(test::kToyVocab, test::script(tok, "0123456789", prompt.size()));
  {
    auto s = eng.new_session(test::sopts(128));
    Generation g(*s, tok, prompt, greedy(3), 128, test::kToyVocab);
    run_to_end(g);
    EXPECT_EQ(g.finish_reason(), FinishReason::Length);
    EXPECT_EQ(g.text(), "012");
  }
  {
    auto s = eng.new_session(test::sopts(7));
    Generation g(*s, tok, prompt, greedy(), 7, test::kToyVocab);
    run_to_end(g);
    EXPECT_EQ(g.finish_reason(), FinishReason::Context);
    EXPECT_EQ(g.text(), "0123");  // positions 4, 5, 6 fed; the 4th sampled token never is
    EXPECT_EQ(s->position(), 7);
  }
  auto s = eng.new_session(test::sopts(4));
  EXPECT_THROW(Generation(*s, tok, prompt, greedy(), 4, test::kToyVocab), Error);
  EXPECT_THROW(Generation(*s, tok, {}, greedy(), 4, test::kToyVocab), Error);
}

TEST(Generation, ChunkedPrefillGivesSameTokens) {
  const Tokenizer tok = test::toy_tokenizer();
  const std::vector<int32_t> prompt = tok.encode("a longer prompt of some bytes", true);
  FakeEngine eng(test::kToyVocab);  // pure pseudo-random logits: outputs depend on every token
  auto run = [&](int64_t chunk) {
    auto s = eng.new_session(test::sopts(256));
    GenerateOptions o = greedy(20);
    o.prefill_chunk = chunk;
    Generation g(*s, tok, prompt, o, 256, test::kToyVocab);
    run_to_end(g);
    return g.output_tokens();
  };
  const auto before = eng.stats.prefill_calls.load();
  const auto a = run(0);  // whole prompt in one call
  EXPECT_EQ(eng.stats.prefill_calls.load() - before, 1);
  const auto b = run(4);
  EXPECT_EQ(eng.stats.prefill_calls.load() - before, 1 + 8);  // 29 tokens in chunks of 4
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.size(), 20u);
}

TEST(Generation, ReusesSessionPrefix) {
  const Tokenizer tok = test::toy_tokenizer();
  FakeEngine eng(test::kToyVocab);
  auto s = eng.new_session(test::sopts(256));
  std::vector<int32_t> p1 = tok.encode("first turn", true);
  Generation g1(*s, tok, p1, greedy(5), 256, test::kToyVocab);
  run_to_end(g1);
  // next prompt extends everything the session holds
  std::vector<int32_t> p2 = s->tokens();
  for (int32_t t : tok.encode(" and more", true)) p2.push_back(t);
  const int64_t held = s->position();
  const int64_t fed_before = eng.stats.prefill_tokens.load();
  Generation g2(*s, tok, p2, greedy(5), 256, test::kToyVocab);
  run_to_end(g2);
  EXPECT_EQ(g2.stats().cached_tokens, held);
  EXPECT_EQ(eng.stats.prefill_tokens.load() - fed_before, static_cast<int64_t>(p2.size()) - held);
  // a fresh session computes the same continuation
  auto fresh = eng.new_session(test::sopts(256));
  Generation g3(*fresh, tok, p2, greedy(5), 256, test::kToyVocab);
  run_to_end(g3);
  EXPECT_EQ(g2.output_tokens(), g3.output_tokens());
  // a prompt that shares only its start rewinds the session to the shared part
  std::vector<int32_t> p3 = tok.encode("first tune", true);  // shares "first tu"
  Generation g5(*s, tok, p3, greedy(2), 256, test::kToyVocab);
  EXPECT_EQ(g5.stats().cached_tokens, 8);
  EXPECT_EQ(s->position(), 8);
  run_to_end(g5);
  auto fresh2 = eng.new_session(test::sopts(256));
  Generation g6(*fresh2, tok, p3, greedy(2), 256, test::kToyVocab);
  run_to_end(g6);
  EXPECT_EQ(g5.output_tokens(), g6.output_tokens());
  // min_reuse above the shared length (or 0) means a fresh prefill
  GenerateOptions no_reuse = greedy(2);
  no_reuse.min_reuse = 100;
  Generation g7(*s, tok, p3, no_reuse, 256, test::kToyVocab);
  EXPECT_EQ(g7.stats().cached_tokens, 0);
  EXPECT_EQ(s->position(), 0);
  // a prompt that diverges at once resets the session
  Generation g4(*s, tok, tok.encode("other", true), greedy(2), 256, test::kToyVocab);
  EXPECT_EQ(g4.stats().cached_tokens, 0);
  EXPECT_EQ(s->position(), 0);
}

TEST(Generation, CancelFlagStops) {
  const Tokenizer tok = test::toy_tokenizer();
  FakeEngine eng(test::kToyVocab);
  auto s = eng.new_session(test::sopts(256));
  std::atomic<bool> cancel{false};
  GenerateOptions o = greedy(100);
  o.cancel = &cancel;
  Generation g(*s, tok, tok.encode("p", true), o, 256, test::kToyVocab);
  int steps = 0;
  while (!g.finished()) {
    g.step();
    if (++steps == 3) cancel = true;
  }
  EXPECT_EQ(g.finish_reason(), FinishReason::Cancelled);
  EXPECT_EQ(g.output_tokens().size(), 3u);
  // the callback returning false cancels as well
  Generation g2(*s, tok, tok.encode("q", true), greedy(100), 256, test::kToyVocab);
  int pieces = 0;
  run_to_end(g2, [&](std::string_view) { return ++pieces < 2; });
  EXPECT_EQ(g2.finish_reason(), FinishReason::Cancelled);
}

TEST(Generation, ProgressCallbackReportsAndCancelsPrefill) {
  const Tokenizer tok = test::toy_tokenizer();
  FakeEngine eng(test::kToyVocab);
  auto s = eng.new_session(test::sopts(256));
  const std::vector<int32_t> prompt = tok.encode("twelve bytes", true);
  std::vector<int64_t> seen;
  GenerateOptions o = greedy(4);
  o.prefill_progress = [&](int64_t done, int64_t total) {
    EXPECT_EQ(total, 12);
    seen.push_back(done);
    return done < 5;  // stop the prefill after 5 tokens
  };
  Generation g(*s, tok, prompt, o, 256, test::kToyVocab);
  run_to_end(g);
  EXPECT_EQ(g.finish_reason(), FinishReason::Cancelled);
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_TRUE(g.output_tokens().empty());
}

TEST(Generation, Utf8NeverSplitInStreamedText) {
  const Tokenizer tok = test::toy_tokenizer();
  const std::vector<int32_t> prompt = tok.encode(">", true);
  const std::string answer = "h\xc3\xa9llo \xf0\x9f\x98\x80!";  // héllo 😀!
  FakeEngine eng(test::kToyVocab, test::script(tok, answer, prompt.size()));
  auto s = eng.new_session(test::sopts(64));
  Generation g(*s, tok, prompt, greedy(), 64, test::kToyVocab);
  std::vector<std::string> pieces;
  run_to_end(g, [&](std::string_view t) { pieces.emplace_back(t); return true; });
  std::string joined;
  for (const auto& p : pieces) {
    joined += p;
    EXPECT_EQ(tok.decode(tok.encode(p, false)), p);  // each piece is whole UTF-8
  }
  EXPECT_EQ(joined, answer);
  EXPECT_LT(pieces.size(), answer.size());  // the multi-byte characters came out whole
}

TEST(Generation, SeededSamplingIsReproducible) {
  const Tokenizer tok = test::toy_tokenizer();
  FakeEngine eng(test::kToyVocab);
  auto run = [&](uint64_t seed) {
    auto s = eng.new_session(test::sopts(256));
    GenerateOptions o;
    o.sampling.temperature = 1.0f;
    o.sampling.seed = seed;
    o.max_tokens = 30;
    Generation g(*s, tok, tok.encode("seed test", true), o, 256, test::kToyVocab);
    run_to_end(g);
    return g.output_tokens();
  };
  EXPECT_EQ(run(11), run(11));
  EXPECT_NE(run(11), run(12));
}
