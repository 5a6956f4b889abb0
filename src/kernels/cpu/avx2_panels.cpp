// AVX2 + FMA + F16C tier of the panel kernels (linear_kernels.h). There is no vdpbf16ps: every
// product is formed in float32 after an exact widening (BF16 << 16; E4M3 and E2M1 values have
// 4 and 3 significant bits), so products of BF16 values are exact and only the float32 sums round.
//   E4M3 -> float: the code moved into an IEEE half, fp16 = ((b & 0x80) << 8) | ((b & 0x7F) << 7)
//     (unpack with zero bytes puts b << 8 in a word, an arithmetic shift by one and a mask give
//     the pattern), vcvtph2ps; that is the value times 2^-8 (subnormals included), the 2^8 is
//     applied once to the sums (dot) or per element (decode, exact).
//   E2M1 -> value: vpshufb of a 16-entry table of 2 * value as int8, sign-extended to int32,
//     cvtdq2ps; the 1/2 is folded into the block scale.
//   FP8 panel order: one 32-byte load of codes, unpacklo/unpackhi with zero, gives 16 half words
//     for panel positions [16u, 16u + 16) and [32 + 16u, 32 + 16u + 16) of its 64-code chunk.
//   FP4 panel order: 8 consecutive panel positions are the low (or high) nibbles of 8
//     consecutive bytes, and every 32 positions of a 128 chunk share one E8M0 block (lane l).
// The decoders are bit-identical to the scalar twins (same float32 products, same RNE rounding).
#include "kernels/cpu/simd_avx2.h"  // first: wraps <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/formats.h"
#include "kernels/cpu/linear_kernels.h"

namespace dsv4::cpu::avx2 {
namespace {

// e8m0_value(s) and half of it (the E2M1 table holds 2 * value), indexed by the scale byte.
struct E8m0Tables {
  float full[256], half[256];
  E8m0Tables() {
    for (int s = 0; s < 256; ++s) {
      full[s] = e8m0_value(static_cast<uint8_t>(s));
      half[s] = full[s] * 0.5f;
    }
  }
};
const E8m0Tables& e8m0_tables() {
  static const E8m0Tables t;
  return t;
}

// 2 * e2m1_value(nibble) as int8, in both 128-bit lanes (vpshufb indexes per lane).
DSV4_AVX2 inline __m256i e2m1_x2_table() {
  return _mm256_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12,  //
                          0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
}

// 32 E4M3 codes -> the half patterns of panel positions [16u, +16) (lo) and [32 + 16u, +16) (hi)
// of their 64-code chunk (the load at chunk offset 32u).
DSV4_AVX2 inline void e4m3_to_half(__m256i x, __m256i* lo, __m256i* hi) {
  const __m256i z = _mm256_setzero_si256();
  const __m256i keep = _mm256_set1_epi16(static_cast<int16_t>(0xBFFF));
  *lo = _mm256_and_si256(_mm256_srai_epi16(_mm256_unpacklo_epi8(z, x), 1), keep);
  *hi = _mm256_and_si256(_mm256_srai_epi16(_mm256_unpackhi_epi8(z, x), 1), keep);
}

DSV4_AVX2 inline __m256 half_lo(__m256i h) { return _mm256_cvtph_ps(_mm256_castsi256_si128(h)); }
DSV4_AVX2 inline __m256 half_hi(__m256i h) { return _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)); }

DSV4_AVX2 inline void zero_row(uint16_t* out, int64_t n) {
  int64_t p = 0;
  for (; p + 16 <= n; p += 16) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + p), _mm256_setzero_si256());
  for (; p < n; ++p) out[p] = 0;
}
DSV4_AVX2 inline void zero_row(float* out, int64_t n) {
  int64_t p = 0;
  for (; p + 8 <= n; p += 8) _mm256_storeu_ps(out + p, _mm256_setzero_ps());
  for (; p < n; ++p) out[p] = 0.0f;
}

