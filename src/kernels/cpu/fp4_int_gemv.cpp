// The FP4 decode GEMV on 16-bit integer dot products (linear_kernels.h, Fp4IntRows), and its
// scalar twin.
//
// Why: the BF16 decode GEMV (fp4_decode.cpp, fp4_rows_dot) spends a vdpbf16ps per 32 weights,
// which issues about once per 1.5-2 cycles on the Intel cores measured and shares the shuffle
// port with the vpermw decode. vpdpwssd does the same 32 products at 3.2x the rate there
// (BM_PeakMac/3 vs /1), so the decode and the dot no longer compete (linear.cpp,
// int_fp4_gemv, gives the measured GEMV rates).
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
#include "kernels/cpu/simd_avx2.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

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

// Weight rows [0, nr), one after the other, x activation rows [i0, i0 + MR): each 64-byte weight
// chunk is decoded once (3 shifts, 4 vpermw) and feeds MR rows of 4 vpdpwssd (MR = 4 for the rows
// of a prefill batch, the rest in 2s and 1s: 4 made pp512 10% faster than 2, 8 no faster than 4, on
// the Emerald Rapids VM of linear.cpp's int_fp4_gemv). The K loop runs in groups of 4 chunks (512
// K: one load of 16 block scales), with the chunk index inside a group unrolled so that each lane
// permute's index is a constant; the activation pointers are plain locals. Written that way the
// loop keeps its accumulators and scales in registers (GCC stored each accumulator back to the
// stack every chunk and reloaded the weight vector through it when they came through the Fp4IntRows
// reference and a runtime lane index).
//
// The rows run one after the other, so the weights are read in memory order, one stream per
// thread. Interleaving the 4 rows of a panel chunk by chunk (4 streams one row apart, as the BF16
// kernel does to share its activation registers; here the activations are memory operands and
// gain nothing) read 15-20% slower from DRAM with 1 KiB rows (w2) and 5-7% with 2 KiB rows,
// within noise from cache (BM_LinearFp4, alternating, 2026-12-06).
template <int MR>
DSV4_AVX512VNNI inline void int_dot_rows(const uint8_t* wrows, int64_t ldw, const uint8_t* srows,
                                         int64_t lds, int nr, const Fp4IntRows& a, int64_t i0, int64_t k,
                                         float* y, int64_t ldy, int64_t ahead, int64_t sahead) {
  const __m512i table = _mm512_load_si512(int_table().words.data());
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
  for (int r = 0; r < nr; ++r) {
    const uint8_t* w = wrows + r * ldw;
    const uint8_t* sr = srows + r * lds;
    __m512 acc[MR];
    for (auto& v : acc) v = _mm512_setzero_ps();
    for (int64_t c0 = 0; c0 < k; c0 += 4 * kChunk) {
      _mm_prefetch(reinterpret_cast<const char*>(sr + sahead + c0 / 32), _MM_HINT_T0);
      const __m512 sc16 = Fp4BlockScales::load(sr, c0, k);
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        const int64_t c = c0 + j * kChunk;
        if (c >= k) break;
        _mm_prefetch(reinterpret_cast<const char*>(w + ahead + c / 2), _MM_HINT_T1);
        const __m512i b = _mm512_loadu_si512(w + c / 2);
        const __m512i w0 = _mm512_permutexvar_epi16(b, table);
        const __m512i w1 = _mm512_permutexvar_epi16(_mm512_srli_epi16(b, 4), table);
        const __m512i w2 = _mm512_permutexvar_epi16(_mm512_srli_epi16(b, 8), table);
        const __m512i w3 = _mm512_permutexvar_epi16(_mm512_srli_epi16(b, 12), table);
        const __m512 sv = Fp4BlockScales::lane(j, sc16);
        for (int i = 0; i < MR; ++i) {
          // Activations are read from L1 by each product (memory operands): held in registers
          // they would be spilled around the loop.
          const int16_t* hc = h[i] + c;
          __m512i p = _mm512_dpwssd_epi32(_mm512_setzero_si512(), w0, _mm512_loadu_si512(hc));
          p = _mm512_dpwssd_epi32(p, w1, _mm512_loadu_si512(hc + 32));
          p = _mm512_dpwssd_epi32(p, w2, _mm512_loadu_si512(hc + 64));
          p = _mm512_dpwssd_epi32(p, w3, _mm512_loadu_si512(hc + 96));
          __m512 part = _mm512_cvtepi32_ps(p);
          if (rnz[i][c / kChunk] != 0) {
            const int16_t* rc = rv[i] + c;
            __m512i q = _mm512_dpwssd_epi32(_mm512_setzero_si512(), w0, _mm512_loadu_si512(rc));
            q = _mm512_dpwssd_epi32(q, w1, _mm512_loadu_si512(rc + 32));
            q = _mm512_dpwssd_epi32(q, w2, _mm512_loadu_si512(rc + 64));
            q = _mm512_dpwssd_epi32(q, w3, _mm512_loadu_si512(rc + 96));
            part = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q), eighth, part);
          }
          acc[i] = _mm512_fmadd_ps(part, _mm512_mul_ps(sv, _mm512_set1_ps(fac[i][c / kChunk])), acc[i]);
        }
      }
    }
    for (int i = 0; i < MR; ++i) y[i * ldy + r] = hsum(acc[i]);
  }
}

}  // namespace

