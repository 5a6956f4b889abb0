// Shared helpers of the CPU kernel tests: the ISA levels to run, float64 tolerances.
#pragma once
#include <cmath>
#include <vector>

#include "kernels/cpu/dispatch.h"

namespace dsv4::cpu::testing {

// Every level this machine can run (scalar always), for "SIMD vs scalar" comparisons.
inline std::vector<Isa> isas_to_test() {
  std::vector<Isa> v;
  for (int l = 0; l <= static_cast<int>(detected_isa()); ++l) v.push_back(static_cast<Isa>(l));
  return v;
}

// Restores the detected level when a test ends.
struct IsaScope {
  explicit IsaScope(Isa isa) { set_isa(isa); }
  ~IsaScope() { set_isa(detected_isa()); }
};

// The prefill GEMM units worth running at a level: both where the level has both.
inline std::vector<GemmUnit> gemm_units_to_test(Isa isa) {
  if (isa == Isa::Avx512Bf16) return {GemmUnit::Fma, GemmUnit::Dpbf16};
  return {gemm_unit()};
}

// Restores the GEMM unit in force before the scope when it ends.
struct GemmUnitScope {
  GemmUnit saved;
  explicit GemmUnitScope(GemmUnit unit) : saved(gemm_unit()) { set_gemm_unit(unit); }
  ~GemmUnitScope() { set_gemm_unit(saved); }
};

// Restores the decode GEMVs' order in force before the scope when it ends.
struct GemvOrderScope {
  GemvOrder saved;
  explicit GemvOrderScope(GemvOrder order) : saved(gemv_order()) { set_gemv_order(order); }
  ~GemvOrderScope() { set_gemv_order(saved); }
};

// Forward error bound of a float32 sum of n terms in any order (Higham's gamma_n) times the sum of
// the magnitudes of the exact terms, plus a few float32 ulps of slack for the final rounding.
inline double sum_error_bound(int64_t n, double sum_abs) {
  const double u = std::ldexp(1.0, -24);
  return (n * u / (1.0 - n * u)) * sum_abs + 4 * u * sum_abs + 1e-30;
}

}  // namespace dsv4::cpu::testing
