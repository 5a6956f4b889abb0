// Runtime ISA selection for the CPU kernels. The level is detected once (CPUID + OS state via
// __builtin_cpu_supports); every kernel family keeps a scalar entry forever and an AVX-512 entry
// compiled with per-function target attributes, so the binary runs on any x86-64 (and the scalar
// path everywhere else).
#pragma once

namespace dsv4::cpu {

enum class Isa {
  Scalar,
  // AVX-512 F/BW/VL/DQ + VBMI (byte permutes for the FP8/FP4 decode) + BF16 (vdpbf16ps).
  Avx512Bf16,
};

Isa detected_isa();           // best level this CPU supports
Isa active_isa();             // level the dispatch uses: detected, unless lowered by set_isa
void set_isa(Isa isa);        // benches/tests: force a level (clamped to detected_isa())
const char* isa_name(Isa isa);

// The AVX-512 target string used by every AVX-512 kernel function.
#define DSV4_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,avx512bf16,fma")))

}  // namespace dsv4::cpu
