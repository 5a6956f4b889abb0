// FP4 E2M1 weight rows (two codes per byte, low nibble = even k) -> BF16 with the per-32 scale
// folded in (exact).
//   AVX-512 (PanelOrder::Fp4Words): each 64-byte load covers 128 K values, and its 128-bit lane L
//   is exactly the 32-value scale block L. Its 16-bit word j holds K = 4j .. 4j + 3 (nibble q =
//   K 4j + q). vpermw looks a word up in a 32-word table by the word's low 5 bits, so shifting the
//   words right by 4q and looking them up in the table of the 16 BF16 patterns written twice
//   (bit 4, the next nibble's low bit, selects the copy) yields the BF16 values of nibble q in
//   place: 3 shifts and 4 permutes per 128 values, no masking, no byte interleave. The scale of
//   each lane then goes into the exponent field with one saturating subtract per vector from a
//   pre-biased table (panels, E2m1Bf16Tables::biased), or is applied once per block sum
//   (rows-dot).
//   AVX2 / scalar (PanelOrder::Fp4): the byte-table decode of avx2_panels.cpp and its twin.
#include "kernels/cpu/simd_avx512.h"  // first: wraps <immintrin.h>

#include <algorithm>
#include <array>

#include "kernels/cpu/formats.h"
#include "kernels/cpu/linear_kernels.h"