// Two runs of 8 decoded values, at a and at b, into a panel: BF16 words (RNE), or float32 (the
// FMA path's panel) rounded the same way only where `round`: a block whose scale may put products
// outside the range where they are exact BF16 values (linear_kernels.h, decode_fp8_f32).
DSV4_AVX2 inline void put_pair(uint16_t* a, uint16_t* b, __m256 va, __m256 vb, bool) {
  const __m256i p = bf16_pack(va, vb);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(a), _mm256_castsi256_si128(p));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(b), _mm256_extracti128_si256(p, 1));
}
DSV4_AVX2 inline void put_pair(float* a, float* b, __m256 va, __m256 vb, bool round) {
  _mm256_storeu_ps(a, round ? bf16_round_ps(va) : va);
  _mm256_storeu_ps(b, round ? bf16_round_ps(vb) : vb);
}
DSV4_AVX2 inline bool outside_fast_scales(uint8_t e) { return e < kMinFastScale || e > kMaxFastScale; }

DSV4_AVX2 inline void store16(uint16_t* out, __m256i v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), v);
}

// One 128-value FP4 chunk (64 packed bytes at `row`): the 2 * value int8 codes, laid out so that
// panel positions 32v + 8l + j (j < 8) are bytes [64 * (v >> 1) + 16 * l + 8 * (v & 1) + j].
DSV4_AVX2 inline void e2m1_chunk_codes(const uint8_t* row, __m256i table, int8_t* buf) {
  const __m256i nib = _mm256_set1_epi8(0x0F);
  for (int t = 0; t < 2; ++t) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 32 * t));
    const __m256i ln = _mm256_and_si256(x, nib);
    const __m256i hn = _mm256_and_si256(_mm256_srli_epi16(x, 4), nib);
    _mm256_store_si256(reinterpret_cast<__m256i*>(buf + 32 * t), _mm256_shuffle_epi8(table, ln));
    _mm256_store_si256(reinterpret_cast<__m256i*>(buf + 64 + 32 * t), _mm256_shuffle_epi8(table, hn));
  }
}

// The 8 int8 codes at buf (see above) as float32 lanes.
DSV4_AVX2 inline __m256 codes_to_ps(const int8_t* buf) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(buf))));
}

// decode_fp8 into BF16 or float32 panels (put_pair).
template <class Out>
DSV4_AVX2 inline void decode_fp8_to(const uint8_t* w, int64_t ldw, const uint8_t* scales, int nr,
                                    int64_t k, Out* panel, int64_t ldp) {
  const float* e8 = e8m0_tables().full;
  const __m256 two8 = _mm256_set1_ps(256.0f);
  for (int r = 0; r < kPanelRows; ++r) {
    Out* out = panel + r * ldp;
    if (r >= nr) {
      zero_row(out, k);
      continue;
    }
    const uint8_t* row = w + r * ldw;
    for (int64_t kb = 0; kb < k; kb += 128) {
      const __m256 s = _mm256_set1_ps(e8[scales[kb / 128]]);
      const bool round = outside_fast_scales(scales[kb / 128]);
      for (int64_t c = kb; c < kb + 128; c += 64) {
        for (int u = 0; u < 2; ++u) {
          __m256i lo, hi;
          e4m3_to_half(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + c + 32 * u)), &lo, &hi);
          // (half * 2^8) is the E4M3 value exactly; times the scale as the scalar twin does.
          const __m256 l0 = _mm256_mul_ps(_mm256_mul_ps(half_lo(lo), two8), s);
          const __m256 l1 = _mm256_mul_ps(_mm256_mul_ps(half_hi(lo), two8), s);
          const __m256 h0 = _mm256_mul_ps(_mm256_mul_ps(half_lo(hi), two8), s);
          const __m256 h1 = _mm256_mul_ps(_mm256_mul_ps(half_hi(hi), two8), s);
          put_pair(out + c + 16 * u, out + c + 16 * u + 8, l0, l1, round);
          put_pair(out + c + 32 + 16 * u, out + c + 40 + 16 * u, h0, h1, round);
        }
      }
    }
  }
}

}  // namespace

DSV4_AVX2 void decode_fp8(const uint8_t* w, int64_t ldw, const uint8_t* scales, int nr, int64_t k,
                          uint16_t* panel, int64_t ldp) {
  decode_fp8_to(w, ldw, scales, nr, k, panel, ldp);
}
DSV4_AVX2 void decode_fp8_f32(const uint8_t* w, int64_t ldw, const uint8_t* scales, int nr,
                              int64_t k, float* panel, int64_t ldp) {
  decode_fp8_to(w, ldw, scales, nr, k, panel, ldp);
}

