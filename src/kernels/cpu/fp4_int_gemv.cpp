// The FP4 decode GEMV on 16-bit integer dot products (linear_kernels.h, Fp4IntRows), and its
// scalar twin.
//
// Why: the BF16 decode GEMV (fp4_decode.cpp, fp4_rows_dot) spends a vdpbf16ps per 32 weights,
// which issues about once per 1.5-2 cycles on the Intel cores measured and shares the shuffle
// port with the vpermw decode. vpdpwssd does the same 32 products at 3.2x the rate there
// (BM_PeakMac/3 vs /1), so the decode and the dot no longer compete (linear.cpp,
// use_int_fp4_gemv, gives the measured GEMV rates).
//
// Exactness: twice an E2M1 value is an integer in [-12, 12] (the word table), and an activation
// after act_quant is an E4M3 code times the block's power of two, i.e. an integer C times
// 2^(E - 17) with E the exponent of the chunk's largest magnitude and |C| < 2^18 (fp4_int_act).
// C does not fit 16 bits, so it is split as C = 8 H + R with R in [-4, 3]: the H products are
// exact int32 sums (8 per lane, < 2^22), the R products are needed only in chunks that hold a
// value with bits below 2^(E - 14) (values under 2^-11 of the chunk's largest: flagged per chunk
// and skipped elsewhere). Each lane's partial sum converts to float32 exactly; it is scaled by
// the block's E8M0 scale times the chunk's 2^(E - 15) and accumulated with FMA, so the result
// differs from the BF16 kernel's only in float32 rounding (fewer roundings, in another order).
//
// Layout: as in fp4_decode.cpp's AVX-512 kernel, each 64-byte load covers 128 K values; word j of
// vector q (the nibble of each 16-bit word) holds K = 4 j + q (PanelOrder::Fp4Words), so 128-bit
// lane L, i.e. dword lanes 4L .. 4L + 3, is the 32-value scale block L of the chunk.
#include "kernels/cpu/simd_avx512.h"  // first: wraps <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "kernels/cpu/formats.h"
#include "kernels/cpu/linear_kernels.h"