namespace dsv4::cpu {
namespace {

// The panel decode's pre-biased table (decode_fp4): code i % 16 as the BF16 of value x 2^119,
// code 8 (-0) as +0. A panel word is then that minus (246 - scale) << 7 with an unsigned
// saturating subtract: for a non-zero code the exponent field (127 + e + 119, e in [-1, 2]) ends
// at e + scale, exactly value x 2^(scale - 127) while scale is in [kMinFastScale, kMaxFastScale]
// = [10, 246], with no borrow into the mantissa or the sign; a zero word stays zero. That keeps
// the zero test off the shuffle port, which the lookups already fill.
constexpr int kDecodeBias = 119;
static_assert(kMaxFastScale == 127 + kDecodeBias, "the subtrahend (246 - scale) must stay >= 0");

struct E2m1Bf16Tables {
  alignas(64) std::array<uint16_t, 32> words{};   // BF16 of code i % 16
  alignas(64) std::array<uint16_t, 32> biased{};  // see above
  E2m1Bf16Tables() {
    for (int i = 0; i < 32; ++i) {
      const auto code = static_cast<uint8_t>(i % 16);
      words[i] = f32_to_bf16_bits(e2m1_value(code));
      biased[i] = (code & 7) == 0 ? 0 : f32_to_bf16_bits(e2m1_value(code) * pow2_f32(kDecodeBias));
    }
  }
};
const E2m1Bf16Tables& e2m1_tables() {
  static const E2m1Bf16Tables t;
  return t;
}

}  // namespace

#if !defined(DSV4_AVX512_FMA_PASS)  // the scalar / AVX2 tiers: in the first pass only
namespace scalar {

void decode_fp4(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds, int nr, int64_t k,
                uint16_t* panel, int64_t ldp) {
  const int64_t kp = (k + 31) / 32 * 32;
  for (int r = 0; r < kPanelRows; ++r) {
    uint16_t* out = panel + r * ldp;
    for (int64_t p = 0; p < kp; ++p) {
      if (r >= nr) {
        out[p] = 0;
        continue;
      }
      const int64_t kk = panel_position_to_k(PanelOrder::Fp4, p);
      const uint8_t byte = w[r * ldw + kk / 2];
      const uint8_t code = (kk % 2 == 0) ? (byte & 0x0F) : (byte >> 4);
      out[p] = fp4_panel_bits(code, s[r * lds + kk / 32]);
    }
  }
}

void fp4_rows_dot(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds, int nr,
                  const uint16_t* a, int64_t lda, int64_t m, int64_t k, float* y, int64_t ldy) {
  for (int64_t i = 0; i < m; ++i) {
    for (int r = 0; r < nr; ++r) {
      float acc = 0.0f;
      for (int64_t p = 0; p < k; ++p) {
        const int64_t kk = panel_position_to_k(PanelOrder::Fp4, p);
        const uint8_t byte = w[r * ldw + kk / 2];
        const float v = e2m1_value(kk % 2 == 0 ? (byte & 0x0F) : (byte >> 4)) *
                        e8m0_value(s[r * lds + kk / 32]);
        acc += v * bf16_bits_to_f32(a[i * lda + p]);
      }
      y[i * ldy + r] = acc;
    }
  }
}

}  // namespace scalar
#endif  // !DSV4_AVX512_FMA_PASS

namespace DSV4_AVX512_NS {
namespace {

// The BF16 values (unscaled) of the 128 codes in b: v[q] word j = code of K 4j + q.
DSV4_AVX512 inline void fp4_words_to_bf16(__m512i b, __m512i table, __m512i* v) {
  v[0] = _mm512_permutexvar_epi16(b, table);
  v[1] = _mm512_permutexvar_epi16(_mm512_srli_epi16(b, 4), table);
  v[2] = _mm512_permutexvar_epi16(_mm512_srli_epi16(b, 8), table);
  v[3] = _mm512_permutexvar_epi16(_mm512_srli_epi16(b, 12), table);
}

}  // namespace

DSV4_AVX512 void decode_fp4(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds, int nr,
                            int64_t k, uint16_t* panel, int64_t ldp) {
  const __m512i table = _mm512_load_si512(e2m1_tables().biased.data());
  // Word i of the scale vector comes from scale byte i / 8 (one per 128-bit lane).
  const __m512i spread = _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1,
                                          1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m128i top = _mm_set1_epi16(127 + kDecodeBias);
  for (int r = 0; r < kPanelRows; ++r) {
    uint16_t* out = panel + r * ldp;
    if (r >= nr) {
      for (int64_t p = 0; p < k; p += 32) _mm512_storeu_si512(out + p, _mm512_setzero_si512());
      continue;
    }
    const uint8_t* row = w + r * ldw;
    const uint8_t* srow = s + r * lds;
    for (int64_t c = 0; c < k; c += 128) {
      if (std::any_of(srow + c / 32, srow + c / 32 + 4, [](uint8_t e) {
            return e < kMinFastScale || e > kMaxFastScale;
          })) {
        // Results would leave the normal BF16 range the exponent add assumes: per element.
        for (int64_t p = c; p < c + 128; ++p) {
          const int64_t kk = panel_position_to_k(PanelOrder::Fp4Words, p);
          const uint8_t b = row[kk / 2];
          out[p] = fp4_panel_bits(static_cast<uint8_t>(kk % 2 ? b >> 4 : b & 15), srow[kk / 32]);
        }
        continue;
      }
      int32_t s4;
      std::memcpy(&s4, srow + c / 32, 4);
      __m128i e = _mm_cvtepu8_epi16(_mm_cvtsi32_si128(s4));
      e = _mm_slli_epi16(_mm_sub_epi16(top, e), 7);
      const __m512i esub = _mm512_permutexvar_epi16(spread, _mm512_zextsi128_si512(e));
      __m512i v[4];
      fp4_words_to_bf16(_mm512_loadu_si512(row + c / 2), table, v);
      for (int i = 0; i < 4; ++i) _mm512_storeu_si512(out + c + 32 * i, _mm512_subs_epu16(v[i], esub));
    }
  }
}

namespace {

template <int MR>
DSV4_AVX512 inline void fp4_dot_tile(const uint8_t* const* rows, const uint8_t* const* srows,
                                     int nr, const uint16_t* a, int64_t lda, int64_t k, float* y,
                                     int64_t ldy, int64_t ahead, int64_t sahead) {
  const __m512i table = _mm512_load_si512(e2m1_tables().words.data());
  __m512 acc[kPanelRows][MR];
  for (auto& r : acc)
    for (auto& v : r) v = _mm512_setzero_ps();
  // Block scales: built once per row and 512 K values (Fp4BlockScales).
  __m512 sc16[kPanelRows];
  // Chunk j of the 4 of one scale load, K = c on.
  auto step = [&](int64_t c, int j) DSV4_AVX512 {
    // Up to 2 rows the activations of the chunk stay in registers; from 3 rows on they are read
    // from L1 by each product (the sums alone take 4 x MR registers).
    constexpr int kHeld = MR <= 2 ? MR : 1;
    __m512bh av[kHeld][4];
    if constexpr (MR <= 2)
      for (int i = 0; i < MR; ++i)
        for (int v = 0; v < 4; ++v) av[i][v] = (__m512bh)_mm512_loadu_si512(a + i * lda + c + 32 * v);
    for (int r = 0; r < kPanelRows; ++r) {
      // Rows are short (K / 2 bytes): stream the next panel's rows one line per line consumed,
      // so the prefetchers never have to ramp up on a fresh 2 KiB stream.
      _mm_prefetch(reinterpret_cast<const char*>(rows[r] + ahead + c / 2), _MM_HINT_T1);
      if (j == 0) _mm_prefetch(reinterpret_cast<const char*>(srows[r] + sahead + c / 32), _MM_HINT_T0);
      __m512i wv[4];
      fp4_words_to_bf16(_mm512_loadu_si512(rows[r] + c / 2), table, wv);
      const __m512bh w0 = (__m512bh)wv[0], w1 = (__m512bh)wv[1], w2 = (__m512bh)wv[2],
                     w3 = (__m512bh)wv[3];
      const __m512 sv = Fp4BlockScales::lane(j, sc16[r]);
      for (int i = 0; i < MR; ++i) {
        __m512 part = dpbf16(_mm512_setzero_ps(), w0, held_or_load<MR>(av, a + i * lda + c, i, 0));
        part = dpbf16(part, w1, held_or_load<MR>(av, a + i * lda + c, i, 1));
        part = dpbf16(part, w2, held_or_load<MR>(av, a + i * lda + c, i, 2));
        part = dpbf16(part, w3, held_or_load<MR>(av, a + i * lda + c, i, 3));
        acc[r][i] = _mm512_fmadd_ps(part, sv, acc[r][i]);
      }
    }
  };
  int64_t c = 0;
  for (; c + 512 <= k; c += 512) {
    for (int r = 0; r < kPanelRows; ++r) sc16[r] = Fp4BlockScales::load(srows[r], c, k);
    step(c, 0);
    step(c + 128, 1);
    step(c + 256, 2);
    step(c + 384, 3);
  }
  if (c < k) {  // the last 1-3 chunks
    for (int r = 0; r < kPanelRows; ++r) sc16[r] = Fp4BlockScales::load(srows[r], c, k);
    for (int j = 0; c < k; c += 128, ++j) step(c, j);
  }
  for (int i = 0; i < MR; ++i)
    for (int r = 0; r < nr; ++r) y[i * ldy + r] = hsum(acc[r][i]);
}

// One activation row (decode), rows [0, nr) one after the other (GemvOrder::Rows): each thread
// reads its rows as one stream in memory order (prefetch_stream; this kernel is bound by its
// arithmetic where the bandwidth is high). Two partial chains per chunk and two
// sums per row keep the vdpbf16ps and FMA chains short. The four chunks of one load of 16 block
// scales are unrolled so that the sums stay in registers: indexed by a run-time chunk number, GCC
// kept them on the stack, and each FMA waited on a store-to-load forward (1.3-1.5x slower from
// L2). The sums of 16 rows are reduced together (hsum16: 15 in-lane shuffles and adds instead of
// 16 x 7 operations of hsum, several on the decode's shuffle pipes).
DSV4_AVX512 inline void fp4_row_by_row(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds,
                                       int nr, const uint16_t* a, int64_t k, float* y, int64_t ahead,
                                       int64_t sahead) {
  const __m512i table = _mm512_load_si512(e2m1_tables().words.data());
  __m512 sums[16];
  for (int r0 = 0; r0 < nr; r0 += 16) {
    const int rows = std::min(16, nr - r0);
    for (int r = 0; r < rows; ++r) {
      const uint8_t* row = w + (r0 + r) * ldw;
      const uint8_t* srow = s + (r0 + r) * lds;
      // The unscaled dot product of the 128 K values from c on.
      auto chunk = [&](int64_t c) DSV4_AVX512 {
        prefetch_stream(row + ahead + c / 2);
        __m512i wv[4];
        fp4_words_to_bf16(_mm512_loadu_si512(row + c / 2), table, wv);
        __m512 p0 = dpbf16(_mm512_setzero_ps(), (__m512bh)wv[0], (__m512bh)_mm512_loadu_si512(a + c));
        __m512 p1 = dpbf16(_mm512_setzero_ps(), (__m512bh)wv[1], (__m512bh)_mm512_loadu_si512(a + c + 32));
        p0 = dpbf16(p0, (__m512bh)wv[2], (__m512bh)_mm512_loadu_si512(a + c + 64));
        p1 = dpbf16(p1, (__m512bh)wv[3], (__m512bh)_mm512_loadu_si512(a + c + 96));
        return _mm512_add_ps(p0, p1);
      };
      __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
      int64_t c = 0;
      for (; c + 512 <= k; c += 512) {
        const __m512 sc16 = Fp4BlockScales::load(srow, c, k);
        _mm_prefetch(reinterpret_cast<const char*>(srow + sahead + c / 32), _MM_HINT_T0);
        acc0 = _mm512_fmadd_ps(chunk(c), Fp4BlockScales::lane(0, sc16), acc0);
        acc1 = _mm512_fmadd_ps(chunk(c + 128), Fp4BlockScales::lane(1, sc16), acc1);
        acc0 = _mm512_fmadd_ps(chunk(c + 256), Fp4BlockScales::lane(2, sc16), acc0);
        acc1 = _mm512_fmadd_ps(chunk(c + 384), Fp4BlockScales::lane(3, sc16), acc1);
      }
      if (c < k) {  // the last 1-3 chunks
        const __m512 sc16 = Fp4BlockScales::load(srow, c, k);
        for (int j = 0; c < k; c += 128, ++j) acc0 = _mm512_fmadd_ps(chunk(c), Fp4BlockScales::lane(j, sc16), acc0);
      }
      sums[r] = _mm512_add_ps(acc0, acc1);
    }
    store_hsum16(sums, rows, y + r0);
  }
}

}  // namespace

DSV4_AVX512 void fp4_rows_dot(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds, int nr,
                              const uint16_t* a, int64_t lda, int64_t m, int64_t k, float* y,
                              int64_t ldy) {
  const int64_t ahead = prefetch_ahead(ldw), sahead = ahead / ldw * lds;
  const bool rows_order = m == 1 && gemv_order() == GemvOrder::Rows;
  for_gemv_blocks(nr, rows_order, [&](int n0, int rows) DSV4_AVX512 {
    if (rows_order) {
      fp4_row_by_row(w + n0 * ldw, ldw, s + n0 * lds, lds, rows, a, k, y + n0, ahead, sahead);
      return;
    }
    const Fp4RowPointers ptr(w + n0 * ldw, ldw, s + n0 * lds, lds, rows);
    for_row_tiles(m, [&](auto mr, int64_t i) DSV4_AVX512 {
      fp4_dot_tile<decltype(mr)::value>(ptr.rows, ptr.srows, rows, a + i * lda, lda, k, y + i * ldy + n0, ldy,
                                        ahead, sahead);
    });
  });
}

}  // namespace DSV4_AVX512_NS
}  // namespace dsv4::cpu