namespace {

// 4 weight rows x MR activation rows. Activations of the current 64 chunk are widened to float32
// once into `af` (shared by the 4 rows); MR == 1 keeps two accumulators per row (8 chains).
template <int MR>
DSV4_AVX2 inline void fp8_dot_tile(const uint8_t* const* rows, int nr, const uint16_t* a,
                                   int64_t lda, int64_t k, float* y, int64_t ldy, int64_t ahead) {
  constexpr int NA = MR == 1 ? 2 : 1;
  alignas(32) float af[MR][64];
  __m256 acc[kPanelRows][MR][NA];
  for (auto& r : acc)
    for (auto& i : r)
      for (auto& v : i) v = _mm256_setzero_ps();
  for (int64_t c = 0; c < k; c += 64) {
    for (int i = 0; i < MR; ++i)
      for (int g = 0; g < 8; ++g) _mm256_store_ps(af[i] + 8 * g, bf16x8_to_ps(a + i * lda + c + 8 * g));
    for (int r = 0; r < kPanelRows; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(rows[r] + ahead + c), _MM_HINT_T0);
      for (int u = 0; u < 2; ++u) {
        __m256i lo, hi;
        e4m3_to_half(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[r] + c + 32 * u)), &lo, &hi);
        const __m256 w0 = half_lo(lo), w1 = half_hi(lo), w2 = half_lo(hi), w3 = half_hi(hi);
        for (int i = 0; i < MR; ++i) {
          __m256& s = acc[r][i][u % NA];
          s = _mm256_fmadd_ps(w0, _mm256_load_ps(af[i] + 16 * u), s);
          s = _mm256_fmadd_ps(w1, _mm256_load_ps(af[i] + 16 * u + 8), s);
          s = _mm256_fmadd_ps(w2, _mm256_load_ps(af[i] + 32 + 16 * u), s);
          s = _mm256_fmadd_ps(w3, _mm256_load_ps(af[i] + 40 + 16 * u), s);
        }
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int r = 0; r < nr; ++r) {
      __m256 s = acc[r][i][0];
      if constexpr (NA == 2) s = _mm256_add_ps(s, acc[r][i][1]);
      y[i * ldy + r] = 256.0f * hsum(s);  // the weights were E4M3 * 2^-8
    }
}

// One activation row (decode), rows [0, nr) one after the other (GemvOrder::Rows, as the
// AVX-512 fp8_row_by_row): each thread reads its rows as one stream in memory order
// (prefetch_stream), the activations widened to float32 once per call (af, k values from L1 /
// L2); four sums per row, one per decoded quarter of a 32-byte load.
DSV4_AVX2 inline void fp8_row_by_row(const uint8_t* w, int64_t ldw, int nr, const float* af, int64_t k, float* y,
                                     int64_t ahead) {
  for (int r = 0; r < nr; ++r) {
    const uint8_t* row = w + r * ldw;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t c = 0; c < k; c += 64) {
      prefetch_stream(row + ahead + c);
      for (int u = 0; u < 2; ++u) {
        __m256i lo, hi;
        e4m3_to_half(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + c + 32 * u)), &lo, &hi);
        acc[0] = _mm256_fmadd_ps(half_lo(lo), _mm256_load_ps(af + c + 16 * u), acc[0]);
        acc[1] = _mm256_fmadd_ps(half_hi(lo), _mm256_load_ps(af + c + 16 * u + 8), acc[1]);
        acc[2] = _mm256_fmadd_ps(half_lo(hi), _mm256_load_ps(af + c + 32 + 16 * u), acc[2]);
        acc[3] = _mm256_fmadd_ps(half_hi(hi), _mm256_load_ps(af + c + 40 + 16 * u), acc[3]);
      }
    }
    // the weights were E4M3 * 2^-8
    y[r] = 256.0f * hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  }
}

}  // namespace

