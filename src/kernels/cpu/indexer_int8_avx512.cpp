// The integer indexer scan (indexer_int8.h: its exactness and shared parts) on AVX-512 VNNI:
// vpdpbusd forms 64 products per instruction, twice vdpbf16ps's 32 at the same issue rate on Zen
// 4/5, four times FMA's 16. For AVX-512 CPUs without AMX.
//
// Layouts. Keys decode (vpermb on the nibbles, one table per block shift) into bytes; the
// queries are converted to int8 in the same order, Dp = D rounded up to 64 (zero padding). The
// tile scan (indexer_int8_scan.h) runs on 16-key tiles [Dp / 4][16][4 bytes] (16 x 16 dword
// transposes of the decoded keys), 8 tiles a pass. This layout beat lanes of heads (queries
// transposed to [Dp / 4][heads][4], a broadcast of 4 key bytes per quad and key) in decode too:
// BM_IndexerScoresFp4 one row x 8192 keys, one Zen 5 thread, 333 vs 418 us, and it has no
// padding for few heads.
#include "kernels/cpu/simd_avx512.h"  // first (see the header)

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/formats.h"
#include "kernels/cpu/indexer_fp4.h"
#include "kernels/cpu/indexer_int8.h"

namespace dsv4::cpu::avx512 {
namespace {

using namespace int8;

// One query head into o (see int8::Kernel::head).
DSV4_AVX512VNNI bool int8_head(const float* q, int D, int Dp, int8_t* o, int32_t* sum_out, int* e) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
  std::memset(o + D, 0, static_cast<size_t>(Dp - D));
  __m512 amax = _mm512_setzero_ps();
  for (int d = 0; d < D; d += 16) amax = _mm512_max_ps(amax, _mm512_and_ps(_mm512_loadu_ps(q + d), abs_mask));
  // NaN lanes compare false in max: caught by the integer check below
  if (!head_exponent(_mm512_reduce_max_ps(amax), e)) return false;
  const __m512 s = _mm512_set1_ps(std::ldexp(1.0f, -*e));
  __m512i sum = _mm512_setzero_si512();
  for (int b0 = 0; b0 < D; b0 += kBlock) {
    const __m512 x0 = _mm512_mul_ps(_mm512_loadu_ps(q + b0), s);
    const __m512 x1 = _mm512_mul_ps(_mm512_loadu_ps(q + b0 + 16), s);
    const __m512 ev = _mm512_permutex2var_ps(x0, even, x1), od = _mm512_permutex2var_ps(x0, odd, x1);
    const __m512i ie = _mm512_cvtps_epi32(ev), io = _mm512_cvtps_epi32(od);
    // an integer in [-127, 127] converts back to the same float (NaN never does)
    if (_mm512_cmp_ps_mask(_mm512_cvtepi32_ps(ie), ev, _CMP_NEQ_UQ) |
        _mm512_cmp_ps_mask(_mm512_cvtepi32_ps(io), od, _CMP_NEQ_UQ))
      return false;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + b0), _mm512_cvtepi32_epi8(ie));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + b0 + 16), _mm512_cvtepi32_epi8(io));
    sum = _mm512_add_epi32(sum, _mm512_add_epi32(ie, io));
  }
  *sum_out = _mm512_reduce_add_epi32(sum);
  return true;
}

// 0xFF in byte b when bit 2b or 2b + 1 of the index is set: the 4 blocks of a 64-byte group whose
// 8-byte halves hold a nonzero magnitude (vptestmq).
struct NonzeroBytes {
  std::array<uint32_t, 256> t{};
  NonzeroBytes() {
    for (int m = 0; m < 256; ++m)
      for (int b = 0; b < 4; ++b)
        if ((m >> (2 * b)) & 3) t[static_cast<size_t>(m)] |= 0xFFu << (8 * b);
  }
};
const NonzeroBytes& nonzero_bytes() {
  static const NonzeroBytes n;
  return n;
}

