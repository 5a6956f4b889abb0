// The FP8 decode GEMV on float32 FMA (linear_kernels.h, fp8_rows_dot_f32; its scalar twin and
// scale_act_f32's are in fp8_decode.cpp beside the table kernel's): for cores where FMA is the
// cheapest multiply. On the Intel server cores measured (Sapphire Rapids and later),
// vdpbf16ps issues about once per 2.1 cycles and stalls the shuffle port that the vpermi2b table
// decode needs, while FMA issues twice per cycle; without BF16 (Ice Lake) it is emulated by FMAs.
//
// Decode without tables, in the 32-bit lanes the FMA reads: byte q of each dword of a 64-byte
// chunk is moved to the top byte (vpshufb; byte 3 is there already), an arithmetic 16-bit shift
// by 4 spreads the sign over bits 31..27 and leaves the 7-bit magnitude e:m at bits 26..20, and
// one vpternlogd keeps sign, e and m (mask 0x87F00000) and sets bit 30. The float32 that results
// has exponent field 128 + e and mantissa m / 8, i.e. 2^(e + 1) (1 + m / 8) = 256 x the E4M3
// value for every normal code (e >= 1). The activations carry the 2^-8 (scale_act_f32), so each
// product is the exact product of the E4M3 weight and the BF16-exact activation.
//
// Codes with e = 0 (zero and the subnormals m x 2^-9) have no implicit one, which the shift
// decode would add. They are rare in quantised weights (about 1% of 64-byte chunks in block-scaled
// Gaussian weights: |w| < 2^-6 of a scale that maps the block maximum to 224-448), so each chunk
// is tested (vptestnmb) and only the lanes of such codes are replaced: 256 x m x 2^-9 = m / 2 from
// a vpermps table, with the lane's sign. NaN codes (0x7F / 0xFF, never produced by quantisation)
// read as 480, as in the AVX2 tier.
//
// The chunk's 4 vectors hold K = 4 j + q in lane j of vector q (PanelOrder::Fp8Dwords); the
// activations are prepared in that order once per call. Each decoded chunk feeds up to 4
// activation rows. Numerics: exact products, float32 sums (FMA), another order than the twin.
#include "kernels/cpu/simd_avx512.h"  // first: wraps <immintrin.h>

#include <algorithm>

#include "kernels/cpu/formats.h"
#include "kernels/cpu/linear_kernels.h"

namespace dsv4::cpu {

namespace avx512 {
namespace {

struct Fp8DwordDecoder {
  __m512i mask = _mm512_set1_epi32(static_cast<int>(0x87F00000u));
  __m512i bias = _mm512_set1_epi32(0x40000000);
  __m512i e_bits = _mm512_set1_epi8(0x78);
  // vpshufb controls moving byte q of each dword to byte 3, the other bytes zero (vpshufb
  // indexes within 128-bit lanes: dword j of a lane reads byte 4 j + q).
  __m512i to_top[3];
  // 256 x the value of the e = 0 codes by m (index bits 0-2; bit 3 is e's low bit, 0 here).
  __m512 low_codes = _mm512_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 2.5f, 3.0f, 3.5f, 0, 0, 0, 0, 0, 0, 0, 0);

  DSV4_AVX512F Fp8DwordDecoder() {
    for (int q = 0; q < 3; ++q) {
      alignas(64) uint32_t ctl[16];
      for (int j = 0; j < 16; ++j) ctl[j] = (static_cast<uint32_t>(4 * (j % 4) + q) << 24) | 0x00FFFFFFu;
      to_top[q] = _mm512_load_si512(ctl);
    }
  }

  DSV4_AVX512F __m512 finish(__m512i top) const {
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_srai_epi16(top, 4), mask, bias, 0xEA));
  }

  // The 4 float32 vectors (x 256) of one 64-byte chunk, v[q] lane j = code 4 j + q, exact for
  // the codes with e >= 1 (has_low: whether the chunk holds others; fix_low patches them).
  DSV4_AVX512F void decode(__m512i x, __m512* v) const {
    v[3] = finish(x);
    for (int q = 0; q < 3; ++q) v[q] = finish(_mm512_shuffle_epi8(x, to_top[q]));
  }
  DSV4_AVX512F bool has_low(__m512i x) const { return _mm512_testn_epi8_mask(x, e_bits) != 0; }

