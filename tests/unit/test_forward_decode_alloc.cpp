// Steady-state decode performs no heap allocation: scratch is sized once per session (design guide,
// practice 7). Counts calls of the global operator new while decoding across window wraps,
// compressed-entry emissions and indexer selections (main model and MTP block). Checked with the
// fast backend: the reference backend's scalar Hadamard (ref::hadamard) still allocates two
// temporaries per call.
#include <gtest/gtest.h>

#include "tests/golden/golden_run.h"
#include "tests/unit/alloc_counter.h"

namespace dsv4 {
namespace {

void decode_without_allocation(const std::string& set, Numerics num) {
  auto eng = golden::load_engine(set, num);
  const auto meta = golden::read_json(golden::data_dir(set) + "/prefill_only/meta.json");
  const auto toks = meta["tokens"].get<std::vector<int32_t>>();
  std::vector<float> logits(static_cast<size_t>(eng->info().vocab_size)), mtp(logits.size());
  SessionOptions so;
  so.max_context = static_cast<int64_t>(toks.size());
  so.prefill_chunk = 16;
  so.on_mtp_logits = [&](int64_t, std::span<const float> l) { std::copy(l.begin(), l.end(), mtp.begin()); };
  auto s = eng->new_session(so);
  s->prefill(std::span<const int32_t>(toks.data(), 16), logits);
  size_t i = 16;
  for (; i < 20; ++i) s->decode(toks[i], logits);  // warm-up: kernel-local buffers reach their size
  const long before = testing_support::allocation_count();
  for (; i < toks.size(); ++i) s->decode(toks[i], logits);
  EXPECT_EQ(testing_support::allocation_count() - before, 0)
      << set << ": allocations during " << toks.size() - 20 << " decode steps";
}

TEST(ForwardDecode, NoAllocationFastTinyA) { decode_without_allocation("tiny-a", Numerics::Fast); }

}  // namespace
}  // namespace dsv4