DSV4_AVX512VNNI void fp4_rows_dot_int(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds,
                                      int nr, const Fp4IntRows& a, int64_t m, int64_t k, float* y,
                                      int64_t ldy) {
  const int64_t ahead = prefetch_ahead(ldw), sahead = ahead / ldw * lds;
  for_gemv_blocks(nr, m == 1, [&](int n0, int rows) DSV4_AVX512VNNI {
    const uint8_t* wb = w + n0 * ldw;
    const uint8_t* sb = s + n0 * lds;
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) int_dot_rows<4>(wb, ldw, sb, lds, rows, a, i, k, y + i * ldy + n0, ldy, ahead, sahead);
    for (; i + 2 <= m; i += 2) int_dot_rows<2>(wb, ldw, sb, lds, rows, a, i, k, y + i * ldy + n0, ldy, ahead, sahead);
    if (i < m) int_dot_rows<1>(wb, ldw, sb, lds, rows, a, i, k, y + i * ldy + n0, ldy, ahead, sahead);
  });
}

}  // namespace avx512

// The AVX2 tier (no VNNI): vpmaddwd + vpaddd for the 16-bit products, the same activation form
// and the same lanes, with every sum scaled by 256 (undone at the end), so its results equal the
// scalar twin's bit for bit while the partial products stay normal float32 numbers.
//
// Decode: a 32-byte load x covers K = 64 q + [0, 64) of a chunk (q = 0, 1); its 16-bit word i
// holds K = 64 q + 4 i + t in nibble t. Two vpshufb of the byte table (x & 0x0F and
// (x >> 4) & 0x0F per byte) put 2 x E2M1 of nibbles 0 and 2 (1 and 3) in the low and high byte of
// each word; one shift or mask makes each byte 256 times its value in a word. vpmaddwd of nibble t's words with
// the activation words at chunk position 32 t + 16 q + [0, 16) (PanelOrder::Fp4Words: K = 4 j + t
// for word j) sums K = 64 q + 8 j + {t, t + 4} into dword j, so over t dword j of x's sum is
// K in [8 (8 q + j), + 8): the AVX-512 kernel's lane 8 q + j, whose 32-value block is 2 q + j / 4.
namespace avx2 {

DSV4_AVX2 void fp4_int_act(const uint16_t* a, int64_t k, int16_t* h, int16_t* r, float* fac,
                           uint8_t* rnz) {
  const __m256i exp_mask = _mm256_set1_epi16(0x7F80);
  const __m256i four = _mm256_set1_epi32(4);
  for (int64_t c = 0; c < k; c += kChunk) {
    __m256i mx = _mm256_setzero_si256();
    for (int q = 0; q < 8; ++q)
      mx = _mm256_max_epu16(mx, _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + c + 16 * q)), exp_mask));
    // Largest exponent field: the 16-bit maximum as 0xFFFF minus the minimum of the complements.
    const __m128i m8 = _mm_max_epu16(_mm256_castsi256_si128(mx), _mm256_extracti128_si256(mx, 1));
    const int least = _mm_cvtsi128_si32(_mm_minpos_epu16(_mm_xor_si128(m8, _mm_set1_epi32(-1)))) & 0xFFFF;
    const ChunkScale cs(((0xFFFF - least) >> 7) & 0xFF);
    const __m256 lift = _mm256_set1_ps(cs.lift), lift2 = _mm256_set1_ps(cs.lift2);
    __m256i any_r = _mm256_setzero_si256();
    for (int g = 0; g < 8; ++g) {  // 16 values: two halves of 8, packed back to 16 words
      __m256i hv[2], rv[2];
      for (int half = 0; half < 2; ++half) {
        const __m128i words = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + c + 16 * g + 8 * half));
        const __m256 x = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(words), 16));
        const __m256i cv = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_mul_ps(x, lift), lift2));
        hv[half] = _mm256_srai_epi32(_mm256_add_epi32(cv, four), 3);
        rv[half] = _mm256_sub_epi32(cv, _mm256_slli_epi32(hv[half], 3));
        any_r = _mm256_or_si256(any_r, rv[half]);
      }
      // The low 16 bits of each lane: a truncation, as the scalar cast and vpmovdw.
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + c + 16 * g), pack_low_words(hv[0], hv[1]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(r + c + 16 * g), pack_low_words(rv[0], rv[1]));
    }
    fac[c / kChunk] = cs.fac;
    rnz[c / kChunk] = _mm256_testz_si256(any_r, any_r) ? 0 : 1;
  }
}

