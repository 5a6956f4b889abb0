// KV cache layouts: compact and BF16 storage give bit-identical results; the cache allocates
// exactly the kv_budget byte count; the memory limit is checked before any work.
#include <gtest/gtest.h>

#include <bit>

#include "ckpt_fixture.h"
#include "format/config.h"
#include "runtime/kv_budget.h"
#include "runtime/kv_store.h"
#include "runtime/seq_state.h"
#include "runtime/session_io.h"
#include "session_test_util.h"

namespace dsv4::testing {
namespace {

TEST(KvLayout, AllocatedBytesEqualBudget) {
  for (const char* set : {"tiny-a", "tiny-d"}) {
    for (bool mtp : {false, true}) {
      EngineImpl& eng = tiny_engine(set, Numerics::Reference, mtp);
      const ModelConfig& cfg = eng.weights().config;
      for (int64_t ctx : {1, 3, 4, 127, 128, 129, 1000, 4096, 12345}) {
        for (KvCacheLayout l : {KvCacheLayout::Compact, KvCacheLayout::Bf16}) {
          SessionOptions so;
          so.max_context = ctx;
          so.kv_layout = l;
          auto s = eng.new_session(so);
          const KvBudget b = kv_budget(cfg, ctx, l == KvCacheLayout::Bf16 ? KvLayout::Bf16 : KvLayout::Compact, mtp);
          EXPECT_EQ(s->kv_bytes(), b.total) << set << " mtp=" << mtp << " ctx=" << ctx;
        }
      }
    }
  }
}

TEST(KvLayout, FlashShapesAllocateTheSpecFigures) {
  const ModelConfig cfg = load_config(std::string(DSV4_TEST_DATA) + "/spec/deepseek-v4-flash.config.json");
  for (KvLayout l : {KvLayout::Compact, KvLayout::Bf16}) {
    SequenceState st;
    const int64_t ctx = 16384;
    st.init(cfg, cfg.n_layers + cfg.n_mtp_layers, ctx, l);
    EXPECT_EQ(st.allocated_bytes(), kv_budget(cfg, ctx, l).total) << kv_layout_name(l);
    EXPECT_EQ(st.blocks[0].window.entry_bytes(), l == KvLayout::Compact ? 583u : 1024u);
    for (const auto& b : st.blocks)
      if (b.ratio == 4) {
        EXPECT_EQ(b.ikv.entry_bytes(), l == KvLayout::Compact ? 68u : 256u);
      }
  }
}

TEST(KvLayout, StoreRoundTripsAndRejectsInexactValues) {
  const int D = 128, Dr = 64;
  for (KvLayout l : {KvLayout::Compact, KvLayout::Bf16}) {
    KvRows r;
    r.init(4, D, KvRowKind::Attention, l, Dr);
    std::vector<float> v(D), back(D);
    for (int i = 0; i < D; ++i) v[static_cast<size_t>(i)] = (i < D - Dr) ? 0.5f * static_cast<float>(i % 7) - 1.0f : 0.25f * static_cast<float>(i % 16);
    r.write(2, v.data());
    r.read(2, back.data());
    EXPECT_TRUE(same_bits(v, back)) << kv_layout_name(l);
    v[3] = 1.0f + 1.0f / 1024.0f;  // neither an E4M3 code in its block nor (here) a BF16 value issue
    if (l == KvLayout::Compact)
      expect_error([&] { r.write(1, v.data()); }, {"entry 0 dim 3", "FP8"});
    v[3] = 1.0f + 1.0f / 65536.0f;  // not a BF16 value
    if (l == KvLayout::Bf16) expect_error([&] { r.write(1, v.data()); }, {"entry 1 dim 3", "BF16"});
    expect_error([&] { r.write(4, v.data()); }, {"out of capacity 4"});
  }
}

// The float and BF16 copies (the window ring's, read in place by decode steps) read exactly as read():
// after init, after writes made before and after it was asked for, and after a refused write.
TEST(KvLayout, FloatCopyReadsAsTheEntries) {
  const int D = 128, Dr = 64;
  for (KvLayout l : {KvLayout::Compact, KvLayout::Bf16}) {
    KvRows r;
    r.init(5, D, KvRowKind::Attention, l, Dr);
    EXPECT_EQ(r.floats(), nullptr);
    std::vector<float> v(D), back(D);
    auto fill = [&](int seed) {
      for (int i = 0; i < D; ++i)
        v[static_cast<size_t>(i)] = (i < D - Dr) ? 0.5f * static_cast<float>((i + seed) % 7) - 1.0f
                                                 : 0.25f * static_cast<float>((i * seed) % 16) - 2.0f;
    };
    fill(1);
    r.write(1, v.data());
    r.keep_floats();
    ASSERT_NE(r.floats(), nullptr);
    ASSERT_NE(r.bf16(), nullptr);
    EXPECT_EQ(r.copy_bytes(), 5u * D * (sizeof(float) + sizeof(uint16_t)));
    EXPECT_EQ(r.allocated_bytes(), 5u * r.entry_bytes());  // the copy is not KV cache
    fill(3);
    r.write(3, v.data());
    fill(5);
    r.write(1, v.data());  // overwritten after the copy was taken
    v[3] = 1.0f + 1.0f / 1024.0f;        // not an E4M3 code of its block (compact refuses it)
    v[D - 1] = 1.0f + 1.0f / 65536.0f;   // not a BF16 value (both refuse it)
    EXPECT_THROW(r.write(4, v.data()), Error) << kv_layout_name(l);
    for (int64_t i = 0; i < 5; ++i) {
      r.read(i, back.data());
      EXPECT_TRUE(same_bits(std::vector<float>(r.floats() + i * D, r.floats() + (i + 1) * D), back))
          << kv_layout_name(l) << " entry " << i;
      for (int d = 0; d < D; ++d)  // the BF16 copy: the same values
        ASSERT_EQ(std::bit_cast<uint32_t>(back[static_cast<size_t>(d)]), uint32_t{r.bf16()[i * D + d]} << 16)
            << kv_layout_name(l) << " entry " << i << " dim " << d;
    }
    r.init(2, D, KvRowKind::Attention, l, Dr);  // a new shape drops the copies
    EXPECT_EQ(r.floats(), nullptr);
    EXPECT_EQ(r.bf16(), nullptr);
  }
}

// Same schedule in both layouts: prefill, then decode across window wraps, compressor blocks and
// the point where the indexer starts choosing (tiny-a: window 8, ratios 4 and 16, top-4).
TEST(KvLayout, CompactAndBf16BitIdentical) {
  for (const char* set : {"tiny-a", "tiny-d"}) {
    EngineImpl& eng = tiny_engine(set, Numerics::Reference);
    const int64_t V = eng.info().vocab_size;
    const int64_t P = std::string(set) == "tiny-a" ? 45 : 140, D = std::string(set) == "tiny-a" ? 40 : 12;
    const auto toks = token_stream(P + D, V, 7);
    Logits out[2];
    for (int k = 0; k < 2; ++k) {
      SessionOptions so;
      so.max_context = P + D;
      so.kv_layout = k == 0 ? KvCacheLayout::Compact : KvCacheLayout::Bf16;
      so.prefill_chunk = 17;
      auto s = eng.new_session(so);
      out[k] = prefill(*s, std::span(toks).first(static_cast<size_t>(P)), V);
      const Logits d = decode_all(*s, std::span(toks).subspan(static_cast<size_t>(P)), V);
      out[k].insert(out[k].end(), d.begin(), d.end());
    }
    EXPECT_TRUE(same_bits(out[0], out[1])) << set;
  }
}

TEST(KvLayout, MemLimitCheckedBeforeAllocation) {
  EngineImpl& eng = tiny_engine("tiny-a", Numerics::Reference);
  const ModelConfig& cfg = eng.weights().config;
  const uint64_t need = kv_budget(cfg, 4000, KvLayout::Compact, false).total;
  SessionOptions so;
  so.max_context = 4000;
  so.mem_limit = need;
  EXPECT_EQ(eng.new_session(so)->kv_bytes(), need);
  so.mem_limit = need - 1;
  expect_error([&] { eng.new_session(so); }, {"4000 tokens", "compact layout", "memory limit"});
  so.kv_layout = KvCacheLayout::Bf16;
  so.mem_limit = need;  // the BF16 layout needs more
  expect_error([&] { eng.new_session(so); }, {"bf16 layout"});
}

TEST(KvLayout, ParseByteSize) {
  EXPECT_EQ(parse_byte_size("8G"), 8ull << 30);
  EXPECT_EQ(parse_byte_size("512M"), 512ull << 20);
  EXPECT_EQ(parse_byte_size("1.5GiB"), 3ull << 29);
  EXPECT_EQ(parse_byte_size("4096"), 4096u);
  EXPECT_EQ(parse_byte_size("2k"), 2048u);
  expect_error([] { parse_byte_size("lots"); }, {"'lots'"});
  expect_error([] { parse_byte_size("8X"); }, {"'8X'"});
  expect_error([] { parse_byte_size("-1G"); }, {"'-1G'"});
}

}  // namespace
}  // namespace dsv4::testing
