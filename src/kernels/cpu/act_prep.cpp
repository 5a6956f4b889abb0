// Activation preparation of the fast linear layers (linear_kernels.h prepare_act_bf16): one float32
// row -> BF16 in the panel order of its weight format, after the exact act_quant rounding of
// spec 6.2 when asked (E4M3 grid with a power-of-two scale per 128 values: the dequantised value
// is exact in BF16), zero padding up to ldo.
//   Scalar twin: act_quant_dequant + one table-driven store per element.
//   AVX-512: per 128-value block a vector |x| maximum, the scale from its exponent, the E4M3 grid
//   rounding in integer lanes (3 mantissa bits, ties to even; the subnormal range by adding and
//   subtracting 2^14 in float), vcvtne2ps2bf16, then the panel permutation as vpermt2w between
//   the naturally ordered vectors.
//   AVX2: the same rounding in 8-lane registers; the panel order moves whole runs of 8 values
//   (FP8 order) or even/odd-deinterleaved runs (FP4 order; FP4 word order: deinterleaved twice).
#include "kernels/cpu/simd_avx512.h"  // first: wraps <immintrin.h>
#include "kernels/cpu/simd_avx2.h"

#include <algorithm>
#include <array>
#include <bit>

#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/formats.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/linear_kernels.h"

namespace dsv4::cpu {

#if !defined(DSV4_AVX512_FMA_PASS)  // the scalar / AVX2 tiers: in the first pass only
namespace scalar {

void prepare_act_bf16(const float* x, int64_t k, PanelOrder order, bool quant, uint16_t* out,
                      int64_t ldo) {
  thread_local AlignedVector<float> t_row;
  const float* v = x;
  if (quant) {
    float* tmp = grow(t_row, static_cast<size_t>(k));
    act_quant_dequant(x, k, tmp);
    v = tmp;
  }
  const int64_t period = order == PanelOrder::Fp4 || order == PanelOrder::Fp4Words ? 128 : 64;
  std::array<int16_t, 128> perm{};
  for (int64_t q = 0; q < period; ++q)
    perm[q] = static_cast<int16_t>(panel_position_to_k(order, q));
  for (int64_t p0 = 0; p0 < ldo; p0 += period) {
    for (int64_t q = 0; q < period && p0 + q < ldo; ++q) {
      const int64_t kk = p0 + perm[q];
      out[p0 + q] = kk < k ? f32_to_bf16_bits(v[kk]) : uint16_t{0};
    }
  }
}

void split_bf16_limbs(const float* x, int64_t k, float* out, int64_t lds) {
  for (int64_t j = 0; j < k; ++j) {
    const uint32_t u = std::bit_cast<uint32_t>(x[j]);
    const bool inf = (u & 0x7FFFFFFFu) == 0x7F800000u;
    const float h = std::bit_cast<float>(u & 0xFFFF0000u), r = inf ? 0.0f : x[j] - h;
    const float mid = std::bit_cast<float>(std::bit_cast<uint32_t>(r) & 0xFFFF0000u);
    out[j] = (u & 0x7FFFFFFFu) > 0x7F800000u ? x[j] : h;
    out[lds + j] = mid;
    out[2 * lds + j] = r - mid;
  }
}

}  // namespace scalar

namespace avx512 {

DSV4_AVX512F void split_bf16_limbs(const float* x, int64_t k, float* out, int64_t lds) {
  const __m512i high = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  const __m512i mag = _mm512_set1_epi32(0x7FFFFFFF), inf = _mm512_set1_epi32(0x7F800000);
  for (int64_t j = 0; j < k; j += 16) {
    const __mmask16 m = k - j >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (k - j)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + j);
    const __m512i u = _mm512_castps_si512(v), a = _mm512_and_si512(u, mag);
    const __mmask16 is_inf = _mm512_cmpeq_epi32_mask(a, inf), is_nan = _mm512_cmpgt_epi32_mask(a, inf);
    const __m512 h = _mm512_castsi512_ps(_mm512_and_si512(u, high));
    const __m512 r = _mm512_maskz_sub_ps(static_cast<__mmask16>(~is_inf), v, h);
    const __m512 mid = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(r), high));
    _mm512_mask_storeu_ps(out + j, m, _mm512_mask_mov_ps(h, is_nan, v));
    _mm512_mask_storeu_ps(out + lds + j, m, mid);
    _mm512_mask_storeu_ps(out + 2 * lds + j, m, _mm512_sub_ps(r, mid));
  }
}

}  // namespace avx512
#endif  // !DSV4_AVX512_FMA_PASS

