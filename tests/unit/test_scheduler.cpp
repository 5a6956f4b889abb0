// Scheduler: many jobs over few sessions give exactly what each gets alone; cancellation,
// errors, prefix reuse across requests, shutdown.
#include <gtest/gtest.h>

#include "scheduler.h"
#include "tests/unit/fake_engine.h"

using namespace dsv4;
using namespace dsv4::server;
using dsv4::test::FakeEngine;

namespace {

struct Outcome {
  std::string text;
  JobEvent end;
};

Outcome drain(Job& job) {
  Outcome o;
  for (;;) {
    for (auto& e : job.wait(std::chrono::milliseconds(200))) {
      if (e.kind == JobEvent::Kind::Text) {
        o.text += e.text;
      } else {
        o.end = std::move(e);
        return o;
      }
    }
  }
}

GenerateOptions opts(int64_t max_tokens, float temp = 0.0f, uint64_t seed = 1) {
  GenerateOptions o;
  o.sampling.temperature = temp;
  o.sampling.seed = seed;
  o.max_tokens = max_tokens;
  return o;
}

std::vector<int32_t> prompt_of(int i) {
  std::vector<int32_t> p;
  for (int k = 0; k < 5 + i % 7; ++k) p.push_back(static_cast<int32_t>(32 + (i * 31 + k * 7) % 90));
  return p;
}

// What one generation produces alone on a fresh session.
std::string alone(Engine& eng, const Tokenizer& tok, const std::vector<int32_t>& prompt, const GenerateOptions& o) {
  auto s = eng.new_session(test::sopts(512));
  Generation g(*s, tok, prompt, o, 512, eng.info().vocab_size);
  run_to_end(g);
  return g.text();
}

}  // namespace

TEST(Scheduler, InterleavedJobsEqualSoloRuns) {
  const Tokenizer tok = test::toy_tokenizer();
  FakeEngine eng(test::kToyVocab);
  SchedulerOptions so;
  so.parallel = 3;
  so.max_context = 512;
  so.prefill_chunk = 4;  // prompts are prefilled in several steps, interleaved with decodes
  Scheduler sched(eng, tok, so);
  std::vector<std::shared_ptr<Job>> jobs;
  const int n = 10;
  for (int i = 0; i < n; ++i)
    jobs.push_back(sched.submit(prompt_of(i), opts(8 + i, i % 2 ? 0.8f : 0.0f, 100 + i)));
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(jobs[static_cast<size_t>(i)]);
    const Outcome o = drain(*jobs[static_cast<size_t>(i)]);
    ASSERT_EQ(o.end.kind, JobEvent::Kind::Done) << o.end.error;
    EXPECT_EQ(o.end.finish, FinishReason::Length);
    EXPECT_EQ(o.end.stats.generated_tokens, 8 + i);
    EXPECT_EQ(o.text, alone(eng, tok, prompt_of(i), opts(8 + i, i % 2 ? 0.8f : 0.0f, 100 + i))) << "job " << i;
  }
  const SchedulerStats st = sched.stats();
  EXPECT_EQ(st.completed, static_cast<uint64_t>(n));
  EXPECT_EQ(st.active, 0u);
}

TEST(Scheduler, CancelStopsOneJobOnly) {
  const Tokenizer tok = test::toy_tokenizer();
  FakeEngine eng(test::kToyVocab, {}, /*decode_sleep_us=*/2000);
  Scheduler sched(eng, tok, {.parallel = 2, .max_context = 512, .prefill_chunk = 64, .max_queue = 8});
  auto a = sched.submit(prompt_of(1), opts(200));
  auto b = sched.submit(prompt_of(2), opts(20));
  // wait for a's first text, then cancel it
  std::string first;
  while (first.empty())
    for (auto& e : a->wait(std::chrono::milliseconds(50)))
      if (e.kind == JobEvent::Kind::Text) first += e.text;
  a->cancel();
  const Outcome oa = drain(*a);
  EXPECT_EQ(oa.end.finish, FinishReason::Cancelled);
  EXPECT_LT(oa.end.stats.generated_tokens, 200);
  const Outcome ob = drain(*b);
  EXPECT_EQ(ob.end.finish, FinishReason::Length);
  EXPECT_EQ(ob.text, alone(eng, tok, prompt_of(2), opts(20)));
}

TEST(Scheduler, BadJobGetsErrorAndOthersContinue) {
  const Tokenizer tok = test::toy_tokenizer();
  FakeEngine eng(test::kToyVocab);
  Scheduler sched(eng, tok, {.parallel = 1, .max_context = 8, .prefill_chunk = 64, .max_queue = 8});
  auto bad = sched.submit(std::vector<int32_t>(20, 65), opts(4));  // longer than the context
  auto good = sched.submit({65, 66}, opts(3));
  const Outcome ob = drain(*bad);
  EXPECT_EQ(ob.end.kind, JobEvent::Kind::Error);
  EXPECT_NE(ob.end.error.find("context"), std::string::npos);
  const Outcome og = drain(*good);
  EXPECT_EQ(og.end.kind, JobEvent::Kind::Done);
  EXPECT_EQ(og.end.stats.generated_tokens, 3);
}

TEST(Scheduler, FollowUpRequestReusesSessionPrefix) {
  const Tokenizer tok = test::toy_tokenizer();
  // ASCII letters only, so the answer text re-tokenises to the same ids
  FakeEngine eng(test::kToyVocab, [](const std::vector<int32_t>& h) { return static_cast<int32_t>('a' + h.size() % 26); });
  Scheduler sched(eng, tok, {.parallel = 2, .max_context = 512, .prefill_chunk = 0, .max_queue = 8});
  const std::vector<int32_t> p1 = tok.encode("first question", true);
  auto j1 = sched.submit(p1, opts(5));
  const Outcome o1 = drain(*j1);
  // an unrelated request in between takes the other slot
  drain(*sched.submit(tok.encode("zzz", true), opts(2)));
  std::vector<int32_t> p2 = p1;
  for (int32_t t : tok.encode(o1.text + " next", true)) p2.push_back(t);
  const Outcome o2 = drain(*sched.submit(p2, opts(3)));
  ASSERT_EQ(o2.end.kind, JobEvent::Kind::Done);
  EXPECT_EQ(o2.end.stats.cached_tokens, static_cast<int64_t>(p1.size()) + 4);  // prompt + 4 fed outputs
  EXPECT_EQ(o2.text, alone(eng, tok, p2, opts(3)));
}

TEST(Scheduler, QueueLimitAndShutdown) {
  const Tokenizer tok = test::toy_tokenizer();
  FakeEngine eng(test::kToyVocab, {}, /*decode_sleep_us=*/5000);
  std::vector<std::shared_ptr<Job>> jobs;
  {
    Scheduler sched(eng, tok, {.parallel = 1, .max_context = 512, .prefill_chunk = 64, .max_queue = 2});
    for (int i = 0; i < 6; ++i) jobs.push_back(sched.submit(prompt_of(i), opts(1000)));
    int rejected = 0;
    for (auto& j : jobs) rejected += j == nullptr;
    EXPECT_GE(rejected, 3);  // one active at most, two queued
  }  // destroying the scheduler ends every job
  for (auto& j : jobs) {
    if (!j) continue;
    const Outcome o = drain(*j);
    EXPECT_EQ(o.end.kind, JobEvent::Kind::Error);
  }
}
