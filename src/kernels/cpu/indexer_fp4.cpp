#include "kernels/cpu/simd_avx512.h"  // first (see the header)
#include "kernels/cpu/simd_avx2.h"

#include "kernels/cpu/indexer_fp4.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/formats.h"
#include "kernels/cpu/linear_kernels.h"
#include "quant/quant.h"

namespace dsv4::cpu {
namespace {

constexpr int kBlock = 32;  // E8M0 scale block of the keys

struct Lut {
  std::array<float, 16> e2m1{};
  std::array<float, 256> e8m0{};
  Lut() {
    for (int c = 0; c < 16; ++c) e2m1[static_cast<size_t>(c)] = quant::e2m1_to_f32(static_cast<uint8_t>(c));
    for (int c = 0; c < 256; ++c) e8m0[static_cast<size_t>(c)] = quant::e8m0_to_f32(static_cast<uint8_t>(c));
  }
};
const Lut& lut() {
  static const Lut l;
  return l;
}

inline float bf16r(float x) { return quant::bf16_round(x); }

void check(const IndexerScoreArgs& a, size_t key_bytes) {
  if (a.head_dim <= 0 || a.head_dim % 2 != 0 || key_bytes < static_cast<size_t>(a.head_dim / 2 + (a.head_dim + kBlock - 1) / kBlock))
    throw_error("indexer_fp4: head_dim ", a.head_dim, " with key stride ", key_bytes, " bytes is not an FP4 key layout");
}

// Final per-(row, key) combination shared by both versions.
inline float combine(const float* dots, const float* w, int H) {
  float total = 0.0f;
  for (int h = 0; h < H; ++h) {
    const float d = bf16r(dots[h]);
    total += bf16r((d > 0.0f ? d : 0.0f) * w[h]);
  }
  return bf16r(total);
}

// The SIMD decoders split each 32-dim block of a key into its 16 even dims, then its 16 odd dims
// (low / high nibbles). Writes query row q (D values) in that order: position p to o[p * stride].
inline void deinterleave_dims(const float* q, int D, float* o, int64_t stride) {
  for (int b = 0; b < D; b += kBlock)
    for (int j = 0; j < 16; ++j) {
      o[(b + j) * stride] = q[b + 2 * j];
      o[(b + 16 + j) * stride] = q[b + 2 * j + 1];
    }
}

// The queries of every row as the by-heads kernels read them: qt[r][d][h] (dims de-interleaved
// as the keys decode, Hp heads, the extra ones zero), wp[r][h] the padded head weights, and when
// q16 is given q16[r][d / 2][h][2] the BF16 bits of qt[r][d][h], qt[r][d + 1][h] (exact: the
// queries are FP4-simulated).
void transpose_queries(const IndexerScoreArgs& a, int Hp, std::vector<float>& qt, std::vector<float>& wp,
                       AlignedVector<uint16_t>* q16) {
  const int H = a.n_heads, D = a.head_dim;
  qt.assign(static_cast<size_t>(a.n * D * Hp), 0.0f);
  wp.assign(static_cast<size_t>(a.n * Hp), 0.0f);
  for (int64_t r = 0; r < a.n; ++r)
    for (int h = 0; h < H; ++h) {
      deinterleave_dims(a.q + (r * H + h) * D, D, qt.data() + r * D * Hp + h, Hp);
      wp[static_cast<size_t>(r * Hp + h)] = a.w[r * H + h];
    }
  if (q16 == nullptr) return;
  uint16_t* o16 = grow(*q16, static_cast<size_t>(a.n * D * Hp));
  for (int64_t r = 0; r < a.n; ++r)
    for (int d = 0; d < D; d += 2)
      for (int h = 0; h < Hp; ++h) {
        const size_t o = static_cast<size_t>((r * D + d) * Hp + 2 * h);
        o16[o] = f32_to_bf16_bits(qt[static_cast<size_t>((r * D + d) * Hp + h)]);
        o16[o + 1] = f32_to_bf16_bits(qt[static_cast<size_t>((r * D + d + 1) * Hp + h)]);
      }
}

}  // namespace

#if !defined(DSV4_AVX512_FMA_PASS)  // the scalar / AVX2 / AMX tiers and the dispatch: first pass only
void indexer_scores_fp4_scalar(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes) {
  check(a, key_bytes);
  const int H = a.n_heads, D = a.head_dim;
  const Lut& t = lut();
  const float ninf = -std::numeric_limits<float>::infinity();
  thread_local std::vector<float> k, dots;  // per-thread scratch, kept between calls (decode loop)
  if (k.size() < static_cast<size_t>(D)) k.resize(static_cast<size_t>(D));
  if (dots.size() < static_cast<size_t>(H)) dots.resize(static_cast<size_t>(H));
  for (int64_t i = 0; i < a.n_keys; ++i) {
    const uint8_t* e = keys + static_cast<size_t>(i) * key_bytes;
    const uint8_t* sc = e + D / 2;
    for (int d = 0; d < D; ++d) {
      const uint8_t b = e[d / 2];
      k[static_cast<size_t>(d)] = t.e2m1[(d % 2 == 0) ? (b & 0xF) : (b >> 4)] * t.e8m0[sc[d / kBlock]];
    }
    for (int64_t r = 0; r < a.n; ++r) {
      float* out = a.scores + r * a.n_keys + i;
      if (i >= a.visible[r]) {
        *out = ninf;
        continue;
      }
      for (int h = 0; h < H; ++h) {
        const float* q = a.q + (r * H + h) * D;
        float s = 0.0f;
        for (int d = 0; d < D; ++d) s += q[d] * k[static_cast<size_t>(d)];
        dots[static_cast<size_t>(h)] = s;
      }
      *out = combine(dots.data(), a.w + r * H, H);
    }
  }
}
#endif  // !DSV4_AVX512_FMA_PASS

namespace DSV4_AVX512_NS {

namespace {

// Many query rows (prefill): keys decoded 16 at a time into dim-major tiles [D][16], kTiles
// tiles (128 keys) per pass, so one broadcast of a query value advances 128 key dot products
// (no horizontal sums) and every query row is read once per 128 keys instead of once per 16. The
// bf16 / relu / weight combination runs on 16 keys per vector, heads in order.
// kDp (where vdpbf16ps outruns FMA, dispatch.h GemmUnit): the tiles hold BF16 pairs of
// dimensions [D / 2][16][2] and one vdpbf16ps takes a broadcast pair of query values (both BF16
// values, exact products).
template <bool kDp>
DSV4_AVX512 void scores_tiled(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes) {
  constexpr int kTiles = 8;
  const int H = a.n_heads, D = a.head_dim;
  const Lut& t = lut();
  const float ninf = -std::numeric_limits<float>::infinity();
  thread_local std::vector<float> tiles;
  thread_local std::vector<uint16_t> tiles16, q16;
  tiles.resize(static_cast<size_t>(kTiles) * D * 16);
  if constexpr (kDp) {
    tiles16.resize(static_cast<size_t>(kTiles) * D * 16);
    q16.resize(static_cast<size_t>(a.n * H * D));
    for (size_t i = 0; i < q16.size(); ++i) q16[i] = f32_to_bf16_bits(a.q[i]);  // exact
  }
  float kr[32];
  for (int64_t p0 = 0; p0 < a.n_keys; p0 += 16 * kTiles) {
    const int np = static_cast<int>(std::min<int64_t>(16 * kTiles, a.n_keys - p0));
    const int nt = (np + 15) / 16;
    std::fill(tiles.begin(), tiles.begin() + nt * D * 16, 0.0f);
    for (int j = 0; j < np; ++j) {
      float* tile = tiles.data() + (j / 16) * D * 16;
      const uint8_t* e = keys + static_cast<size_t>(p0 + j) * key_bytes;
      const uint8_t* sc = e + D / 2;
      for (int b0 = 0; b0 < D; b0 += 32) {
        const float s = t.e8m0[sc[b0 / 32]];
        for (int m = 0; m < 16; ++m) {
          const uint8_t byte = e[b0 / 2 + m];
          kr[2 * m] = t.e2m1[byte & 0xF] * s;
          kr[2 * m + 1] = t.e2m1[byte >> 4] * s;
        }
        for (int d = 0; d < 32; ++d) tile[static_cast<size_t>((b0 + d) * 16 + j % 16)] = kr[d];
      }
    }
    if constexpr (kDp) {
      for (int tt = 0; tt < nt; ++tt)
        for (int d = 0; d < D; d += 2)
          for (int j = 0; j < 16; ++j) {
            const size_t o = static_cast<size_t>(tt * D * 16 + d * 16 + 2 * j);
            tiles16[o] = f32_to_bf16_bits(tiles[static_cast<size_t>(tt * D * 16 + d * 16 + j)]);
            tiles16[o + 1] = f32_to_bf16_bits(tiles[static_cast<size_t>(tt * D * 16 + (d + 1) * 16 + j)]);
          }
    }
    for (int64_t r = 0; r < a.n; ++r) {
      const int64_t vis = a.visible[r] - p0;
      float* out = a.scores + r * a.n_keys + p0;
      if (vis <= 0) {
        for (int j = 0; j < np; ++j) out[j] = ninf;
        continue;
      }
      __m512 total[kTiles];
      for (auto& v : total) v = _mm512_setzero_ps();
      for (int h = 0; h < H; ++h) {
        __m512 acc[kTiles];
        for (auto& v : acc) v = _mm512_setzero_ps();
        if constexpr (kDp) {
          const uint16_t* q = q16.data() + (r * H + h) * D;
          for (int d = 0; d < D; d += 2) {
            int32_t pair;
            std::memcpy(&pair, q + d, 4);
            const __m512bh qb = (__m512bh)_mm512_set1_epi32(pair);
            for (int tt = 0; tt < kTiles; ++tt)
              acc[tt] = dpbf16(acc[tt], (__m512bh)_mm512_loadu_si512(tiles16.data() + tt * D * 16 + d * 16), qb);
          }
        } else {
          const float* q = a.q + (r * H + h) * D;
          for (int d = 0; d < D; ++d) {
            const __m512 qb = _mm512_set1_ps(q[d]);
            for (int tt = 0; tt < kTiles; ++tt)
              acc[tt] = _mm512_fmadd_ps(qb, _mm512_loadu_ps(tiles.data() + tt * D * 16 + d * 16), acc[tt]);
          }
        }
        const __m512 wv = _mm512_set1_ps(a.w[r * H + h]);
        for (int tt = 0; tt < kTiles; ++tt) {
          const __m512 rel = _mm512_max_ps(bf16_round_finite_ps(acc[tt]), _mm512_setzero_ps());
          total[tt] = _mm512_add_ps(total[tt], bf16_round_finite_ps(_mm512_mul_ps(rel, wv)));
        }
      }
      for (int tt = 0; tt < nt; ++tt)
        store_kept_lanes(bf16_round_finite_ps(total[tt]), vis - 16 * tt, ninf, std::min(16, np - 16 * tt), out + 16 * tt);
    }
  }
}

// 32-dim block b of key e (scale byte sc[b]) decoded with its scale: lo = the 16 even dims (low
// nibbles), hi = the 16 odd dims. table: t.e2m1 as a vector.
DSV4_AVX512 inline void decode_key_block(const Lut& t, const uint8_t* e, const uint8_t* sc, int b,
                                         __m512 table, __m512* lo, __m512* hi) {
  const __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(e + b * 16)));
  const __m512 s = _mm512_set1_ps(t.e8m0[sc[b]]);
  *lo = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_and_si512(bytes, _mm512_set1_epi32(0xF)), table), s);
  *hi = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), table), s);
}

