// The linear-call collector of linear.h (LinearTimer, linear_stats): per weight format and
// shape, the calls, their wall time and the weight bytes they read.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>

#include "kernels/cpu/linear.h"

namespace dsv4::cpu {
namespace {

std::atomic<bool> g_on{false};
std::mutex g_mutex;
std::map<decltype(LinearShape{}.key()), LinearShapeTotals> g_shapes;

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
  g_shapes.clear();
}

std::array<LinearTotals, kLinearKinds> linear_stats() {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::array<LinearTotals, kLinearKinds> out{};
  for (const auto& [key, s] : g_shapes) out[static_cast<size_t>(s.shape.kind)] += s.totals;
  return out;
}

std::vector<LinearShapeTotals> linear_stats_by_shape() {
  std::vector<LinearShapeTotals> out;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    for (const auto& [key, s] : g_shapes) out.push_back(s);
  }
  std::stable_sort(out.begin(), out.end(), [](const LinearShapeTotals& a, const LinearShapeTotals& b) {
    if (a.shape.kind != b.shape.kind) return a.shape.kind < b.shape.kind;
    return a.totals.weight_bytes > b.totals.weight_bytes;
  });
  return out;
}

LinearTimer::LinearTimer(const LinearShape& shape, double weight_bytes) : shape_(shape), bytes_(weight_bytes) {
  if (g_on.load(std::memory_order_relaxed)) start_ns_ = now_ns();
}

LinearTimer::~LinearTimer() {
  if (start_ns_ < 0) return;
  const double seconds = double(now_ns() - start_ns_) * 1e-9;
  std::lock_guard<std::mutex> lock(g_mutex);
  LinearShapeTotals& s = g_shapes[shape_.key()];
  s.shape = shape_;
  LinearTotals& t = s.totals;
  ++t.calls;
  t.seconds += seconds;
  t.weight_bytes += bytes_;
}

}  // namespace dsv4::cpu
