// FP8 E4M3 weight rows -> BF16 panel with the 128x128 block scale folded in (exact).
// Scalar twin: per element through e4m3_value. AVX-512: the 7-bit magnitude indexes two
// 128-entry byte tables (vpermi2b, AVX512-VBMI) giving the low and high byte of the BF16 pattern,
// the sign bit is merged with vpternlogd, vpunpck{l,h}bw interleave the bytes into two vectors of
// 32 BF16 words, and the scale exponent is added to the BF16 exponent field of the non-zero words.
#include "kernels/cpu/simd_avx512.h"  // first: wraps <immintrin.h>

#include <algorithm>
#include <array>

#include "kernels/cpu/formats.h"
#include "kernels/cpu/linear_kernels.h"

namespace dsv4::cpu {
namespace {

struct E4m3Bf16Tables {
  std::array<uint8_t, 128> lo{}, hi{};
  E4m3Bf16Tables() {
    for (int c = 0; c < 128; ++c) {
      const uint16_t b = f32_to_bf16_bits(e4m3_value(static_cast<uint8_t>(c)));
      lo[c] = static_cast<uint8_t>(b & 0xFF);
      hi[c] = static_cast<uint8_t>(b >> 8);
    }
  }
};
const E4m3Bf16Tables& e4m3_tables() {
  static const E4m3Bf16Tables t;
  return t;
}

}  // namespace

#if !defined(DSV4_AVX512_FMA_PASS)  // the scalar / AVX2 tiers: in the first pass only
namespace scalar {

void decode_fp8(const uint8_t* w, int64_t ldw, const uint8_t* scales, int nr, int64_t k,
                uint16_t* panel, int64_t ldp) {
  const int64_t kp = (k + 31) / 32 * 32;
  for (int r = 0; r < kPanelRows; ++r) {
    uint16_t* out = panel + r * ldp;
    for (int64_t p = 0; p < kp; ++p) {
      if (r >= nr) {
        out[p] = 0;
        continue;
      }
      const int64_t kk = panel_position_to_k(PanelOrder::Fp8, p);
      const float v = e4m3_value(w[r * ldw + kk]) * e8m0_value(scales[kk / 128]);
      out[p] = f32_to_bf16_bits(v);
    }
  }
}

namespace {

inline float act_value(uint16_t bf16) { return bf16_bits_to_f32(bf16); }
inline float act_value(float f) { return f; }

// The twin of both in-register FP8 kernels: y[i][r] = sum_p factor * e4m3(code of K(p)) * a[i][p]
// with K(p) of `order` (the table kernel: Fp8, factor 1, BF16 activations; the FMA kernel:
// Fp8Dwords, factor 256, float32 activations carrying 2^-8).
template <class A>
void fp8_rows_dot_twin(const uint8_t* w, int64_t ldw, int nr, PanelOrder order, float factor,
                       const A* a, int64_t lda, int64_t m, int64_t k, float* y, int64_t ldy) {
  for (int64_t i = 0; i < m; ++i) {
    for (int r = 0; r < nr; ++r) {
      float acc = 0.0f;
      for (int64_t p = 0; p < k; ++p)
        acc += factor * e4m3_value(w[r * ldw + panel_position_to_k(order, p)]) * act_value(a[i * lda + p]);
      y[i * ldy + r] = acc;
    }
  }
}

}  // namespace

void fp8_rows_dot(const uint8_t* w, int64_t ldw, int nr, const uint16_t* a, int64_t lda, int64_t m,
                  int64_t k, float* y, int64_t ldy) {
  fp8_rows_dot_twin(w, ldw, nr, PanelOrder::Fp8, 1.0f, a, lda, m, k, y, ldy);
}

void fp8_rows_dot_f32(const uint8_t* w, int64_t ldw, int nr, const float* a, int64_t lda, int64_t m,
                      int64_t k, float* y, int64_t ldy) {
  fp8_rows_dot_twin(w, ldw, nr, PanelOrder::Fp8Dwords, 256.0f, a, lda, m, k, y, ldy);
}

void scale_act_bf16(const float* a, const uint8_t* scales, int64_t k, uint16_t* out) {
  for (int64_t p = 0; p < k; ++p) out[p] = f32_to_bf16_bits(a[p] * e8m0_value(scales[p / 128]));
}

void scale_act_f32(const float* a, const uint8_t* scales, int64_t k, float* out) {
  for (int64_t p = 0; p < k; ++p) out[p] = a[p] * (e8m0_value(scales[p / 128]) * 0.00390625f);
}

}  // namespace scalar
#endif  // !DSV4_AVX512_FMA_PASS

namespace DSV4_AVX512_NS {

DSV4_AVX512 void decode_fp8(const uint8_t* w, int64_t ldw, const uint8_t* scales, int nr,
                            int64_t k, uint16_t* panel, int64_t ldp) {
  const E4m3Bf16Tables& t = e4m3_tables();
  const __m512i lo0 = _mm512_loadu_si512(t.lo.data()), lo1 = _mm512_loadu_si512(t.lo.data() + 64);
  const __m512i hi0 = _mm512_loadu_si512(t.hi.data()), hi1 = _mm512_loadu_si512(t.hi.data() + 64);
  const __m512i sign = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i nonsign = _mm512_set1_epi16(0x7FFF);
  for (int r = 0; r < kPanelRows; ++r) {
    uint16_t* out = panel + r * ldp;
    if (r >= nr) {
      for (int64_t p = 0; p < k; p += 32) _mm512_storeu_si512(out + p, _mm512_setzero_si512());
      continue;
    }
    const uint8_t* row = w + r * ldw;
    for (int64_t kb = 0; kb < k; kb += 128) {
      if (scales[kb / 128] < kMinFastScale || scales[kb / 128] > kMaxFastScale) {
        // Results would leave the normal BF16 range the exponent add assumes: per element.
        const float sc = e8m0_value(scales[kb / 128]);
        for (int64_t p = kb; p < kb + 128; ++p)
          out[p] = f32_to_bf16_bits(e4m3_value(row[panel_position_to_k(PanelOrder::Fp8, p)]) * sc);
        continue;
      }
      const __m512i eadd = _mm512_set1_epi16(static_cast<int16_t>((scales[kb / 128] - 127) * 128));
      for (int64_t c = kb; c < kb + 128; c += 64) {
        __m512i b = _mm512_loadu_si512(row + c);
        asm("" : "+v"(b));  // one (possibly split) load: see fp8_row_by_row
        const __m512i lo = _mm512_permutex2var_epi8(lo0, b, lo1);
        __m512i hi = _mm512_permutex2var_epi8(hi0, b, hi1);
        hi = _mm512_ternarylogic_epi32(hi, b, sign, 0xF8);  // hi | (b & 0x80)
        __m512i w0 = _mm512_unpacklo_epi8(lo, hi), w1 = _mm512_unpackhi_epi8(lo, hi);
        w0 = _mm512_mask_add_epi16(w0, _mm512_test_epi16_mask(w0, nonsign), w0, eadd);
        w1 = _mm512_mask_add_epi16(w1, _mm512_test_epi16_mask(w1, nonsign), w1, eadd);
        _mm512_storeu_si512(out + c, w0);
        _mm512_storeu_si512(out + c + 32, w1);
      }
    }
  }
}

namespace {

template <int MR>
DSV4_AVX512 inline void fp8_dot_tile(const uint8_t* const* rows, int nr, const uint16_t* a,
                                     int64_t lda, int64_t k, float* y, int64_t ldy,
                                     int64_t ahead) {
  const E4m3Bf16Tables& t = e4m3_tables();
  const __m512i lo0 = _mm512_loadu_si512(t.lo.data()), lo1 = _mm512_loadu_si512(t.lo.data() + 64);
  const __m512i hi0 = _mm512_loadu_si512(t.hi.data()), hi1 = _mm512_loadu_si512(t.hi.data() + 64);
  const __m512i sign = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[kPanelRows][MR];
  for (auto& r : acc)
    for (auto& v : r) v = _mm512_setzero_ps();
  for (int64_t c = 0; c < k; c += 64) {
    // Up to 2 rows the activations of the chunk stay in registers; from 3 rows on they are read
    // from L1 by each product.
    constexpr int kHeld = MR <= 2 ? MR : 1;
    __m512bh av[kHeld][2];
    if constexpr (MR <= 2)
      for (int i = 0; i < MR; ++i)
        for (int v = 0; v < 2; ++v) av[i][v] = (__m512bh)_mm512_loadu_si512(a + i * lda + c + 32 * v);
    for (int r = 0; r < kPanelRows; ++r) {
      // Stream the next panel's rows one line per line consumed (short rows: no prefetch ramp).
      prefetch_l2(rows[r] + ahead + c);
      __m512i b = _mm512_loadu_si512(rows[r] + c);
      asm("" : "+v"(b));  // one (possibly split) load: see fp8_row_by_row
      const __m512i lo = _mm512_permutex2var_epi8(lo0, b, lo1);
      const __m512i hi = _mm512_ternarylogic_epi32(_mm512_permutex2var_epi8(hi0, b, hi1), b, sign, 0xF8);
      const __m512bh w0 = (__m512bh)_mm512_unpacklo_epi8(lo, hi);
      const __m512bh w1 = (__m512bh)_mm512_unpackhi_epi8(lo, hi);
      for (int i = 0; i < MR; ++i) {
        acc[r][i] = dpbf16(acc[r][i], w0, held_or_load<MR>(av, a + i * lda + c, i, 0));
        acc[r][i] = dpbf16(acc[r][i], w1, held_or_load<MR>(av, a + i * lda + c, i, 1));
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int r = 0; r < nr; ++r) y[i * ldy + r] = hsum(acc[r][i]);
}

// One activation row (decode), rows [0, nr) one after the other (GemvOrder::Rows): each thread
// reads its rows as one stream in memory order (prefetch_stream). Four sums per row (two
// chunks of 64 per step) keep the vdpbf16ps chains short; the activations come from L1. The sums
// of 16 rows are reduced together (store_hsum16).
DSV4_AVX512 inline void fp8_row_by_row(const uint8_t* w, int64_t ldw, int nr, const uint16_t* a,
                                       int64_t k, float* y, int64_t ahead) {
  const E4m3Bf16Tables& t = e4m3_tables();
  const __m512i lo0 = _mm512_loadu_si512(t.lo.data()), lo1 = _mm512_loadu_si512(t.lo.data() + 64);
  const __m512i hi0 = _mm512_loadu_si512(t.hi.data()), hi1 = _mm512_loadu_si512(t.hi.data() + 64);
  const __m512i sign = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 sums[16];
  for (int r0 = 0; r0 < nr; r0 += 16) {
    const int rows = std::min(16, nr - r0);
    for (int r = 0; r < rows; ++r) {
      const uint8_t* row = w + (r0 + r) * ldw;
      __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
      auto chunk = [&](int64_t cc, int j) DSV4_AVX512 {
        prefetch_stream(row + ahead + cc);
        __m512i b = _mm512_loadu_si512(row + cc);
        // One load, its register copied for the two vpermi2b (which overwrite their index):
        // without the barrier GCC loads the codes three times, each a split load where the
        // checkpoint's tensor is not 64-byte aligned (most are not).
        asm("" : "+v"(b));
        const __m512i lo = _mm512_permutex2var_epi8(lo0, b, lo1);
        const __m512i hi = _mm512_ternarylogic_epi32(_mm512_permutex2var_epi8(hi0, b, hi1), b, sign, 0xF8);
        acc[j] = dpbf16(acc[j], (__m512bh)_mm512_unpacklo_epi8(lo, hi), (__m512bh)_mm512_loadu_si512(a + cc));
        acc[j + 1] = dpbf16(acc[j + 1], (__m512bh)_mm512_unpackhi_epi8(lo, hi), (__m512bh)_mm512_loadu_si512(a + cc + 32));
      };
      for (int64_t c = 0; c < k; c += 128) {  // k % 128 == 0 (linear_fp8 checks)
        chunk(c, 0);
        chunk(c + 64, 2);
      }
      sums[r] = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    }
    store_hsum16(sums, rows, y + r0);
  }
}

}  // namespace

DSV4_AVX512 void fp8_rows_dot(const uint8_t* w, int64_t ldw, int nr, const uint16_t* a,
                              int64_t lda, int64_t m, int64_t k, float* y, int64_t ldy) {
  const int64_t ahead = prefetch_ahead(ldw);
  // One activation row in GemvOrder::Rows (AMD): all rows in memory order (dispatch.h has the
  // numbers). The interleaved tiles share each decoded chunk between activation rows.
  const bool rows_order = m == 1 && gemv_order() == GemvOrder::Rows;
  for_gemv_blocks(nr, rows_order, [&](int n0, int rows) DSV4_AVX512 {
    if (rows_order) {
      fp8_row_by_row(w + n0 * ldw, ldw, rows, a, k, y + n0, ahead);
      return;
    }
    const uint8_t* rp[kPanelRows];
    panel_rows(w + n0 * ldw, ldw, rows, rp);
    for_row_tiles(m, [&](auto mr, int64_t i) DSV4_AVX512 {
      fp8_dot_tile<decltype(mr)::value>(rp, rows, a + i * lda, lda, k, y + i * ldy + n0, ldy, ahead);
    });
  });
}

// BF16 bits of 16 floats, round to nearest even in integer lanes (subnormals kept, unlike
// vcvtne2ps2bf16, which treats them as zero; NaN -> quiet NaN as f32_to_bf16_bits).
DSV4_AVX512 inline __m256i bf16_rne(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), lsb));
  const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF)),
                                                _mm512_set1_epi32(0x7F800000));
  r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(u, _mm512_set1_epi32(0x00400000)));
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
}

DSV4_AVX512 void scale_act_bf16(const float* a, const uint8_t* scales, int64_t k, uint16_t* out) {
  for (int64_t kb = 0; kb < k; kb += 128) {
    const __m512 s = _mm512_set1_ps(e8m0_value(scales[kb / 128]));  // 2^(e-127), also e = 0
    for (int64_t p = kb; p < kb + 128; p += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + p),
                          bf16_rne(_mm512_mul_ps(_mm512_loadu_ps(a + p), s)));
  }
}

}  // namespace DSV4_AVX512_NS
}  // namespace dsv4::cpu
