// Lightning-indexer scores on 8-bit integer dot products (vpdpbusd: 64 multiply-adds per
// instruction, twice vdpbf16ps's 32 at the same issue rate on Zen 4/5, four times FMA's 16), for
// AVX-512 CPUs without AMX. Same semantics as indexer_fp4.h (the scalar twin there):
//   score[t][i] = bf16( sum_h bf16( relu(bf16(q[t][h] . k[i])) * w[t][h] ) ).
//
// Exactness. The queries and keys are FP4-simulated (spec 6.3): E2M1 values times a power of two
// per 32 dimensions, so both sides are small integers times powers of two.
// - A key is stored as E2M1 codes and one E8M0 scale S_b per block. Twice an E2M1 value is an
//   integer in [-12, 12]. With S the largest scale of the key's nonzero blocks, block b's values
//   are 2 e2m1 x 2^(3 - (S - S_b)) x 2^(S - 131): integers in [-96, 96] while S - S_b <= 3,
//   times one power of two for the whole key (kfac). Bytes hold the integer + 128 (vpdpbusd
//   multiplies unsigned bytes by signed ones).
// - A query head is scaled by 2^-e, e = exponent of its largest magnitude - 6, so that the
//   largest maps into [64, 128): every value must land on an integer (checked), which holds for
//   the FP4 grid while the head's block scales span at most 2^3.
// - So q . k = (sum of integer products) x 2^e x kfac, with the integer sum exact in int32 (the
//   +128 offset is removed by starting each sum at -128 x the head's integer sum) and exact again
//   in float32 (|sum| <= 128 x 127 x 96 < 2^24). The powers of two commute with the BF16
//   roundings, the ReLU and the float32 products and sums of the combination (barring
//   underflow, kept out of reach by the range checks), so 2^e folds into the head weight and
//   kfac multiplies the finished sum over heads. The result differs from the BF16 kernels only
//   in the float32 rounding of the dot products, which these are without.
// Keys outside that form (a nonzero block more than 2^3 below the largest, or scales near the
// float32 limits) are gathered and scored afterwards by the BF16 / float32 kernel, and so are the
// query rows with a head outside it; when no row fits, the call is declined
// (indexer_scores_fp4_int8 returns false). Neither happened in the flash-width model's prefill and decode (counted over a
// pp512 + tg32 at depth 4096): FP4-simulated vectors after the Hadamard rotation have block
// scales close together.
//
// Layouts. Keys decode (vpermb on the nibbles, one table per block shift) into bytes in the
// de-interleaved dimension order of the other kernels (per 32-dim block: the 16 even dims, then
// the 16 odd dims); the queries are converted to int8 in that order, Dp = D rounded up to 64
// (zero padding). Lanes are keys: 16-key tiles [Dp / 4][16][4 bytes] (16 x 16 dword transposes
// of the decoded keys), 8 tiles a pass, one broadcast of 4 query bytes per quad of dimensions
// and head, two heads per tile load; every query row runs over the pass's tiles. This layout
// beat lanes of heads (queries transposed to [Dp / 4][heads][4], a broadcast of 4 key bytes per
// quad and key) in decode too: BM_IndexerScoresFp4 one row x 8192 keys, one Zen 5 thread, 333 vs
// 418 us, and it has no padding for few heads.
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
#include "quant/quant.h"