namespace {

DSV4_AVX2 inline __m256i load_words(const int16_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// 256 times the int32 sums of 32 packed bytes x (K = 64 q + [0, 64) of a chunk) with the
// activation words at act = chunk + 16 q: dword j = the products of K in 64 q + 8 j + [0, 8)
// (see above). Each table byte b becomes the word b x 256 in one operation (the low byte shifted
// up, the high one masked in place) instead of two to sign-extend it; the sums stay exact
// (8 products of at most 12 x 256 x 28672 per lane, below 2^30) and the caller divides by 256.
DSV4_AVX2 inline __m256i int_sums_x256(__m256i x, __m256i table, const int16_t* act) {
  const __m256i nib = _mm256_set1_epi8(0x0F), high = _mm256_set1_epi16(static_cast<int16_t>(0xFF00));
  const __m256i y = _mm256_shuffle_epi8(table, _mm256_and_si256(x, nib));                      // t = 0, 2
  const __m256i z = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(x, 4), nib));  // t = 1, 3
  const __m256i p01 = _mm256_add_epi32(_mm256_madd_epi16(_mm256_slli_epi16(y, 8), load_words(act)),
                                       _mm256_madd_epi16(_mm256_slli_epi16(z, 8), load_words(act + 32)));
  const __m256i p23 = _mm256_add_epi32(_mm256_madd_epi16(_mm256_and_si256(y, high), load_words(act + 64)),
                                       _mm256_madd_epi16(_mm256_and_si256(z, high), load_words(act + 96)));
  return _mm256_add_epi32(p01, p23);
}