  // Lanes whose code has e = 0: m / 2 with the lane's sign.
  DSV4_AVX512F void fix_low(__m512i x, __m512* v) const {
    const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
    for (int q = 0; q < 4; ++q) {
      const __mmask16 lanes = _mm512_testn_epi32_mask(x, _mm512_set1_epi32(0x78 << (8 * q)));
      if (lanes == 0) continue;
      const __m512 mag = _mm512_permutexvar_ps(_mm512_srli_epi32(x, 8 * q), low_codes);
      const __m512i fixed = _mm512_ternarylogic_epi32(_mm512_castps_si512(v[q]), sign,
                                                      _mm512_castps_si512(mag), 0xEA);  // (v & sign) | mag
      v[q] = _mm512_mask_mov_ps(v[q], lanes, _mm512_castsi512_ps(fixed));
    }
  }
};

const Fp8DwordDecoder& decoder() {
  static const Fp8DwordDecoder d;
  return d;
}

// kPanelRows weight rows x MR activation rows; the activations of a chunk stay in registers for
// one row (4 vectors), from 2 rows on they are read from L1 by each FMA.
template <int MR>
DSV4_AVX512F inline void fp8_fma_tile(const uint8_t* const* rows, int nr, const float* a, int64_t lda,
                                      int64_t k, float* y, int64_t ldy, int64_t ahead) {
  const Fp8DwordDecoder& d = decoder();
  // One activation row: a sum per decoded vector (no chain within a chunk, and each FMA can
  // accumulate in place); more rows: one sum per weight and activation row.
  constexpr int kAcc = MR == 1 ? 4 : 1;
  __m512 acc[kPanelRows][MR][kAcc];
  for (auto& r : acc)
    for (auto& i : r)
      for (auto& v : i) v = _mm512_setzero_ps();
  for (int64_t c = 0; c < k; c += 64) {
    __m512 av[4];
    if constexpr (MR == 1)
      for (int q = 0; q < 4; ++q) av[q] = _mm512_loadu_ps(a + c + 16 * q);
#pragma GCC unroll 4
    for (int r = 0; r < kPanelRows; ++r) {
      prefetch_l2(rows[r] + ahead + c);
      const __m512i x = _mm512_loadu_si512(rows[r] + c);
      auto products = [&](const __m512* v) DSV4_AVX512F {
        for (int i = 0; i < MR; ++i)
          for (int q = 0; q < 4; ++q) {
            const __m512 xa = MR == 1 ? av[q] : _mm512_loadu_ps(a + i * lda + c + 16 * q);
            __m512& s = acc[r][i][q % kAcc];
            s = _mm512_fmadd_ps(v[q], xa, s);
          }
      };
      // Each branch decodes and multiplies on its own: with one decode before the branch, GCC
      // kept a copy of the four vectors for the patch and moved them between registers on
      // every chunk.
      __m512 wv[4];
      if (__builtin_expect(d.has_low(x), 0)) {
        d.decode(x, wv);
        d.fix_low(x, wv);
        products(wv);
      } else {
        d.decode(x, wv);
        products(wv);
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int r = 0; r < nr; ++r) {
      __m512 s = acc[r][i][0];
      if constexpr (kAcc == 4)
        s = _mm512_add_ps(_mm512_add_ps(s, acc[r][i][1]), _mm512_add_ps(acc[r][i][2], acc[r][i][3]));
      y[i * ldy + r] = hsum(s);
    }
}

}  // namespace

DSV4_AVX512F void fp8_rows_dot_f32(const uint8_t* w, int64_t ldw, int nr, const float* a, int64_t lda,
                                   int64_t m, int64_t k, float* y, int64_t ldy) {
  const int64_t ahead = prefetch_ahead(ldw);
  for_gemv_blocks(nr, false, [&](int n0, int rows) DSV4_AVX512F {  // the tiles interleave a panel's rows
    const uint8_t* rp[kPanelRows];
    panel_rows(w + n0 * ldw, ldw, rows, rp);
    for_row_tiles(m, [&](auto mr, int64_t i) DSV4_AVX512F {
      fp8_fma_tile<decltype(mr)::value>(rp, rows, a + i * lda, lda, k, y + i * ldy + n0, ldy, ahead);
    });
  });
}

DSV4_AVX512F void scale_act_f32(const float* a, const uint8_t* scales, int64_t k, float* out) {
  for (int64_t kb = 0; kb < k; kb += 128) {
    const __m512 s = _mm512_set1_ps(e8m0_value(scales[kb / 128]) * 0.00390625f);
    for (int64_t p = kb; p < kb + 128; p += 16) _mm512_storeu_ps(out + p, _mm512_mul_ps(_mm512_loadu_ps(a + p), s));
  }
}

}  // namespace avx512
}  // namespace dsv4::cpu
