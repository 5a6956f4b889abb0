// Internal: the panel kernels behind linear.h, one scalar and one AVX-512 entry each. A panel
// holds kPanelRows weight rows as BF16 (scale folded in) in the activation order of its format
// (panel_position_to_k), padded with zeros to a multiple of 32 along K.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/cpu/dispatch.h"

namespace dsv4::cpu {

inline constexpr int kPanelRows = 4;
// The in-register decode kernels prefetch the weight bytes this far ahead of the rows they read
// (whole panels, at least the next one): short rows (K = 1024 FP8, FP4 down projections) would
// otherwise prefetch only a few hundred cycles ahead of use, less than the DRAM latency.
inline constexpr int64_t kPrefetchBytes = 32768;
// Software prefetch of p's line into L2 (prefetcht1) that the compiler cannot drop. GCC counts
// __builtin_prefetch as free of side effects, so a helper that only prefetches is found "const"
// and, where it is not inlined, its calls are deleted as dead code: linear.cpp's prefetch_rows lost
// every call that way once it had one call site more (the FP4 expert GEMM of a 512-token prefill
// ran 40% slower). A volatile asm statement is never deleted.
inline void prefetch_l2(const void* p) {
#if defined(__x86_64__)
  asm volatile("prefetcht1 %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p, 0, 2);
#endif
}
// The same as a non-temporal prefetch (prefetchnta): the weight stream of the row-by-row decode
// GEMVs (GemvOrder::Rows: FP8, FP4 and BF16), read once per token. Against prefetcht0 (FP8, BF16)
// and prefetcht1 (FP4), switched within each round of dsv4_decode_watch on the Zen 5 VM (3 runs,
// 1050 rounds): the whole model 1.010-1.026x as fast in every 10 GB/s band of the probe, the
// time outside the linears 0.02-0.09 ms a token shorter (the weights no longer push the
// activations and the attention's keys out of L2 and L3) and the linears about 2% faster.
inline void prefetch_stream(const void* p) {
#if defined(__x86_64__)
  asm volatile("prefetchnta %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p, 0, 0);
#endif
}
// The decode GEMVs' split of m activation rows into tiles: f(std::integral_constant<int, MR>{}, i)
// for the tile of MR rows from row i; 4 rows while 4 remain (each decoded weight chunk then feeds
// 4 activation rows), then 2, then 1.
template <class F>
inline void for_row_tiles(int64_t m, F&& f) {
  int64_t i = 0;
  for (; i + 4 <= m; i += 4) f(std::integral_constant<int, 4>{}, i);
  for (; i + 2 <= m; i += 2) f(std::integral_constant<int, 2>{}, i);
  if (i < m) f(std::integral_constant<int, 1>{}, i);
}
inline int64_t prefetch_ahead(int64_t ldw) {
  const int64_t panels = std::max<int64_t>(1, (kPrefetchBytes + kPanelRows * ldw - 1) / (kPanelRows * ldw));
  return panels * kPanelRows * ldw;
}
// The AVX-512 decoders fold an E8M0 scale e into BF16 codes by adding e - 127 to the exponent
// field, exact while every result stays a normal BF16 number: for e in [kMinFastScale,
// kMaxFastScale] (E4M3/E2M1 magnitudes span 2^-9 .. 448). Blocks with other scales take the
// per-element path, so the decoders equal the scalar twins for every scale byte.
inline constexpr uint8_t kMinFastScale = 10, kMaxFastScale = 246;
// The float32 (FMA) path stacks two decoded panels: 8 weight rows (L1-resident per K chunk)
// reuse each activation load streamed from L2.
inline constexpr int kWidePanelRows = 8;

// Fp4: the byte-table decoders (AVX2, scalar); Fp4Words: the AVX-512 word-table decoder, which
// looks up each nibble of a 16-bit word in place (PanelKernels::fp4_order says which);
// Fp8Dwords: the FMA decode GEMV (fp8_rows_dot_f32), byte q of each dword in vector q.
enum class PanelOrder { Natural, Fp8, Fp4, Fp4Words, Fp8Dwords };

// The K index that panel position p holds. The SIMD decoders interleave bytes within 128-bit
// lanes (vpunpck{l,h}bw), which permutes K; activations are laid out the same way once per row.
inline int64_t panel_position_to_k(PanelOrder order, int64_t p) {
  switch (order) {
    case PanelOrder::Natural:
      return p;
    case PanelOrder::Fp8: {  // per 64: half h (unpacklo/hi), lane L, byte j
      const int64_t c = p / 64, q = p % 64, h = q / 32, l = (q % 32) / 8, j = q % 8;
      return 64 * c + 16 * l + 8 * h + j;
    }
    case PanelOrder::Fp4: {  // per 128: vector v (lo/hi nibble x unpacklo/hi), lane L, byte j
      const int64_t c = p / 128, q = p % 128, v = q / 32, l = (q % 32) / 8, j = q % 8;
      return 128 * c + 32 * l + 16 * (v & 1) + 2 * j + (v >> 1);
    }
    case PanelOrder::Fp4Words: {  // per 128: vector q (nibble of the word), word j (4 values each)
      const int64_t c = p / 128, q = (p % 128) / 32, j = p % 32;
      return 128 * c + 4 * j + q;
    }
    case PanelOrder::Fp8Dwords: {  // per 64: vector q (byte of the dword), dword j (4 codes each)
      const int64_t c = p / 64, q = (p % 64) / 16, j = p % 16;
      return 64 * c + 4 * j + q;
    }
  }
  return p;
}

// The row blocks a decode GEMV (fp4_rows_dot, fp4_rows_dot_int, fp8_rows_dot, fp8_rows_dot_f32,
// dot_bf16w_f32) walks for rows [0, nr): f(n0, rows) for [n0, n0 + rows). A kernel that reads each row once (one
// activation row, rows one after the other) takes them all at once, so its set-up (table loads,
// the prefetch distances' 64-bit divisions) runs once per thread instead of once per 4 rows. The
// others take panels of kPanelRows rows, which stay in L1 for the activation rows after the
// first, or are interleaved by the tiles.
template <class F>
inline void for_gemv_blocks(int nr, bool all_at_once, F&& f) {
  if (all_at_once) {
    f(0, nr);
    return;
  }
  for (int n0 = 0; n0 < nr; n0 += kPanelRows) f(n0, std::min(kPanelRows, nr - n0));
}

// The kPanelRows row pointers of a panel for the GEMV tiles: row r at w + r * ldw, rows >= nr
// pointing at row nr - 1 (read, never stored).
template <class T>
inline void panel_rows(const T* w, int64_t ldw, int nr, const T** rows) {
  for (int r = 0; r < kPanelRows; ++r) rows[r] = w + std::min(r, nr - 1) * ldw;
}

// The weight rows and scale rows of an FP4 panel (panel_rows of each).
struct Fp4RowPointers {
  const uint8_t* rows[kPanelRows];
  const uint8_t* srows[kPanelRows];
  Fp4RowPointers(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds, int nr) {
    panel_rows(w, ldw, nr, rows);
    panel_rows(s, lds, nr, srows);
  }
};

struct PanelKernels {
  // The panel order decode_fp4 / fp4_rows_dot use (activations are prepared in it).
  PanelOrder fp4_order;
  // rows [0, nr) of an FP8 128-row block: codes row r at w + r * ldw, one scale per 128 of K in
  // `scales`; writes panel rows [0, kPanelRows) (rows >= nr zero) of stride ldp (k <= ldp).
  void (*decode_fp8)(const uint8_t* w, int64_t ldw, const uint8_t* scales, int nr, int64_t k,
                     uint16_t* panel, int64_t ldp);
  // Small-M FP8 path: rows [0, nr) (any number within one 128-row block) decoded in registers
  // and multiplied with BF16 activations in FP8 panel order that already carry this block's
  // weight scales; y[i * ldy + r] for i < m, k % 128 == 0. Row blocks as for_gemv_blocks walks
  // them.
  void (*fp8_rows_dot)(const uint8_t* w, int64_t ldw, int nr, const uint16_t* a, int64_t lda,
                       int64_t m, int64_t k, float* y, int64_t ldy);
  // out[p] = bf16(a[p] * e8m0(scales[p / 128])) for p < k (k % 128 == 0): activations scaled by
  // one FP8 row block's weight scales (exact barring underflow: powers of two).
  void (*scale_act_bf16)(const float* a, const uint8_t* scales, int64_t k, uint16_t* out);
  // FP4: packed row r at w + r * ldw, scales row r at s + r * lds (one per 32 of K).
  void (*decode_fp4)(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds, int nr,
                     int64_t k, uint16_t* panel, int64_t ldp);
  // y[i * ldy + r] = sum_{p < kp} panel[r][p] * a[i][p] for r < nr, i < m; kp % 32 == 0.
  void (*dot_bf16)(const uint16_t* panel, int64_t ldp, int nr, const uint16_t* a, int64_t lda,
                   int64_t m, int64_t kp, float* y, int64_t ldy);
  // y[i * ldy + r] = sum_{p < kp} panel[r][p] * a[i][p] for r < nr <= kWidePanelRows, float32
  // panel and activations (FMA), kp % 16 == 0; no panel row >= nr is read.
  void (*dot_f32)(const float* panel, int64_t ldp, int nr, const float* a, int64_t lda, int64_t m,
                  int64_t kp, float* y, int64_t ldy);
  // Small-M FP4 path: rows [0, nr) (any number; packed row r at w + r * ldw, scales at
  // s + r * lds) decoded in registers, multiplied with unscaled BF16 activations in FP4 panel
  // order; the per-32 scales are applied to the per-lane partial sums (each 128-bit lane holds
  // one 32-value block). Row blocks as for_gemv_blocks walks them.
  void (*fp4_rows_dot)(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds, int nr,
                       const uint16_t* a, int64_t lda, int64_t m, int64_t k, float* y, int64_t ldy);
  // out[i] = the float32 value of BF16 x[i] for i < n (exact): the FMA path's panel widening.
  void (*widen_bf16)(const uint16_t* x, int64_t n, float* out);
  // BF16 weight rows [0, nr) (any number) straight from memory x float32 activations: any k.
  // Row blocks as for_gemv_blocks walks them.
  void (*dot_bf16w_f32)(const uint16_t* w, int64_t ldw, int nr, const float* a, int64_t lda,
                        int64_t m, int64_t k, float* y, int64_t ldy);
  // One activation row x[0, k) -> BF16 out[0, ldo) in the panel order `order` (zero past k),
  // after the exact act_quant rounding (spec 6.2) when `quant` (act_prep.cpp).
  void (*prepare_act_bf16)(const float* x, int64_t k, PanelOrder order, bool quant, uint16_t* out,
                           int64_t ldo);
  // Optional float32 panels for the FMA path: widen_bf16 of what decode_fp8 / decode_fp4 write,
  // bit for bit, in one pass (nullptr: decode, then widen). The AVX2 tier has them, where the
  // BF16 rounding and the widening cost more than the decode itself.
  void (*decode_fp8_f32)(const uint8_t* w, int64_t ldw, const uint8_t* scales, int nr, int64_t k,
                         float* panel, int64_t ldp) = nullptr;
  void (*decode_fp4_f32)(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds, int nr,
                         int64_t k, float* panel, int64_t ldp) = nullptr;
};

#define DSV4_PANEL_KERNEL_DECLS                                                                   \
  void decode_fp8(const uint8_t* w, int64_t ldw, const uint8_t* scales, int nr, int64_t k,        \
                  uint16_t* panel, int64_t ldp);                                                   \
  void fp8_rows_dot(const uint8_t* w, int64_t ldw, int nr, const uint16_t* a, int64_t lda,      \
                    int64_t m, int64_t k, float* y, int64_t ldy);                                  \
  void scale_act_bf16(const float* a, const uint8_t* scales, int64_t k, uint16_t* out);            \
  void decode_fp4(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds, int nr, int64_t k, \
                  uint16_t* panel, int64_t ldp);                                                   \
  void fp4_rows_dot(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds, int nr,         \
                    const uint16_t* a, int64_t lda, int64_t m, int64_t k, float* y, int64_t ldy);  \
  void dot_bf16(const uint16_t* panel, int64_t ldp, int nr, const uint16_t* a, int64_t lda,       \
                int64_t m, int64_t kp, float* y, int64_t ldy);                                     \
  void dot_f32(const float* panel, int64_t ldp, int nr, const float* a, int64_t lda, int64_t m,   \
               int64_t kp, float* y, int64_t ldy);                                                 \
  void widen_bf16(const uint16_t* x, int64_t n, float* out);                                      \
  void dot_bf16w_f32(const uint16_t* w, int64_t ldw, int nr, const float* a, int64_t lda,         \
                     int64_t m, int64_t k, float* y, int64_t ldy);                                 \
  void prepare_act_bf16(const float* x, int64_t k, PanelOrder order, bool quant, uint16_t* out,   \
                        int64_t ldo);

namespace scalar {
DSV4_PANEL_KERNEL_DECLS
}
// The FMA decode GEMV (fp8_fma_gemv.cpp), used where FMA is the faster multiply (use_fma_gemv in
// linear.cpp): y[i * ldy + r] = sum_{p < k} 256 * e4m3(code of K(p)) * a[i * lda + p] for r < nr
// <= kPanelRows, i < m, activations in PanelOrder::Fp8Dwords carrying the weight block's scale
// and 2^-8 (scale_act_f32), k % 64 == 0. Rows >= nr are not read.
// scale_act_f32: out[p] = a[p] * e8m0(scales[p / 128]) * 2^-8 for p < k (k % 128 == 0).
#define DSV4_FMA_GEMV_DECLS                                                                    \
  void fp8_rows_dot_f32(const uint8_t* w, int64_t ldw, int nr, const float* a, int64_t lda,   \
                        int64_t m, int64_t k, float* y, int64_t ldy);                          \
  void scale_act_f32(const float* a, const uint8_t* scales, int64_t k, float* out);
namespace scalar {
DSV4_FMA_GEMV_DECLS
}
namespace avx512 {  // AVX-512 F only: callable when detected_isa() >= Isa::Avx512
DSV4_FMA_GEMV_DECLS
}
#undef DSV4_FMA_GEMV_DECLS
// The FP4 decode GEMV on 16-bit integer dot products (fp4_int_gemv.cpp), for activation rows on
// the FP8 grid (after act_quant): in each 128-value chunk (one act_quant block) every value is
// C x 2^(E - 17) for an integer C with |C| < 2^18, E the exponent of the chunk's largest
// magnitude, and C = 8 H + R with H = floor((C + 4) / 8) (int16) and R in [-4, 3].
// Row i's values are at h / r + i * ld in PanelOrder::Fp4Words, its per-chunk factor 2^(E - 15)
// at fac + i * ldc (0 for an all-zero chunk) and whether any R of the chunk is non-zero at
// rnz + i * ldc.
struct Fp4IntRows {
  const int16_t* h = nullptr;
  const int16_t* r = nullptr;
  const float* fac = nullptr;
  const uint8_t* rnz = nullptr;
  int64_t ld = 0, ldc = 0;
};
// fp4_int_act: one prepared row a[0, k) (BF16 on the FP8 grid, k % 128 == 0) to its integer form
// (h, r: k values; fac, rnz: k / 128). Exact for values m x 2^(s - 9) of one power of two 2^s
// per chunk with |m| <= 448 x 2^9, i.e. E4M3 codes times a block scale (act_quant's output),
// while the chunk's largest exponent field is >= 17; a chunk of zeros gets h = r = 0, fac = 0.
// fp4_rows_dot_int: y[i * ldy + r] = sum_K e2m1(w) e8m0(s) x value(a row i) for rows [0, nr)
// (packed row r at w + r * ldw, scales at s + r * lds), i < m, k % 128 == 0, k <= lds * 32.
// The scalar twin follows the SIMD kernels' lanes and sums, bit for bit (AVX-512 and AVX2 alike).
#define DSV4_FP4_INT_DECLS                                                                        \
  void fp4_int_act(const uint16_t* a, int64_t k, int16_t* h, int16_t* r, float* fac, uint8_t* rnz); \
  void fp4_rows_dot_int(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds, int nr,     \
                        const Fp4IntRows& a, int64_t m, int64_t k, float* y, int64_t ldy);
namespace scalar {
DSV4_FP4_INT_DECLS
}
namespace avx512 {  // AVX-512 F + VNNI: callable when detected_isa() >= Isa::Avx512
DSV4_FP4_INT_DECLS
}
namespace avx2 {  // AVX2 (vpmaddwd): callable when detected_isa() >= Isa::Avx2
DSV4_FP4_INT_DECLS
}
#undef DSV4_FP4_INT_DECLS
// split_bf16_limbs (act_prep.cpp): row x[0, k) -> three rows of BF16 values (as float32) at out,
// out + lds, out + 2 lds with x = h + m + l exactly: h = x with its low 16 bits cleared, m the same
// of x - h, l = x - h - m (at most 8 significant bits). A NaN x is copied to h (m = l = NaN); an
// infinite x keeps h = x and zeros after it (x - h would be NaN). The float32 activations of
// linear_bf16 (Bf16Act::Float32) on AMX tiles.
#define DSV4_LIMB_DECLS void split_bf16_limbs(const float* x, int64_t k, float* out, int64_t lds);
namespace scalar {
DSV4_LIMB_DECLS
}
namespace avx512 {  // AVX-512 F only: callable when detected_isa() >= Isa::Avx512
DSV4_LIMB_DECLS
}
#undef DSV4_LIMB_DECLS
namespace avx2 {  // callable only when detected_isa() >= Isa::Avx2 (avx2_panels.cpp)
DSV4_PANEL_KERNEL_DECLS
// PanelKernels::decode_fp8_f32 / decode_fp4_f32: the products in float32 (exact), rounded to
// BF16 only in blocks whose scale is outside [kMinFastScale, kMaxFastScale] (where they may
// leave the exact range); elsewhere every product is a BF16 value already.
void decode_fp8_f32(const uint8_t* w, int64_t ldw, const uint8_t* scales, int nr, int64_t k,
                    float* panel, int64_t ldp);
void decode_fp4_f32(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds, int nr, int64_t k,
                    float* panel, int64_t ldp);
}
namespace avx512 {  // callable only when detected_isa() >= Isa::Avx512Bf16
DSV4_PANEL_KERNEL_DECLS
}
namespace avx512fma {  // the same sources without BF16 (dispatch.h): detected_isa() >= Isa::Avx512
DSV4_PANEL_KERNEL_DECLS
}
#undef DSV4_PANEL_KERNEL_DECLS

// The tile prefill path: a weight panel of up to kTilePanelRows rows is decoded into a BF16
// buffer, kTileChunk K values at a time (vdpbf16ps: L1-resident chunks) or all of K at once
// (AMX: L2-resident, one accumulation per activation tile pair), and multiplied with up to
// kTilePassRows activation rows (in the to_vnni layout), whose float32 sums stay in a TileAcc
// between chunks.
// Three engines run the chunk product: AMX tiles (amx::chunk, amx_gemm.cpp; only when
// detected_isa() == Isa::Avx512Amx), vdpbf16ps register blocks (avx512::tile_chunk,
// dpbf16_tiles.cpp; AVX-512 BF16) and float32 FMA register blocks (avx512::tile_chunk_f32,
// fma_tiles.cpp; the chunk widened to float32, activations in the to_f32_blocks layout). TileAcc
// and store are shared.
inline constexpr int kTilePanelRows = 32;       // two 16-row A tiles
inline constexpr int64_t kTileChunk = 256;      // K values per decoded chunk (16 KiB of panel)
inline constexpr int64_t kTilePassRows = 128;   // activation rows per pass (8 B tiles)
// c[m0 / 32][t]: the 16 x 16 float32 block of weight rows 16 (t / 2) + [0, 16) and activation
// rows m0 + 16 (t % 2) + [0, 16), row-major by weight row (C[n][m], the AMX accumulator tile).
struct TileAcc {
  alignas(64) float c[kTilePassRows / 32][4][256];
};
// The 16 sums of weight row n (< 32) and activation block b (16 rows) of a pass, as the register
// engines (vdpbf16ps, FMA) keep them: lane i = activation row 16 b + i.
inline float* tile_acc_row(TileAcc* acc, int n, int64_t b) {
  return acc->c[b / 2][(n / 16) * 2 + b % 2] + (n % 16) * 16;
}
namespace avx512 {
// The vdpbf16ps engine of amx::chunk (same contract; no state is kept in registers between
// calls, and panel rows up to the next multiple of 8 must be readable).
void tile_chunk(const uint16_t* panel, int64_t ldp, int nr, const uint16_t* act, int64_t m,
                int64_t kp, int64_t k0, int64_t k1, TileAcc* acc);
// The float32 FMA engine (fma_tiles.cpp; AVX-512 F only, detected_isa() >= Isa::Avx512): the
// same contract with a float32 panel (the chunk's K values [0, k1 - k0) of each row, rows up to
// the next multiple of 8 readable) and activations in the to_f32_blocks layout.
void tile_chunk_f32(const float* panel, int64_t ldp, int nr, const float* act, int64_t m,
                    int64_t kp, int64_t k0, int64_t k1, TileAcc* acc);
// Activation rows [0, m) (BF16, stride lda, kp % 16 == 0 values each) to ceil(m / 16) blocks of
// kp x 16 float32 (block b, K index k, lane i = row 16 b + i; rows >= m zero).
void to_f32_blocks(const uint16_t* a, int64_t lda, int64_t m, int64_t kp, float* out);
}  // namespace avx512
namespace amx {
// (to_vnni and store need AVX-512 F only: detected_isa() >= Isa::Avx512.)
// Activation rows [0, m) (BF16, stride lda, kp % 32 == 0 values each) to the tile operand layout:
// ceil(m / 16) blocks of kp / 2 rows x 16 pairs (32 BF16), rows >= m zero.
void to_vnni(const uint16_t* a, int64_t lda, int64_t m, int64_t kp, uint16_t* out);
// Loads the tile configuration of the calling thread (before chunk on that thread).
void begin();
// acc (+)= panel[r][0, k1 - k0) . act[i][k0, k1) for r < nr <= kTilePanelRows, i < m <=
// kTilePassRows; act in the to_vnni layout of rows of kp values. The chunks of one product must
// be called in order (k0 == 0 starts at zero, k1 == kp completes acc) with no other AMX use on
// the thread in between (for m <= 32 the sums stay in tile registers between the calls).
// Panel rows up to the next multiple of 16 must be readable.
void chunk(const uint16_t* panel, int64_t ldp, int nr, const uint16_t* act, int64_t m, int64_t kp,
           int64_t k0, int64_t k1, TileAcc* acc);
// y[i * ldy + r] = acc for r < nr, i < m.
void store(const TileAcc& acc, int nr, int64_t m, float* y, int64_t ldy);
// The whole product for a panel holding all kp values per row (benchmarks): AMX tiles, or the
// vdpbf16ps engine when `use_amx` is false.
void panel_gemm(bool use_amx, const uint16_t* panel, int64_t ldp, int nr, const uint16_t* act,
                int64_t m, int64_t kp, float* y, int64_t ldy);
// Peak probe: `iters` rounds of the 2 x 2 block's 4 independent tdpbf16ps on register tiles;
// returns the MACs done. What costs the tile unit its rate (BM_AmxRound): `loads` (0-4) of the
// block's 4 operand tiles (A0, B0, B1, A1) are reloaded from L1 before each round, as the GEMM
// reloads all 4 per 32 K; `vector_fmas` (a multiple of 8) register-only AVX-512 FMAs follow
// each round, as vector work (a panel decode) would if interleaved with the tile work.
double peak_macs(int64_t iters, int loads = 0, int vector_fmas = 0);
}  // namespace amx

const PanelKernels& panel_kernels(Isa isa);

}  // namespace dsv4::cpu