// At most 128 heads (decode, and prefill without vdpbf16ps): the queries of each row are
// transposed once per call to dim-major [D][Hp] (Hp = heads rounded up to 16, the extra heads
// zero; dims in the de-interleaved order of the decoded keys), and KB keys advance together
// (within spans that every row runs over, see below): per dimension one
// broadcast of each key's value times the Hp / 16 query vectors gives every head's dot product at
// once (no horizontal sum per head). The bf16 / relu / weight combination runs on 16 heads per
// vector; one horizontal sum per key and row adds the heads (in lane-tree order, not head order:
// within a bf16 step of the scalar twin).
//
// kDp (where vdpbf16ps outruns FMA, dispatch.h GemmUnit): the queries and keys are BF16 values
// (FP4-simulated queries, E2M1 times a power of two), so vdpbf16ps forms the same exact products;
// one instruction takes a pair of dimensions (queries [D / 2][Hp][2], each key's pair broadcast).
template <int HV, int KB, bool kDp>
DSV4_AVX512 void scores_by_heads(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes) {
  const int D = a.head_dim, nb = D / kBlock, Hp = HV * 16;
  const Lut& t = lut();
  const float ninf = -std::numeric_limits<float>::infinity();
  thread_local std::vector<float> qt, wp, kbuf;
  thread_local AlignedVector<uint16_t> qt16, kbuf16;
  transpose_queries(a, Hp, qt, wp, kDp ? &qt16 : nullptr);
  // Keys are decoded a span at a time and every row runs over the span before the next, so a
  // row's queries (D x Hp, 32 KiB as float32 for Flash) are read once per span: KB keys per row,
  // at most 128.
  const int64_t span = std::clamp<int64_t>(KB * a.n, KB, 128 / KB * KB);
  kbuf.resize(static_cast<size_t>(span * D));
  if constexpr (kDp) grow(kbuf16, static_cast<size_t>(span * D));
  const __m512 table = _mm512_loadu_ps(t.e2m1.data());
  for (int64_t s0 = 0; s0 < a.n_keys; s0 += span) {
    const int64_t s1 = std::min(a.n_keys, s0 + span);
    for (int64_t i = s0; i < s0 + (s1 - s0 + KB - 1) / KB * KB; ++i) {  // past the end: the last key again
      const uint8_t* e = keys + static_cast<size_t>(std::min(i, s1 - 1)) * key_bytes;
      const uint8_t* sc = e + D / 2;
      float* kd = kbuf.data() + (i - s0) * D;
      for (int b = 0; b < nb; ++b) {
        __m512 lo, hi;
        decode_key_block(t, e, sc, b, table, &lo, &hi);
        if constexpr (kDp) {
          _mm512_storeu_si512(kbuf16.data() + (i - s0) * D + b * 32, cvt2_bf16(hi, lo));
        } else {
          _mm512_storeu_ps(kd + b * 32, lo);
          _mm512_storeu_ps(kd + b * 32 + 16, hi);
        }
      }
    }
    for (int64_t r = 0; r < a.n; ++r) {
      for (int64_t i0 = s0; i0 < s1; i0 += KB) {
        const int nk = static_cast<int>(std::min<int64_t>(KB, s1 - i0));
        const float* kspan = kbuf.data() + (i0 - s0) * D;
        const uint16_t* kspan16 = kDp ? kbuf16.data() + (i0 - s0) * D : nullptr;
        float* out = a.scores + r * a.n_keys + i0;
        const int64_t vis = a.visible[r] - i0;
        if (vis <= 0) {
          for (int j = 0; j < nk; ++j) out[j] = ninf;
          continue;
        }
        __m512 acc[KB][HV];
        for (auto& row : acc)
          for (auto& v : row) v = _mm512_setzero_ps();
        if constexpr (kDp) {
          const uint16_t* qr = qt16.data() + r * D * Hp;
          for (int d = 0; d < D; d += 2) {
            __m512bh qv[HV];
            for (int v = 0; v < HV; ++v) qv[v] = (__m512bh)_mm512_loadu_si512(qr + d * Hp + 32 * v);
            for (int j = 0; j < KB; ++j) {
              int32_t pair;
              std::memcpy(&pair, kspan16 + j * D + d, 4);
              const __m512bh kv = (__m512bh)_mm512_set1_epi32(pair);
              for (int v = 0; v < HV; ++v) acc[j][v] = dpbf16(acc[j][v], qv[v], kv);
            }
          }
        } else {
          const float* qr = qt.data() + r * D * Hp;
          for (int d = 0; d < D; ++d) {
            __m512 qv[HV];
            for (int v = 0; v < HV; ++v) qv[v] = _mm512_loadu_ps(qr + d * Hp + 16 * v);
            for (int j = 0; j < KB; ++j) {
              const __m512 kv = _mm512_set1_ps(kspan[j * D + d]);
              for (int v = 0; v < HV; ++v) acc[j][v] = _mm512_fmadd_ps(kv, qv[v], acc[j][v]);
            }
          }
        }
        for (int j = 0; j < nk; ++j) {
          if (j >= vis) {
            out[j] = ninf;
            continue;
          }
          __m512 total = _mm512_setzero_ps();
          for (int v = 0; v < HV; ++v) {
            const __m512 rel = _mm512_max_ps(bf16_round_finite_ps(acc[j][v]), _mm512_setzero_ps());
            total = _mm512_add_ps(total, bf16_round_finite_ps(_mm512_mul_ps(rel, _mm512_loadu_ps(wp.data() + r * Hp + 16 * v))));
          }
          out[j] = bf16r(hsum(total));
        }
      }
    }
  }
}

}  // namespace

