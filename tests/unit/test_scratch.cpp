// The forward pass's activation scratch (model/scratch.h) that a session reserves up front (one
// row, for decode without allocation) stays small next to the KV cache at the longest context:
// only buffers that really hold an entry per compressed position grow with the context (an HCA
// layer's whole key list and its decoded entries, the indexer's top-k work row), none of them
// times the rows of a chunk.
#include <gtest/gtest.h>

#include <string>

#include "format/config.h"
#include "model/scratch.h"
#include "runtime/kv_budget.h"

using namespace dsv4;

TEST(ForwardScratch, DecodeReservationAtOneMillionTokens) {
  const ModelConfig c = load_config(std::string(DSV4_TEST_DATA) + "/spec/deepseek-v4-flash.config.json");
  const int64_t T = int64_t{1} << 20;
  ForwardScratch sc;
  sc.reserve(c, 1, T);
  const uint64_t kv = kv_budget(c, T, KvLayout::Compact).total;
  // 1M / 128 + 1 HCA entries of 512 floats (the largest part): 16 MiB, against 3.4 GiB of KV.
  EXPECT_GT(sc.reserved_bytes, (T / 128) * c.head_dim * sizeof(float));
  EXPECT_LT(sc.reserved_bytes, kv / 100) << sc.reserved_bytes << " of " << kv;
  // Reserving again for a 1024-row chunk sets aside per-row buffers on top (a few hundred MiB at
  // these widths), not a row x context table: under 1 MiB a row besides the compressed entries
  // a chunk can reference (at most min(T / 4 + 1, rows x top-k) of 512 floats).
  ForwardScratch wide;
  wide.reserve(c, 1024, T);
  const uint64_t referenced = (T / 4 + 1) * c.head_dim * sizeof(float);
  EXPECT_LT(wide.reserved_bytes, sc.reserved_bytes + referenced + 1024 * (uint64_t{1} << 20)) << wide.reserved_bytes;
}