DSV4_AVX2 void fp8_rows_dot(const uint8_t* w, int64_t ldw, int nr, const uint16_t* a, int64_t lda,
                            int64_t m, int64_t k, float* y, int64_t ldy) {
  const int64_t ahead = kPanelRows * ldw;
  // One activation row in GemvOrder::Rows (AMD): all rows in memory order, as at the AVX-512
  // levels (docs/performance.md has the numbers). The tiles share each decoded chunk between
  // activation rows.
  if (m == 1 && gemv_order() == GemvOrder::Rows) {
    thread_local AlignedVector<float> t_af;
    float* af = grow(t_af, static_cast<size_t>(k));
    for (int64_t p = 0; p < k; p += 8) _mm256_store_ps(af + p, bf16x8_to_ps(a + p));
    fp8_row_by_row(w, ldw, nr, af, k, y, prefetch_ahead(ldw));
    return;
  }
  for_gemv_blocks(nr, false, [&](int n0, int rows) DSV4_AVX2 {  // the tiles interleave a panel's rows
    const uint8_t* rp[kPanelRows];
    panel_rows(w + n0 * ldw, ldw, rows, rp);
    int64_t i = 0;
    for (; i + 2 <= m; i += 2) fp8_dot_tile<2>(rp, rows, a + i * lda, lda, k, y + i * ldy + n0, ldy, ahead);
    if (i < m) fp8_dot_tile<1>(rp, rows, a + i * lda, lda, k, y + i * ldy + n0, ldy, ahead);
  });
}

DSV4_AVX2 void scale_act_bf16(const float* a, const uint8_t* scales, int64_t k, uint16_t* out) {
  const float* e8 = e8m0_tables().full;
  for (int64_t kb = 0; kb < k; kb += 128) {
    const __m256 s = _mm256_set1_ps(e8[scales[kb / 128]]);
    for (int64_t p = kb; p < kb + 128; p += 16)
      store16(out + p, bf16_pack(_mm256_mul_ps(_mm256_loadu_ps(a + p), s),
                                 _mm256_mul_ps(_mm256_loadu_ps(a + p + 8), s)));
  }
}

namespace {

// decode_fp4 into BF16 or float32 panels (put_pair).
template <class Out>
DSV4_AVX2 inline void decode_fp4_to(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds,
                                    int nr, int64_t k, Out* panel, int64_t ldp) {
  const float* half = e8m0_tables().half;
  const __m256i table = e2m1_x2_table();
  alignas(32) int8_t buf[128];
  for (int r = 0; r < kPanelRows; ++r) {
    Out* out = panel + r * ldp;
    if (r >= nr) {
      zero_row(out, k);
      continue;
    }
    const uint8_t* row = w + r * ldw;
    const uint8_t* srow = s + r * lds;
    for (int64_t c = 0; c < k; c += 128) {
      e2m1_chunk_codes(row + c / 2, table, buf);
      for (int l = 0; l < 4; ++l) {
        // (2 * value) * (scale / 2): the same exact float32 product as value * scale; code 8
        // (-0) is the int8 0, so it decodes to +0 as in the scalar twin (fp4_panel_bits).
        const __m256 sc = _mm256_set1_ps(half[srow[c / 32 + l]]);
        __m256 v[4];
        for (int q = 0; q < 4; ++q) {
          const int off = 64 * (q >> 1) + 16 * l + 8 * (q & 1);
          v[q] = _mm256_mul_ps(codes_to_ps(buf + off), sc);
        }
        // Positions 32v + 8l: v0 .. v3.
        const bool round = outside_fast_scales(srow[c / 32 + l]);
        Out* o = out + c + 8 * l;
        put_pair(o, o + 32, v[0], v[1], round);
        put_pair(o + 64, o + 96, v[2], v[3], round);
      }
    }
  }
}

}  // namespace

DSV4_AVX2 void decode_fp4(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds, int nr,
                          int64_t k, uint16_t* panel, int64_t ldp) {
  decode_fp4_to(w, ldw, s, lds, nr, k, panel, ldp);
}
DSV4_AVX2 void decode_fp4_f32(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds, int nr,
                              int64_t k, float* panel, int64_t ldp) {
  decode_fp4_to(w, ldw, s, lds, nr, k, panel, ldp);
}

