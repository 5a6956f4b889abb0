// Internal AVX-512 helpers shared by the kernel files (each function carries DSV4_AVX512, so
// including this header never requires AVX-512 at compile time), in namespace DSV4_AVX512_NS:
// once per pass of the AVX-512 sources (dispatch.h), with the BF16 instructions or without.
#pragma once
// GCC 12 reports its own self-initialised _mm512_undefined_*() inside the intrinsic headers as
// "may be used uninitialized" when the intrinsics are used through target attributes (a false
// positive); the pragma covers the header's lines only. Include this header before any other.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "kernels/cpu/dispatch.h"

namespace dsv4::cpu::DSV4_AVX512_NS {

// The BF16 operations of the kernels. BF16 pass: the AVX512-BF16 instructions. FMA pass: the same
// results from AVX-512 F. A BF16 pair in a 32-bit lane widens exactly to two floats (high word
// masked, low word shifted up); vdpbf16ps adds the high pair's product, then the low pair's (the
// products of BF16 values are exact in float32), i.e. two FMAs in that order. The conversions
// round to nearest even in integer lanes, subnormal inputs to signed zero and NaN to a quiet NaN,
// as vcvtne2ps2bf16 does. So both passes give equal results (barring subnormal products, which
// vdpbf16ps flushes).
#if defined(DSV4_AVX512_FMA_PASS)
inline constexpr bool kNativeBf16 = false;
DSV4_AVX512 inline __m512 dpbf16(__m512 acc, __m512bh a, __m512bh b) {
  const __m512i ai = (__m512i)a, bi = (__m512i)b;
  const __m512i high = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  acc = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(ai, high)),
                        _mm512_castsi512_ps(_mm512_and_si512(bi, high)), acc);
  return _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(ai, 16)),
                         _mm512_castsi512_ps(_mm512_slli_epi32(bi, 16)), acc);
}
// The 16 BF16 bits of x's lanes, in the low halves of the 32-bit lanes.
DSV4_AVX512 inline __m512i bf16_bits_epi32(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i mag = _mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF));
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), lsb));
  const __mmask16 nan = _mm512_cmpgt_epi32_mask(mag, _mm512_set1_epi32(0x7F800000));
  r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(u, _mm512_set1_epi32(0x00400000)));
  const __mmask16 sub = _mm512_cmplt_epi32_mask(mag, _mm512_set1_epi32(0x00800000));
  r = _mm512_mask_mov_epi32(r, sub, _mm512_and_si512(u, _mm512_set1_epi32(static_cast<int>(0x80000000u))));
  return _mm512_srli_epi32(r, 16);
}
DSV4_AVX512 inline __m256i cvt_bf16(__m512 x) { return _mm512_cvtepi32_epi16(bf16_bits_epi32(x)); }
// 32 BF16 values: lo's 16 lanes, then hi's.
DSV4_AVX512 inline __m512i cvt2_bf16(__m512 hi, __m512 lo) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(cvt_bf16(lo)), cvt_bf16(hi), 1);
}
#else
inline constexpr bool kNativeBf16 = true;
DSV4_AVX512 inline __m512 dpbf16(__m512 acc, __m512bh a, __m512bh b) { return _mm512_dpbf16_ps(acc, a, b); }
DSV4_AVX512 inline __m256i cvt_bf16(__m512 x) { return (__m256i)_mm512_cvtneps_pbh(x); }
DSV4_AVX512 inline __m512i cvt2_bf16(__m512 hi, __m512 lo) { return (__m512i)_mm512_cvtne2ps_pbh(hi, lo); }
#endif

// Activation vector v of row i of a GEMV tile at p (that row's current chunk): the copy held in
// registers (tiles of up to 2 rows) or a load from L1 (wider tiles: their sums need the registers).
template <int MR, int H, int V>
DSV4_AVX512 inline __m512bh held_or_load(const __m512bh (&held)[H][V], const uint16_t* p, int i, int v) {
  if constexpr (MR <= 2) return held[i][v];
  else return (__m512bh)_mm512_loadu_si512(p + 32 * v);
}

// The helpers below use AVX-512 F/BW/DQ only (DSV4_AVX512F): callable from both passes and from
// the plain-AVX-512 functions of the first pass.