// Decodes keys (D / 2 code bytes, then D / 32 scale bytes each) into offset integer bytes, with
// the key's power of two (kfac; 0 for a key of zeros). Per group of 4 blocks (64 code bytes, one
// vector; a last partial group is loaded under a mask) the blocks' scale bytes are handled as one
// 32-bit word: the largest among nonzero blocks, then each block's shift below it.
struct KeyDecoder {
  __m512i table, mag, low4, spread, first, second;
  const uint32_t* nz_bytes;
  DSV4_AVX512VNNI KeyDecoder() {
    table = _mm512_load_si512(key_table());
    mag = _mm512_set1_epi8(0x77);
    low4 = _mm512_set1_epi8(0x0F);
    // lane b of a group: every byte = byte b of the broadcast dword
    spread = _mm512_set_epi8(3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
                             1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    first = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
    second = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
    nz_bytes = nonzero_bytes().t.data();
  }

  // The group's bytes (x: its codes, d: per block 16 x its shift) as two vectors: block b's 16
  // even dims (low nibbles), then its 16 odd dims.
  DSV4_AVX512VNNI inline void expand(__m512i x, uint32_t d, __m512i* o0, __m512i* o1) const {
    const __m512i dv = _mm512_shuffle_epi8(_mm512_set1_epi32(static_cast<int>(d << 4)), spread);
    const __m512i lo = _mm512_permutexvar_epi8(_mm512_or_si512(_mm512_and_si512(x, low4), dv), table);
    const __m512i hi = _mm512_permutexvar_epi8(_mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(x, 4), low4), dv), table);
    *o0 = _mm512_permutex2var_epi64(lo, first, hi);
    *o1 = _mm512_permutex2var_epi64(lo, second, hi);
  }

  // One key; false (out unspecified) when it is not of the exact form (indexer_int8.h). With
  // D = 128 (Flash / Pro) the block count is a compile-time 4: the masks and loops fold away
  // (1.45x faster decode scans than the general form at run time).
  DSV4_AVX512VNNI inline bool decode(const uint8_t* e, int D, uint8_t* out, float* kfac) const {
    return D == 4 * kBlock ? decode_blocks<4>(e, D, out, kfac) : decode_blocks<0>(e, D, out, kfac);
  }

  // kNb: the blocks per key where known at compile time, else 0 (D / 32).
  template <int kNb>
  DSV4_AVX512VNNI inline bool decode_blocks(const uint8_t* e, int D, uint8_t* out, float* kfac) const {
    const int nb = kNb > 0 ? kNb : D / kBlock;
    const uint8_t* sc = e + D / 2;
    const int ng = (nb + 3) / 4;
    if (ng > 8) return false;
    __m512i x[8];
    uint32_t s[8], nz[8];
    uint32_t smax = 0, any = 0;
    for (int g = 0; g < ng; ++g) {
      const int blocks = std::min(4, nb - 4 * g);
      x[g] = _mm512_maskz_loadu_epi8(blocks == 4 ? ~__mmask64{0} : (__mmask64{1} << (16 * blocks)) - 1, e + 64 * g);
      s[g] = 0;
      std::memcpy(&s[g], sc + 4 * g, static_cast<size_t>(blocks));
      nz[g] = nz_bytes[_mm512_test_epi64_mask(x[g], mag)];
      s[g] &= nz[g];
      any |= nz[g];
      smax = std::max(smax, byte_max(s[g]));
    }
    if (any == 0) {
      *kfac = 0.0f;
    } else if (!key_factor(smax, kfac)) {
      return false;
    }
    for (int g = 0; g < ng; ++g) {
      const uint32_t d = (smax * 0x01010101u - s[g]) & nz[g];
      if (d & 0xFCFCFCFCu) return false;
      __m512i o0, o1;
      expand(x[g], d, &o0, &o1);
      const int n_out = 32 * std::min(4, nb - 4 * g);
      uint8_t* o = out + 128 * g;
      _mm512_mask_storeu_epi8(o, n_out >= 64 ? ~__mmask64{0} : (__mmask64{1} << n_out) - 1, o0);
      if (n_out > 64) _mm512_mask_storeu_epi8(o + 64, n_out >= 128 ? ~__mmask64{0} : (__mmask64{1} << (n_out - 64)) - 1, o1);
    }
    return true;
  }
};

// The BF16 / float32 kernel of the level (for what the integer one cannot hold).
void other_kernel(const IndexerScoreArgs& b, const uint8_t* keys, size_t key_bytes) {
  if (isa_at_least(Isa::Avx512Bf16)) avx512::indexer_scores_fp4(b, keys, key_bytes);
  else avx512fma::indexer_scores_fp4(b, keys, key_bytes);
}

// The 512-bit operations of the tile scan (indexer_int8_scan.h): 8 tiles of 16 keys a pass.
struct Vec512 {
  using I = __m512i;
  using F = __m512;
  static constexpr int kLanes = 16, kTiles = 8;
  using Keys = KeyDecoder;
  // 16 rows of Dp bytes into [Dp / 4][16][4]: 16 x 16 dword transposes.
  DSV4_AVX512VNNI static void transpose(const uint8_t* rows, int Dp, uint8_t* tile) {
    for (int g0 = 0; g0 < Dp / 4; g0 += 16) transpose16x16_32(rows + 4 * g0, Dp, tile + g0 * 64, 64);
  }
  DSV4_AVX512VNNI static I set1(int32_t v) { return _mm512_set1_epi32(v); }
  DSV4_AVX512VNNI static I load(const uint8_t* p) { return _mm512_load_si512(p); }
  // acc += the dot products of 4-byte groups, unsigned bytes of u times signed bytes of s
  // (vpdpbusd). As an asm statement: GCC 12 copies every accumulator of the intrinsic's form to
  // a fresh register each time round the loop (16 extra moves per 16 products in these kernels).
  DSV4_AVX512VNNI static I dpbusd(I acc, I u, I s) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
    return acc;
  }
  DSV4_AVX512VNNI static F zero() { return _mm512_setzero_ps(); }
  DSV4_AVX512VNNI static F add(F x, F y) { return _mm512_add_ps(x, y); }
  DSV4_AVX512VNNI static F set1f(float v) { return _mm512_set1_ps(v); }
  // relu(bf16(dot)) x w, rounded to BF16 (finite lanes).
  DSV4_AVX512VNNI static F head_term(I dot, F w) {
    const F rel = _mm512_max_ps(bf16_round_finite_ps(_mm512_cvtepi32_ps(dot)), _mm512_setzero_ps());
    return bf16_round_finite_ps(_mm512_mul_ps(rel, w));
  }
  DSV4_AVX512VNNI static void store(F total, const float* kfac, int64_t keep, int n, float* out) {
    store_kept_lanes(bf16_round_finite_ps(_mm512_mul_ps(total, _mm512_load_ps(kfac))), keep,
                     -std::numeric_limits<float>::infinity(), n, out);
  }
};

#define DSV4_INT8_TARGET DSV4_AVX512VNNI
#include "kernels/cpu/indexer_int8_scan.h"
#undef DSV4_INT8_TARGET

}  // namespace

bool indexer_scores_fp4_int8(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes) {
  static constexpr Kernel k{64, int8_head, scan_tiles<Vec512>, other_kernel};
  return score(k, a, keys, key_bytes);
}

}  // namespace dsv4::cpu::avx512
