// Drivers of the fast linear layers (linear.h): activation preparation, the static split of output
// rows over the thread pool, and the panel loop (decode 4 weight rows into a BF16 panel held in L1,
// then run every activation row of the current M tile against it).
#include "kernels/cpu/linear.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/formats.h"
#include "kernels/cpu/linear_kernels.h"

namespace dsv4::cpu {

// The kernel table of one tier namespace.
#define DSV4_PANEL_TABLE(ns, order)                                                      \
  PanelKernels {                                                                         \
    .fp4_order = order, .decode_fp8 = ns::decode_fp8, .fp8_rows_dot = ns::fp8_rows_dot, \
    .scale_act_bf16 = ns::scale_act_bf16, .decode_fp4 = ns::decode_fp4,                 \
    .dot_bf16 = ns::dot_bf16, .dot_f32 = ns::dot_f32, .fp4_rows_dot = ns::fp4_rows_dot, \
    .widen_bf16 = ns::widen_bf16, .dot_bf16w_f32 = ns::dot_bf16w_f32,                   \
    .prepare_act_bf16 = ns::prepare_act_bf16,                                            \
  }

const PanelKernels& panel_kernels(Isa isa) {
  static const PanelKernels kScalar = DSV4_PANEL_TABLE(scalar, PanelOrder::Fp4);
  static const PanelKernels kAvx2 = [] {
    PanelKernels t = DSV4_PANEL_TABLE(avx2, PanelOrder::Fp4);
    t.decode_fp8_f32 = avx2::decode_fp8_f32;
    t.decode_fp4_f32 = avx2::decode_fp4_f32;
    return t;
  }();
  static const PanelKernels kAvx512 = DSV4_PANEL_TABLE(avx512, PanelOrder::Fp4Words);
  static const PanelKernels kAvx512Fma = DSV4_PANEL_TABLE(avx512fma, PanelOrder::Fp4Words);
  if (static_cast<int>(isa) >= static_cast<int>(Isa::Avx512Bf16)) return kAvx512;
  if (isa == Isa::Avx512) return kAvx512Fma;
  return static_cast<int>(isa) >= static_cast<int>(Isa::Avx2) ? kAvx2 : kScalar;
}
#undef DSV4_PANEL_TABLE

void act_quant_dequant(const float* x, int64_t k, float* out) {
  for (int64_t b = 0; b < k; b += 128) {
    const int64_t e = std::min(k, b + 128);
    float amax = 0.0f;
    for (int64_t j = b; j < e; ++j) amax = std::max(amax, std::fabs(x[j]));
    amax = std::max(amax, 1e-4f);
    const float t = amax * (1.0f / 448.0f);
    const int sk = ceil_log2_f32(t);  // in [-22, 120] for finite x: both powers are normal
    const float s = pow2_f32(sk), inv_s = pow2_f32(-sk);
    for (int64_t j = b; j < e; ++j) {
      const float q = std::clamp(x[j] * inv_s, -448.0f, 448.0f);  // exact: x / s
      out[j] = round_to_e4m3_grid(q) * s;
    }
  }
}

namespace {

// Activation rows of the current M tile stay in L2 while every panel of the thread's output
// range passes over them; each panel (4 rows x K) is re-decoded per tile.
constexpr int64_t kMTile = 64;
// From this many rows on, each decoded panel is widened once to float32 and the products run as
// FMA (two ports) instead of vdpbf16ps (half the MAC rate on the measured CPU); below it the
// BF16 panel is used directly (decode: the cheapest path per weight byte).
constexpr int64_t kFmaMinRows = 8;
// With AMX the tile path beats in-register decode from 3 rows on (measured on FP4 2048 x 4096:
// per-row decode costs grow with the rows, a decoded chunk feeds up to 16 rows at one price).
constexpr int64_t kAmxMinRows = 3;
// The vdpbf16ps tiles (where they beat FMA, dispatch.h GemmUnit) take over from in-register
// decode at this many rows. In-register decode feeds 4 activation rows per decoded chunk, so it
// runs at ~270-300 GFLOP/s from 4 rows on; the tiles need many rows to reach that (measured on
// Zen 4, 2 threads, GFLOP/s in registers vs tiles: FP8 4096 x 4096 at 16 rows 266 vs 232, 32
// rows 304 vs 299, 64 rows 303 vs 331; FP4 2048 x 4096 x 6 experts at 12 rows 269 vs 210, 24
// rows 282 vs 243; 64 rows x 1 expert 299 vs 380).
constexpr int64_t kDpTileMinRows = 32;
// The float32 FMA tiles (Intel without AMX, and the plain AVX-512 level) take over from the
// FMA panels at this many rows (2-core Ice Lake, GFLOP/s panels vs tiles: FP8 4096 x 4096 at 8
// rows 66 vs 40, 32 rows 110 vs 133, 128 rows 108 vs 168, 512 rows 113 vs 155; FP4 2048 x 4096
// x 6 experts at 24 rows 122 vs 105, 1 expert at 64 rows 129 vs 156, 256 rows 118 vs 178).
constexpr int64_t kFmaTileMinRows = 32;

thread_local AlignedVector<uint16_t> t_act;      // prepared BF16 activations (the calling thread)
thread_local AlignedVector<float> t_act_f32;     // prepared float32 activations (FMA path)
thread_local AlignedVector<uint16_t> t_panel;    // one BF16 panel per thread
thread_local AlignedVector<float> t_panel_f32;   // its float32 widening (FMA path)
thread_local AlignedVector<uint16_t> t_row_bf16; // one prepared activation row per thread
thread_local AlignedVector<uint16_t> t_act_vnni; // tile-operand activations (calling thread)
thread_local AlignedVector<uint16_t> t_act_stage;  // BF16 rows they are built from
thread_local AlignedVector<float> t_act_blocks;  // float32 tile-operand activations (FMA tiles)
thread_local AlignedVector<float> t_act_scaled;  // FMA decode GEMV: activations x block scale (any thread)
// The FP8 decode GEMV call and 128-row block whose scaled activations t_act / t_act_scaled hold.
struct ScaledFor {
  uint64_t call = ~uint64_t{0};
  int64_t block = -1;
};
thread_local ScaledFor t_scaled_for;
std::atomic<uint64_t> g_fp8_gemv_calls{0};
thread_local AlignedVector<int16_t> t_act_i16;   // Fp4IntRows h and r (calling thread)
thread_local AlignedVector<float> t_act_fac;     // their chunk factors
thread_local AlignedVector<uint8_t> t_act_rnz;   // and R flags

int64_t round_up32(int64_t k) { return (k + 31) / 32 * 32; }

// Row stride of panels and prepared activations: K rounded up plus 32 elements, so rows that are
// a power of two apart in K do not all map to the same L1 sets (4 KiB aliasing).
int64_t skewed(int64_t kp) { return kp + 32; }

// One row in the panel order (BF16, or its exact float32 widening for the FMA path).
void prepare_row(const PanelKernels& kern, const float* src, int64_t k, PanelOrder order,
                 bool quant, uint16_t* out, int64_t ldo) {
  kern.prepare_act_bf16(src, k, order, quant, out, ldo);
}
void prepare_row(const PanelKernels& kern, const float* src, int64_t k, PanelOrder order,
                 bool quant, float* out, int64_t ldo) {
  uint16_t* tmp = grow(t_row_bf16, static_cast<size_t>(ldo));
  kern.prepare_act_bf16(src, k, order, quant, tmp, ldo);
  kern.widen_bf16(tmp, ldo, out);
}

struct PrepRows {
  const float* x;
  int64_t ldx;
  const int32_t* rows;  // nullptr: row i is x row i
};

// How the panels of a GEMM are multiplied; below the row threshold of the level the weights are
// decoded in registers per row block instead (Bf16Dot for BF16 weights). Amx, DpTiles and
// FmaTiles share the chunked tile path (to_vnni / to_f32_blocks activations, TileAcc sums).
enum class Gemm { Bf16Dot, Fma, Amx, DpTiles, FmaTiles };

bool tiled(Gemm kind) { return kind == Gemm::Amx || kind == Gemm::DpTiles || kind == Gemm::FmaTiles; }

// The one-row FP8 decode GEMV (Gemm::Bf16Dot, m == 1) decodes into float32 and multiplies on
// FMA (avx512::fp8_rows_dot_f32) where FMA is the faster unit, GemmUnit::Fma (Intel: there
// vdpbf16ps issues once per ~2.1 cycles and stalls the shuffle port the table decode needs; at
// the plain AVX-512 level it is emulated by FMAs). DSV4_GEMM=dpbf16 selects the table decode
// (fp8_rows_dot) for comparison.
bool use_fma_gemv() { return isa_at_least(Isa::Avx512) && gemm_unit() == GemmUnit::Fma; }

// The FP4 decode GEMV (Gemm::Bf16Dot) runs on 16-bit integer dot products (fp4_int_gemv.cpp)
// where the activations are quantised (act_quant puts them on the FP8 grid) and on the cores
// use_fma_gemv picks: there vpdpwssd does 3.2x the MACs of vdpbf16ps (BM_PeakMac/3 vs /1).
// Measured with 2 threads on the AMX Xeon VM (family 6 model 167; BM_LinearFp4), int vs BF16:
// L2-resident 1024 x 2048 30 vs 26.5 GB/s (at the plain AVX-512 level, where vdpbf16ps is
// emulated: 33 vs 24); streaming 6 experts of 2048 x 4096 from DRAM 22.1 vs 21.4 GB/s (memory
// bound there). DSV4_GEMM=dpbf16 keeps the BF16 kernel (fp4_rows_dot) for comparison.
// At the AVX2 level (no VNNI) the same kernel runs on vpmaddwd + vpaddd: ~47 instructions per 128
// weights and row against ~88 for the float32 decode (avx2::fp4_rows_dot); on the same VM forced
// to AVX2, 6 experts from DRAM 12.3-13.0 -> 17.8-18.0 GB/s (docs/performance.md).
//
// The AVX-512 kernel decodes each weight chunk once for 4 activation rows, so it also replaces
// the float32 FMA panels (8 to 31 rows per expert, the routed experts of a prefill batch: 3 to 60
// rows each in pp512, most under 20), whose per-panel decode cost more than their products. On
// a 2-core Emerald Rapids VM without AMX or AVX-512 BF16 (BM_LinearFp4, 6 experts of
// 2048 x 4096, alternating): 8 rows 8.1-15.5 -> 4.0-7.7 ms, 12 rows 9.9-13.1 -> 6.8-7.3 ms, 24
// rows 18.2-20.1 -> 16.4-18.4 ms; pp512 of the Flash-width model +15% (4 alternations, medians
// 61-73 -> 74-81 tok/s), and +10% more with 4 rows per decoded chunk instead of 2. The AVX2
// kernel decodes per activation row and stays below the FMA panels' row threshold (at 12 and 24
// rows it measured 1.2-1.5x slower than the panels).
struct Fp4IntKernels {
  void (*act)(const uint16_t* a, int64_t k, int16_t* h, int16_t* r, float* fac, uint8_t* rnz);
  void (*dot)(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds, int nr,
              const Fp4IntRows& a, int64_t m, int64_t k, float* y, int64_t ldy);
  bool takes_panels;  // runs the rows for which gemm_kind picks the FMA panels (8 to 31 rows)
};
const Fp4IntKernels* int_fp4_gemv(bool quantize_act) {
  static constexpr Fp4IntKernels kAvx512{avx512::fp4_int_act, avx512::fp4_rows_dot_int, true};
  static constexpr Fp4IntKernels kAvx2{avx2::fp4_int_act, avx2::fp4_rows_dot_int, false};
  if (!quantize_act) return nullptr;
  if (use_fma_gemv()) return &kAvx512;
  return active_isa() == Isa::Avx2 ? &kAvx2 : nullptr;
}

// Whether these FP8 weights suit the FMA decode GEMV: its table-free decode takes a slower path
// for 64-byte chunks holding a zero or subnormal code (e = 0), about 1% of the chunks of
// block-quantised weights but nearly every chunk of uniformly random bytes (the slow path costs
// about 4x per chunk). The first 32 chunks of the matrix are tested (the calling thread reads
// them first anyway; 32 chunks spread over the matrix were as many cache misses, 1-9 us per
// call); from 4 hits (12.5%) on the other kernel runs. Deterministic: the choice depends on the
// weights alone.
bool fma_gemv_suits(const uint8_t* codes, int64_t n, int64_t k) {
  const int64_t chunks = std::min<int64_t>(32, n * (k / 64));
  constexpr uint64_t kE = 0x7878787878787878ull, kOne = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  int hits = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    bool low = false;
    for (int b = 0; b < 64; b += 8) {
      uint64_t v;
      std::memcpy(&v, codes + c * 64 + b, 8);
      const uint64_t e = v & kE;  // a byte of e is zero iff its code has e = 0
      low |= ((e - kOne) & ~e & kHigh) != 0;
    }
    hits += low;
  }
  return hits < (chunks + 7) / 8;
}

// rows: activation rows per weight (for grouped experts: the average over the busy groups).
Gemm gemm_kind(int64_t rows) {
  if (active_isa() == Isa::Avx512Amx) return rows >= kAmxMinRows ? Gemm::Amx : Gemm::Bf16Dot;
  if (active_isa() == Isa::Avx512Bf16 && gemm_unit() == GemmUnit::Dpbf16)
    return rows >= kDpTileMinRows ? Gemm::DpTiles : Gemm::Bf16Dot;
  if (isa_at_least(Isa::Avx512) && rows >= kFmaTileMinRows) return Gemm::FmaTiles;
  return rows >= kFmaMinRows ? Gemm::Fma : Gemm::Bf16Dot;
}

// The path of an FP4 weight with `rows` activation rows: the integer kernel (when there is one)
// also takes the FMA panels' rows where it decodes for several rows at once.
Gemm fp4_gemm_kind(int64_t rows, const Fp4IntKernels* ik) {
  const Gemm kind = gemm_kind(rows);
  return ik != nullptr && ik->takes_panels && kind == Gemm::Fma ? Gemm::Bf16Dot : kind;
}

// Prepared activations of one weight's rows: BF16 (stride ld), float32 (Fma, stride ld), the
// AMX tile-operand layout (amx::to_vnni, ceil(m / 16) blocks of 16 * kp values) or its float32
// counterpart (FmaTiles: avx512::to_f32_blocks, as many floats).
struct Act {
  Fp4IntRows fp4i;  // the integer form of bf16 (FP4 decode GEMV, int_fp4_gemv), or empty
  const uint16_t* bf16 = nullptr;
  const float* f32 = nullptr;
  const uint16_t* vnni = nullptr;
  const float* blocks = nullptr;
  int64_t ld = 0;
  Gemm kind = Gemm::Bf16Dot;
};

int64_t vnni_elems(int64_t m, int64_t kp) { return (m + 15) / 16 * 16 * kp; }

// Output columns [n_lo, n_hi) of rows [0, m) are final: round them when y asks for BF16.
void finish_cols(const OutRows& y, int64_t m, int64_t n_lo, int64_t n_hi) {
  if (!y.round_bf16) return;
  for (int64_t i = 0; i < m; ++i) round_to_bf16(y.data + i * y.ld + n_lo, n_hi - n_lo);
}

// Software prefetch (to L2) of `bytes` from each of `rows` rows of stride ld.
void prefetch_rows(const uint8_t* p, int64_t ld, int rows, int64_t bytes) {
  for (int r = 0; r < rows; ++r)
    for (int64_t b = 0; b < bytes; b += 64) prefetch_l2(p + r * ld + b);
}

template <class T>
void prepare_rows(const PanelKernels& kern, ThreadPool* pool, const PrepRows& in, int64_t m, int64_t k, PanelOrder order,
                  bool quant, T* out, int64_t ldo) {
  const int64_t grain = 4;
  auto body = [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t src = in.rows ? in.rows[i] : i;
      prepare_row(kern, in.x + src * in.ldx, k, order, quant, out + i * ldo, ldo);
    }
  };
  if (m >= 2 * grain) {
    parallel_for(pool_for_work(pool, 8.0 * m * k), m, grain, body);
  } else {
    body(0, m, 0);
  }
}

