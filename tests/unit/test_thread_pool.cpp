#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
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

// Stealing pieces: unit-aligned, covering [0, n) exactly once; a thread that starts on its own
// static range starts at its front (the sizes are checked in the test below, where no thread can
// steal before another's first claim).
TEST(ThreadPool, StealingScheduleVisitsEveryIndexOnceInUnitPieces) {
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
          dsv4::Schedule::Stealing);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n " << n << " i " << i;
      if (threads == 1) {
        ASSERT_EQ(pieces[0].size(), 1u);  // one thread: the static call
        continue;
      }
      const int64_t units = (n + grain - 1) / grain;
      for (int t = 0; t < threads; ++t) {
        if (pieces[t].empty()) continue;
        int64_t ub, ue;
        dsv4::ThreadPool::partition(units, 1, threads, t, &ub, &ue);
        // Its first piece lies in its own range unless a thief emptied that range before the
        // first claim (then the piece is a stolen one, elsewhere).
        const int64_t first = pieces[t][0].first;
        if (first >= ub * grain && first < std::min(n, ue * grain)) {
          EXPECT_EQ(first, ub * grain) << "n " << n << " thread " << t;
        }
      }
    }
  }
}

// A thread held up in its first piece loses the back half of the rest of its range to the idle
// thread, which takes it only after finishing its own. The threads wait for each other (at most
// 10 s each) so that the pieces are the same on every run.
TEST(ThreadPool, StealingScheduleMovesWorkFromASlowThread) {
  dsv4::ThreadPool pool(2);
  const int64_t n = 64;  // thread 0: [0, 32), first piece [0, 8); thread 1: [32, 64)
  std::vector<int> owner(n, -1);
  std::atomic<int64_t> done0{0}, done1{0};
  std::atomic<bool> started0{false};
  auto wait_for = [](auto&& ready) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!ready() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  };
  pool.parallel_for(
      n, 1,
      [&](int64_t b, int64_t e, int t) {
        for (int64_t i = b; i < e; ++i) owner[i] = t;
        if (t == 0) {
          started0 = true;
          // Held until thread 1 has done its range and the back half of [8, 32): 32 + 12 units.
          if (b == 0) wait_for([&] { return done1.load() >= 44; });
          done0 += e - b;
        } else {
          wait_for([&] { return started0.load(); });
          // Then held until thread 0 has finished what it kept, [0, 20).
          if ((done1 += e - b) >= 44) wait_for([&] { return done0.load() >= 20; });
        }
      },
      dsv4::Schedule::Stealing);
  for (int64_t i = 0; i < 20; ++i) EXPECT_EQ(owner[i], 0) << i;
  for (int64_t i = 20; i < 64; ++i) EXPECT_EQ(owner[i], 1) << i;
  EXPECT_EQ(done0.load() + done1.load(), n);
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
  pool.parallel_for(4, 1, [&](int64_t b, int64_t e, int) {  // a stealing call nested: inline too
    for (int64_t i = b; i < e; ++i) {
      pool.parallel_for(
          10, 1,
          [&](int64_t b2, int64_t e2, int) {
            for (int64_t j = b2; j < e2; ++j) sum.fetch_sub(i * 10 + j);
          },
          dsv4::Schedule::Stealing);
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
