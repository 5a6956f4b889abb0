// Runtime ISA selection for the CPU kernels. The level is detected once (CPUID + OS state via
// __builtin_cpu_supports, and for AMX the Linux permission request for tile data); every kernel
// family keeps a scalar entry forever and SIMD entries compiled with per-function target
// attributes, so the binary runs on any x86-64 (and the scalar path everywhere else).
//
// The levels are ordered: each includes the ones below it. A kernel family uses the highest level
// it has an entry for that is <= active_isa(). The environment variable DSV4_ISA
// (scalar | avx2 | avx512 | avx512-bf16 | amx) caps the level for a whole process (CI runs the
// tests forced to every level the machine supports); set_isa() does the same from code.
#pragma once

namespace dsv4::cpu {

enum class Isa {
  Scalar,
  // AVX2 + FMA + F16C (Haswell and later, Zen): 8-lane float32 kernels.
  Avx2,
  // AVX-512 F/BW/VL/DQ + VBMI (byte permutes for the FP8/FP4 decode) + VNNI (integer dot
  // products of the FP4 decode GEMV), no BF16 (Ice Lake, Tiger Lake, Rocket Lake): the AVX-512
  // kernels compiled a second time (namespace avx512fma), each BF16 pair product as two float32
  // FMAs on the exactly widened halves (simd_avx512.h).
  Avx512,
  // The above + BF16 (vdpbf16ps, vcvtne2ps2bf16): the AVX-512 kernels as written (namespace
  // avx512; Zen 4/5, Cooper Lake, Sapphire Rapids and later).
  Avx512Bf16,
  // The above plus AMX-TILE/AMX-BF16 (tdpbf16ps tiles) for the prefill GEMMs, the sparse
  // attention and the lightning-indexer scan.
  Avx512Amx,
};

Isa detected_isa();           // best level this CPU (and OS) supports, capped by DSV4_ISA
Isa active_isa();             // level the dispatch uses: detected, unless lowered by set_isa
void set_isa(Isa isa);        // benches/tests: force a level (clamped to detected_isa())
const char* isa_name(Isa isa);
// Parses "scalar" | "avx2" | "avx512" | "avx512-bf16" | "amx" (also "avx512-amx"); false if
// unknown.
bool parse_isa(const char* name, Isa* out);

// How the prefill GEMMs multiply decoded BF16 weight panels where there are no AMX tiles:
// float32 FMA after an exact widening, or vdpbf16ps on BF16 pairs. The faster one depends on
// the core (BM_PeakMac): Intel server cores issue FMA on two ports and vdpbf16ps on one, so FMA
// does twice the MACs; AMD Zen 4/5 run both at the same instruction rate, so vdpbf16ps (two MACs
// per lane) does twice the MACs. Chosen from the CPU vendor, deterministic per machine;
// DSV4_GEMM=fma|dpbf16 overrides it for a process, set_gemm_unit() from code (tests, benches).
// Only the AVX-512 BF16 level has both; below it FMA (also at the plain AVX-512 level, which has
// no vdpbf16ps), with AMX the tiles.
enum class GemmUnit { Fma, Dpbf16 };
GemmUnit gemm_unit();
void set_gemm_unit(GemmUnit unit);
const char* gemm_unit_name(GemmUnit unit);

// The order in which the one-row (decode) GEMVs read their weights. Tiles: 64 bytes of each of a
// panel's 4 rows in turn, prefetched into L2 (prefetcht1). Rows: each row whole, one after the
// other, so every thread reads one stream in memory order, prefetched non-temporally
// (linear_kernels.h prefetch_stream): the FP8 and FP4 table kernels and the BF16 one, and at the
// AVX2 level the FP8 and BF16 ones (the FMA decode GEMV and the integer FP4 ones keep their own
// order). On the AMD Zen 5 VM, alternating rounds against the probe (BM_GemvOrder): FP8
// 0.92-0.95 of it against 0.76-0.82 for tiles, FP4 0.90-0.95 against 0.80-0.81, BF16 0.94-0.97
// against 0.78-0.83; the whole model's decode 0.82-0.91 against 0.75-0.78. Intel keeps tiles:
// there the row order of the FMA GEMV measured 3% slower in the whole model (stop 26) and the
// prefetch hints within 5% of each other. Chosen from the CPU vendor; DSV4_GEMV_ORDER=rows|tiles
// overrides it for a process, set_gemv_order() from code.
enum class GemvOrder { Tiles, Rows };
GemvOrder gemv_order();
void set_gemv_order(GemvOrder order);
const char* gemv_order_name(GemvOrder order);

// AVX-VNNI (vpdpbusd on 256-bit vectors, VEX-encoded): Intel from Alder Lake and Sapphire
// Rapids, AMD from Zen 5. Not a level, because the AVX-512 levels do not imply it (Ice Lake and
// Zen 4 have AVX-512 VNNI only); the AVX2 level uses it where present (the lightning indexer's
// integer scan). DSV4_AVX_VNNI=0 turns it off for a process (CI runs the AVX2 level both ways;
// the tests call the kernels directly where cpu_has_avx_vnni()).
bool cpu_has_avx_vnni();
bool avx_vnni();  // cpu_has_avx_vnni() unless DSV4_AVX_VNNI=0

inline bool isa_at_least(Isa level) {
  return static_cast<int>(active_isa()) >= static_cast<int>(level);
}

// The AVX-512 target strings. DSV4_AVX512F: the plain AVX-512 level (no BF16 instructions).
// DSV4_AVX512: every function of the AVX-512 kernel sources, in namespace DSV4_AVX512_NS. Those
// sources are compiled twice: as written (BF16 level, namespace avx512) and once more from the
// wrappers in src/kernels/cpu/avx512fma/, which define DSV4_AVX512_FMA_PASS first: then the
// target leaves out BF16, the namespace is avx512fma, and simd_avx512.h's BF16 helpers (dpbf16,
// cvt2_bf16, cvt_bf16) are float32 emulations. Each source skips its other tiers in that pass.
#define DSV4_AVX512F __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,fma")))
// The plain AVX-512 level plus VNNI (vpdpwssd), which every CPU of that level has (the level
// requires it: dispatch.cpp).
#define DSV4_AVX512VNNI \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,avx512vnni,fma")))
#if defined(DSV4_AVX512_FMA_PASS)
#define DSV4_AVX512 DSV4_AVX512F
#define DSV4_AVX512_NS avx512fma
#else
#define DSV4_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,avx512bf16,fma")))
#define DSV4_AVX512_NS avx512
#endif
// The AVX2 tier: AVX2 + FMA + F16C (vcvtph2ps decodes E4M3 through half precision).
#define DSV4_AVX2 __attribute__((target("avx2,fma,f16c")))
// The AVX2 tier plus AVX-VNNI (kernels run only where avx_vnni()).
#define DSV4_AVXVNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
// AMX tile kernels (also AVX-512 for the surrounding data movement).
#define DSV4_AMX                                                                             \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,avx512bf16,fma,amx-tile," \
                        "amx-bf16")))

}  // namespace dsv4::cpu
