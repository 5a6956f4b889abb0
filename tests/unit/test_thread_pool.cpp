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