DSV4_AVX512 void indexer_scores_fp4(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes) {
  check(a, key_bytes);
  const int H = a.n_heads, D = a.head_dim;
  if (D % kBlock != 0) return indexer_scores_fp4_scalar(a, keys, key_bytes);
  const bool dp = kNativeBf16 && gemm_unit() == GemmUnit::Dpbf16;
  // Up to 128 heads: every head at once per key, keys in spans that every row runs over. With
  // vdpbf16ps (AMD) from 8 rows on, and beyond 128 heads: 16-key tiles. On the AMX Xeon VM forced
  // to the FMA unit (2 threads, BM_IndexerScoresFp4 / BM_IndexerTopk) the by-heads scan took 64
  // rows x 8192 keys from 83.6 to 27.6 ms and 512 x 8192 from 742 to 293 ms against the tiles;
  // with vdpbf16ps there the two measured the same (47 / 44 and 400 / 420 ms), and they were
  // not compared on AMD, where the tiles were tuned, so the tiles stay there.
  if (!(dp && a.n >= 8)) {
    if (H <= 16)
      return dp ? scores_by_heads<1, 4, true>(a, keys, key_bytes) : scores_by_heads<1, 4, false>(a, keys, key_bytes);
    if (H <= 64)
      return dp ? scores_by_heads<4, 4, true>(a, keys, key_bytes) : scores_by_heads<4, 4, false>(a, keys, key_bytes);
    if (H <= 128)
      return dp ? scores_by_heads<8, 2, true>(a, keys, key_bytes) : scores_by_heads<8, 2, false>(a, keys, key_bytes);
  }
  return dp ? scores_tiled<true>(a, keys, key_bytes) : scores_tiled<false>(a, keys, key_bytes);
}

}  // namespace DSV4_AVX512_NS

