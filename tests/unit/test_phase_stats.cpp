// core/phase_stats.h: named phases count their calls and wall time only while enabled.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "core/phase_stats.h"

namespace dsv4 {
namespace {

// The entry of `name` in v, or nullptr; v must outlive the pointer.
const PhaseTotal* find(const std::vector<PhaseTotal>& v, const std::string& name) {
  for (const PhaseTotal& p : v)
    if (p.name == name) return &p;
  return nullptr;
}

void sleepy_phase() {
  DSV4_PHASE("test_sleepy");
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

TEST(PhaseStats, CountsCallsAndTimeOnlyWhileEnabled) {
  EXPECT_EQ(phase_register("test_a"), phase_register("test_a"));
  EXPECT_NE(phase_register("test_a"), phase_register("test_b"));
  phase_stats_enable(false);
  phase_stats_reset();
  sleepy_phase();
  EXPECT_EQ(find(phase_stats(), "test_sleepy"), nullptr);  // registered, never timed
  phase_stats_enable(true);
  sleepy_phase();
  sleepy_phase();
  phase_stats_enable(false);
  sleepy_phase();
  const auto stats = phase_stats();
  const PhaseTotal* p = find(stats, "test_sleepy");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->calls, 2);
  EXPECT_GE(p->seconds, 0.004);
  EXPECT_LT(p->seconds, 1.0);
  phase_stats_reset();
  EXPECT_EQ(find(phase_stats(), "test_sleepy"), nullptr);
}

TEST(PhaseStats, EndStopsThePhaseOnce) {
  phase_stats_reset();
  phase_stats_enable(true);
  {
    PhaseScope s(phase_register("test_end"));
    s.end();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }  // the destructor adds nothing more
  phase_stats_enable(false);
  const auto stats = phase_stats();
  const PhaseTotal* p = find(stats, "test_end");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->calls, 1);
  EXPECT_LT(p->seconds, 0.1);  // the 200 ms after end() are not counted
  phase_stats_reset();
}

}  // namespace
}  // namespace dsv4