// Output rows [n_lo, n_hi) (n_lo % kTilePanelRows == 0) through tiles (AMX or vdpbf16ps), per
// panel of kTilePanelRows weight rows and pass of activation rows:
//   * vdpbf16ps, and AMX for up to 32 activation rows (one pair of tiles, e.g. a routed expert
//     in prefill: 512 tokens give each about 12 rows): K chunks of kTileChunk values are decoded
//     into an L1-resident buffer and multiplied at once (the AMX sums stay in the tile registers
//     from chunk to chunk; the register blocks reload theirs per chunk anyway); the weight bytes
//     of the chunk after next are prefetched meanwhile (`prefetch(n0, nr, k0)`, kTileChunk
//     values), so the DRAM stream overlaps the tile work. For AMX at 12-24 rows this ran 5-20%
//     faster than decoding the whole panel first (BM_LinearFp4 from DRAM, 2026-12-06): the tile
//     loads then read the panel from L1 instead of L2.
//   * AMX with more rows: the panel's whole K range is decoded at once (L2-resident: 526 KiB for
//     K = 8192), so each pair of activation tiles accumulates over all of K in the tile registers
//     and is stored once. Per-chunk accumulator stores stalled the tile pipeline (a quarter of
//     the kernel's time at 128 rows; 64 and 256 rows still ran 0-15% slower chunked on
//     2026-12-06). No software prefetch: spreading the next panel's prefetches between the
//     pairs measured the same, end to end and in the kernel benchmarks. Decoding the next panel
//     in pieces between the tile steps (the vector units run beside the tile unit,
//     BM_AmxRound) measured no faster either.
template <class Decode, class Prefetch, class Widen>
void run_panels_tiled(Decode&& decode, Prefetch&& prefetch, Widen&& widen, int64_t n_lo,
                      int64_t n_hi, int64_t kp, int64_t m, const Act& act, const OutRows& y) {
  const bool use_amx = act.kind == Gemm::Amx;
  // AMX with more than one pair of activation tiles: the whole K range at once (below).
  const bool whole_k = use_amx && m > 32;
  const int64_t kc = whole_k ? kp : kTileChunk;
  const int64_t ps = kc + 32;  // skewed stride of the panel buffer
  uint16_t* panel = grow(t_panel, static_cast<size_t>(kTilePanelRows * ps));
  const bool use_fma = act.kind == Gemm::FmaTiles;
  float* wide = use_fma ? grow(t_panel_f32, static_cast<size_t>(kTilePanelRows * ps)) : nullptr;
  thread_local TileAcc acc;
  if (use_amx) amx::begin();
  // Panel rows [0, nr) of K values [k0, k0 + len), zero rows up to the next multiple of 16. With
  // pf_rows > 0, rows [pf_n0, pf_n0 + pf_rows) at K pf_k0 are prefetched meanwhile, kPanelRows
  // rows before each kPanelRows-row decode: spread over the decode, the prefetches never fill
  // the line-fill buffers at once (a burst of all of them stalled the core on the prefetch
  // instructions, 10% of the prefill's time in the expert GEMMs).
  auto decode_panel = [&](int64_t n0, int nr, int64_t k0, int64_t len, int64_t pf_n0 = 0, int pf_rows = 0,
                          int64_t pf_k0 = 0) {
    for (int h = 0; h < kTilePanelRows; h += kPanelRows) {
      if (const int pr = std::clamp(pf_rows - h, 0, kPanelRows); pr > 0) prefetch(pf_n0 + h, pr, pf_k0);
      const int hr = std::clamp(nr - h, 0, kPanelRows);
      uint16_t* part = panel + h * ps;
      if (hr > 0) {
        decode(n0 + h, hr, k0, len, part, ps);
      } else if (h < (nr + 15) / 16 * 16) {
        std::fill(part, part + kPanelRows * ps, uint16_t{0});
      }
    }
  };
  auto rows_at = [&](int64_t n0) { return static_cast<int>(std::min<int64_t>(kTilePanelRows, n_hi - n0)); };
  // Passes of activation rows: each panel is decoded once per pass, and the pass's activations
  // (2 kp bytes per row) stay in L2 across the panels. kTilePassRows (128) rows, or for the
  // whole-K AMX path as many as keep a pass within 1 MiB, up to 256 (K <= 2048: fewer decodes
  // per panel). AMX, FP8 at 512 rows from DRAM, 128 -> 256 rows: 32768 x 1024 25.7-26.4 ->
  // 22.3-23.0 ms, 4096 x 2048 5.8-6.9 -> 5.2-5.3 ms; at K = 4096 passes of 256 or 512 rows ran
  // 5-25% slower.
  const int64_t pass = whole_k ? std::clamp<int64_t>((int64_t{1} << 20) / (2 * kp) / 32 * 32, kTilePassRows,
                                                     2 * kTilePassRows)
                               : kTilePassRows;
  for (int64_t m0 = 0; m0 < m; m0 += pass) {
    const int64_t mt = std::min(pass, m - m0);
    for (int64_t n0 = n_lo; n0 < n_hi; n0 += kTilePanelRows) {
      const int nr = rows_at(n0);
      const bool has_next = n0 + kTilePanelRows < n_hi;
      if (whole_k) {
        decode_panel(n0, nr, 0, kp);
        const int64_t pairs = (mt + 31) / 32;
        for (int64_t p = 0; p < pairs; ++p) {
          const int64_t r0 = m0 + 32 * p, mp = std::min<int64_t>(32, m0 + mt - r0);
          amx::chunk(panel, ps, nr, act.vnni + r0 * kp, mp, kp, 0, kp, &acc);
          amx::store(acc, nr, mp, y.data + r0 * y.ld + n0, y.ld);
        }
        continue;
      }
      for (int64_t k0 = 0; k0 < kp; k0 += kTileChunk) {
        const int64_t len = std::min(kTileChunk, kp - k0);
        if (k0 + 2 * kTileChunk < kp) {
          decode_panel(n0, nr, k0, len, n0, nr, k0 + 2 * kTileChunk);
        } else if (has_next && k0 + 2 * kTileChunk - kp < kp) {
          decode_panel(n0, nr, k0, len, n0 + kTilePanelRows, rows_at(n0 + kTilePanelRows), k0 + 2 * kTileChunk - kp);
        } else {
          decode_panel(n0, nr, k0, len);
        }
        if (use_amx) {
          amx::chunk(panel, ps, nr, act.vnni + m0 * kp, mt, kp, k0, k0 + len, &acc);
        } else if (use_fma) {
          widen(panel, (nr + 15) / 16 * 16 * ps, wide);
          avx512::tile_chunk_f32(wide, ps, nr, act.blocks + m0 * kp, mt, kp, k0, k0 + len, &acc);
        } else {
          avx512::tile_chunk(panel, ps, nr, act.vnni + m0 * kp, mt, kp, k0, k0 + len, &acc);
        }
      }
      amx::store(acc, nr, mt, y.data + m0 * y.ld + n0, y.ld);
    }
  }
}

