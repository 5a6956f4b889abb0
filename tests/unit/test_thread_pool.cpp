#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "core/thread_pool.h"

namespace {

TEST(ThreadPool, PartitionCoversRangeInGrainUnits) {
  for (int threads : {1, 2, 3, 7}) {
    for (int64_t n : {0, 1, 5, 64, 1000, 1001}) {
      for (int64_t grain : {1, 4, 16}) {
        int64_t expect = 0;
        for (int t = 0; t < threads; ++t) {
          int64_t b, e;
          dsv4::ThreadPool::partition(n, grain, threads, t, &b, &e);
          EXPECT_EQ(b, expect) << "threads " << threads << " n " << n << " t " << t;
          EXPECT_LE(b, e);
          if (e < n) {
            EXPECT_EQ(e % grain, 0);
          }
          expect = e;
        }
        EXPECT_EQ(expect, n);
      }
    }
  }
}

TEST(ThreadPool, ParallelForVisitsEveryIndexOnce) {
  for (int threads : {1, 2, 4}) {
    dsv4::ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int rep = 0; rep < 50; ++rep) {
      const int64_t n = 37 + rep * 13;
      std::vector<std::atomic<int>> hits(n);
      std::atomic<int> calls{0};
      pool.parallel_for(n, 4, [&](int64_t b, int64_t e, int t) {
        EXPECT_GE(t, 0);
        EXPECT_LT(t, threads);
        calls.fetch_add(1);
        for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << i;
      EXPECT_LE(calls.load(), threads);
    }
  }
}

// Guided pieces: unit-aligned, increasing per thread, shrinking, covering [0, n) exactly once.
TEST(ThreadPool, GuidedScheduleVisitsEveryIndexOnceInUnitPieces) {
  for (int threads : {1, 2, 3}) {
    dsv4::ThreadPool pool(threads);
    for (int rep = 0; rep < 40; ++rep) {
      const int64_t n = 1 + rep * 29, grain = 1 + rep % 5;
      std::vector<std::atomic<int>> hits(n);
      std::vector<std::vector<std::pair<int64_t, int64_t>>> pieces(threads);
      pool.parallel_for(
          n, grain,
          [&](int64_t b, int64_t e, int t) {
            ASSERT_GE(t, 0);
            ASSERT_LT(t, threads);
            EXPECT_EQ(b % grain, 0);
            EXPECT_TRUE(e == n || e % grain == 0);
            EXPECT_LT(b, e);
            pieces[t].push_back({b, e});  // each thread writes only its own list
            for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
          },
          dsv4::Schedule::Guided);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n " << n << " i " << i;
      for (const auto& p : pieces)
        for (size_t j = 1; j < p.size(); ++j) EXPECT_GT(p[j].first, p[j - 1].first);
      // The first piece claimed is the largest: 1 / (2 x threads) of all units (at least one).
      const int64_t units = (n + grain - 1) / grain;
      int64_t largest = 0;
      for (const auto& p : pieces)
        for (const auto& [b, e] : p) largest = std::max(largest, (e - b + grain - 1) / grain);
      if (threads > 1) {
        EXPECT_EQ(largest, std::max<int64_t>(1, units / (2 * threads))) << n;
      }
    }
  }
}

TEST(ThreadPool, NestedCallRunsInline) {
  dsv4::ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  pool.parallel_for(4, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      pool.parallel_for(10, 1, [&](int64_t b2, int64_t e2, int) {
        for (int64_t j = b2; j < e2; ++j) sum.fetch_add(i * 10 + j);
      });
    }
  });
  pool.parallel_for(4, 1, [&](int64_t b, int64_t e, int) {  // a guided call nested: inline too
    for (int64_t i = b; i < e; ++i) {
      pool.parallel_for(
          10, 1,
          [&](int64_t b2, int64_t e2, int) {
            for (int64_t j = b2; j < e2; ++j) sum.fetch_sub(i * 10 + j);
          },
          dsv4::Schedule::Guided);
    }
  });
  EXPECT_EQ(sum.load(), 0);
  pool.parallel_for(4, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      pool.parallel_for(10, 1, [&](int64_t b2, int64_t e2, int) {
        for (int64_t j = b2; j < e2; ++j) sum.fetch_add(i * 10 + j);
      });
    }
  });
  int64_t expect = 0;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 10; ++j) expect += i * 10 + j;
  EXPECT_EQ(sum.load(), expect);
}

TEST(ThreadPool, NullPoolRunsSerially) {
  int calls = 0;
  dsv4::parallel_for(nullptr, 10, 3, [&](int64_t b, int64_t e, int t) {
    EXPECT_EQ(b, 0);
    EXPECT_EQ(e, 10);
    EXPECT_EQ(t, 0);
    ++calls;
  });
  EXPECT_EQ(calls, 1);
}

}  // namespace
