// AMX-BF16 tile kernel of the prefill GEMMs (linear_kernels.h, namespace amx).
//
// One call multiplies a decoded BF16 weight panel of up to kTilePanelRows rows with up to
// kAmxMTile activation rows. The weights are the A operand (16 weight rows x 32 K values per
// tile, straight from the panel rows), the activations the B operand, which tdpbf16ps wants as
// K pairs: B row r holds, for each of 16 activation rows, the BF16 pair at K = 2r, 2r + 1 — the
// "VNNI" layout `to_vnni` builds once per GEMM. The 16 x 16 float32 result tile C[n][m] is
// transposed into y on the way out. Register blocking: 2 weight tiles x 2 activation tiles =
// 4 accumulators (tmm0-3), A in tmm4-5, B in tmm6-7.
//
// Numerics: tdpbf16ps forms exact products of BF16 values and accumulates in float32 (round to
// nearest even, denormal inputs and outputs flushed to zero), the same sums the scalar twin
// dot_bf16 computes in another order.
#include "kernels/cpu/simd_avx512.h"  // first: wraps <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/linear_kernels.h"

namespace dsv4::cpu::amx {
namespace {

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Every tile used is 16 rows x 64 bytes. The configuration lives in constant storage: GCC 12
// does not treat ldtilecfg as reading its operand, so stores into a local config were dropped
// as dead (the tiles then stayed unconfigured: SIGILL on the first tile instruction).
constexpr TileConfig make_config() {
  TileConfig c;
  for (int t = 0; t < 8; ++t) {
    c.colsb[t] = 64;
    c.rows[t] = 16;
  }
  return c;
}
constexpr TileConfig kConfig = make_config();

// ldtilecfg is per thread and cheap next to a panel's work.
DSV4_AMX void configure() { _tile_loadconfig(&kConfig); }

// Copies the valid part of an accumulator tile (weight rows n0 + [0, nr), activation rows
// m0 + [0, mr)) into y, transposed (whole tiles in registers, partial ones element by element).
DSV4_AVX512F inline void store_tile(const float* c, int nr, int64_t mr, float* y, int64_t ldy) {
  if (nr == 16 && mr == 16) {
    avx512::transpose16x16_32(c, 64, y, ldy * 4);
    return;
  }
  for (int64_t i = 0; i < mr; ++i)
    for (int r = 0; r < nr; ++r) y[i * ldy + r] = c[r * 16 + i];
}

constexpr int64_t kBPrefetchK = 64;  // K values ahead

// acc[0..3]: the 4 accumulator tiles of one activation tile pair (C[n][m], 16 x 16 floats).
// The A tiles are the chunk's columns [0, k1 - k0) of the panel rows; B is indexed by absolute K.
template <bool kTwoN, bool kTwoM>
DSV4_AMX void tile_pair(const uint16_t* a0, const uint16_t* a1, int64_t stride_a, const uint16_t* b0,
                        const uint16_t* b1, int64_t k0, int64_t k1, bool first, bool last,
                        bool resident, float (*acc)[256]) {
  if (resident && !first) {
    // the accumulators are still in tmm0-3 from the previous chunk
  } else if (first) {
    _tile_zero(0);
    if constexpr (kTwoM) _tile_zero(1);
    if constexpr (kTwoN) _tile_zero(2);
    if constexpr (kTwoN && kTwoM) _tile_zero(3);
  } else {
    _tile_loadd(0, acc[0], 64);
    if constexpr (kTwoM) _tile_loadd(1, acc[1], 64);
    if constexpr (kTwoN) _tile_loadd(2, acc[2], 64);
    if constexpr (kTwoN && kTwoM) _tile_loadd(3, acc[3], 64);
  }
  for (int64_t kk = k0; kk < k1; kk += 32) {
    // The activation tiles come from L2: prefetch them into L1 two K steps ahead (+8-14% on
    // whole GEMMs; prefetching the weight tiles as well measured no better). A prefetch past the
    // buffer's end is harmless.
    for (int l = 0; l < 512; l += 32) {
      _mm_prefetch(reinterpret_cast<const char*>(b0 + (kk + kBPrefetchK) * 16 + l), _MM_HINT_T0);
      if constexpr (kTwoM)
        _mm_prefetch(reinterpret_cast<const char*>(b1 + (kk + kBPrefetchK) * 16 + l), _MM_HINT_T0);
    }
    _tile_loadd(4, a0 + (kk - k0), stride_a);
    _tile_loadd(6, b0 + kk * 16, 64);
    if constexpr (kTwoM) _tile_loadd(7, b1 + kk * 16, 64);
    if constexpr (kTwoN) _tile_loadd(5, a1 + (kk - k0), stride_a);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (kTwoM) _tile_dpbf16ps(1, 4, 7);
    if constexpr (kTwoN) _tile_dpbf16ps(2, 5, 6);
    if constexpr (kTwoN && kTwoM) _tile_dpbf16ps(3, 5, 7);
  }
  if (resident && !last) return;
  _tile_stored(0, acc[0], 64);
  if constexpr (kTwoM) _tile_stored(1, acc[1], 64);
  if constexpr (kTwoN) _tile_stored(2, acc[2], 64);
  if constexpr (kTwoN && kTwoM) _tile_stored(3, acc[3], 64);
}

}  // namespace

DSV4_AMX void begin() { configure(); }

DSV4_AMX void chunk(const uint16_t* panel, int64_t ldp, int nr, const uint16_t* act, int64_t m,
                    int64_t kp, int64_t k0, int64_t k1, TileAcc* acc) {
  const bool two_n = nr > 16, first = k0 == 0, last = k1 == kp;
  // One tile pair of activations: its accumulators stay in the tile registers from the first
  // chunk to the last (no store / reload round trip per chunk; nothing between the calls uses
  // AMX). More rows cycle every pair's accumulators through `acc`.
  const bool resident = m <= 32;
  const uint16_t* a1 = panel + 16 * ldp;
  const int64_t stride_a = ldp * 2;
  for (int64_t m0 = 0; m0 < m; m0 += 32) {
    const uint16_t* b0 = act + (m0 / 16) * 16 * kp;
    const uint16_t* b1 = b0 + 16 * kp;
    float (*c)[256] = acc->c[m0 / 32];
    const bool two_m = m - m0 > 16;
    if (two_n && two_m) {
      tile_pair<true, true>(panel, a1, stride_a, b0, b1, k0, k1, first, last, resident, c);
    } else if (two_n) {
      tile_pair<true, false>(panel, a1, stride_a, b0, b1, k0, k1, first, last, resident, c);
    } else if (two_m) {
      tile_pair<false, true>(panel, a1, stride_a, b0, b1, k0, k1, first, last, resident, c);
    } else {
      tile_pair<false, false>(panel, a1, stride_a, b0, b1, k0, k1, first, last, resident, c);
    }
  }
}

DSV4_AVX512F void store(const TileAcc& acc, int nr, int64_t m, float* y, int64_t ldy) {
  const int nr0 = std::min(nr, 16), nr1 = nr - nr0;
  for (int64_t m0 = 0; m0 < m; m0 += 32) {
    const float (*c)[256] = acc.c[m0 / 32];
    const int64_t mr0 = std::min<int64_t>(16, m - m0), mr1 = std::min<int64_t>(16, m - m0 - 16);
    store_tile(c[0], nr0, mr0, y + m0 * ldy, ldy);
    if (mr1 > 0) store_tile(c[1], nr0, mr1, y + (m0 + 16) * ldy, ldy);
    if (nr1 > 0) store_tile(c[2], nr1, mr0, y + m0 * ldy + 16, ldy);
    if (nr1 > 0 && mr1 > 0) store_tile(c[3], nr1, mr1, y + (m0 + 16) * ldy + 16, ldy);
  }
}

DSV4_AMX double peak_macs(int64_t iters, int loads, int vector_fmas) {
  configure();
  alignas(64) static const uint16_t operands[4][16 * 32] = {};
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, operands[0], 64);
  _tile_loadd(5, operands[3], 64);
  _tile_loadd(6, operands[1], 64);
  _tile_loadd(7, operands[2], 64);
  // Vector work: 8 independent chains of x -> x / 2 + 1/4, which stay normal numbers (a chain
  // that underflowed to denormals would run on microcode assists and measure those instead).
  const __m512 half = _mm512_set1_ps(0.5f), quarter = _mm512_set1_ps(0.25f);
  __m512 v[8];
  for (int q = 0; q < 8; ++q) v[q] = _mm512_set1_ps(static_cast<float>(q));
  for (int64_t i = 0; i < iters; ++i) {
    if (loads > 0) _tile_loadd(4, operands[0], 64);
    if (loads > 1) _tile_loadd(6, operands[1], 64);
    if (loads > 2) _tile_loadd(7, operands[2], 64);
    if (loads > 3) _tile_loadd(5, operands[3], 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
    for (int j = 0; j < vector_fmas; j += 8)
      for (int q = 0; q < 8; ++q) v[q] = _mm512_fmadd_ps(v[q], half, quarter);
  }
  alignas(64) float c[256];
  _tile_stored(0, c, 64);
  __m512 t = v[0];
  for (int q = 1; q < 8; ++q) t = _mm512_add_ps(t, v[q]);
  return double(iters) * 4 * 16 * 16 * 32 + c[0] + 0.0f * _mm512_reduce_add_ps(t);
}

DSV4_AVX512F void to_vnni(const uint16_t* a, int64_t lda, int64_t m, int64_t kp, uint16_t* out) {
  const int64_t pairs = kp / 2;
  for (int64_t t = 0; t * 16 < m; ++t) {
    uint32_t* dst = reinterpret_cast<uint32_t*>(out + t * 16 * kp);
    if (t * 16 + 16 <= m) {  // a whole block: 16 x 16 pair transposes (pairs % 16 == 0)
      for (int64_t r = 0; r < pairs; r += 16)
        avx512::transpose16x16_32(a + t * 16 * lda + 2 * r, lda * 2, dst + r * 16, 64);
      continue;
    }
    // A last block of fewer than 16 rows (a routed expert's ~12 rows in prefill): each 16 x 16
    // block of pairs goes through a zero-padded copy (1 KiB, L1) and the same transpose.
    const int64_t rows = m - t * 16;
    alignas(64) uint32_t blk[16][16];
    for (int i = rows; i < 16; ++i) std::memset(blk[i], 0, sizeof(blk[i]));
    for (int64_t r = 0; r < pairs; r += 16) {
      for (int64_t i = 0; i < rows; ++i) std::memcpy(blk[i], a + (t * 16 + i) * lda + 2 * r, 64);
      avx512::transpose16x16_32(&blk[0][0], 64, dst + r * 16, 64);
    }
  }
}

void panel_gemm(bool use_amx, const uint16_t* panel, int64_t ldp, int nr, const uint16_t* act,
                int64_t m, int64_t kp, float* y, int64_t ldy) {
  TileAcc acc;
  if (use_amx) {
    // As run_panels_tiled (linear.cpp) calls it: each pair of activation tiles over all of K.
    begin();
    for (int64_t m0 = 0; m0 < m; m0 += 32) {
      const int64_t mp = std::min<int64_t>(32, m - m0);
      chunk(panel, ldp, nr, act + m0 * kp, mp, kp, 0, kp, &acc);
      store(acc, nr, mp, y + m0 * ldy, ldy);
    }
    return;
  }
  for (int64_t m0 = 0; m0 < m; m0 += kTilePassRows) {
    const int64_t mt = std::min(kTilePassRows, m - m0);
    for (int64_t k0 = 0; k0 < kp; k0 += kTileChunk) {
      const int64_t k1 = std::min(kp, k0 + kTileChunk);
      avx512::tile_chunk(panel + k0, ldp, nr, act + m0 * kp, mt, kp, k0, k1, &acc);
    }
    store(acc, nr, mt, y + m0 * ldy, ldy);
  }
}

}  // namespace dsv4::cpu::amx