// decode(n0, nr, k0, len, panel, ldp): weight rows [n0, n0 + nr) (nr <= kPanelRows), K values
// [k0, k0 + len) (k0 % 128 == 0) into kPanelRows panel rows of stride ldp (rows >= nr zero).
// Given a float* panel (the FMA path) it writes the float32 widening of those rows and returns
// true, or returns false where the level has no float32 decoder: the BF16 rows are then decoded
// and widened.
// One format's decode for run_panels: into a BF16 panel with `bf16`, into a float32 one with
// `f32` (false where the level has none). args: the decoder's arguments before (panel, ldp).
template <class Elem, class F32, class Bf16, class... Args>
bool decode_rows(Elem* panel, int64_t ldp, F32 f32, Bf16 bf16, Args... args) {
  if constexpr (std::is_same_v<Elem, float>) {
    if (f32 == nullptr) return false;
    f32(args..., panel, ldp);
  } else {
    bf16(args..., panel, ldp);
  }
  return true;
}

template <class Decode, class Prefetch>
void run_panels(const PanelKernels& kern, Decode&& decode, Prefetch&& prefetch, int64_t n_lo,
                int64_t n_hi, int64_t kp, int64_t m, const Act& act, const OutRows& y) {
  if (tiled(act.kind)) {
    run_panels_tiled(decode, prefetch, kern.widen_bf16, n_lo, n_hi, kp, m, act, y);
    return;
  }
  const bool fma = act.kind == Gemm::Fma;
  const int rows = fma ? kWidePanelRows : kPanelRows;
  const int64_t ps = skewed(kp);
  uint16_t* panel = grow(t_panel, static_cast<size_t>(rows * ps));
  float* wide = fma ? grow(t_panel_f32, static_cast<size_t>(rows * ps)) : nullptr;
  for (int64_t m0 = 0; m0 < m; m0 += kMTile) {
    const int64_t mt = std::min(kMTile, m - m0);
    for (int64_t n0 = n_lo; n0 < n_hi; n0 += rows) {
      const int nr = static_cast<int>(std::min<int64_t>(rows, n_hi - n0));
      float* out = y.data + m0 * y.ld + n0;
      if (fma) {
        for (int h = 0; h < kWidePanelRows; h += kPanelRows) {
          const int hr = std::clamp(nr - h, 0, kPanelRows);
          float* wide_half = wide + h * ps;
          if (hr == 0) {
            std::fill(wide_half, wide_half + kPanelRows * ps, 0.0f);
          } else if (!decode(n0 + h, hr, 0, kp, wide_half, ps)) {
            uint16_t* half = panel + h * ps;
            decode(n0 + h, hr, 0, kp, half, ps);
            kern.widen_bf16(half, kPanelRows * ps, wide_half);
          }
        }
        kern.dot_f32(wide, ps, nr, act.f32 + m0 * act.ld, act.ld, mt, kp, out, y.ld);
      } else {
        decode(n0, nr, 0, kp, panel, ps);
        kern.dot_bf16(panel, ps, nr, act.bf16 + m0 * act.ld, act.ld, mt, kp, out, y.ld);
      }
    }
  }
}