// The E8M0 scales of FP4 weight rows for the decode GEMVs (fp4_decode.cpp, fp4_int_gemv.cpp):
// the floats of 16 blocks (4 chunks of 128 K values) are built once per row and 512 K values
// (load; the exponent byte shifted into place, 0 gives 0), and chunk j of them spreads block
// 4 j + L over 128-bit lane L (lane). load stores them transposed, block 4 j + L in dword
// 4 L + j (one vpshufb of the 16 bytes), so that lane is an in-lane broadcast with an immediate
// (vshufps): Zen 5 issues that on all four vector pipes, where a vpermps from the natural order
// took one of the two pipes the vpermw decode keeps busy (7-11% of the row-by-row GEMV from L2).
struct Fp4BlockScales {
  // The 16 (fewer at the end of K) block scales of srow from K = c on.
  DSV4_AVX512F static __m512 load(const uint8_t* srow, int64_t c, int64_t k) {
    const int64_t blocks = (k - c) / 32 < 16 ? (k - c) / 32 : 16;
    const __mmask16 mask = static_cast<__mmask16>((1u << blocks) - 1);
    const __m128i transpose = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m128i bytes = _mm_shuffle_epi8(_mm_maskz_loadu_epi8(mask, srow + c / 32), transpose);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu8_epi32(bytes), 23));
  }
  // Chunk j's scales (j in [0, 4); a constant wherever the caller's chunk loop is unrolled).
  DSV4_AVX512F static __m512 lane(int j, __m512 sc16) {
    switch (j) {
      case 0: return _mm512_shuffle_ps(sc16, sc16, 0x00);
      case 1: return _mm512_shuffle_ps(sc16, sc16, 0x55);
      case 2: return _mm512_shuffle_ps(sc16, sc16, 0xAA);
      default: return _mm512_shuffle_ps(sc16, sc16, 0xFF);
    }
  }
};

// Each lane rounded to BF16 (to nearest even) and back, for finite lanes (integer arithmetic on
// the bits: no BF16 instructions needed).
DSV4_AVX512F inline __m512 bf16_round_finite_ps(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), lsb));
  return _mm512_castsi512_ps(_mm512_and_si512(r, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

// Stores lanes [0, n) of v at out (n <= 16), lanes from `keep` on replaced by `fill` (keep
// clamped to [0, 16]): a row's scores of 16 keys, -inf for the keys it does not see.
DSV4_AVX512F inline void store_kept_lanes(__m512 v, int64_t keep, float fill, int n, float* out) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const int kept = static_cast<int>(keep < 0 ? 0 : keep > 16 ? 16 : keep);
  const __mmask16 m = _mm512_cmplt_epi32_mask(lane, _mm512_set1_epi32(kept));
  _mm512_mask_storeu_ps(out, static_cast<__mmask16>((1u << n) - 1), _mm512_mask_blend_ps(m, _mm512_set1_ps(fill), v));
}

// Sum of the 16 lanes (pairwise tree).
DSV4_AVX512F inline float hsum(__m512 v) {
  const __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  b = _mm_add_ps(b, _mm_movehl_ps(b, b));
  b = _mm_add_ss(b, _mm_movehdup_ps(b));
  return _mm_cvtss_f32(b);
}

// Lane i = the sum of the lanes of x[i], for 16 vectors at once: a transpose-and-add tree of 15
// steps (two shuffles and an add each), against 16 x 7 operations for 16 hsum calls.
DSV4_AVX512F inline __m512 hsum16(const __m512* x) {
  __m512 y[8], z[4], w[2];
  for (int i = 0; i < 8; ++i)  // per 128-bit block: [x0 (0+2), x1 (0+2), x0 (1+3), x1 (1+3)]
    y[i] = _mm512_add_ps(_mm512_unpacklo_ps(x[2 * i], x[2 * i + 1]), _mm512_unpackhi_ps(x[2 * i], x[2 * i + 1]));
  for (int i = 0; i < 4; ++i) {  // per block: the block's sums of x[4i .. 4i + 3]
    const __m512d a = _mm512_castps_pd(y[2 * i]), b = _mm512_castps_pd(y[2 * i + 1]);
    z[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
  }
  for (int i = 0; i < 2; ++i)  // blocks: z[2i] (0+1), z[2i] (2+3), z[2i+1] (0+1), z[2i+1] (2+3)
    w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(z[2 * i], z[2 * i + 1], 0x88), _mm512_shuffle_f32x4(z[2 * i], z[2 * i + 1], 0xDD));
  return _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], 0x88), _mm512_shuffle_f32x4(w[0], w[1], 0xDD));
}

