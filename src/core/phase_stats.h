// Wall time of named phases of the forward pass: the work between the linear layers (norms,
// RoPE, the hyper-connection mixes, routing, attention, ...), which the linears' own counter
// (kernels/cpu/linear.h) does not see. Off by default; a scope costs one relaxed load then. Meant
// for the calling thread of a forward pass (a phase's time includes its parallel pieces).
//
//   void f() { DSV4_PHASE("router"); ... }   // adds f's wall time to "router" while enabled
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dsv4 {

struct PhaseTotal {
  std::string name;
  int64_t calls = 0;
  double seconds = 0;
};

// The id of `name` (a string literal; the same name gives the same id). At most kMaxPhases names.
int phase_register(const char* name);
constexpr int kMaxPhases = 64;

void phase_stats_enable(bool on);
bool phase_stats_enabled();
void phase_stats_reset();
// Every phase with at least one call, in the order the names were first registered.
std::vector<PhaseTotal> phase_stats();

class PhaseScope {
 public:
  explicit PhaseScope(int id) : id_(id), t0_(phase_stats_enabled() ? now_ns() : -1) {}
  ~PhaseScope() { end(); }
  // Ends the phase before the scope does (once; the destructor then adds nothing).
  void end() {
    if (t0_ >= 0) add(id_, now_ns() - t0_);
    t0_ = -1;
  }
  PhaseScope(const PhaseScope&) = delete;
  PhaseScope& operator=(const PhaseScope&) = delete;

 private:
  static int64_t now_ns();
  static void add(int id, int64_t ns);
  int id_;
  int64_t t0_;
};

}  // namespace dsv4

#define DSV4_PHASE_CAT2(a, b) a##b
#define DSV4_PHASE_CAT(a, b) DSV4_PHASE_CAT2(a, b)
#define DSV4_PHASE(name)                                                                      \
  static const int DSV4_PHASE_CAT(dsv4_phase_id_, __LINE__) = ::dsv4::phase_register(name); \
  const ::dsv4::PhaseScope DSV4_PHASE_CAT(dsv4_phase_, __LINE__)(DSV4_PHASE_CAT(dsv4_phase_id_, __LINE__))
