#include "core/phase_stats.h"

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>

#include "core/error.h"

namespace dsv4 {
namespace {

struct Slot {
  const char* name = nullptr;
  std::atomic<int64_t> calls{0}, ns{0};
};

std::atomic<bool> g_on{false};
std::mutex g_mutex;  // registration
std::array<Slot, kMaxPhases> g_slots;
std::atomic<int> g_count{0};

}  // namespace

int phase_register(const char* name) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const int n = g_count.load(std::memory_order_relaxed);
  for (int i = 0; i < n; ++i)
    if (std::strcmp(g_slots[static_cast<size_t>(i)].name, name) == 0) return i;
  if (n == kMaxPhases) throw_error("phase_stats: more than ", kMaxPhases, " phase names (adding '", name, "')");
  g_slots[static_cast<size_t>(n)].name = name;
  g_count.store(n + 1, std::memory_order_release);
  return n;
}

void phase_stats_enable(bool on) { g_on.store(on, std::memory_order_relaxed); }
bool phase_stats_enabled() { return g_on.load(std::memory_order_relaxed); }

void phase_stats_reset() {
  for (Slot& s : g_slots) {
    s.calls.store(0, std::memory_order_relaxed);
    s.ns.store(0, std::memory_order_relaxed);
  }
}

std::vector<PhaseTotal> phase_stats() {
  std::vector<PhaseTotal> out;
  const int n = g_count.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) {
    const Slot& s = g_slots[static_cast<size_t>(i)];
    const int64_t calls = s.calls.load(std::memory_order_relaxed);
    if (calls > 0) out.push_back({s.name, calls, double(s.ns.load(std::memory_order_relaxed)) * 1e-9});
  }
  return out;
}

int64_t PhaseScope::now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void PhaseScope::add(int id, int64_t ns) {
  Slot& s = g_slots[static_cast<size_t>(id)];
  s.calls.fetch_add(1, std::memory_order_relaxed);
  s.ns.fetch_add(ns, std::memory_order_relaxed);
}

}  // namespace dsv4
