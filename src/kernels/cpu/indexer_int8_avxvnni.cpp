// The integer indexer scan (indexer_int8.h: its exactness and shared parts) on AVX-VNNI, for the
// AVX2 level of CPUs that have it (dispatch.h avx_vnni()): the VEX-encoded vpdpbusd forms 32
// products per instruction on 256-bit vectors, four times an 8-lane FMA.
//
// Layouts, as the AVX-512 kernel's on half the width. Keys decode two blocks (32 code bytes) at a
// time with one vpshufb per nibble half, each 128-bit lane looking up the table of its own block's
// shift; the queries are converted to int8 in the same order (Dp = D). The tile scan
// (indexer_int8_scan.h) runs on 8-key tiles [D / 4][8][4 bytes] (8 x 8 dword transposes), 6 tiles
// a pass: with two heads per tile load, 12 accumulators, 2 query words and a tile in the 16
// registers (the sums over heads wait in memory). 6 tiles against 4, one Zen 5 thread,
// alternating (BM_IndexerScoresFp4 64 rows x 8192 keys): 24.7-25.8 ms against 27.0-27.5.
#include "kernels/cpu/simd_avx2.h"  // first (see the header)

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/indexer_fp4.h"
#include "kernels/cpu/indexer_int8.h"

namespace dsv4::cpu {
namespace {

using namespace int8;

// One query head into o (see int8::Kernel::head). Per block the 32 values convert to int32 in
// dimension order, pack to bytes (two packs leave quads of dims in dword order 0 2 4 6 1 3 5 7),
// and a dword permute then a byte shuffle and a qword permute put the even dims before the odd.
DSV4_AVXVNNI bool int8_head(const float* q, int D, int /*Dp*/, int8_t* o, int32_t* sum_out, int* e) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const __m256i quads = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i evens_odds = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,  //
                                              0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  __m256 amax = _mm256_setzero_ps();
  for (int d = 0; d < D; d += 8) amax = _mm256_max_ps(amax, _mm256_and_ps(_mm256_loadu_ps(q + d), abs_mask));
  // NaN lanes compare false in max: caught by the integer check below
  if (!head_exponent(avx2::hmax(amax), e)) return false;
  const __m256 s = _mm256_set1_ps(std::ldexp(1.0f, -*e));
  __m256i sum = _mm256_setzero_si256();
  for (int b0 = 0; b0 < D; b0 += kBlock) {
    __m256i iv[4];
    for (int j = 0; j < 4; ++j) {
      const __m256 x = _mm256_mul_ps(_mm256_loadu_ps(q + b0 + 8 * j), s);
      iv[j] = _mm256_cvtps_epi32(x);
      // an integer in [-127, 127] converts back to the same float (NaN never does)
      if (_mm256_movemask_ps(_mm256_cmp_ps(_mm256_cvtepi32_ps(iv[j]), x, _CMP_NEQ_UQ)) != 0) return false;
      sum = _mm256_add_epi32(sum, iv[j]);
    }
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(iv[0], iv[1]), _mm256_packs_epi32(iv[2], iv[3]));
    const __m256i ordered = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(bytes, quads), evens_odds);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + b0), _mm256_permute4x64_epi64(ordered, 0xD8));
  }
  const __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
  const __m128i s2 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
  *sum_out = _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 1)));
  return true;
}

// Decodes keys (D / 2 code bytes, then D / 32 scale bytes each) into offset integer bytes, with
// the key's power of two (kfac; 0 for a key of zeros); false (out unspecified) when the key is not
// of the exact form. With D = 128 (Flash / Pro) the block count is a compile-time 4.
struct KeyDecoder {
  const uint8_t* table = key_table();
  DSV4_AVXVNNI bool decode(const uint8_t* e, int D, uint8_t* out, float* kfac) const {
    return D == 4 * kBlock ? decode_blocks<4>(e, D, out, kfac) : decode_blocks<0>(e, D, out, kfac);
  }
  // kNb: the blocks per key where known at compile time, else 0 (D / 32).
  template <int kNb>
  DSV4_AVXVNNI bool decode_blocks(const uint8_t* e, int D, uint8_t* out, float* kfac) const;
};