namespace {

template <int MR>
DSV4_AVX2 inline void fp4_dot_tile(const uint8_t* const* rows, const uint8_t* const* srows, int nr,
                                   const uint16_t* a, int64_t lda, int64_t k, float* y, int64_t ldy,
                                   int64_t ahead, int64_t sahead) {
  const float* half = e8m0_tables().half;
  const __m256i table = e2m1_x2_table();
  alignas(32) float af[MR][128];
  alignas(32) int8_t buf[128];
  __m256 acc[kPanelRows][MR];
  for (auto& r : acc)
    for (auto& v : r) v = _mm256_setzero_ps();
  for (int64_t c = 0; c < k; c += 128) {
    for (int i = 0; i < MR; ++i)
      for (int g = 0; g < 16; ++g) _mm256_store_ps(af[i] + 8 * g, bf16x8_to_ps(a + i * lda + c + 8 * g));
    for (int r = 0; r < kPanelRows; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(rows[r] + ahead + c / 2), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(srows[r] + sahead + c / 32), _MM_HINT_T0);
      e2m1_chunk_codes(rows[r] + c / 2, table, buf);
      const uint8_t* sb = srows[r] + c / 32;
      for (int l = 0; l < 4; ++l) {
        const __m256 w0 = codes_to_ps(buf + 16 * l), w1 = codes_to_ps(buf + 16 * l + 8);
        const __m256 w2 = codes_to_ps(buf + 64 + 16 * l), w3 = codes_to_ps(buf + 72 + 16 * l);
        const __m256 sc = _mm256_broadcast_ss(half + sb[l]);
        for (int i = 0; i < MR; ++i) {
          __m256 part = _mm256_mul_ps(w0, _mm256_load_ps(af[i] + 8 * l));
          part = _mm256_fmadd_ps(w1, _mm256_load_ps(af[i] + 32 + 8 * l), part);
          part = _mm256_fmadd_ps(w2, _mm256_load_ps(af[i] + 64 + 8 * l), part);
          part = _mm256_fmadd_ps(w3, _mm256_load_ps(af[i] + 96 + 8 * l), part);
          acc[r][i] = _mm256_fmadd_ps(part, sc, acc[r][i]);
        }
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int r = 0; r < nr; ++r) y[i * ldy + r] = hsum(acc[r][i]);
}

}  // namespace

DSV4_AVX2 void fp4_rows_dot(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds, int nr,
                            const uint16_t* a, int64_t lda, int64_t m, int64_t k, float* y,
                            int64_t ldy) {
  const int64_t ahead = kPanelRows * ldw, sahead = kPanelRows * lds;
  for_gemv_blocks(nr, false, [&](int n0, int rows) DSV4_AVX2 {  // the tiles interleave a panel's rows
    const Fp4RowPointers ptr(w + n0 * ldw, ldw, s + n0 * lds, lds, rows);
    int64_t i = 0;
    for (; i + 2 <= m; i += 2)
      fp4_dot_tile<2>(ptr.rows, ptr.srows, rows, a + i * lda, lda, k, y + i * ldy + n0, ldy, ahead, sahead);
    if (i < m) fp4_dot_tile<1>(ptr.rows, ptr.srows, rows, a + i * lda, lda, k, y + i * ldy + n0, ldy, ahead, sahead);
  });
}

namespace {

// BF16 x BF16 without a shuffle: the even words of a 32-bit lane widen by a shift, the odd words
// by a mask, for weights and activations alike, so lanes pair up as they should.
template <int MR>
DSV4_AVX2 inline void dot_bf16_tile(const uint16_t* panel, int64_t ldp, int nr, const uint16_t* a,
                                    int64_t lda, int64_t kp, float* y, int64_t ldy) {
  const __m256i odd = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  __m256 acc[kPanelRows][MR];
  for (auto& r : acc)
    for (auto& v : r) v = _mm256_setzero_ps();
  for (int64_t p = 0; p < kp; p += 16) {
    __m256 ae[MR], ao[MR];
    for (int i = 0; i < MR; ++i) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i * lda + p));
      ae[i] = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
      ao[i] = _mm256_castsi256_ps(_mm256_and_si256(v, odd));
    }
    for (int r = 0; r < kPanelRows; ++r) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + r * ldp + p));
      const __m256 we = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
      const __m256 wo = _mm256_castsi256_ps(_mm256_and_si256(v, odd));
      for (int i = 0; i < MR; ++i) {
        acc[r][i] = _mm256_fmadd_ps(we, ae[i], acc[r][i]);
        acc[r][i] = _mm256_fmadd_ps(wo, ao[i], acc[r][i]);
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int r = 0; r < nr; ++r) y[i * ldy + r] = hsum(acc[r][i]);
}

