// Internal AVX2 (+FMA, F16C) helpers shared by the kernel files. Every function carries
// DSV4_AVX2, so including this header never requires AVX2 at compile time. Include it (or
// simd_avx512.h) before any other header: it wraps <immintrin.h> in the same diagnostic pragma.
#pragma once
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "kernels/cpu/dispatch.h"

namespace dsv4::cpu::avx2 {

// Sum of the 8 lanes (pairwise tree).
DSV4_AVX2 inline float hsum(__m256 v) {
  __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  b = _mm_add_ps(b, _mm_movehl_ps(b, b));
  b = _mm_add_ss(b, _mm_movehdup_ps(b));
  return _mm_cvtss_f32(b);
}

DSV4_AVX2 inline float hmax(__m256 v) {
  __m128 b = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  b = _mm_max_ps(b, _mm_movehl_ps(b, b));
  b = _mm_max_ss(b, _mm_movehdup_ps(b));
  return _mm_cvtss_f32(b);
}

// Lane mask of the first `left` lanes (left >= 8: all), for maskload / maskstore.
DSV4_AVX2 inline __m256i tail_mask(int64_t left) {
  alignas(32) static const int32_t kMask[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                               0,  0,  0,  0,  0,  0,  0,  0};
  const int64_t n = left >= 8 ? 8 : (left < 0 ? 0 : left);
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMask + 8 - n));
}

// exp(x), the same algorithm as avx512::exp_ps: x = n ln2 + r (Cody-Waite), |r| <= ln2/2,
// degree-6 polynomial, 2^n by exponent construction in two halves; 0 below -87.3, +inf above
// 88.7 (NaN propagates through the polynomial).
DSV4_AVX2 inline __m256 exp_ps(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.7228391f), lo = _mm256_set1_ps(-87.33654f);
  const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  const __m256 over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i h = _mm256_srai_epi32(ni, 1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, h), bias), 23));
  __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  y = _mm256_andnot_ps(under, y);
  y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), over);
  return y;
}

// BF16 bit patterns (RNE, NaN -> quiet NaN as f32_to_bf16_bits) in the high 16 bits of each
// lane; the low 16 bits are garbage.
DSV4_AVX2 inline __m256i bf16_rne_hi(__m256 x) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), lsb));
  const __m256i mag = _mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF));
  const __m256i nan = _mm256_cmpgt_epi32(mag, _mm256_set1_epi32(0x7F800000));
  const __m256i q = _mm256_or_si256(u, _mm256_set1_epi32(0x00400000));
  return _mm256_blendv_epi8(r, q, nan);
}

// Each lane rounded to BF16 (RNE) and back to float32.
DSV4_AVX2 inline __m256 bf16_round_ps(__m256 x) {
  return _mm256_castsi256_ps(
      _mm256_and_si256(bf16_rne_hi(x), _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

// The same for finite lanes only (no NaN check): 3 integer operations fewer.
DSV4_AVX2 inline __m256 bf16_round_finite_ps(__m256 x) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), lsb));
  return _mm256_castsi256_ps(_mm256_and_si256(r, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

// 8 x 8 block of 32-bit values transposed: row i at src + i * src_stride bytes, column c to dst +
// c * dst_stride bytes (32-bit unpacks, 64-bit shuffles, 128-bit lane swaps: 24 shuffles).
DSV4_AVX2 inline void transpose8x8_32(const void* src, int64_t src_stride, void* dst, int64_t dst_stride) {
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(reinterpret_cast<const float*>(s + i * src_stride));
  for (int k = 0; k < 4; ++k) {
    t[2 * k] = _mm256_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm256_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  // r[4 k + q], 128-bit lane L: rows 4 k .. 4 k + 3 of column 4 L + q
  for (int k = 0; k < 2; ++k) {
    r[4 * k] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], 0x44);
    r[4 * k + 1] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], 0xEE);
    r[4 * k + 2] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0x44);
    r[4 * k + 3] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0xEE);
  }
  for (int q = 0; q < 4; ++q) {
    _mm256_storeu_ps(reinterpret_cast<float*>(d + q * dst_stride), _mm256_permute2f128_ps(r[q], r[4 + q], 0x20));
    _mm256_storeu_ps(reinterpret_cast<float*>(d + (4 + q) * dst_stride), _mm256_permute2f128_ps(r[q], r[4 + q], 0x31));
  }
}

// The low / high 16 bits of the 32-bit lanes of a, then of b: 16 words in lane order.
DSV4_AVX2 inline __m256i pack_low_words(__m256i a, __m256i b) {
  const __m256i low16 = _mm256_set1_epi32(0xFFFF);
  return _mm256_permute4x64_epi64(_mm256_packus_epi32(_mm256_and_si256(a, low16), _mm256_and_si256(b, low16)), 0xD8);
}
DSV4_AVX2 inline __m256i pack_high_words(__m256i a, __m256i b) {
  return _mm256_permute4x64_epi64(_mm256_packus_epi32(_mm256_srli_epi32(a, 16), _mm256_srli_epi32(b, 16)), 0xD8);
}

// 16 floats -> 16 BF16 words in order (lo = elements 0..7, hi = 8..15).
DSV4_AVX2 inline __m256i bf16_pack(__m256 lo, __m256 hi) { return pack_high_words(bf16_rne_hi(lo), bf16_rne_hi(hi)); }

// 8 BF16 words -> 8 float32 lanes (exact).
DSV4_AVX2 inline __m256 bf16x8_to_ps(const uint16_t* p) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(b), 16));
}

}  // namespace dsv4::cpu::avx2
