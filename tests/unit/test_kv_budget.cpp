#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <memory>

#include "format/config.h"
#include "runtime/kv_budget.h"
#include "tests/unit/ckpt_fixture.h"

using namespace dsv4;

namespace {
ModelConfig flash() { return load_config(std::string(DSV4_TEST_DATA) + "/spec/deepseek-v4-flash.config.json"); }
constexpr double GiB = double(1ull << 30);
}  // namespace

TEST(KvBudget, EntrySizesSpec71) {
  ModelConfig c = flash();
  EXPECT_EQ(kv_entry_bytes(c, KvLayout::Compact), 583u);
  EXPECT_EQ(kv_entry_bytes(c, KvLayout::Bf16), 1024u);
  EXPECT_EQ(index_key_bytes(c, KvLayout::Compact), 68u);
  EXPECT_EQ(index_key_bytes(c, KvLayout::Bf16), 256u);
}

TEST(KvBudget, FlashPerTokenAndTotalsSpec72) {
  ModelConfig c = flash();
  KvBudget cp = kv_budget(c, 128 * 1024, KvLayout::Compact);
  KvBudget bf = kv_budget(c, 128 * 1024, KvLayout::Bf16);
  EXPECT_EQ(std::llround(cp.bytes_per_token), 3509);
  EXPECT_EQ(std::llround(bf.bytes_per_token), 6880);
  EXPECT_NEAR(cp.total / GiB, 0.44, 0.005);
  EXPECT_NEAR(bf.total / GiB, 0.86, 0.005);
  KvBudget cp1 = kv_budget(c, 1024 * 1024, KvLayout::Compact);
  KvBudget bf1 = kv_budget(c, 1024 * 1024, KvLayout::Bf16);
  EXPECT_NEAR(cp1.total / GiB, 3.4, 0.05);
  EXPECT_NEAR(bf1.total / GiB, 6.7, 0.05);
  // fixed state (spec 7.1): window 44 x 128 KiB BF16; FP32 compressor states 11.6 MiB
  EXPECT_EQ(bf.window, 44u * 128 * 1024);
  EXPECT_EQ(bf.states, 21u * (64 + 16) * 1024 + 20u * 512 * 1024);
  EXPECT_EQ(cp.states, bf.states);
  ASSERT_EQ(cp.layers.size(), 44u);
  // a CSA layer at 128Ki: 32768 entries of 583 B + 32768 keys of 68 B
  const LayerKvBytes& l2 = cp.layers[2];
  EXPECT_EQ(l2.ratio, 4);
  EXPECT_EQ(l2.compressed, 32768u * 583);
  EXPECT_EQ(l2.indexer, 32768u * 68);
  EXPECT_EQ(l2.compressor_state, 2u * 8 * 1024 * 4);
  EXPECT_EQ(l2.indexer_state, 2u * 8 * 256 * 4);
  const LayerKvBytes& l3 = cp.layers[3];
  EXPECT_EQ(l3.compressed, 1024u * 583);
  EXPECT_EQ(l3.indexer, 0u);
  EXPECT_EQ(l3.compressor_state, 2u * 128 * 512 * 4);
  const LayerKvBytes& mtp = cp.layers[43];
  EXPECT_EQ(mtp.total(), 128u * 583);
  uint64_t sum = 0;
  for (const auto& x : cp.layers) sum += x.total();
  EXPECT_EQ(sum, cp.total);
  EXPECT_EQ(cp.total, cp.window + cp.compressed + cp.indexer + cp.states);
}

TEST(KvBudget, FloorsPartialBlocksAndTinyA) {
  ModelConfig c = load_config(dsv4::testing::tiny_ckpt("tiny-a") + "/config.json");  // ratios 0,4,16,4 + 0
  KvBudget b = kv_budget(c, 35, KvLayout::Compact);
  // head_dim 128, rope 64: 64 + 1 + 128 = 193 B; indexer 128: 68 B; window 8
  EXPECT_EQ(b.kv_entry, 193u);
  EXPECT_EQ(b.layers[1].compressed_entries, 8);
  EXPECT_EQ(b.layers[2].compressed_entries, 2);
  EXPECT_EQ(b.layers[3].indexer_entries, 8);
  EXPECT_EQ(b.window, 5u * 8 * 193);
  EXPECT_EQ(b.compressed, (8u + 2 + 8) * 193);
  EXPECT_EQ(b.layers[2].compressor_state, 2u * 16 * 128 * 4);
  EXPECT_DOUBLE_EQ(b.bytes_per_token, 2 * (193.0 / 4 + 68.0 / 4) + 193.0 / 16);
  EXPECT_EQ(kv_budget(c, 35, KvLayout::Compact, false).layers.size(), 4u);
  EXPECT_THROW(kv_budget(c, -1, KvLayout::Bf16), Error);
}

TEST(KvBudget, CliPrintsSpecLines) {
  const std::string cmd = std::string(DSV4_BIN) + " kv-size --config " + DSV4_TEST_DATA +
                          "/spec/deepseek-v4-flash.config.json --context 131072";
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  ASSERT_TRUE(p);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, p.get())) out += buf;
  const KvBudget cp = kv_budget(flash(), 131072, KvLayout::Compact);
  const KvBudget bf = kv_budget(flash(), 131072, KvLayout::Bf16);
  EXPECT_NE(out.find("layout=compact bytes_per_token=3509 total_bytes=" + std::to_string(cp.total) + "\n"), std::string::npos) << out;
  EXPECT_NE(out.find("layout=bf16 bytes_per_token=6880 total_bytes=" + std::to_string(bf.total) + "\n"), std::string::npos) << out;
}