namespace DSV4_AVX512_NS {
namespace {

// act_quant_dequant of one full 128-value block (8 vectors), in registers.
DSV4_AVX512 inline void quant_block(__m512* v) {
  const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
  __m512 m = _mm512_setzero_ps();
  for (int i = 0; i < 8; ++i) m = _mm512_max_ps(m, _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v[i]), abs_mask)));
  const float amax = std::max(hmax(m), 1e-4f);
  const int sk = ceil_log2_f32(amax * (1.0f / 448.0f));
  const __m512 s = _mm512_set1_ps(pow2_f32(sk)), inv_s = _mm512_set1_ps(pow2_f32(-sk));
  const __m512 lim = _mm512_set1_ps(448.0f), sub = _mm512_set1_ps(0.015625f), magic = _mm512_set1_ps(16384.0f);
  const __m512i sign_mask = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  for (int i = 0; i < 8; ++i) {
    const __m512 q = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v[i], inv_s), _mm512_sub_ps(_mm512_setzero_ps(), lim)), lim);
    const __m512i u = _mm512_castps_si512(q);
    const __m512i sign = _mm512_and_si512(u, sign_mask), mag = _mm512_and_si512(u, abs_mask);
    const __m512 a = _mm512_castsi512_ps(mag);
    // Normal range: round the mantissa to 3 bits, ties to even, with an integer add.
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(mag, 20), _mm512_set1_epi32(1));
    __m512i r = _mm512_and_si512(_mm512_add_epi32(_mm512_add_epi32(mag, _mm512_set1_epi32(0x7FFFF)), odd),
                                 _mm512_set1_epi32(static_cast<int>(0xFFF00000u)));
    // Subnormal range (multiples of 2^-9): float add/subtract of 2^14 rounds to nearest even.
    const __mmask16 small = _mm512_cmp_ps_mask(a, sub, _CMP_LT_OQ);
    r = _mm512_mask_mov_epi32(r, small, _mm512_castps_si512(_mm512_sub_ps(_mm512_add_ps(a, magic), magic)));
    v[i] = _mm512_mul_ps(_mm512_castsi512_ps(_mm512_or_si512(r, sign)), s);
  }
}

DSV4_AVX512 inline __m512i to_bf16(__m512 lo, __m512 hi) { return cvt2_bf16(hi, lo); }

// Vector of the panel-order indices: for output vector `o` of a period, element e takes element
// idx[e] of the two (Fp8) or of one pair of the four (Fp4) naturally ordered BF16 vectors.
struct PermTables {
  alignas(64) uint16_t fp8[2][32];
  alignas(64) uint16_t fp8dw[2][32];
  alignas(64) uint16_t fp4[4][32];
  alignas(64) uint16_t fp4w[4][32];
  PermTables() {
    for (int h = 0; h < 2; ++h)
      for (int e = 0; e < 32; ++e) {
        fp8[h][e] = static_cast<uint16_t>(panel_position_to_k(PanelOrder::Fp8, 32 * h + e));
        fp8dw[h][e] = static_cast<uint16_t>(panel_position_to_k(PanelOrder::Fp8Dwords, 32 * h + e));
      }
    for (int v = 0; v < 4; ++v)
      for (int e = 0; e < 32; ++e) {
        const int64_t kk = panel_position_to_k(PanelOrder::Fp4, 32 * v + e);  // in [0, 128)
        fp4[v][e] = static_cast<uint16_t>(kk % 64);  // within the pair (in0,in1) or (in2,in3)
        fp4w[v][e] = static_cast<uint16_t>(panel_position_to_k(PanelOrder::Fp4Words, 32 * v + e) % 64);
      }
  }
};
const PermTables& perm_tables() {
  static const PermTables t;
  return t;
}

}  // namespace