// Element counts of the prepared activations of one call, per buffer: BF16 rows (Bf16Dot),
// float32 rows (Fma), tile layouts (Amx / DpTiles) and the BF16 staging rows the tile layout is
// built from (the largest group's). Used first to size the calling thread's buffers, then as the
// cursor that hands each group its slice.
struct ActSpace {
  int64_t bf16 = 0, f32 = 0, vnni = 0, blocks = 0, stage = 0;
  void add(Gemm kind, int64_t m, int64_t kp) {
    if (tiled(kind)) {
      (kind == Gemm::FmaTiles ? blocks : vnni) += vnni_elems(m, kp);
      stage = std::max(stage, m * skewed(kp));
    } else if (kind == Gemm::Fma) {
      f32 += m * skewed(kp);
    } else {
      bf16 += m * skewed(kp);
    }
  }
  void reserve() const {
    grow(t_act, static_cast<size_t>(bf16));
    grow(t_act_f32, static_cast<size_t>(f32));
    grow(t_act_vnni, static_cast<size_t>(vnni));
    grow(t_act_blocks, static_cast<size_t>(blocks));
    grow(t_act_stage, static_cast<size_t>(stage));
  }
};

// Prepares m rows into the calling thread's buffers (reserved for at least `*at` plus these rows)
// and advances the cursor `at`.
Act prepare_act(ThreadPool* pool, const PrepRows& in, int64_t m, int64_t k, int64_t kp,
                PanelOrder order, bool quant, Gemm kind, ActSpace* at) {
  const PanelKernels& kern = panel_kernels(active_isa());
  Act a;
  a.ld = skewed(kp);
  a.kind = kind;
  if (tiled(kind)) {
    uint16_t* rows = t_act_stage.data();
    prepare_rows(kern, pool, in, m, k, order, quant, rows, a.ld);
    const bool f32 = kind == Gemm::FmaTiles;
    uint16_t* vnni = f32 ? nullptr : t_act_vnni.data() + at->vnni;
    float* blocks = f32 ? t_act_blocks.data() + at->blocks : nullptr;
    // Blocks of 16 rows to the tile layout, split over the threads (a serial pass cost 4-11% of
    // an AMX GEMM at 512 rows).
    parallel_for(pool_for_work(pool, 2.0 * m * kp), (m + 15) / 16, 1, [&](int64_t b, int64_t e, int) {
      const int64_t rows_here = std::min(m, e * 16) - b * 16;
      if (f32)
        avx512::to_f32_blocks(rows + b * 16 * a.ld, a.ld, rows_here, kp, blocks + b * 16 * kp);
      else
        amx::to_vnni(rows + b * 16 * a.ld, a.ld, rows_here, kp, vnni + b * 16 * kp);
    }, Schedule::Stealing);
    a.vnni = vnni;
    a.blocks = blocks;
  } else if (kind == Gemm::Fma) {
    float* buf = t_act_f32.data() + at->f32;
    prepare_rows(kern, pool, in, m, k, order, quant, buf, a.ld);
    a.f32 = buf;
  } else {
    uint16_t* buf = t_act.data() + at->bf16;
    prepare_rows(kern, pool, in, m, k, order, quant, buf, a.ld);
    a.bf16 = buf;
  }
  at->add(kind, m, kp);
  return a;
}

// One weight's activations (linear_fp8 / linear_bf16).
Act prepare_single(ThreadPool* pool, const PrepRows& in, int64_t m, int64_t k, int64_t kp,
                   PanelOrder order, bool quant, Gemm kind) {
  ActSpace need;
  need.add(kind, m, kp);
  need.reserve();
  ActSpace at;
  return prepare_act(pool, in, m, k, kp, order, quant, kind, &at);
}

// The LinearTimer shape of a grouped call: the first counted group's n x k, the number of
// groups counted, mixed when their shapes differ.
template <class G, class Counted>
LinearShape group_shape(LinearKind kind, std::span<const G> groups, Counted counted) {
  LinearShape s{kind};
  s.groups = 0;
  for (const G& g : groups) {
    if (!counted(g)) continue;
    if (s.groups++ == 0) {
      s.n = g.w.n;
      s.k = g.w.k;
    } else {
      s.mixed |= g.w.n != s.n || g.w.k != s.k;
    }
  }
  return s;
}