// Four panel rows (clamped: rows >= nr repeat the last, none past nr is read) x MR activation rows
// over panel positions [p0, p1); the 4 x MR vector partial sums live in `part` between K chunks,
// the horizontal sums happen after the last chunk.
template <int MR>
DSV4_AVX2 inline void dot_f32_quad(const float* panel, int64_t ldp, int nr, const float* a,
                                   int64_t lda, int64_t p0, int64_t p1, float* part, bool first,
                                   bool last, float* y, int64_t ldy) {
  const float* rows[4];
  for (int r = 0; r < 4; ++r) rows[r] = panel + std::min(r, nr - 1) * ldp;
  __m256 acc[4][MR];
  for (int r = 0; r < 4; ++r)
    for (int i = 0; i < MR; ++i)
      acc[r][i] = first ? _mm256_setzero_ps() : _mm256_load_ps(part + 8 * (r * MR + i));
  for (int64_t p = p0; p < p1; p += 8) {
    __m256 av[MR];
    for (int i = 0; i < MR; ++i) av[i] = _mm256_loadu_ps(a + i * lda + p);
    for (int r = 0; r < 4; ++r) {
      __m256 wv = _mm256_loadu_ps(rows[r] + p);
      asm("" : "+x"(wv));  // one load per weight vector, not one per FMA
      for (int i = 0; i < MR; ++i) acc[r][i] = _mm256_fmadd_ps(wv, av[i], acc[r][i]);
    }
  }
  if (last) {
    for (int i = 0; i < MR; ++i)
      for (int r = 0; r < nr; ++r) y[i * ldy + r] = hsum(acc[r][i]);
  } else {
    for (int r = 0; r < 4; ++r)
      for (int i = 0; i < MR; ++i) _mm256_store_ps(part + 8 * (r * MR + i), acc[r][i]);
  }
}

// BF16 weight rows (clamped pointers: rows >= nr repeat the last) x float32 activations; MR == 1
// keeps two accumulators per row. The K tail (k % (8 * NA)) is summed in scalar.
template <int MR>
DSV4_AVX2 inline void dot_bf16w_tile(const uint16_t* const* wr, int nr, const float* a, int64_t lda,
                                     int64_t k, float* y, int64_t ldy) {
  constexpr int NA = MR == 1 ? 2 : 1;
  constexpr int64_t kStep = 8 * NA;
  __m256 acc[kPanelRows][MR][NA];
  for (auto& r : acc)
    for (auto& i : r)
      for (auto& v : i) v = _mm256_setzero_ps();
  const int64_t kv = k / kStep * kStep;
  for (int64_t p = 0; p < kv; p += kStep) {
    for (int u = 0; u < NA; ++u) {
      __m256 av[MR];
      for (int i = 0; i < MR; ++i) av[i] = _mm256_loadu_ps(a + i * lda + p + 8 * u);
      for (int r = 0; r < kPanelRows; ++r) {
        const __m256 wv = bf16x8_to_ps(wr[r] + p + 8 * u);
        for (int i = 0; i < MR; ++i) acc[r][i][u] = _mm256_fmadd_ps(wv, av[i], acc[r][i][u]);
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int r = 0; r < nr; ++r) {
      __m256 s = acc[r][i][0];
      if constexpr (NA == 2) s = _mm256_add_ps(s, acc[r][i][1]);
      float tail = 0.0f;
      for (int64_t p = kv; p < k; ++p) tail += bf16_bits_to_f32(wr[r][p]) * a[i * lda + p];
      y[i * ldy + r] = hsum(s) + tail;
    }
}

// One activation row (decode), rows [0, nr) one after the other (GemvOrder::Rows, as the
// AVX-512 dot_f32_row_by_row): each thread reads its rows as one stream in memory order
// (prefetch_stream); four sums per row. The K tail (k % 32) is summed in scalar.
DSV4_AVX2 inline void dot_bf16w_row_by_row(const uint16_t* w, int64_t ldw, int nr, const float* a, int64_t k,
                                           float* y, int64_t ahead) {
  const int64_t kv = k / 32 * 32;
  for (int r = 0; r < nr; ++r) {
    const uint16_t* row = w + r * ldw;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t p = 0; p < kv; p += 32) {
      prefetch_stream(reinterpret_cast<const char*>(row + p) + ahead);
      for (int j = 0; j < 4; ++j)
        acc[j] = _mm256_fmadd_ps(bf16x8_to_ps(row + p + 8 * j), _mm256_loadu_ps(a + p + 8 * j), acc[j]);
    }
    float tail = 0.0f;
    for (int64_t p = kv; p < k; ++p) tail += bf16_bits_to_f32(row[p]) * a[p];
    y[r] = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]))) + tail;
  }
}

}  // namespace