namespace dsv4::cpu {
namespace {

constexpr int64_t kChunk = 128;

// 2 x E2M1 value of nibble i % 16 (bit 4 of a vpermw index, the next nibble's low bit, selects
// the copy).
struct E2m1IntTable {
  alignas(64) std::array<int16_t, 32> words{};
  E2m1IntTable() {
    for (int i = 0; i < 32; ++i) words[i] = static_cast<int16_t>(2.0f * e2m1_value(static_cast<uint8_t>(i % 16)));
  }
};
const E2m1IntTable& int_table() {
  static const E2m1IntTable t;
  return t;
}

// The float32 E8M0 scale the AVX-512 kernel builds: the byte in the exponent field (0 gives 0,
// 255 infinity; both never occur in real checkpoints).
float scale_bits(uint8_t e) { return bits_to_f32(uint32_t{e} << 23); }

// The factors of a chunk whose largest exponent field is eb: value x lift x lift2 = C (two
// factors, so that eb < 17 stays finite; such chunks are outside the exact range and never come
// from act_quant), and the chunk's factor 2^(E - 15), E = eb - 127 (0 for a chunk of zeros).
struct ChunkScale {
  float lift, lift2, fac;
  explicit ChunkScale(int eb)
      : lift(eb == 0 ? 0.0f : pow2_f32(std::min(127, 144 - eb))),
        lift2(pow2_f32(std::max(0, 144 - eb - 127))),
        fac(eb == 0 ? 0.0f : bits_to_f32(static_cast<uint32_t>(std::max(eb - 15, 0)) << 23)) {}
};

}  // namespace

namespace scalar {

void fp4_int_act(const uint16_t* a, int64_t k, int16_t* h, int16_t* r, float* fac, uint8_t* rnz) {
  for (int64_t c = 0; c < k; c += kChunk) {
    int eb = 0;
    for (int64_t p = c; p < c + kChunk; ++p) eb = std::max(eb, (a[p] >> 7) & 0xFF);
    bool any_r = false;
    const ChunkScale cs(eb);
    for (int64_t p = c; p < c + kChunk; ++p) {
      const auto cv = static_cast<int32_t>(std::nearbyint(bf16_bits_to_f32(a[p]) * cs.lift * cs.lift2));
      const int32_t hv = (cv + 4) >> 3;  // arithmetic shift: floor
      h[p] = static_cast<int16_t>(hv);
      r[p] = static_cast<int16_t>(cv - 8 * hv);
      any_r |= r[p] != 0;
    }
    fac[c / kChunk] = cs.fac;
    rnz[c / kChunk] = any_r ? 1 : 0;
  }
}

void fp4_rows_dot_int(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds, int nr,
                      const Fp4IntRows& a, int64_t m, int64_t k, float* y, int64_t ldy) {
  const auto& table = int_table().words;
  for (int64_t i = 0; i < m; ++i) {
    const int16_t* h = a.h + i * a.ld;
    const int16_t* rr = a.r + i * a.ld;
    for (int r = 0; r < nr; ++r) {
      const uint8_t* row = w + r * ldw;
      float acc[16] = {};
      for (int64_t c = 0; c < k; c += kChunk) {
        const float fac = a.fac[i * a.ldc + c / kChunk];
        const bool with_r = a.rnz[i * a.ldc + c / kChunk] != 0;
        for (int d = 0; d < 16; ++d) {
          int32_t sh = 0, sr = 0;
          for (int q = 0; q < 4; ++q) {
            for (int e = 0; e < 2; ++e) {
              const int64_t p = c + 32 * q + 2 * d + e;
              const int64_t kk = c + panel_position_to_k(PanelOrder::Fp4Words, p - c);
              const uint8_t b = row[kk / 2];
              const int32_t t = table[kk % 2 ? b >> 4 : b & 15];
              sh += t * h[p];
              sr += t * rr[p];
            }
          }
          float part = static_cast<float>(sh);
          if (with_r) part = std::fma(static_cast<float>(sr), 0.125f, part);
          const float sv = scale_bits(s[r * lds + c / 32 + d / 4]) * fac;
          acc[d] = std::fma(part, sv, acc[d]);
        }
      }
      // hsum's tree (simd_avx512.h): halves, quarters, pairs, then the last two.
      float t8[8], t4[4];
      for (int l = 0; l < 8; ++l) t8[l] = acc[l] + acc[l + 8];
      for (int l = 0; l < 4; ++l) t4[l] = t8[l] + t8[l + 4];
      y[i * ldy + r] = (t4[0] + t4[2]) + (t4[1] + t4[3]);
    }
  }
}

}  // namespace scalar

namespace avx512 {

DSV4_AVX512VNNI void fp4_int_act(const uint16_t* a, int64_t k, int16_t* h, int16_t* r, float* fac,
                                 uint8_t* rnz) {
  const __m512i exp_mask = _mm512_set1_epi16(0x7F80);
  const __m512i four = _mm512_set1_epi32(4);
  for (int64_t c = 0; c < k; c += kChunk) {
    __m512i v[4], mx = _mm512_setzero_si512();
    for (int q = 0; q < 4; ++q) {
      v[q] = _mm512_loadu_si512(a + c + 32 * q);
      mx = _mm512_max_epu16(mx, _mm512_and_si512(v[q], exp_mask));
    }
    // Largest exponent field: the 16-bit maximum of the 32 words, from their 16 dword maxima.
    const __m512i m32 = _mm512_max_epu32(_mm512_and_si512(mx, _mm512_set1_epi32(0xFFFF)),
                                         _mm512_srli_epi32(mx, 16));
    const int eb = static_cast<int>(_mm512_reduce_max_epu32(m32) >> 7);
    const ChunkScale cs(eb);
    const __m512 lift = _mm512_set1_ps(cs.lift), lift2 = _mm512_set1_ps(cs.lift2);
    __mmask16 any_r = 0;
    for (int q = 0; q < 4; ++q) {
      for (int half = 0; half < 2; ++half) {
        const __m256i words = half == 0 ? _mm512_castsi512_si256(v[q]) : _mm512_extracti64x4_epi64(v[q], 1);
        const __m512 x = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(words), 16));
        const __m512i cv = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_mul_ps(x, lift), lift2));
        const __m512i hv = _mm512_srai_epi32(_mm512_add_epi32(cv, four), 3);
        const __m512i rv = _mm512_sub_epi32(cv, _mm512_slli_epi32(hv, 3));
        any_r |= _mm512_test_epi32_mask(rv, rv);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + c + 32 * q + 16 * half), _mm512_cvtepi32_epi16(hv));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(r + c + 32 * q + 16 * half), _mm512_cvtepi32_epi16(rv));
      }
    }
    fac[c / kChunk] = cs.fac;
    rnz[c / kChunk] = any_r != 0 ? 1 : 0;
  }
}