namespace dsv4::cpu::avx512 {
namespace {

constexpr int kBlock = 32;     // E8M0 scale block of the keys and of the query simulation
constexpr int kMaxShift = 3;   // a key block may sit this many powers of two below the largest
constexpr int kOffset = 128;   // key byte = integer value + 128

inline float bf16r(float x) { return bf16_bits_to_f32(f32_to_bf16_bits(x)); }

// t[16 shift + code] = 2 e2m1(code) x 2^(3 - shift) + 128, shift in [0, 3]: the vpermb table.
struct KeyTable {
  alignas(64) std::array<uint8_t, 64> t{};
  KeyTable() {
    for (int s = 0; s <= kMaxShift; ++s)
      for (int c = 0; c < 16; ++c)
        t[static_cast<size_t>(16 * s + c)] = static_cast<uint8_t>(
            static_cast<int>(2.0f * quant::e2m1_to_f32(static_cast<uint8_t>(c))) * (1 << (kMaxShift - s)) + kOffset);
  }
};
const KeyTable& key_table() {
  static const KeyTable k;
  return k;
}

// The queries of a call as integers: q[r][h][Dp] int8 (de-interleaved, zero padded), w[r][h]
// the head weight times the head's 2^e, corr[r][h] = -128 x the sum of the head's integers.
struct IntQueries {
  AlignedVector<int8_t> q;
  std::vector<float> w;
  std::vector<int32_t> corr;
};

// Head h of row r into iq (q row o); false when its values are not integers times one power of
// two within int8 (or lie near float32's limits).
DSV4_AVX512VNNI bool prepare_head(const IndexerScoreArgs& a, int64_t r, int h, int Dp, IntQueries& iq, int8_t* o) {
  const int H = a.n_heads, D = a.head_dim;
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
  const float* q = a.q + (r * H + h) * D;
  std::memset(o + D, 0, static_cast<size_t>(Dp - D));
  __m512 amax = _mm512_setzero_ps();
  for (int d = 0; d < D; d += 16) amax = _mm512_max_ps(amax, _mm512_and_ps(_mm512_loadu_ps(q + d), abs_mask));
  const float m = _mm512_reduce_max_ps(amax);  // NaN lanes compare false in max: checked below
  const size_t hi = static_cast<size_t>(r * H + h);
  if (m == 0.0f) {
    std::memset(o, 0, static_cast<size_t>(D));
    iq.w[hi] = a.w[r * H + h];
    iq.corr[hi] = 0;
    return true;
  }
  if (!(m >= std::numeric_limits<float>::min()) || !(m <= std::numeric_limits<float>::max())) return false;
  const int e = static_cast<int>((f32_to_bits(m) >> 23) & 0xFF) - 127 - 6;
  if (e < -60 || e > 60) return false;
  const __m512 s = _mm512_set1_ps(std::ldexp(1.0f, -e));
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
  iq.corr[hi] = -kOffset * _mm512_reduce_add_epi32(sum);
  iq.w[hi] = a.w[r * H + h] * std::ldexp(1.0f, e);
  return true;
}

// Every row's heads into iq; the rows with a head that does not fit go to `rows_out` (ascending)
// with zero queries and weights (the kernel's sums for them are then zero, and replaced).
DSV4_AVX512VNNI void prepare_queries(const IndexerScoreArgs& a, int Dp, IntQueries& iq, std::vector<int64_t>& rows_out) {
  const int H = a.n_heads;
  int8_t* q8 = grow(iq.q, static_cast<size_t>(a.n * H * Dp));
  iq.w.resize(static_cast<size_t>(a.n * H));
  iq.corr.resize(static_cast<size_t>(a.n * H));
  for (int64_t r = 0; r < a.n; ++r)
    for (int h = 0; h < H; ++h)
      if (!prepare_head(a, r, h, Dp, iq, q8 + (r * H + h) * Dp)) {
        rows_out.push_back(r);
        std::memset(q8 + r * H * Dp, 0, static_cast<size_t>(H) * Dp);
        std::fill(iq.w.begin() + r * H, iq.w.begin() + (r + 1) * H, 0.0f);
        std::fill(iq.corr.begin() + r * H, iq.corr.begin() + (r + 1) * H, 0);
        break;
      }
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
    table = _mm512_load_si512(key_table().t.data());
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

  static inline uint32_t byte_max(uint32_t v) {
    return std::max(std::max(v & 0xFF, (v >> 8) & 0xFF), std::max((v >> 16) & 0xFF, v >> 24));
  }

  // 2^(smax - 131), or false when that leaves float32's normal range (or the scale is NaN).
  static inline bool factor(uint32_t smax, float* kfac) {
    if (smax < 5 || smax == 255) return false;
    *kfac = bits_to_f32((smax - 4) << 23);
    return true;
  }

  // One key; false (out unspecified) when it is not of the exact form (see the top of the file).
  // kNb: the blocks per key where known at compile time (4 for Flash / Pro: then the masks and
  // loops fold away, 1.45x faster decode scans), else 0 (D / 32).
  template <int kNb>
  DSV4_AVX512VNNI inline bool decode(const uint8_t* e, int D, uint8_t* out, float* kfac) const {
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
    } else if (!factor(smax, kfac)) {
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

// Decodes keys [k0, k0 + n) (reading key min(i, last) for i past `last`, so spans fill whole
// groups) into rows of Dp bytes (padding bytes 128) and their factors; keys outside the exact
// form get factor 0 and go to `odd` (their index).
DSV4_AVX512VNNI void decode_keys(const uint8_t* keys, size_t key_bytes, int D, int Dp, int64_t k0, int64_t n,
                                 int64_t last, uint8_t* out, float* kfac, std::vector<int64_t>& odd) {
  const KeyDecoder dec;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t i = std::min(k0 + j, last);
    uint8_t* o = out + j * Dp;
    if (Dp > D) std::memset(o + D, kOffset, static_cast<size_t>(Dp - D));
    const uint8_t* e = keys + static_cast<size_t>(i) * key_bytes;
    if (!(D == 4 * kBlock ? dec.decode<4>(e, D, o, &kfac[j]) : dec.decode<0>(e, D, o, &kfac[j]))) {
      std::memset(o, kOffset, static_cast<size_t>(D));
      kfac[j] = 0.0f;
      if (k0 + j <= last) odd.push_back(k0 + j);
    }
  }
}

// acc += the dot products of 4-byte groups, unsigned bytes of u times signed bytes of s
// (vpdpbusd). As an asm statement: GCC 12 copies every accumulator of the intrinsic's form to a
// fresh register each time round the loop (16 extra moves per 16 products in these kernels).
DSV4_AVX512VNNI inline __m512i dpbusd(__m512i acc, __m512i u, __m512i s) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
  return acc;
}

// relu(bf16(dot)) x w, rounded to BF16 (finite lanes).
DSV4_AVX512VNNI inline __m512 head_term(__m512i dot, __m512 w) {
  const __m512 rel = _mm512_max_ps(bf16_round_finite_ps(_mm512_cvtepi32_ps(dot)), _mm512_setzero_ps());
  return bf16_round_finite_ps(_mm512_mul_ps(rel, w));
}

// The BF16 / float32 kernel of the level (for what the integer one cannot hold).
void other_kernel(const IndexerScoreArgs& b, const uint8_t* keys, size_t key_bytes) {
  if (isa_at_least(Isa::Avx512Bf16)) avx512::indexer_scores_fp4(b, keys, key_bytes);
  else avx512fma::indexer_scores_fp4(b, keys, key_bytes);
}

// Keys of `odd` (ascending; not of the exact form) for every row, gathered and scored by the
// other kernel.
void score_odd_keys(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes,
                    const std::vector<int64_t>& odd) {
  if (odd.empty()) return;
  const int64_t m = static_cast<int64_t>(odd.size());
  thread_local std::vector<uint8_t> gathered;
  thread_local std::vector<int64_t> vis;
  thread_local std::vector<float> out;
  gathered.resize(static_cast<size_t>(m) * key_bytes);
  for (int64_t j = 0; j < m; ++j) {
    const size_t i = static_cast<size_t>(odd[static_cast<size_t>(j)]);
    std::memcpy(gathered.data() + j * key_bytes, keys + i * key_bytes, key_bytes);
  }
  vis.resize(static_cast<size_t>(a.n));
  for (int64_t r = 0; r < a.n; ++r)  // the odd keys below the row's visible count
    vis[static_cast<size_t>(r)] = std::lower_bound(odd.begin(), odd.end(), a.visible[r]) - odd.begin();
  out.resize(static_cast<size_t>(a.n * m));
  IndexerScoreArgs b = a;
  b.n_keys = m;
  b.visible = vis.data();
  b.scores = out.data();
  other_kernel(b, gathered.data(), key_bytes);
  for (int64_t r = 0; r < a.n; ++r)
    for (int64_t j = 0; j < m; ++j)
      a.scores[r * a.n_keys + odd[static_cast<size_t>(j)]] = out[static_cast<size_t>(r * m + j)];
}

// Query rows `rows` (a head of each does not fit in int8) scored whole by the other kernel.
void score_odd_rows(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes,
                    const std::vector<int64_t>& rows) {
  if (rows.empty()) return;
  const int64_t m = static_cast<int64_t>(rows.size()), qw = int64_t{a.n_heads} * a.head_dim;
  thread_local std::vector<float> q, w, out;
  thread_local std::vector<int64_t> vis;
  q.resize(static_cast<size_t>(m * qw));
  w.resize(static_cast<size_t>(m * a.n_heads));
  vis.resize(static_cast<size_t>(m));
  out.resize(static_cast<size_t>(m * a.n_keys));
  for (int64_t j = 0; j < m; ++j) {
    const int64_t r = rows[static_cast<size_t>(j)];
    std::copy(a.q + r * qw, a.q + (r + 1) * qw, q.begin() + j * qw);
    std::copy(a.w + r * a.n_heads, a.w + (r + 1) * a.n_heads, w.begin() + j * a.n_heads);
    vis[static_cast<size_t>(j)] = a.visible[r];
  }
  IndexerScoreArgs b = a;
  b.q = q.data();
  b.w = w.data();
  b.n = m;
  b.visible = vis.data();
  b.scores = out.data();
  other_kernel(b, keys, key_bytes);
  for (int64_t j = 0; j < m; ++j)
    std::copy(out.begin() + j * a.n_keys, out.begin() + (j + 1) * a.n_keys, a.scores + rows[static_cast<size_t>(j)] * a.n_keys);
}

// Lanes are keys, 8 tiles of 16 per pass; every row runs over the pass's tiles, two heads per tile
// load.
DSV4_AVX512VNNI void scores_tiled(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes,
                                  const IntQueries& iq, int Dp, std::vector<int64_t>& odd) {
  constexpr int kTiles = 8, kSpan = 16 * kTiles;
  const int H = a.n_heads, D = a.head_dim, G = Dp / 4;
  const float ninf = -std::numeric_limits<float>::infinity();
  thread_local AlignedVector<uint8_t> kbuf, tbuf;
  thread_local std::vector<float> kf;
  uint8_t* kb8 = grow(kbuf, static_cast<size_t>(kSpan * Dp));
  uint8_t* tiles = grow(tbuf, static_cast<size_t>(kSpan * Dp));  // [tile][quad][16 keys][4]
  kf.resize(kSpan);
  for (int64_t p0 = 0; p0 < a.n_keys; p0 += kSpan) {
    const int np = static_cast<int>(std::min<int64_t>(kSpan, a.n_keys - p0));
    decode_keys(keys, key_bytes, D, Dp, p0, kSpan, p0 + np - 1, kb8, kf.data(), odd);
    for (int tt = 0; tt < kTiles; ++tt)
      for (int g0 = 0; g0 < G; g0 += 16)
        transpose16x16_32(kb8 + tt * 16 * Dp + 4 * g0, Dp, tiles + (tt * G + g0) * 64, 64);
    __m512 kfv[kTiles];
    for (int tt = 0; tt < kTiles; ++tt) kfv[tt] = _mm512_loadu_ps(kf.data() + 16 * tt);
    for (int64_t r = 0; r < a.n; ++r) {
      const int64_t vis = a.visible[r] - p0;
      float* out = a.scores + r * a.n_keys + p0;
      if (vis <= 0) {
        for (int j = 0; j < np; ++j) out[j] = ninf;
        continue;
      }
      __m512 total[kTiles];
      for (auto& v : total) v = _mm512_setzero_ps();
      for (int h = 0; h < H; h += 2) {
        const int h1 = std::min(h + 1, H - 1);  // an odd last head runs twice, counted once
        const int8_t* qa = iq.q.data() + (r * H + h) * Dp;
        const int8_t* qb = iq.q.data() + (r * H + h1) * Dp;
        __m512i acc0[kTiles], acc1[kTiles];
        for (int tt = 0; tt < kTiles; ++tt) {
          acc0[tt] = _mm512_set1_epi32(iq.corr[static_cast<size_t>(r * H + h)]);
          acc1[tt] = _mm512_set1_epi32(iq.corr[static_cast<size_t>(r * H + h1)]);
        }
        for (int g = 0; g < G; ++g) {
          int32_t wa, wb;
          std::memcpy(&wa, qa + 4 * g, 4);
          std::memcpy(&wb, qb + 4 * g, 4);
          const __m512i va = _mm512_set1_epi32(wa), vb = _mm512_set1_epi32(wb);
          for (int tt = 0; tt < kTiles; ++tt) {
            const __m512i t = _mm512_load_si512(tiles + (tt * G + g) * 64);
            acc0[tt] = dpbusd(acc0[tt], t, va);
            acc1[tt] = dpbusd(acc1[tt], t, vb);
          }
        }
        const __m512 w0 = _mm512_set1_ps(iq.w[static_cast<size_t>(r * H + h)]);
        for (int tt = 0; tt < kTiles; ++tt) total[tt] = _mm512_add_ps(total[tt], head_term(acc0[tt], w0));
        if (h1 != h) {
          const __m512 w1 = _mm512_set1_ps(iq.w[static_cast<size_t>(r * H + h1)]);
          for (int tt = 0; tt < kTiles; ++tt) total[tt] = _mm512_add_ps(total[tt], head_term(acc1[tt], w1));
        }
      }
      for (int tt = 0; 16 * tt < np; ++tt)
        store_kept_lanes(bf16_round_finite_ps(_mm512_mul_ps(total[tt], kfv[tt])), vis - 16 * tt, ninf,
                         std::min(16, np - 16 * tt), out + 16 * tt);
    }
  }
}

}  // namespace

DSV4_AVX512VNNI bool indexer_scores_fp4_int8(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes) {
  const int H = a.n_heads, D = a.head_dim;
  if (D % kBlock != 0 || D > 1024 || H <= 0) return false;
  const int Dp = (D + 63) / 64 * 64;
  thread_local IntQueries iq;
  thread_local std::vector<int64_t> odd_rows, odd;
  odd_rows.clear();
  odd.clear();
  prepare_queries(a, Dp, iq, odd_rows);
  if (a.n > 0 && static_cast<int64_t>(odd_rows.size()) == a.n) return false;  // no row fits: decline
  scores_tiled(a, keys, key_bytes, iq, Dp, odd);
  score_odd_keys(a, keys, key_bytes, odd);
  score_odd_rows(a, keys, key_bytes, odd_rows);
  return true;
}

}  // namespace dsv4::cpu::avx512