#if !defined(DSV4_AVX512_FMA_PASS)  // the scalar / AVX2 / AMX tiers and the dispatch: first pass only
namespace {

// E2M1 nibbles (one per int32 lane, < 16) -> float: the magnitude from an 8-entry permute, the
// sign bit (nibble bit 3) moved to bit 31.
DSV4_AVX2 inline __m256 e2m1_ps(__m256i nib) {
  const __m256 mag = _mm256_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f);
  const __m256i sign = _mm256_and_si256(_mm256_slli_epi32(nib, 28), _mm256_set1_epi32(static_cast<int>(0x80000000u)));
  return _mm256_xor_ps(_mm256_permutevar8x32_ps(mag, nib), _mm256_castsi256_ps(sign));
}

// The AVX-512 scores_by_heads on 8-lane vectors, for every row count. The queries of each
// row are transposed once per call to dim-major [D][Hp] (Hp = heads rounded up to 8 HV, the
// extra heads zero), KB keys are decoded into a small buffer, and per pass of 8 HV heads one
// broadcast of each key's value per dimension times the HV query vectors advances every head's
// dot product (no horizontal sum per head; HV + KB x HV + 1 registers of the 16). The bf16 /
// relu / weight combination runs on 8 heads per vector, one horizontal sum per key and row (in
// lane-tree order: within a bf16 step of the scalar twin).
template <int HV, int KB>
DSV4_AVX2 void scores_by_heads_avx2(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes) {
  constexpr int kPass = 8 * HV;
  const int D = a.head_dim, nb = D / kBlock, Hp = (a.n_heads + kPass - 1) / kPass * kPass;
  const Lut& t = lut();
  const float ninf = -std::numeric_limits<float>::infinity();
  thread_local std::vector<float> qt, wp, kbuf;
  transpose_queries(a, Hp, qt, wp, nullptr);
  // Keys are decoded a span at a time and every row runs over the span before the next, so a
  // row's queries (D x Hp floats, 32 KiB for Flash) are read once per span: KB keys per row, at
  // most 128 (64 KiB of decoded keys).
  const int64_t span = std::clamp<int64_t>(KB * a.n, KB, 128 / KB * KB);
  kbuf.resize(static_cast<size_t>(span * D));
  const __m256i low4 = _mm256_set1_epi32(0xF);
  for (int64_t s0 = 0; s0 < a.n_keys; s0 += span) {
    const int64_t s1 = std::min(a.n_keys, s0 + span);
    for (int64_t i = s0; i < s0 + (s1 - s0 + KB - 1) / KB * KB; ++i) {  // past the end: the last key again
      const uint8_t* e = keys + static_cast<size_t>(std::min(i, s1 - 1)) * key_bytes;
      const uint8_t* sc = e + D / 2;
      float* kd = kbuf.data() + (i - s0) * D;
      for (int b = 0; b < nb; ++b) {  // per block: the 16 even dims, then the 16 odd dims
        const __m256 s = _mm256_set1_ps(t.e8m0[sc[b]]);
        for (int half = 0; half < 2; ++half) {
          const __m256i bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(e + b * 16 + 8 * half)));
          _mm256_storeu_ps(kd + b * 32 + 8 * half, _mm256_mul_ps(e2m1_ps(_mm256_and_si256(bytes, low4)), s));
          _mm256_storeu_ps(kd + b * 32 + 16 + 8 * half, _mm256_mul_ps(e2m1_ps(_mm256_srli_epi32(bytes, 4)), s));
        }
      }
    }
    for (int64_t r = 0; r < a.n; ++r) {
      const float* qr = qt.data() + r * D * Hp;
      const float* wr = wp.data() + r * Hp;
      for (int64_t i0 = s0; i0 < s1; i0 += KB) {
        const int nk = static_cast<int>(std::min<int64_t>(KB, s1 - i0));
        const float* kb = kbuf.data() + (i0 - s0) * D;
        float* out = a.scores + r * a.n_keys + i0;
        const int64_t vis = a.visible[r] - i0;
        if (vis <= 0) {
          for (int j = 0; j < nk; ++j) out[j] = ninf;
          continue;
        }
        __m256 total[KB];
        for (auto& v : total) v = _mm256_setzero_ps();
        for (int h0 = 0; h0 < Hp; h0 += kPass) {
          __m256 acc[KB][HV];
          for (auto& row : acc)
            for (auto& v : row) v = _mm256_setzero_ps();
          for (int d = 0; d < D; ++d) {
            __m256 qv[HV];
            for (int v = 0; v < HV; ++v) qv[v] = _mm256_loadu_ps(qr + d * Hp + h0 + 8 * v);
            for (int j = 0; j < KB; ++j) {
              const __m256 kv = _mm256_broadcast_ss(kb + j * D + d);
              for (int v = 0; v < HV; ++v) acc[j][v] = _mm256_fmadd_ps(kv, qv[v], acc[j][v]);
            }
          }
          for (int j = 0; j < KB; ++j)
            for (int v = 0; v < HV; ++v) {
              const __m256 rel = _mm256_max_ps(avx2::bf16_round_ps(acc[j][v]), _mm256_setzero_ps());
              total[j] = _mm256_add_ps(total[j], avx2::bf16_round_ps(_mm256_mul_ps(rel, _mm256_loadu_ps(wr + h0 + 8 * v))));
            }
        }
        for (int j = 0; j < nk; ++j) out[j] = j >= vis ? ninf : bf16r(avx2::hsum(total[j]));
      }
    }
  }
}

}  // namespace