// y[r] = the sum of the lanes of x[r] for r < n <= 16 (hsum16; x[n, 16) are cleared): the
// row-by-row GEMVs reduce their sums 16 rows at a time.
DSV4_AVX512F inline void store_hsum16(__m512* x, int n, float* y) {
  for (int r = n; r < 16; ++r) x[r] = _mm512_setzero_ps();
  _mm512_mask_storeu_ps(y, static_cast<__mmask16>((1u << n) - 1), hsum16(x));
}

DSV4_AVX512F inline float hmax(__m512 v) {
  const __m256 a = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 b = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  b = _mm_max_ps(b, _mm_movehl_ps(b, b));
  b = _mm_max_ss(b, _mm_movehdup_ps(b));
  return _mm_cvtss_f32(b);
}

// exp(x) for float32 lanes: x = n ln2 + r (Cody-Waite split), |r| <= ln2/2, degree-6 polynomial,
// 2^n by exponent construction; relative error about 2 ulp over the normal range, 0 below -87.3,
// +inf above 88.7.
DSV4_AVX512F inline __m512 exp_ps(__m512 x) {
  const __m512 hi = _mm512_set1_ps(88.7228391f), lo = _mm512_set1_ps(-87.33654f);
  const __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
  const __mmask16 over = _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ);
  x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  // 2^n in two halves so n = 128 (x near 88.7) does not overflow the exponent field.
  const __m512i ni = _mm512_cvtps_epi32(n);
  const __m512i h = _mm512_srai_epi32(ni, 1);
  const __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(h, _mm512_set1_epi32(127)), 23));
  const __m512 s2 = _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_add_epi32(_mm512_sub_epi32(ni, h), _mm512_set1_epi32(127)), 23));
  __m512 y = _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
  y = _mm512_mask_mov_ps(y, under, _mm512_setzero_ps());
  y = _mm512_mask_mov_ps(y, over, _mm512_set1_ps(__builtin_inff()));
  return y;
}

// 16 x 16 block of 32-bit values transposed: destination row c (at dst + c * dst_stride bytes)
// receives column c of the source rows (here the registers r[0..15], clobbered; below row r at
// src + r * src_stride bytes, or at rows[r] + offset). Three shuffle stages (32-bit and 64-bit
// unpacks within 128-bit lanes, then lane shuffles), 64 shuffles in all.
DSV4_AVX512F inline void transpose16x16_32(__m512* r, void* dst, int64_t dst_stride) {
  char* d = static_cast<char*>(dst);
  __m512 t[16];
  for (int k = 0; k < 8; ++k) {
    t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  // r[4k + q], lane j: rows 4k .. 4k + 3 of column 4j + q.
  for (int k = 0; k < 4; ++k) {
    const __m512d a0 = _mm512_castps_pd(t[4 * k]), a1 = _mm512_castps_pd(t[4 * k + 1]);
    const __m512d a2 = _mm512_castps_pd(t[4 * k + 2]), a3 = _mm512_castps_pd(t[4 * k + 3]);
    r[4 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
    r[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
    r[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
    r[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
  }
  for (int q = 0; q < 4; ++q) {
    const __m512 v02 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x88);  // lanes 0, 2 of rows 0-7
    const __m512 w02 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x88);
    const __m512 v13 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xDD);  // lanes 1, 3
    const __m512 w13 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xDD);
    _mm512_storeu_ps(d + q * dst_stride, _mm512_shuffle_f32x4(v02, w02, 0x88));
    _mm512_storeu_ps(d + (8 + q) * dst_stride, _mm512_shuffle_f32x4(v02, w02, 0xDD));
    _mm512_storeu_ps(d + (4 + q) * dst_stride, _mm512_shuffle_f32x4(v13, w13, 0x88));
    _mm512_storeu_ps(d + (12 + q) * dst_stride, _mm512_shuffle_f32x4(v13, w13, 0xDD));
  }
}

DSV4_AVX512F inline void transpose16x16_32(const void* src, int64_t src_stride, void* dst,
                                          int64_t dst_stride) {
  const char* s = static_cast<const char*>(src);
  __m512 r[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(s + i * src_stride);
  transpose16x16_32(r, dst, dst_stride);
}

DSV4_AVX512F inline void transpose16x16_32(const void* const* rows, int64_t offset, void* dst,
                                          int64_t dst_stride) {
  __m512 r[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(static_cast<const char*>(rows[i]) + offset);
  transpose16x16_32(r, dst, dst_stride);
}

}  // namespace dsv4::cpu::DSV4_AVX512_NS
