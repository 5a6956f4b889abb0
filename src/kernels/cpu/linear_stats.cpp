// The linear-call collector of linear.h (LinearTimer, linear_stats): per weight format, the
// calls, their wall time and the weight bytes they read.
#include <atomic>
#include <chrono>
#include <mutex>

#include "kernels/cpu/linear.h"

namespace dsv4::cpu {
namespace {

std::atomic<bool> g_on{false};
std::mutex g_mutex;
std::array<LinearTotals, kLinearKinds> g_totals;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

const char* linear_kind_name(LinearKind kind) {
  switch (kind) {
    case LinearKind::Fp8: return "fp8";
    case LinearKind::Fp4: return "fp4";
    case LinearKind::Bf16: return "bf16";
    case LinearKind::F32: return "f32";
  }
  return "?";
}

void linear_stats_enable(bool on) { g_on.store(on, std::memory_order_relaxed); }

void linear_stats_reset() {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_totals = {};
}

std::array<LinearTotals, kLinearKinds> linear_stats() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_totals;
}

LinearTimer::LinearTimer(LinearKind kind, double weight_bytes) : kind_(kind), bytes_(weight_bytes) {
  if (g_on.load(std::memory_order_relaxed)) start_ns_ = now_ns();
}

LinearTimer::~LinearTimer() {
  if (start_ns_ < 0) return;
  const double seconds = double(now_ns() - start_ns_) * 1e-9;
  std::lock_guard<std::mutex> lock(g_mutex);
  LinearTotals& t = g_totals[static_cast<int>(kind_)];
  ++t.calls;
  t.seconds += seconds;
  t.weight_bytes += bytes_;
}

}  // namespace dsv4::cpu