DSV4_AVX512 void prepare_act_bf16(const float* x, int64_t k, PanelOrder order, bool quant,
                                  uint16_t* out, int64_t ldo) {
  if (k % 128 != 0) {  // Natural order with a ragged K (BF16 weights): the scalar twin
    scalar::prepare_act_bf16(x, k, order, quant, out, ldo);
    return;
  }
  const PermTables& t = perm_tables();
  for (int64_t b = 0; b < k; b += 128) {
    __m512 v[8];
    for (int i = 0; i < 8; ++i) v[i] = _mm512_loadu_ps(x + b + 16 * i);
    if (quant) quant_block(v);
    __m512i w[4];
    for (int i = 0; i < 4; ++i) w[i] = to_bf16(v[2 * i], v[2 * i + 1]);  // natural order, 32 each
    uint16_t* o = out + b;
    switch (order) {
      case PanelOrder::Natural:
        for (int i = 0; i < 4; ++i) _mm512_storeu_si512(o + 32 * i, w[i]);
        break;
      case PanelOrder::Fp8:
      case PanelOrder::Fp8Dwords: {
        const auto& idx = order == PanelOrder::Fp8 ? t.fp8 : t.fp8dw;
        for (int c = 0; c < 2; ++c)
          for (int h = 0; h < 2; ++h)
            _mm512_storeu_si512(o + 64 * c + 32 * h,
                                _mm512_permutex2var_epi16(w[2 * c], _mm512_load_si512(idx[h]), w[2 * c + 1]));
        break;
      }
      case PanelOrder::Fp4:
      case PanelOrder::Fp4Words:
        // Both orders take elements [0, 16) of every output vector from K < 64, the pair
        // (w0, w1), and elements [16, 32) from K >= 64, the pair (w2, w3).
        for (int vv = 0; vv < 4; ++vv) {
          const __m512i idx = _mm512_load_si512(order == PanelOrder::Fp4 ? t.fp4[vv] : t.fp4w[vv]);
          const __m512i lo = _mm512_permutex2var_epi16(w[0], idx, w[1]);
          const __m512i hi = _mm512_permutex2var_epi16(w[2], idx, w[3]);
          _mm512_storeu_si512(o + 32 * vv, _mm512_mask_blend_epi16(0xFFFF0000u, lo, hi));
        }
        break;
    }
  }
  for (int64_t p = k; p < ldo; ++p) out[p] = 0;
}

}  // namespace DSV4_AVX512_NS

#if !defined(DSV4_AVX512_FMA_PASS)  // the scalar / AVX2 tiers: in the first pass only
namespace avx2 {
namespace {

DSV4_AVX2 inline void quant_block(__m256* v) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  __m256 m = _mm256_setzero_ps();
  for (int i = 0; i < 16; ++i) m = _mm256_max_ps(m, _mm256_and_ps(v[i], abs_mask));
  const float amax = std::max(hmax(m), 1e-4f);
  const int sk = ceil_log2_f32(amax * (1.0f / 448.0f));
  const __m256 s = _mm256_set1_ps(pow2_f32(sk)), inv_s = _mm256_set1_ps(pow2_f32(-sk));
  const __m256 lim = _mm256_set1_ps(448.0f), nlim = _mm256_set1_ps(-448.0f);
  const __m256 sub = _mm256_set1_ps(0.015625f), magic = _mm256_set1_ps(16384.0f);
  for (int i = 0; i < 16; ++i) {
    const __m256 q = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(v[i], inv_s), nlim), lim);
    const __m256 a = _mm256_and_ps(q, abs_mask);
    const __m256 sign = _mm256_andnot_ps(abs_mask, q);
    const __m256i mag = _mm256_castps_si256(a);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(mag, 20), _mm256_set1_epi32(1));
    const __m256i rn = _mm256_and_si256(_mm256_add_epi32(_mm256_add_epi32(mag, _mm256_set1_epi32(0x7FFFF)), odd),
                                        _mm256_set1_epi32(static_cast<int>(0xFFF00000u)));
    const __m256 rs = _mm256_sub_ps(_mm256_add_ps(a, magic), magic);
    const __m256 r = _mm256_blendv_ps(_mm256_castsi256_ps(rn), rs, _mm256_cmp_ps(a, sub, _CMP_LT_OQ));
    v[i] = _mm256_mul_ps(_mm256_or_ps(r, sign), s);
  }
}