void check_rows(const char* op, int64_t m, const void* x, const void* y) {
  if (m < 0) throw_error(op, ": negative row count ", m);
  if (m > 0 && (x == nullptr || y == nullptr)) throw_error(op, ": null activation or output rows");
}

void check_quant_k(const char* op, int64_t n, int64_t k, const void* w, const void* s) {
  if (k <= 0 || k % 128 != 0) throw_error(op, ": k = ", k, " is not a positive multiple of 128");
  if (n <= 0) throw_error(op, ": n = ", n, " must be positive");
  if (w == nullptr || s == nullptr) throw_error(op, ": null weight or scale pointer");
}

}  // namespace

namespace {

double fp8_weight_bytes(const Fp8Weight& w) {
  return double(w.n) * w.k + double((w.n + 127) / 128) * ((w.k + 127) / 128);
}

// The small-M FP8 path (Gemm::Bf16Dot) of one or several weights in one parallel region: weights
// decoded in registers straight into vdpbf16ps (BF16 activations) or into float32 FMA
// (use_fma_gemv); the activations carry the weight scales of the current 128-row block
// (rescaled once per block and thread). One activation row only takes FMA: with 2-7 rows the
// table kernel is faster (it holds 2 rows of BF16 activations in registers; one thread, K = 4096:
// 2 rows 14.0 vs 12.6 GB/s, 4 rows 8.9 vs 7.5). The work units are 4-row panels of all groups
// in turn, so one split (Schedule::Stealing) covers them all: each group's rows are computed
// exactly as by a call of its own. A group with the same input as the one before it shares its
// prepared activations.
void fp8_gemv_groups(std::span<const Fp8Group> groups, ThreadPool* pool, bool quantize_act) {
  const PanelKernels& kern = panel_kernels(active_isa());
  thread_local std::vector<int64_t> t_off;  // each group's prepared rows in `act`
  thread_local std::vector<uint8_t> t_fma;
  t_off.assign(groups.size(), 0);
  t_fma.assign(groups.size(), 0);
  int64_t total = 0, units = 0, max_rows = 0;
  double work = 0;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const Fp8Group& g = groups[gi];
    t_fma[gi] = g.x.m == 1 && use_fma_gemv() && fma_gemv_suits(g.w.codes, g.w.n, g.w.k);
    const Fp8Group* prev = gi > 0 ? &groups[gi - 1] : nullptr;
    if (prev && g.x.data == prev->x.data && g.x.ld == prev->x.ld && g.x.m == prev->x.m &&
        g.w.k == prev->w.k && t_fma[gi] == t_fma[gi - 1]) {
      t_off[gi] = t_off[gi - 1];
    } else {
      t_off[gi] = total;
      total += g.x.m * skewed(g.w.k);
    }
    units += (g.w.n + kPanelRows - 1) / kPanelRows;
    max_rows = std::max(max_rows, g.x.m * skewed(g.w.k));
    work += double(g.x.m) * g.w.n * g.w.k;
  }
  float* act = grow(t_act_f32, static_cast<size_t>(total));
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const Fp8Group& g = groups[gi];
    if (gi > 0 && t_off[gi] == t_off[gi - 1]) continue;
    prepare_rows(kern, pool, {g.x.data, g.x.ld, nullptr}, g.x.m, g.w.k,
                 t_fma[gi] ? PanelOrder::Fp8Dwords : PanelOrder::Fp8, quantize_act, act + t_off[gi],
                 skewed(g.w.k));
  }
  // A thread's pieces are mostly consecutive (Schedule::Stealing), so the activations it
  // scaled for a block last are kept for its next piece of the same block (one call number per
  // group).
  const uint64_t call0 = g_fp8_gemv_calls.fetch_add(groups.size(), std::memory_order_relaxed);
  const int64_t* off = t_off.data();  // the calling thread's (the workers have their own)
  const uint8_t* fma_of = t_fma.data();
  // which scaled-activation buffers the threads need (FMA: float32, the table kernel: BF16)
  const bool any_fma = std::any_of(t_fma.begin(), t_fma.end(), [](uint8_t f) { return f != 0; });
  const bool any_table = std::any_of(t_fma.begin(), t_fma.end(), [](uint8_t f) { return f == 0; });
  parallel_for(pool_for_work(pool, work), units, 1, [&](int64_t ub, int64_t ue, int) {
    uint16_t* scaled = any_table ? grow(t_act, static_cast<size_t>(max_rows)) : nullptr;
    float* scaled_f32 = any_fma ? grow(t_act_scaled, static_cast<size_t>(max_rows)) : nullptr;
    int64_t unit0 = 0;
    for (size_t gi = 0; gi < groups.size() && unit0 < ue; ++gi) {
      const Fp8Group& g = groups[gi];
      const int64_t gu = (g.w.n + kPanelRows - 1) / kPanelRows;
      const int64_t b = std::max(ub, unit0) - unit0, e = std::min(ue, unit0 + gu) - unit0;
      unit0 += gu;
      if (b >= e) continue;
      const Fp8Weight& w = g.w;
      const int64_t k = w.k, m = g.x.m, ld = skewed(k), kblocks = k / 128;
      const bool fma = fma_of[gi] != 0;
      const float* ga = act + off[gi];
      const uint64_t call = call0 + gi;
      const int64_t r0 = b * kPanelRows, r1 = std::min(w.n, e * kPanelRows);
      for (int64_t lo = r0; lo < r1;) {
        const int64_t nb = lo / 128, hi = std::min(r1, (nb + 1) * 128);
        if (t_scaled_for.call != call || t_scaled_for.block != nb) {
          for (int64_t i = 0; i < m; ++i) {
            if (fma) avx512::scale_act_f32(ga + i * ld, w.scales + nb * kblocks, k, scaled_f32 + i * ld);
            else kern.scale_act_bf16(ga + i * ld, w.scales + nb * kblocks, k, scaled + i * ld);
          }
          t_scaled_for = {call, nb};
        }
        // One call for the thread's rows of this block (the kernels walk their row blocks).
        const int nr = static_cast<int>(hi - lo);
        if (fma) avx512::fp8_rows_dot_f32(w.codes + lo * k, k, nr, scaled_f32, ld, m, k, g.y.data + lo, g.y.ld);
        else kern.fp8_rows_dot(w.codes + lo * k, k, nr, scaled, ld, m, k, g.y.data + lo, g.y.ld);
        lo = hi;
      }
      finish_cols(g.y, m, r0, r1);
    }
  }, Schedule::Stealing);
}

}  // namespace

void linear_fp8(const Fp8Weight& w, const Rows& x, const OutRows& y, ThreadPool* pool,
                bool quantize_act) {
  const LinearTimer timer({LinearKind::Fp8, w.n, w.k}, fp8_weight_bytes(w));
  check_quant_k("linear_fp8", w.n, w.k, w.codes, w.scales);
  check_rows("linear_fp8", x.m, x.data, y.data);
  if (x.m == 0) return;
  const PanelKernels& kern = panel_kernels(active_isa());
  const int64_t k = w.k, m = x.m, kblocks = k / 128;
  const Gemm kind = gemm_kind(m);
  if (kind == Gemm::Bf16Dot) {
    const Fp8Group g{w, x, y};
    fp8_gemv_groups(std::span<const Fp8Group>(&g, 1), pool, quantize_act);
    return;
  }
  const Act act = prepare_single(pool, {x.data, x.ld, nullptr}, m, k, k, PanelOrder::Fp8,
                                 quantize_act, kind);
  auto decode = [&](int64_t n0, int nr, int64_t k0, int64_t len, auto* panel, int64_t ldp) {
    return decode_rows(panel, ldp, kern.decode_fp8_f32, kern.decode_fp8, w.codes + n0 * k + k0, k,
                       w.scales + (n0 / 128) * kblocks + k0 / 128, nr, len);
  };
  auto prefetch = [&](int64_t n0, int nr, int64_t k0) {
    prefetch_rows(w.codes + n0 * k + k0, k, nr, kTileChunk);
  };
  const int64_t grain = tiled(kind) ? kTilePanelRows : kPanelRows;
  parallel_for(pool_for_work(pool, double(m) * w.n * k), w.n, grain, [&](int64_t b, int64_t e, int) {
    run_panels(kern, decode, prefetch, b, e, k, m, act, y);
    finish_cols(y, m, b, e);
  }, Schedule::Stealing);
}