// Weight rows [0, nr), one after the other (the weights in memory order, as in the AVX-512
// kernel), x activation row i0: per chunk and row two 32-byte loads, each decoded once and
// multiplied with the H words (and the R words in a flagged chunk); lanes 0-7 and 8-15 of the
// AVX-512 kernel are acc[0] and acc[1].
DSV4_AVX2 void int_dot_row(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds, int nr,
                           const Fp4IntRows& a, int64_t i0, int64_t k, float* y, int64_t ahead,
                           int64_t sahead) {
  const __m256i table = _mm256_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12,  //
                                         0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
  // Scale byte 2 q (lanes 0-3) and 2 q + 1 (lanes 4-7) of a chunk's 4 into bits 24-31; shifted
  // right by one they are the float32 2^(e - 127) (0 for e = 0), scale_bits of the scalar twin.
  const __m256i spread[2] = {
      _mm256_setr_epi8(-1, -1, -1, 0, -1, -1, -1, 0, -1, -1, -1, 0, -1, -1, -1, 0,  //
                       -1, -1, -1, 1, -1, -1, -1, 1, -1, -1, -1, 1, -1, -1, -1, 1),
      _mm256_setr_epi8(-1, -1, -1, 2, -1, -1, -1, 2, -1, -1, -1, 2, -1, -1, -1, 2,  //
                       -1, -1, -1, 3, -1, -1, -1, 3, -1, -1, -1, 3, -1, -1, -1, 3)};
  const __m256 eighth = _mm256_set1_ps(0.125f);
  const int16_t* h = a.h + i0 * a.ld;
  const int16_t* rv = a.r + i0 * a.ld;
  const float* fac = a.fac + i0 * a.ldc;
  const uint8_t* rnz = a.rnz + i0 * a.ldc;
  for (int r = 0; r < nr; ++r) {
    const uint8_t* row = w + r * ldw;
    const uint8_t* srow = s + r * lds;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t c = 0; c < k; c += kChunk) {
      _mm_prefetch(reinterpret_cast<const char*>(row + ahead + c / 2), _MM_HINT_T1);
      if (c % (4 * kChunk) == 0) _mm_prefetch(reinterpret_cast<const char*>(srow + sahead + c / 32), _MM_HINT_T0);
      const __m256 f = _mm256_set1_ps(fac[c / kChunk]);
      uint32_t sbytes;
      std::memcpy(&sbytes, srow + c / 32, 4);
      const __m256i sb = _mm256_set1_epi32(static_cast<int32_t>(sbytes));
      for (int q = 0; q < 2; ++q) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + c / 2 + 32 * q));
        __m256 part = _mm256_cvtepi32_ps(int_sums_x256(x, table, h + c + 16 * q));
        if (rnz[c / kChunk] != 0)
          part = _mm256_fmadd_ps(_mm256_cvtepi32_ps(int_sums_x256(x, table, rv + c + 16 * q)), eighth, part);
        const __m256 sv = _mm256_castsi256_ps(_mm256_srli_epi32(_mm256_shuffle_epi8(sb, spread[q]), 1));
        acc[q] = _mm256_fmadd_ps(part, _mm256_mul_ps(sv, f), acc[q]);
      }
    }
    // Every term was 256 times the scalar twin's (an exact power-of-two scaling of each rounding).
    y[r] = hsum(_mm256_add_ps(acc[0], acc[1])) * (1.0f / 256);
  }
}

}  // namespace

DSV4_AVX2 void fp4_rows_dot_int(const uint8_t* w, int64_t ldw, const uint8_t* s, int64_t lds,
                                int nr, const Fp4IntRows& a, int64_t m, int64_t k, float* y,
                                int64_t ldy) {
  const int64_t ahead = prefetch_ahead(ldw), sahead = ahead / ldw * lds;
  // One activation row at a time: a panel's 4 rows (at most 8 KiB) stay in L1/L2 for the next.
  for_gemv_blocks(nr, m == 1, [&](int n0, int rows) DSV4_AVX2 {
    for (int64_t i = 0; i < m; ++i)
      int_dot_row(w + n0 * ldw, ldw, s + n0 * lds, lds, rows, a, i, k, y + i * ldy + n0, ahead, sahead);
  });
}

}  // namespace avx2
}  // namespace dsv4::cpu
