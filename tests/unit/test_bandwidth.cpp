#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "core/bandwidth.h"
#include "core/thread_pool.h"

namespace {

using dsv4::ProbeLoads;

// Each pattern's streamed sum, at each load width, reads every word exactly once: sizes below
// one step of all streams, at whole steps, and with tails of odd lengths.
TEST(ReadProbe, StreamedSumReadsEveryWordOnce) {
  std::vector<uint64_t> words(2 * 256 * 3 + 8 * 16 * 5 + 131);
  for (size_t i = 0; i < words.size(); ++i) words[i] = (i + 1) * 0x9E3779B97F4A7C15ull ^ (i << 7);
  ASSERT_GE(dsv4::probe_patterns().size(), 2u);
  for (const dsv4::ProbePattern& pat : dsv4::probe_patterns())
    for (ProbeLoads loads : {ProbeLoads::plain, ProbeLoads::avx2, ProbeLoads::avx512}) {
      if (!dsv4::probe_loads_supported(loads)) continue;
      for (size_t n : {size_t{0}, size_t{1}, size_t{15}, size_t{127}, size_t{128}, size_t{129},
                       size_t{128 * 3 + 17}, size_t{511}, size_t{512}, size_t{640}, size_t{1024 + 77},
                       words.size()}) {
        const uint64_t want = std::accumulate(words.begin(), words.begin() + n, uint64_t{0});
        EXPECT_EQ(dsv4::probe_sum(loads, pat, words.data(), n), want)
            << pat.name << ", loads " << static_cast<int>(loads) << ", n " << n;
      }
    }
}

TEST(ReadProbe, RejectsAMalformedPattern) {
  std::vector<uint64_t> words(64, 1);
  EXPECT_THROW(dsv4::probe_sum(ProbeLoads::plain, {0, 16, false, "no streams"}, words.data(), 64),
               std::exception);
  EXPECT_THROW(dsv4::probe_sum(ProbeLoads::plain, {2, 12, false, "part lines"}, words.data(), 64),
               std::exception);
}

// The whole probe, split over the pool's threads, sums its buffer (word i holds i * K) once per
// pass of each pattern: a slice missed or read twice would change the checksum and the bytes
// behind the rate.
TEST(ReadProbe, PassesCoverTheBufferOnce) {
  for (int threads : {1, 2, 3}) {
    dsv4::ThreadPool pool(threads);
    const size_t bytes = (size_t{1} << 20) + 8 * 1237;
    const dsv4::ReadProbe probe(&pool, bytes);
    const int reps = 3;
    const dsv4::BandwidthResult r = probe.run(reps);
    const uint64_t n = bytes / 8;
    const uint64_t passes = uint64_t{reps} * dsv4::probe_patterns().size();
    const uint64_t want = passes * 0x9E3779B97F4A7C15ull * (n * (n - 1) / 2);
    EXPECT_EQ(r.checksum, want) << threads << " threads";
    EXPECT_EQ(r.bytes, bytes);
    EXPECT_GT(r.gb_per_s, 0);
    EXPECT_LE(r.median_gb_per_s, r.gb_per_s);
    EXPECT_EQ(r.passes, static_cast<int>(passes));
    bool named = false;  // the best pass names one of the patterns
    for (const dsv4::ProbePattern& pat : dsv4::probe_patterns()) named |= std::string(r.pattern) == pat.name;
    EXPECT_TRUE(named) << r.pattern;
    ASSERT_EQ(r.by_pattern.size(), dsv4::probe_patterns().size());
    EXPECT_EQ(*std::max_element(r.by_pattern.begin(), r.by_pattern.end()), r.gb_per_s);
  }
}

}  // namespace