void linear_fp8_grouped(std::span<const Fp8Group> groups, ThreadPool* pool, bool quantize_act) {
  bool small = true;
  double bytes = 0;
  for (const Fp8Group& g : groups) {
    check_quant_k("linear_fp8_grouped", g.w.n, g.w.k, g.w.codes, g.w.scales);
    check_rows("linear_fp8_grouped", g.x.m, g.x.data, g.y.data);
    small &= g.x.m > 0 && gemm_kind(g.x.m) == Gemm::Bf16Dot;
    bytes += fp8_weight_bytes(g.w);
  }
  if (!small) {  // prefill: each group's GEMM keeps its own passes over the activations
    for (const Fp8Group& g : groups) linear_fp8(g.w, g.x, g.y, pool, quantize_act);
    return;
  }
  const LinearTimer timer(group_shape(LinearKind::Fp8, groups, [](const Fp8Group&) { return true; }), bytes);
  fp8_gemv_groups(groups, pool, quantize_act);
}

// The integer form (Fp4IntRows) of the prepared BF16 rows of every in-register group, in the
// calling thread's buffers (a pass over 2 bytes per value: ~1 us per 4096-value row).
namespace {
// Whether group gi reads the same activation rows as group gi - 1: a routed expert's w3 after its
// w1, and in decode every routed expert's w1 and w3 (each lists the step's one row). It then
// shares that group's prepared activations.
bool same_input_as_previous(std::span<const Fp4Group> groups, size_t gi) {
  if (gi == 0) return false;
  const Fp4Group &a = groups[gi], &b = groups[gi - 1];
  if (a.count <= 0 || a.x != b.x || a.ldx != b.ldx || a.count != b.count || a.w.k != b.w.k) return false;
  if (a.rows == b.rows) return true;
  if (a.rows == nullptr || b.rows == nullptr) return false;
  return std::equal(a.rows, a.rows + a.count, b.rows);
}

void to_int_rows(const Fp4IntKernels& ik, std::span<const Fp4Group> groups, std::vector<Act>& acts) {
  int64_t values = 0, chunks = 0;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    if (groups[gi].count == 0 || acts[gi].kind != Gemm::Bf16Dot) continue;
    if (same_input_as_previous(groups, gi)) continue;
    values += groups[gi].count * acts[gi].ld;
    chunks += groups[gi].count * (groups[gi].w.k / 128);
  }
  if (values == 0) return;
  int16_t* hr = grow(t_act_i16, static_cast<size_t>(2 * values));
  float* fac = grow(t_act_fac, static_cast<size_t>(chunks));
  uint8_t* rnz = grow(t_act_rnz, static_cast<size_t>(chunks));
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    Act& a = acts[gi];
    const int64_t m = groups[gi].count, k = groups[gi].w.k;
    if (m == 0 || a.kind != Gemm::Bf16Dot) continue;
    if (same_input_as_previous(groups, gi)) {
      a.fp4i = acts[gi - 1].fp4i;
      continue;
    }
    a.fp4i = Fp4IntRows{hr, hr + m * a.ld, fac, rnz, a.ld, k / 128};
    for (int64_t i = 0; i < m; ++i)
      ik.act(a.bf16 + i * a.ld, k, hr + i * a.ld, hr + (m + i) * a.ld, fac + i * a.fp4i.ldc,
             rnz + i * a.fp4i.ldc);
    hr += 2 * m * a.ld;
    fac += m * a.fp4i.ldc;
    rnz += m * a.fp4i.ldc;
  }
}
}  // namespace

void linear_fp4_grouped(std::span<const Fp4Group> groups, ThreadPool* pool, bool quantize_act) {
  double weight_bytes = 0;
  for (const Fp4Group& g : groups)
    if (g.count > 0) weight_bytes += double(g.w.n) * g.w.k / 2 + double(g.w.n) * g.w.k / 32;
  const LinearTimer timer(group_shape(LinearKind::Fp4, groups, [](const Fp4Group& g) { return g.count > 0; }),
                          weight_bytes);
  const PanelKernels& kern = panel_kernels(active_isa());
  const Fp4IntKernels* int_kern = int_fp4_gemv(quantize_act);
  // Each group takes the path its own row count calls for (a prefill batch mixes experts with
  // a few rows, decoded in registers, and experts with many, on panels).
  thread_local std::vector<Act> t_acts;
  t_acts.assign(groups.size(), Act{});
  ActSpace need;
  int64_t total_units = 0;
  double work = 0;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const Fp4Group& g = groups[gi];
    check_quant_k("linear_fp4", g.w.n, g.w.k, g.w.packed, g.w.scales);
    check_rows("linear_fp4", g.count, g.x, g.y.data);
    if (g.count == 0) continue;
    t_acts[gi].kind = fp4_gemm_kind(g.count, int_kern);
    if (!same_input_as_previous(groups, gi)) need.add(t_acts[gi].kind, g.count, g.w.k);
    // Output-row units of the split: kPanelRows rows (tiles: kTilePanelRows) of one group each.
    const int64_t unit_rows = tiled(t_acts[gi].kind) ? kTilePanelRows : kPanelRows;
    total_units += (g.w.n + unit_rows - 1) / unit_rows;
    work += double(g.count) * g.w.n * g.w.k;
  }
  if (total_units == 0) return;
  need.reserve();
  ActSpace at;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const Fp4Group& g = groups[gi];
    if (g.count == 0) continue;
    if (same_input_as_previous(groups, gi)) {
      t_acts[gi] = t_acts[gi - 1];
      continue;
    }
    // The integer GEMV reads its activations in the AVX-512 word order at every level.
    const PanelOrder order = int_kern != nullptr && t_acts[gi].kind == Gemm::Bf16Dot ? PanelOrder::Fp4Words
                                                                                      : kern.fp4_order;
    t_acts[gi] = prepare_act(pool, {g.x, g.ldx, g.rows}, g.count, g.w.k, g.w.k, order, quantize_act,
                             t_acts[gi].kind, &at);
  }
  if (int_kern != nullptr) to_int_rows(*int_kern, groups, t_acts);
  const std::vector<Act>& acts = t_acts;
  parallel_for(pool_for_work(pool, work), total_units, 1, [&](int64_t ub, int64_t ue, int) {
    int64_t unit0 = 0;
    for (size_t gi = 0; gi < groups.size(); ++gi) {
      const Fp4Group& g = groups[gi];
      if (g.count == 0) continue;
      const Act& act = acts[gi];
      const int64_t unit_rows = tiled(act.kind) ? kTilePanelRows : kPanelRows;
      const int64_t units = (g.w.n + unit_rows - 1) / unit_rows, k = g.w.k;
      const int64_t lo = std::max(ub, unit0), hi = std::min(ue, unit0 + units);
      if (lo < hi) {
        const int64_t n_lo = (lo - unit0) * unit_rows;
        const int64_t n_hi = std::min(g.w.n, (hi - unit0) * unit_rows);
        if (act.kind == Gemm::Bf16Dot) {
          // One call for the thread's rows of this group (the kernels walk their row blocks).
          const int nr = static_cast<int>(n_hi - n_lo);
          const uint8_t* packed = g.w.packed + n_lo * (k / 2);
          const uint8_t* scales = g.w.scales + n_lo * (k / 32);
          if (act.fp4i.h != nullptr)
            int_kern->dot(packed, k / 2, scales, k / 32, nr, act.fp4i, g.count, k, g.y.data + n_lo,
                          g.y.ld);
          else
            kern.fp4_rows_dot(packed, k / 2, scales, k / 32, nr, act.bf16, act.ld, g.count, k,
                              g.y.data + n_lo, g.y.ld);
        } else {
          auto decode = [&](int64_t n0, int nr, int64_t k0, int64_t len, auto* panel, int64_t ldp) {
            return decode_rows(panel, ldp, kern.decode_fp4_f32, kern.decode_fp4,
                               g.w.packed + n0 * (k / 2) + k0 / 2, k / 2,
                               g.w.scales + n0 * (k / 32) + k0 / 32, k / 32, nr, len);
          };
          auto prefetch = [&](int64_t n0, int nr, int64_t k0) {
            prefetch_rows(g.w.packed + n0 * (k / 2) + k0 / 2, k / 2, nr, kTileChunk / 2);
          };
          run_panels(kern, decode, prefetch, n_lo, n_hi, k, g.count, act, g.y);
        }
        finish_cols(g.y, g.count, n_lo, n_hi);
      }
      unit0 += units;
    }
  }, Schedule::Stealing);
}