DSV4_AVX2 void indexer_scores_fp4_avx2(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes) {
  check(a, key_bytes);
  if (a.head_dim % kBlock != 0) return indexer_scores_fp4_scalar(a, keys, key_bytes);
  // Every head at once per key, in passes of 16 heads x 4 keys. Measured (64 heads, one
  // row x 65536 keys, 2 threads, BM_IndexerScoresFp4), heads x keys per pass: 16 x 4 6.5-7.1 ms,
  // 32 x 2 8.0-8.5, 8 x 8 7.1, 16 x 5 / 6 7.8-8.0, 24 x 3 10.1-10.4; the per-key kernel before
  // (a horizontal sum per head) 14.0-14.2.
  if (a.n_heads <= 8) return scores_by_heads_avx2<1, 4>(a, keys, key_bytes);
  return scores_by_heads_avx2<2, 4>(a, keys, key_bytes);
}

namespace avx512 {
// The combination of two keys' dot products with 16 heads (c: C[key][head], keys 2j and 2j + 1
// at c and c + 16) on BF16 conversions: bf16(relu(bf16(dot)) * w) per head, added into *total.
// One vcvtne2ps2bf16 rounds 32 values (round to nearest even, as bf16_round_finite_ps; it flushes float32
// denormals, which dot products of FP4 keys and queries do not reach); the relu is an integer max
// on the BF16 words; widening back (a zero low half) permutes the heads within 128-bit lanes, so
// the weights come permuted to match (wlo / whi below) and the sums land in *total: 128-bit lanes
// 0 and 2 for key 2j, 1 and 3 for key 2j + 1, each lane 4 heads' terms of a head group.
DSV4_AVX512 inline void combine_pair(const float* c, __m512 wlo, __m512 whi, __m512* total) {
  const __m512i zero = _mm512_setzero_si512();
  const __m512i d = _mm512_max_epi16((__m512i)_mm512_cvtne2ps_pbh(_mm512_load_ps(c + 16), _mm512_load_ps(c)), zero);
  const __m512 plo = _mm512_mul_ps(_mm512_castsi512_ps(_mm512_unpacklo_epi16(zero, d)), wlo);
  const __m512 phi = _mm512_mul_ps(_mm512_castsi512_ps(_mm512_unpackhi_epi16(zero, d)), whi);
  const __m512i p = (__m512i)_mm512_cvtne2ps_pbh(phi, plo);
  *total = _mm512_add_ps(*total, _mm512_castsi512_ps(_mm512_unpacklo_epi16(zero, p)));
  *total = _mm512_add_ps(*total, _mm512_castsi512_ps(_mm512_unpackhi_epi16(zero, p)));
}

DSV4_AVX512 inline float hsum4(__m128 v) {
  v = _mm_add_ps(v, _mm_movehl_ps(v, v));
  return _mm_cvtss_f32(_mm_add_ss(v, _mm_movehdup_ps(v)));
}

// AMX: the dot products of 16 keys x 16 heads are one tile product per 32 dimensions. The keys
// are the A operand (16 keys x 32 BF16 per block, decoded with the block scale: exact, the dims
// of each block de-interleaved as the other versions decode them), the queries of one row the B
// operand (pairs of de-interleaved dims x 16 heads, the layout scores_by_heads builds for
// vdpbf16ps), and one accumulator tile per group of 16 heads (up to 4 at a time). The
// combination rounds as scores_by_heads' (bf16 / relu / weight / bf16 per head) on BF16
// conversions, two keys at a time (combine_pair), the heads summed in another order.
DSV4_AMX void indexer_scores_fp4_amx(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes) {
  check(a, key_bytes);
  // The head weights in the order combine_pair's widening leaves the heads: per 128-bit lane of
  // the dot products' words, heads 0-3 / 8-11 (unpacklo) and 4-7 / 12-15 (unpackhi).
  const __m512i w_lo = _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11);
  const __m512i w_hi = _mm512_setr_epi32(4, 5, 6, 7, 12, 13, 14, 15, 4, 5, 6, 7, 12, 13, 14, 15);
  const int H = a.n_heads, D = a.head_dim;
  if (D % kBlock != 0) return indexer_scores_fp4_scalar(a, keys, key_bytes);
  const int Hp = (H + 15) / 16 * 16, G = Hp / 16, nb = D / kBlock;
  const Lut& t = lut();
  const float ninf = -std::numeric_limits<float>::infinity();
  thread_local std::vector<float> qt, wp;
  thread_local AlignedVector<uint16_t> qt16, kbuf16;
  transpose_queries(a, Hp, qt, wp, &qt16);
  const uint16_t* q16 = qt16.data();
  // Keys are decoded a span at a time, and every query row runs over the whole span before the
  // next: a row's query tiles (Hp x D BF16, 16 KiB for Flash) are then read once per span,
  // instead of all rows' once per 16 keys (8 MiB per 16 keys for a 512-row prefill chunk: from
  // L3, which made this scan the largest cost of prefill at depth). Spans of 16 keys per row, at
  // most 128 (32 KiB of decoded keys, L1); 128 / 256 / 512 measured the same at 512 rows.
  const int64_t kSpan = std::clamp<int64_t>(16 * a.n, 16, 128);
  uint16_t* kspan = grow(kbuf16, static_cast<size_t>(kSpan * D));
  const __m512 table = _mm512_loadu_ps(t.e2m1.data());
  const int64_t ka = D * 2, qa = Hp * 4;  // tile row strides (bytes) of the keys and queries
  alignas(64) float cbuf[4][256];
  amx::begin();
  for (int64_t s0 = 0; s0 < a.n_keys; s0 += kSpan) {
    const int64_t s1 = std::min(a.n_keys, s0 + kSpan);
    for (int64_t i = s0; i < (s1 - s0 + 15) / 16 * 16 + s0; ++i) {  // keys past the end repeat the last one
      const uint8_t* e = keys + static_cast<size_t>(std::min(i, s1 - 1)) * key_bytes;
      const uint8_t* sc = e + D / 2;
      for (int b = 0; b < nb; ++b) {
        __m512 lo, hi;
        decode_key_block(t, e, sc, b, table, &lo, &hi);
        _mm512_store_si512(kspan + (i - s0) * D + b * 32, cvt2_bf16(hi, lo));
      }
    }
    for (int64_t r = 0; r < a.n; ++r) {
      for (int64_t i0 = s0; i0 < s1; i0 += 16) {
        const int nk = static_cast<int>(std::min<int64_t>(16, s1 - i0));
        const uint16_t* kb = kspan + (i0 - s0) * D;
        float* out = a.scores + r * a.n_keys + i0;
        const int64_t vis = a.visible[r] - i0;
        if (vis <= 0) {
          for (int j = 0; j < nk; ++j) out[j] = ninf;
          continue;
        }
        __m512 total[8];  // key pairs (see combine_pair)
        for (auto& v : total) v = _mm512_setzero_ps();
        for (int g0 = 0; g0 < G; g0 += 4) {
          const int gn = std::min(4, G - g0);
          _tile_zero(0);
          _tile_zero(1);
          _tile_zero(2);
          _tile_zero(3);
          for (int b = 0; b < nb; ++b) {
            const uint16_t* qb = q16 + (r * D + 32 * b) * Hp + 32 * g0;
            _tile_loadd(4, kb + 32 * b, ka);
            _tile_loadd(5, qb, qa);
            _tile_dpbf16ps(0, 4, 5);
            if (gn > 1) {
              _tile_loadd(6, qb + 32, qa);
              _tile_dpbf16ps(1, 4, 6);
            }
            if (gn > 2) {
              _tile_loadd(7, qb + 64, qa);
              _tile_dpbf16ps(2, 4, 7);
            }
            if (gn > 3) {
              _tile_loadd(5, qb + 96, qa);
              _tile_dpbf16ps(3, 4, 5);
            }
          }
          _tile_stored(0, cbuf[0], 64);
          _tile_stored(1, cbuf[1], 64);
          _tile_stored(2, cbuf[2], 64);
          _tile_stored(3, cbuf[3], 64);
          for (int g = 0; g < gn; ++g) {
            const __m512 wv = _mm512_loadu_ps(wp.data() + r * Hp + 16 * (g0 + g));
            const __m512 wlo = _mm512_permutexvar_ps(w_lo, wv), whi = _mm512_permutexvar_ps(w_hi, wv);
            for (int j = 0; j < 8; ++j) combine_pair(cbuf[g] + 32 * j, wlo, whi, &total[j]);
          }
        }
        for (int j = 0; j < 8; ++j) {
          // lanes 0 and 2 (128-bit) hold key 2j's partial sums, lanes 1 and 3 key 2j + 1's
          const __m512 both = _mm512_add_ps(total[j], _mm512_shuffle_f32x4(total[j], total[j], 0x4E));
          const __m256 h = _mm512_castps512_ps256(both);
          const float s0 = hsum4(_mm256_castps256_ps128(h)), s1 = hsum4(_mm256_extractf128_ps(h, 1));
          if (2 * j < nk) out[2 * j] = 2 * j >= vis ? ninf : bf16r(s0);
          if (2 * j + 1 < nk) out[2 * j + 1] = 2 * j + 1 >= vis ? ninf : bf16r(s1);
        }
      }
    }
  }
}

}  // namespace avx512