template <int kNb>
DSV4_AVXVNNI bool KeyDecoder::decode_blocks(const uint8_t* e, int D, uint8_t* out, float* kfac) const {
  const int nb = kNb > 0 ? kNb : D / kBlock;
  const int np = (nb + 1) / 2;  // pairs of blocks (the last one may be half)
  const uint8_t* sc = e + D / 2;
  const __m256i mag = _mm256_set1_epi8(0x77), low4 = _mm256_set1_epi8(0x0F);
  __m256i x[16];
  uint32_t nonzero = 0, smax = 0;  // nonzero: bit b for a block with a nonzero magnitude
  for (int p = 0; p < np; ++p) {
    x[p] = 2 * p + 1 < nb ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(e + 32 * p))
                          : _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(e + 32 * p)));
    const uint32_t zero = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_and_si256(x[p], mag), _mm256_setzero_si256())));
    nonzero |= ((zero & 0xFFFF) != 0xFFFF ? 1u : 0u) << (2 * p);
    nonzero |= ((zero >> 16) != 0xFFFF ? 1u : 0u) << (2 * p + 1);
  }
  for (int b = 0; b < nb; ++b)
    if ((nonzero >> b) & 1) smax = std::max<uint32_t>(smax, sc[b]);
  if (nonzero == 0) {
    *kfac = 0.0f;
  } else if (!key_factor(smax, kfac)) {
    return false;
  }
  for (int p = 0; p < np; ++p) {
    const int b1 = std::min(2 * p + 1, nb - 1);
    const uint32_t d0 = (nonzero >> (2 * p)) & 1 ? smax - sc[2 * p] : 0;
    const uint32_t d1 = (nonzero >> (2 * p + 1)) & 1 ? smax - sc[b1] : 0;
    if ((d0 | d1) > kMaxShift) return false;
    const __m256i t = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(table + 16 * d1),
                                          reinterpret_cast<const __m128i*>(table + 16 * d0));
    const __m256i lo = _mm256_shuffle_epi8(t, _mm256_and_si256(x[p], low4));
    const __m256i hi = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(x[p], 4), low4));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 64 * p), _mm256_permute2x128_si256(lo, hi, 0x20));
    if (2 * p + 1 < nb) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 64 * p + 32), _mm256_permute2x128_si256(lo, hi, 0x31));
  }
  return true;
}

// The 256-bit operations of the tile scan (indexer_int8_scan.h): 6 tiles of 8 keys a pass.
struct Vec256 {
  using I = __m256i;
  using F = __m256;
  static constexpr int kLanes = 8, kTiles = 6;
  using Keys = KeyDecoder;
  // 8 rows of Dp bytes into [Dp / 4][8][4]: 8 x 8 dword transposes.
  DSV4_AVXVNNI static void transpose(const uint8_t* rows, int Dp, uint8_t* tile) {
    for (int g0 = 0; g0 < Dp / 4; g0 += 8) avx2::transpose8x8_32(rows + 4 * g0, Dp, tile + g0 * 32, 32);
  }
  DSV4_AVXVNNI static I set1(int32_t v) { return _mm256_set1_epi32(v); }
  DSV4_AVXVNNI static I load(const uint8_t* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }
  // acc += the dot products of 4-byte groups, unsigned bytes of u times signed bytes of s. As an
  // asm statement for the reason the AVX-512 kernel gives; {vex} keeps the assembler from the
  // EVEX form (AVX-512 VNNI), and "x" to the 16 registers VEX can name.
  DSV4_AVXVNNI static I dpbusd(I acc, I u, I s) {
    __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(u), "x"(s));
    return acc;
  }
  DSV4_AVXVNNI static F zero() { return _mm256_setzero_ps(); }
  DSV4_AVXVNNI static F add(F x, F y) { return _mm256_add_ps(x, y); }
  DSV4_AVXVNNI static F set1f(float v) { return _mm256_set1_ps(v); }
  // relu(bf16(dot)) x w, rounded to BF16 (finite lanes).
  DSV4_AVXVNNI static F head_term(I dot, F w) {
    const F rel = _mm256_max_ps(avx2::bf16_round_finite_ps(_mm256_cvtepi32_ps(dot)), _mm256_setzero_ps());
    return avx2::bf16_round_finite_ps(_mm256_mul_ps(rel, w));
  }
  DSV4_AVXVNNI static void store(F total, const float* kfac, int64_t keep, int n, float* out) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const F v = avx2::bf16_round_finite_ps(_mm256_mul_ps(total, _mm256_load_ps(kfac)));
    const int kept = static_cast<int>(std::clamp<int64_t>(keep, 0, 8));
    const F seen = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(kept), lane));
    const F r = _mm256_blendv_ps(_mm256_set1_ps(-std::numeric_limits<float>::infinity()), v, seen);
    if (n == 8) {
      _mm256_storeu_ps(out, r);
    } else {
      _mm256_maskstore_ps(out, avx2::tail_mask(n), r);
    }
  }
};

#define DSV4_INT8_TARGET DSV4_AVXVNNI
#include "kernels/cpu/indexer_int8_scan.h"
#undef DSV4_INT8_TARGET

// The BF16 / float32 kernel of the level (for what the integer one cannot hold).
void other_kernel(const IndexerScoreArgs& b, const uint8_t* keys, size_t key_bytes) {
  indexer_scores_fp4_avx2(b, keys, key_bytes);
}

}  // namespace

bool indexer_scores_fp4_avxvnni(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes) {
  static constexpr Kernel k{kBlock, int8_head, scan_tiles<Vec256>, other_kernel};
  return score(k, a, keys, key_bytes);
}

}  // namespace dsv4::cpu
