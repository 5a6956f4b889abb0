#include "kernels/cpu/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "core/error.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace dsv4::cpu {
namespace {

#if defined(__x86_64__)
// AMX needs CPUID AMX-TILE + AMX-BF16 and, on Linux, permission to use the tile-data state
// (arch_prctl ARCH_REQ_XCOMP_PERM, kernel 5.16+); a refusal leaves the AVX-512 level.
bool amx_usable() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool amx_bf16 = (d >> 22) & 1u, amx_tile = (d >> 24) & 1u;
  if (!amx_bf16 || !amx_tile) return false;
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}
#endif

Isa detect_hardware() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c");
  if (!avx2) return Isa::Scalar;
  if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vnni")))
    return Isa::Avx2;
  if (!__builtin_cpu_supports("avx512bf16")) return Isa::Avx512;
  return amx_usable() ? Isa::Avx512Amx : Isa::Avx512Bf16;
#else
  return Isa::Scalar;
#endif
}

Isa detect() {
  Isa isa = detect_hardware();
  if (const char* env = std::getenv("DSV4_ISA"); env != nullptr && *env != '\0') {
    Isa cap;
    if (!parse_isa(env, &cap))
      throw_error("DSV4_ISA=", env,
                  ": unknown level (expected scalar, avx2, avx512, avx512-bf16 or amx)");
    if (static_cast<int>(cap) < static_cast<int>(isa)) isa = cap;
  }
  return isa;
}

std::atomic<int> g_active{-1};

bool cpu_vendor_is_amd() {
#if defined(__x86_64__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return false;
  char vendor[13] = {};
  std::memcpy(vendor, &b, 4);
  std::memcpy(vendor + 4, &d, 4);
  std::memcpy(vendor + 8, &c, 4);
  return std::strcmp(vendor, "AuthenticAMD") == 0;
#else
  return false;
#endif
}

// A two-valued setting chosen by CPU vendor: the environment variable `var`, when set, names one
// of the values (as `name` spells it); anything else is a named error.
template <class E>
E vendor_setting(const char* var, const char* what, E on_amd, E elsewhere, const char* (*name)(E)) {
  if (const char* env = std::getenv(var); env != nullptr && *env != '\0') {
    for (E v : {on_amd, elsewhere})
      if (std::strcmp(env, name(v)) == 0) return v;
    throw_error(var, "=", env, ": unknown ", what, " (expected ", name(on_amd), " or ", name(elsewhere), ")");
  }
  return cpu_vendor_is_amd() ? on_amd : elsewhere;
}

GemmUnit detect_gemm_unit() {
  return vendor_setting("DSV4_GEMM", "unit", GemmUnit::Dpbf16, GemmUnit::Fma, gemm_unit_name);
}

std::atomic<int> g_gemm_unit{-1};

GemvOrder detect_gemv_order() {
  return vendor_setting("DSV4_GEMV_ORDER", "order", GemvOrder::Rows, GemvOrder::Tiles, gemv_order_name);
}

std::atomic<int> g_gemv_order{-1};

// The value is checked on every CPU, so a bad one is an error wherever it is set.
bool detect_avx_vnni() {
  if (const char* env = std::getenv("DSV4_AVX_VNNI"); env != nullptr && *env != '\0') {
    if (std::strcmp(env, "0") == 0) return false;
    if (std::strcmp(env, "1") != 0) throw_error("DSV4_AVX_VNNI=", env, ": expected 0 or 1");
  }
  return cpu_has_avx_vnni();
}

}  // namespace

Isa detected_isa() {
  static const Isa isa = detect();
  return isa;
}

Isa active_isa() {
  int v = g_active.load(std::memory_order_relaxed);
  if (v < 0) return detected_isa();
  return static_cast<Isa>(v);
}

void set_isa(Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(detected_isa())) isa = detected_isa();
  g_active.store(static_cast<int>(isa), std::memory_order_relaxed);
}

GemmUnit gemm_unit() {
  const int v = g_gemm_unit.load(std::memory_order_relaxed);
  if (v >= 0) return static_cast<GemmUnit>(v);
  static const GemmUnit detected = detect_gemm_unit();
  return detected;
}

void set_gemm_unit(GemmUnit unit) {
  g_gemm_unit.store(static_cast<int>(unit), std::memory_order_relaxed);
}

const char* gemm_unit_name(GemmUnit unit) { return unit == GemmUnit::Fma ? "fma" : "dpbf16"; }

GemvOrder gemv_order() {
  const int v = g_gemv_order.load(std::memory_order_relaxed);
  if (v >= 0) return static_cast<GemvOrder>(v);
  static const GemvOrder detected = detect_gemv_order();
  return detected;
}

void set_gemv_order(GemvOrder order) { g_gemv_order.store(static_cast<int>(order), std::memory_order_relaxed); }

bool avx_vnni() {
  static const bool on = detect_avx_vnni();
  return on;
}

bool cpu_has_avx_vnni() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  static const bool has = __builtin_cpu_supports("avxvnni") && detect_hardware() >= Isa::Avx2;
  return has;
#else
  return false;
#endif
}

const char* gemv_order_name(GemvOrder order) { return order == GemvOrder::Rows ? "rows" : "tiles"; }

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Avx512Bf16: return "avx512-bf16";
    case Isa::Avx512Amx: return "avx512-amx";
  }
  return "?";
}

bool parse_isa(const char* name, Isa* out) {
  struct Entry { const char* name; Isa isa; };
  static constexpr Entry kNames[] = {
      {"scalar", Isa::Scalar},          {"avx2", Isa::Avx2},       {"avx512", Isa::Avx512},
      {"avx512-bf16", Isa::Avx512Bf16}, {"amx", Isa::Avx512Amx}, {"avx512-amx", Isa::Avx512Amx},
  };
  for (const Entry& e : kNames)
    if (std::strcmp(name, e.name) == 0) {
      *out = e.isa;
      return true;
    }
  return false;
}

}  // namespace dsv4::cpu