DSV4_AVX2 void dot_bf16(const uint16_t* panel, int64_t ldp, int nr, const uint16_t* a, int64_t lda,
                        int64_t m, int64_t kp, float* y, int64_t ldy) {
  int64_t i = 0;
  for (; i + 2 <= m; i += 2) dot_bf16_tile<2>(panel, ldp, nr, a + i * lda, lda, kp, y + i * ldy, ldy);
  if (i < m) dot_bf16_tile<1>(panel, ldp, nr, a + i * lda, lda, kp, y + i * ldy, ldy);
}

DSV4_AVX2 void widen_bf16(const uint16_t* x, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, bf16x8_to_ps(x + i));
  for (; i < n; ++i) out[i] = bf16_bits_to_f32(x[i]);
}

DSV4_AVX2 void dot_f32(const float* panel, int64_t ldp, int nr, const float* a, int64_t lda,
                       int64_t m, int64_t kp, float* y, int64_t ldy) {
  // K chunks keep a 4-row panel slice (8 KiB) in L1 while activation rows stream from L2.
  constexpr int64_t kChunk = 512;
  const int64_t mpad = (m + 2) / 3 * 3;
  thread_local AlignedVector<float> t_part;
  float* part = grow(t_part, static_cast<size_t>(2 * mpad * 32));
  for (int64_t p0 = 0; p0 < kp; p0 += kChunk) {
    const int64_t p1 = std::min(kp, p0 + kChunk);
    const bool first = p0 == 0, last = p1 == kp;
    for (int h = 0; h < kWidePanelRows / 4; ++h) {
      const int rows = std::min(4, nr - 4 * h);
      if (rows <= 0) break;
      const float* ph = panel + 4 * h * ldp;
      float* yh = y + 4 * h;
      float* parth = part + h * mpad * 32;
      int64_t i = 0;
      for (; i + 3 <= m; i += 3)
        dot_f32_quad<3>(ph, ldp, rows, a + i * lda, lda, p0, p1, parth + 32 * i, first, last, yh + i * ldy, ldy);
      if (m - i == 2)
        dot_f32_quad<2>(ph, ldp, rows, a + i * lda, lda, p0, p1, parth + 32 * i, first, last, yh + i * ldy, ldy);
      if (m - i == 1)
        dot_f32_quad<1>(ph, ldp, rows, a + i * lda, lda, p0, p1, parth + 32 * i, first, last, yh + i * ldy, ldy);
    }
  }
}

DSV4_AVX2 void dot_bf16w_f32(const uint16_t* w, int64_t ldw, int nr, const float* a, int64_t lda,
                             int64_t m, int64_t k, float* y, int64_t ldy) {
  if (m == 1 && gemv_order() == GemvOrder::Rows) {  // one activation row on AMD: rows in memory order
    dot_bf16w_row_by_row(w, ldw, nr, a, k, y, prefetch_ahead(ldw * 2));
    return;
  }
  for_gemv_blocks(nr, false, [&](int n0, int rows) DSV4_AVX2 {
    const uint16_t* wr[kPanelRows];
    panel_rows(w + n0 * ldw, ldw, rows, wr);
    int64_t i = 0;
    for (; i + 2 <= m; i += 2) dot_bf16w_tile<2>(wr, rows, a + i * lda, lda, k, y + i * ldy + n0, ldy);
    if (i < m) dot_bf16w_tile<1>(wr, rows, a + i * lda, lda, k, y + i * ldy + n0, ldy);
  });
}

}  // namespace dsv4::cpu::avx2
