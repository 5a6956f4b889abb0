// The KV entry decode (kv_decode.h): the scalar twin and the AVX-512 kernel.
#include "kernels/cpu/simd_avx512.h"  // first: wraps <immintrin.h>

#include "kernels/cpu/kv_decode.h"
#include "quant/quant.h"

namespace dsv4::cpu {
namespace {

constexpr int kScaleBlock = 64;  // KvEntryCodec::kBlock

const uint8_t* entry_of(const uint8_t* entries, size_t entry_bytes, const int32_t* ids,
                        int64_t first, int64_t r) {
  const int64_t i = ids != nullptr ? int64_t{ids[r]} : first + r;
  return entries + static_cast<size_t>(i) * entry_bytes;
}

// The little-endian BF16 value at p.
float bf16_value(const uint8_t* p) { return quant::bf16_to_f32(static_cast<uint16_t>(p[0] | p[1] << 8)); }

}  // namespace

namespace scalar {

void decode_kv_rows(const uint8_t* entries, size_t entry_bytes, const int32_t* ids, int64_t first,
                    int64_t n, int nope, int rope, float* out, int64_t ldo) {
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t* e = entry_of(entries, entry_bytes, ids, first, r);
    const uint8_t* scales = e + nope;
    const uint8_t* tail = scales + (nope + kScaleBlock - 1) / kScaleBlock;
    float* v = out + r * ldo;
    for (int d = 0; d < nope; ++d) v[d] = quant::e4m3_to_f32(e[d]) * quant::e8m0_to_f32(scales[d / kScaleBlock]);
    for (int d = 0; d < rope; ++d) v[nope + d] = bf16_value(tail + 2 * d);
  }
}

}  // namespace scalar

namespace avx512 {

DSV4_AVX512F void decode_kv_rows(const uint8_t* entries, size_t entry_bytes, const int32_t* ids,
                                 int64_t first, int64_t n, int nope, int rope, float* out,
                                 int64_t ldo) {
  const __m512i mag_mask = _mm512_set1_epi32(0x7F), e_bits = _mm512_set1_epi32(0x78);
  const __m512i m_bits = _mm512_set1_epi32(0x07), bias = _mm512_set1_epi32(120 << 23);
  const __m512i nan_code = _mm512_set1_epi32(0x7F), qnan = _mm512_set1_epi32(0x7FC00000);
  const __m512 sub_unit = _mm512_set1_ps(0x1p-9f);
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t* e = entry_of(entries, entry_bytes, ids, first, r);
    const uint8_t* scales = e + nope;
    const uint8_t* tail = scales + nope / kScaleBlock;
    float* v = out + r * ldo;
    for (int b0 = 0; b0 < nope; b0 += kScaleBlock) {
      const __m512 s = _mm512_set1_ps(quant::e8m0_to_f32(scales[b0 / kScaleBlock]));
      for (int d = b0; d < b0 + kScaleBlock; d += 16) {
        const __m512i c = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(e + d)));
        const __m512i mag = _mm512_and_si512(c, mag_mask);
        // e >= 1: exponent field e + 120, mantissa m << 20; e = 0: m x 2^-9 (exact from an int).
        __m512i bits = _mm512_add_epi32(_mm512_slli_epi32(mag, 20), bias);
        const __mmask16 low = _mm512_testn_epi32_mask(c, e_bits);
        bits = _mm512_mask_mov_epi32(bits, low, _mm512_castps_si512(_mm512_mul_ps(
                                                     _mm512_cvtepi32_ps(_mm512_and_si512(c, m_bits)), sub_unit)));
        bits = _mm512_mask_mov_epi32(bits, _mm512_cmpeq_epi32_mask(mag, nan_code), qnan);
        bits = _mm512_or_si512(bits, _mm512_slli_epi32(_mm512_andnot_si512(mag_mask, c), 24));  // sign
        _mm512_storeu_ps(v + d, _mm512_mul_ps(_mm512_castsi512_ps(bits), s));
      }
    }
    int d = 0;
    for (; d + 16 <= rope; d += 16) {
      const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(tail + 2 * d)));
      _mm512_storeu_ps(v + nope + d, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
    }
    for (; d < rope; ++d) v[nope + d] = bf16_value(tail + 2 * d);
  }
}

}  // namespace avx512
}  // namespace dsv4::cpu