// 8 floats -> 8 BF16 words at out.
DSV4_AVX2 inline void store8(uint16_t* out, __m256 v) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(bf16_pack(v, v)));
}

// The even and the odd words of the 32 words a then b (16 each, in order).
DSV4_AVX2 inline void split_even_odd(__m256i a, __m256i b, __m256i* even, __m256i* odd) {
  *even = pack_low_words(a, b);
  *odd = pack_high_words(a, b);
}

}  // namespace

DSV4_AVX2 void prepare_act_bf16(const float* x, int64_t k, PanelOrder order, bool quant,
                                uint16_t* out, int64_t ldo) {
  if (k % 128 != 0 || order == PanelOrder::Fp8Dwords) {
    // ragged K / the order of the AVX-512 FMA GEMV
    scalar::prepare_act_bf16(x, k, order, quant, out, ldo);
    return;
  }
  for (int64_t b = 0; b < k; b += 128) {
    __m256 v[16];
    for (int i = 0; i < 16; ++i) v[i] = _mm256_loadu_ps(x + b + 8 * i);
    if (quant) quant_block(v);
    uint16_t* o = out + b;
    switch (order) {
      case PanelOrder::Natural:
        for (int i = 0; i < 16; ++i) store8(o + 8 * i, v[i]);
        break;
      case PanelOrder::Fp8:  // run k = 64c + 16l + 8h (vector 8c + 2l + h) -> 64c + 32h + 8l
        for (int c = 0; c < 2; ++c)
          for (int l = 0; l < 4; ++l)
            for (int h = 0; h < 2; ++h) store8(o + 64 * c + 32 * h + 8 * l, v[8 * c + 2 * l + h]);
        break;
      case PanelOrder::Fp8Dwords:  // handed to the scalar twin above
        break;
      case PanelOrder::Fp4Words: {  // K = 4 j + t -> 32 t + j: the words of K % 4 == t in order
        __m256i nat[8], ev[4], od[4];
        for (int i = 0; i < 8; ++i) nat[i] = bf16_pack(v[2 * i], v[2 * i + 1]);
        for (int i = 0; i < 4; ++i) split_even_odd(nat[2 * i], nat[2 * i + 1], &ev[i], &od[i]);
        for (int half = 0; half < 2; ++half) {  // K in [64 half, 64 half + 64)
          __m256i t0, t1, t2, t3;
          split_even_odd(ev[2 * half], ev[2 * half + 1], &t0, &t2);
          split_even_odd(od[2 * half], od[2 * half + 1], &t1, &t3);
          const __m256i t[4] = {t0, t1, t2, t3};
          for (int q = 0; q < 4; ++q)
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 32 * q + 16 * half), t[q]);
        }
        break;
      }
      case PanelOrder::Fp4:  // k = 32l + 16u + 2j + e  ->  32(u + 2e) + 8l + j
        for (int l = 0; l < 4; ++l)
          for (int u = 0; u < 2; ++u) {
            const __m256 a = v[4 * l + 2 * u], c = v[4 * l + 2 * u + 1];
            const __m256 ev = _mm256_castpd_ps(_mm256_permute4x64_pd(
                _mm256_castps_pd(_mm256_shuffle_ps(a, c, _MM_SHUFFLE(2, 0, 2, 0))), 0xD8));
            const __m256 od = _mm256_castpd_ps(_mm256_permute4x64_pd(
                _mm256_castps_pd(_mm256_shuffle_ps(a, c, _MM_SHUFFLE(3, 1, 3, 1))), 0xD8));
            store8(o + 32 * u + 8 * l, ev);
            store8(o + 32 * (u + 2) + 8 * l, od);
          }
        break;
    }
  }
  for (int64_t p = k; p < ldo; ++p) out[p] = 0;
}

}  // namespace avx2
#endif  // !DSV4_AVX512_FMA_PASS

}  // namespace dsv4::cpu