namespace {

// Rows [0, kPanelRows) (pointers clamped to nr - 1) x activation rows [i0, i0 + MR): each
// 64-byte weight chunk is decoded once (3 shifts, 4 vpermw) and feeds MR rows of 4 vpdpwssd.
// The K loop runs in groups of 4 chunks (512 K: one load of 16 block scales per row), with the
// chunk index inside a group unrolled so that each lane permute's index is a constant; the
// activation pointers are plain locals. Written that way the loop keeps its accumulators and
// scales in registers (GCC stored each accumulator back to the stack every chunk and reloaded
// the weight vector through it when they came through the Fp4IntRows reference and a runtime
// lane index).
template <int MR>
DSV4_AVX512VNNI inline void int_dot_tile(const uint8_t* const* rows, const uint8_t* const* srows,
                                         int nr, const Fp4IntRows& a, int64_t i0, int64_t k,
                                         float* y, int64_t ldy, int64_t ahead, int64_t sahead) {
  const __m512i table = _mm512_load_si512(int_table().words.data());
  const Fp4BlockScales scales;
  const __m512 eighth = _mm512_set1_ps(0.125f);
  const int16_t* h[MR];
  const int16_t* rv[MR];
  const float* fac[MR];
  const uint8_t* rnz[MR];
  for (int i = 0; i < MR; ++i) {
    h[i] = a.h + (i0 + i) * a.ld;
    rv[i] = a.r + (i0 + i) * a.ld;
    fac[i] = a.fac + (i0 + i) * a.ldc;
    rnz[i] = a.rnz + (i0 + i) * a.ldc;
  }
  const uint8_t* w[kPanelRows];
  const uint8_t* sr[kPanelRows];
  for (int r = 0; r < kPanelRows; ++r) w[r] = rows[r], sr[r] = srows[r];
  __m512 acc[kPanelRows][MR];
  for (auto& row : acc)
    for (auto& v : row) v = _mm512_setzero_ps();
  for (int64_t c0 = 0; c0 < k; c0 += 4 * kChunk) {
    __m512 sc16[kPanelRows];
    for (int r = 0; r < kPanelRows; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(sr[r] + sahead + c0 / 32), _MM_HINT_T0);
      sc16[r] = Fp4BlockScales::load(sr[r], c0, k);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const int64_t c = c0 + j * kChunk;
      if (c >= k) break;
      __m512 f[MR];
      bool with_r[MR];
      for (int i = 0; i < MR; ++i) {
        f[i] = _mm512_set1_ps(fac[i][c / kChunk]);
        with_r[i] = rnz[i][c / kChunk] != 0;
      }
      for (int r = 0; r < kPanelRows; ++r) {
        _mm_prefetch(reinterpret_cast<const char*>(w[r] + ahead + c / 2), _MM_HINT_T1);
        const __m512i b = _mm512_loadu_si512(w[r] + c / 2);
        const __m512i w0 = _mm512_permutexvar_epi16(b, table);
        const __m512i w1 = _mm512_permutexvar_epi16(_mm512_srli_epi16(b, 4), table);
        const __m512i w2 = _mm512_permutexvar_epi16(_mm512_srli_epi16(b, 8), table);
        const __m512i w3 = _mm512_permutexvar_epi16(_mm512_srli_epi16(b, 12), table);
        const __m512 sv = scales.lane(j, sc16[r]);
        for (int i = 0; i < MR; ++i) {
          // Activations are read from L1 by each product (memory operands): held in registers
          // they would be spilled around the loop.
          const int16_t* hc = h[i] + c;
          __m512i p = _mm512_dpwssd_epi32(_mm512_setzero_si512(), w0, _mm512_loadu_si512(hc));
          p = _mm512_dpwssd_epi32(p, w1, _mm512_loadu_si512(hc + 32));
          p = _mm512_dpwssd_epi32(p, w2, _mm512_loadu_si512(hc + 64));
          p = _mm512_dpwssd_epi32(p, w3, _mm512_loadu_si512(hc + 96));
          __m512 part = _mm512_cvtepi32_ps(p);
          if (with_r[i]) {
            const int16_t* rc = rv[i] + c;
            __m512i q = _mm512_dpwssd_epi32(_mm512_setzero_si512(), w0, _mm512_loadu_si512(rc));
            q = _mm512_dpwssd_epi32(q, w1, _mm512_loadu_si512(rc + 32));
            q = _mm512_dpwssd_epi32(q, w2, _mm512_loadu_si512(rc + 64));
            q = _mm512_dpwssd_epi32(q, w3, _mm512_loadu_si512(rc + 96));
            part = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q), eighth, part);
          }
          acc[r][i] = _mm512_fmadd_ps(part, _mm512_mul_ps(sv, f[i]), acc[r][i]);
        }
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int r = 0; r < nr; ++r) y[i * ldy + r] = hsum(acc[r][i]);
}

}  // namespace

DSV4_AVX512VNNI void fp4_rows_dot_int(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds,
                                      int nr, const Fp4IntRows& a, int64_t m, int64_t k, float* y,
                                      int64_t ldy) {
  const Fp4RowPointers ptr(w, ldw, s, lds, nr);
  const uint8_t* const* rows = ptr.rows;
  const uint8_t* const* srows = ptr.srows;
  const int64_t ahead = prefetch_ahead(ldw), sahead = ahead / ldw * lds;
  int64_t i = 0;
  for (; i + 2 <= m; i += 2) int_dot_tile<2>(rows, srows, nr, a, i, k, y + i * ldy, ldy, ahead, sahead);
  if (i < m) int_dot_tile<1>(rows, srows, nr, a, i, k, y + i * ldy, ldy, ahead, sahead);
}

}  // namespace avx512
}  // namespace dsv4::cpu