void linear_fp4(const Fp4Weight& w, const Rows& x, const OutRows& y, ThreadPool* pool,
                bool quantize_act) {
  const Fp4Group g{w, x.data, x.ld, nullptr, x.m, y};
  linear_fp4_grouped(std::span<const Fp4Group>(&g, 1), pool, quantize_act);
}

namespace {

// linear_bf16 with BF16-rounded activations (Bf16Act::RoundToBf16), without the timer.
void linear_bf16_rounded(const PanelKernels& kern, const Bf16Weight& w, const Rows& x,
                         const OutRows& y, ThreadPool* pool) {
  const int64_t k = w.k, m = x.m;
  const int64_t kp = round_up32(k);
  const Gemm kind = gemm_kind(m);
  const Act act = prepare_single(pool, {x.data, x.ld, nullptr}, m, k, kp, PanelOrder::Natural,
                                 false, kind);
  auto copy = [&](int64_t n0, int nr, int64_t k0, int64_t len, auto* panel, int64_t ldp) {
    using Elem = std::remove_pointer_t<decltype(panel)>;
    const int64_t valid = std::clamp<int64_t>(k - k0, 0, len);
    for (int r = 0; r < kPanelRows; ++r) {
      Elem* dst = panel + r * ldp;
      if (r < nr) {
        const uint16_t* src = w.bits + (n0 + r) * k + k0;
        if constexpr (std::is_same_v<Elem, float>) kern.widen_bf16(src, valid, dst);
        else std::memcpy(dst, src, static_cast<size_t>(valid) * 2);
        std::fill(dst + valid, dst + len, Elem{0});
      } else {
        std::fill(dst, dst + len, Elem{0});
      }
    }
    return true;
  };
  auto prefetch = [&](int64_t n0, int nr, int64_t k0) {
    if (k0 < k) prefetch_rows(reinterpret_cast<const uint8_t*>(w.bits + n0 * k + k0), k * 2, nr,
                              std::min<int64_t>(kTileChunk, k - k0) * 2);
  };
  const int64_t grain = tiled(kind) ? kTilePanelRows : kPanelRows;
  parallel_for(pool_for_work(pool, double(m) * w.n * k), w.n, grain, [&](int64_t b, int64_t e, int) {
    run_panels(kern, copy, prefetch, b, e, kp, m, act, y);
    finish_cols(y, m, b, e);
  }, Schedule::Stealing);
}

// linear_bf16 with float32 activations (Bf16Act::Float32) on AMX tiles: each x splits exactly
// into three BF16 limbs, x = h + m + l (split_bf16_limbs; exact unless l is subnormal, where the
// tiles flush it: an error below 2^-126). The limbs are three times as many BF16 rows for the
// BF16 GEMM (exact products, float32 sums), and y = (W.h + W.m) + W.l in float32: the FMA path's
// float32 sum of the same products, in another order, plus two roundings of terms 2^-8 and 2^-16
// of the whole. The FMA kernel (dot_bf16w_f32) runs at ~0.045 TMAC/s per thread; three times the
// MACs on the tiles took (BM_LinearBf16, 2 threads, AMX Xeon) 12.0 against 24.4 ms for
// [1024 x 4096] at 512 rows, 4.6 against 7.2 ms for [256 x 4096] at 512 rows, but 235 against
// 200 us for [256 x 4096] at 17 rows, where splitting and preparing the limbs weighs more.
constexpr int64_t kF32LimbMinRows = 64;

void linear_bf16_limbs(const PanelKernels& kern, const Bf16Weight& w, const Rows& x,
                       const OutRows& y, ThreadPool* pool) {
  const int64_t k = w.k, m = x.m, n = w.n;
  thread_local AlignedVector<float> t_limbs, t_limb_out;
  float* limbs = grow(t_limbs, static_cast<size_t>(3 * m * k));
  float* out = grow(t_limb_out, static_cast<size_t>(3 * m * n));
  parallel_for(pool_for_work(pool, 4.0 * m * k), m, 4, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) avx512::split_bf16_limbs(x.data + i * x.ld, k, limbs + i * k, m * k);
  });
  linear_bf16_rounded(kern, w, {limbs, 3 * m, k}, {out, n}, pool);
  parallel_for(pool_for_work(pool, 2.0 * m * n), m, 4, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      float* yi = y.data + i * y.ld;
      const float *a = out + i * n, *c = out + (m + i) * n, *d = out + (2 * m + i) * n;
      for (int64_t j = 0; j < n; ++j) yi[j] = (a[j] + c[j]) + d[j];
    }
    if (y.round_bf16)
      for (int64_t i = b; i < e; ++i) round_to_bf16(y.data + i * y.ld, n);
  });
}

}  // namespace