const char* indexer_engine_name() {
  if (isa_at_least(Isa::Avx512Amx)) return "amx";
  if (isa_at_least(Isa::Avx512)) return "vpdpbusd";
  if (isa_at_least(Isa::Avx2)) return avx_vnni() ? "vpdpbusd-vex" : "fma";
  return "scalar";
}

void indexer_scores_fp4(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes) {
  // AMX keeps its tiles (not measured against the integer kernel: no AMX machine at hand since).
  // The integer kernel declines queries that are not FP4-simulated; the BF16 / float32 ones
  // take those.
  if (a.head_dim % kBlock == 0 && isa_at_least(Isa::Avx512Amx)) avx512::indexer_scores_fp4_amx(a, keys, key_bytes);
  else if (isa_at_least(Isa::Avx512) && avx512::indexer_scores_fp4_int8(a, keys, key_bytes)) {
  } else if (a.head_dim % kBlock == 0 && isa_at_least(Isa::Avx512Bf16)) avx512::indexer_scores_fp4(a, keys, key_bytes);
  else if (a.head_dim % kBlock == 0 && isa_at_least(Isa::Avx512)) avx512fma::indexer_scores_fp4(a, keys, key_bytes);
  else if (isa_at_least(Isa::Avx2) && avx_vnni() && indexer_scores_fp4_avxvnni(a, keys, key_bytes)) {
  } else if (a.head_dim % kBlock == 0 && isa_at_least(Isa::Avx2)) indexer_scores_fp4_avx2(a, keys, key_bytes);
  else indexer_scores_fp4_scalar(a, keys, key_bytes);
}