void linear_bf16(const Bf16Weight& w, const Rows& x, const OutRows& y, ThreadPool* pool,
                 Bf16Act act_mode) {
  const LinearTimer timer({LinearKind::Bf16, w.n, w.k}, 2.0 * w.n * w.k);
  if (w.n <= 0 || w.k <= 0) throw_error("linear_bf16: bad shape [", w.n, ", ", w.k, "]");
  if (w.bits == nullptr) throw_error("linear_bf16: null weight pointer");
  check_rows("linear_bf16", x.m, x.data, y.data);
  if (x.m == 0) return;
  const PanelKernels& kern = panel_kernels(active_isa());
  const int64_t k = w.k, m = x.m;
  Rows xs = x;
  if (act_mode == Bf16Act::RoundToBf16 && m == 1) {
    // Decode (the indexer's weights_proj): x rounded to BF16 in float32, then the float32 GEMV
    // below. Its products are the same exact BF16 x BF16 products, summed in float32 in another
    // order; the panel path decodes each 4-row panel into a buffer first (bf16:64x4096 read at
    // 0.26-0.43 of the probe, BM_LinearBf16).
    thread_local AlignedVector<float> t_rounded;
    const int64_t kp = round_up32(k);
    float* xr = grow(t_rounded, static_cast<size_t>(kp));
    prepare_row(kern, x.data, k, PanelOrder::Natural, false, xr, kp);
    xs = {xr, 1, kp};
    act_mode = Bf16Act::Float32;
  }
  if (act_mode == Bf16Act::Float32 && m >= kF32LimbMinRows && gemm_kind(m) == Gemm::Amx) {
    linear_bf16_limbs(kern, w, xs, y, pool);
    return;
  }
  if (act_mode == Bf16Act::Float32) {
    // One activation row is bound by the weights' bytes: each BF16 weight weighs ~16 MACs of time
    // (a 64 x 4096 matrix, 512 KiB, then splits too: 16.6 -> 13.5-14.3 us on 2 threads).
    const double work = double(m) * w.n * k * (m == 1 ? 16 : 1);
    parallel_for(pool_for_work(pool, work), w.n, kPanelRows, [&](int64_t b, int64_t e, int) {
      // One call for the thread's rows (the kernels walk their row blocks), as the FP8 and FP4
      // GEMVs do. Against a call per 4-row panel it measured the same in the whole model
      // (dsv4_decode_watch, switched within each round: BF16 GB/s 1.00 of the per-panel calls).
      for (int64_t m0 = 0; m0 < m; m0 += kMTile) {
        const int64_t mt = std::min(kMTile, m - m0);
        kern.dot_bf16w_f32(w.bits + b * k, k, static_cast<int>(e - b), xs.data + m0 * xs.ld, xs.ld, mt, k,
                           y.data + m0 * y.ld + b, y.ld);
      }
      finish_cols(y, m, b, e);
    }, Schedule::Stealing);
    return;
  }
  linear_bf16_rounded(kern, w, x, y, pool);
}

// From this many activation rows linear_f32 splits the rows between the threads, in tiles of
// kF32RowTile rows (a multiple of dot_f32's 3-row register tiles), below it the weight panels
// (decode). [24 x 16384] at 512 rows (BM_LinearF32): tiles of 3 / 6 / 9 / 12 / 24 rows took
// 3.2 / 3.0 / 3.1 / 2.4 / 2.9 ms; the split by panels took 5.2 ms.
constexpr int64_t kF32RowSplit = 16, kF32RowTile = 12;

void linear_f32(const F32Weight& w, const Rows& x, const OutRows& y, ThreadPool* pool) {
  const LinearTimer timer({LinearKind::F32, w.n, w.k}, 4.0 * w.n * w.k);
  if (w.n <= 0 || w.k <= 0) throw_error("linear_f32: bad shape [", w.n, ", ", w.k, "]");
  if (w.data == nullptr) throw_error("linear_f32: null weight pointer");
  check_rows("linear_f32", x.m, x.data, y.data);
  if (x.m == 0) return;
  const PanelKernels& kern = panel_kernels(active_isa());
  const int64_t k = w.k, m = x.m, kp = (k + 15) / 16 * 16;
  // Panels of kWidePanelRows weight rows and the activations, zero padded to kp (a copy: these
  // matrices are small, e.g. the [24 x 16384] hyper-connection mixes).
  // In place when no padding is needed. Decode splits them in 4-row units, so both threads get
  // an equal share of the 24 rows (8-row units split them 2:1).
  const int64_t unit_rows = m <= 2 ? kPanelRows : kWidePanelRows;
  const bool in_place = k == kp && w.n % unit_rows == 0;
  thread_local AlignedVector<float> t_x;
  const float* xa = x.data;
  int64_t lda = x.ld;
  if (k != kp) {
    float* buf = grow(t_x, static_cast<size_t>(m * kp));
    for (int64_t i = 0; i < m; ++i) {
      std::copy(x.data + i * x.ld, x.data + i * x.ld + k, buf + i * kp);
      std::fill(buf + i * kp + k, buf + (i + 1) * kp, 0.0f);
    }
    xa = buf;
    lda = kp;
  }
  // Work: a float32 weight read from memory costs about as much as 4 MACs (its 4 bytes), so a
  // decode GEMV over a 1.5 MiB mix is split too.
  const double work = double(std::max<int64_t>(m, 4)) * w.n * k;
  const int64_t units = (w.n + unit_rows - 1) / unit_rows;
  // Weight rows [n0, n0 + nr) of unit u as a panel of kWidePanelRows rows of kp values: in place,
  // or copied and zero padded into `buf`.
  auto copy_panel = [&](int64_t u, float* buf) {
    const int64_t n0 = u * unit_rows;
    const int nr = static_cast<int>(std::min<int64_t>(unit_rows, w.n - n0));
    for (int r = 0; r < kWidePanelRows; ++r) {
      float* dst = buf + r * kp;
      if (r < nr) {
        std::copy(w.data + (n0 + r) * k, w.data + (n0 + r + 1) * k, dst);
        std::fill(dst + k, dst + kp, 0.0f);
      } else {
        std::fill(dst, dst + kp, 0.0f);
      }
    }
  };
  if (m >= kF32RowSplit) {
    // A prefill batch: the activations (m x 64 KiB for the hc mixes) are the large operand, so
    // the threads split the rows and every tile of kF32RowTile rows meets all weight panels
    // while it is in L2 (the activations are read from memory once; split by weight panels,
    // each panel re-read them and 3 panels of 8 rows went 2:1 between 2 threads).
    const float* wp = w.data;
    int64_t ldw = k;
    if (!in_place) {  // all panels copied once, on the calling thread's panel buffer
      float* buf = grow(t_panel_f32, static_cast<size_t>(units * kWidePanelRows * kp));
      for (int64_t u = 0; u < units; ++u) copy_panel(u, buf + u * kWidePanelRows * kp);
      wp = buf;
      ldw = kp;
    }
    const int64_t per_unit = in_place ? unit_rows * k : kWidePanelRows * kp;
    parallel_for(pool_for_work(pool, work), m, kF32RowTile, [&](int64_t b, int64_t e, int) {
      for (int64_t i0 = b; i0 < e; i0 += kF32RowTile) {
        const int64_t mt = std::min<int64_t>(kF32RowTile, e - i0);
        for (int64_t u = 0; u < units; ++u) {
          const int64_t n0 = u * unit_rows;
          const int nr = static_cast<int>(std::min<int64_t>(unit_rows, w.n - n0));
          kern.dot_f32(wp + u * per_unit, ldw, nr, xa + i0 * lda, lda, mt, kp, y.data + i0 * y.ld + n0, y.ld);
        }
      }
    }, Schedule::Stealing);
    return;
  }
  parallel_for(pool_for_work(pool, work), units, 1, [&](int64_t b, int64_t e, int) {
    float* panel = in_place ? nullptr : grow(t_panel_f32, static_cast<size_t>(kWidePanelRows * kp));
    for (int64_t u = b; u < e; ++u) {
      const int64_t n0 = u * unit_rows;
      const int nr = static_cast<int>(std::min<int64_t>(unit_rows, w.n - n0));
      if (in_place) {
        kern.dot_f32(w.data + n0 * k, k, nr, xa, lda, m, kp, y.data + n0, y.ld);
        continue;
      }
      copy_panel(u, panel);
      kern.dot_f32(panel, kp, nr, xa, lda, m, kp, y.data + n0, y.ld);
    }
  }, Schedule::Stealing);
}

const char* fp8_gemv_multiply_name() {
  if (!isa_at_least(Isa::Avx512)) return isa_at_least(Isa::Avx2) ? "fma" : "scalar";
  return use_fma_gemv() ? "fma" : "dpbf16";
}

}  // namespace dsv4::cpu