void indexer_scores_fp4(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes,
                        ThreadPool* pool) {
  check(a, key_bytes);
  const double work = double(a.n) * double(a.n_keys) * a.n_heads * a.head_dim;
  constexpr int64_t kGrain = 64;  // keys per unit of the split
  pool = pool_for_work(pool, work);
  if (pool == nullptr || pool->size() == 1 || a.n_keys < 2 * kGrain) {
    indexer_scores_fp4(a, keys, key_bytes);
    return;
  }
  pool->parallel_for(a.n_keys, kGrain, [&](int64_t k0, int64_t k1, int) {
    const int64_t len = k1 - k0;
    thread_local std::vector<int64_t> vis;
    thread_local std::vector<float> out;
    vis.resize(static_cast<size_t>(a.n));
    for (int64_t r = 0; r < a.n; ++r) vis[static_cast<size_t>(r)] = std::clamp<int64_t>(a.visible[r] - k0, 0, len);
    IndexerScoreArgs b = a;
    b.n_keys = len;
    b.visible = vis.data();
    if (a.n == 1) {
      b.scores = a.scores + k0;  // one row: the range is contiguous in the output
    } else {
      out.resize(static_cast<size_t>(a.n * len));
      b.scores = out.data();
    }
    indexer_scores_fp4(b, keys + static_cast<size_t>(k0) * key_bytes, key_bytes);
    if (a.n > 1)
      for (int64_t r = 0; r < a.n; ++r)
        std::copy(out.begin() + r * len, out.begin() + (r + 1) * len, a.scores + r * a.n_keys + k0);
  });
}
#endif  // !DSV4_AVX512_FMA_PASS

}  // namespace dsv4::cpu
