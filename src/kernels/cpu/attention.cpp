#include "kernels/cpu/simd_avx512.h"  // first: wraps <immintrin.h>
#include "kernels/cpu/simd_avx2.h"

#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/formats.h"
#include "kernels/cpu/linear_kernels.h"
#include "kernels/ref/attention.h"

namespace dsv4::cpu {
namespace {

constexpr int kHeadGroup = 4;
// Heads per work unit at the AVX-512 level: its groups of 4 share one BF16 copy of each key block.
constexpr int kTaskHeads = 16;
// The vdpbf16ps kernel (AVX-512 BF16 without AMX) converts each block once per unit, so it takes
// units of up to 64 heads, as wide as keeps every thread busy (sparse_attention picks).
constexpr int kBf16MaxHeads = 64;
// With AMX a unit converts each block of keys once for all of its 16-head tile groups (the
// conversions cost about as much as the tile work of two groups): 32 heads for a few rows, so a
// decode row (64 heads) still splits over two threads, up to kAmxMaxHeads from kAmxWideRows rows.
constexpr int kAmxTaskHeads = 32, kAmxMaxHeads = 64;
constexpr int64_t kAmxWideRows = 8;
constexpr int kAttnBlock = ref::kAttnBlock;  // list positions per online-softmax block
constexpr int kMaxHeadDim = 1024;            // bound of the on-stack accumulators
constexpr int64_t kKeyChunk = 256;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline float bf16_round(float v) { return bf16_bits_to_f32(f32_to_bf16_bits(v)); }

thread_local AlignedVector<float> t_qt;

// The valid key indices among list positions [b0, b0 + kAttnBlock) of row t (-1 skipped).
int gather_ids(const AttentionArgs& a, int64_t t, int64_t b0, int32_t* ids) {
  const int32_t* list = a.lists + t * a.list_len;
  const int64_t b1 = std::min(a.list_len, b0 + kAttnBlock);
  int nv = 0;
  for (int64_t j = b0; j < b1; ++j)
    if (list[j] >= 0) ids[nv++] = list[j];
  return nv;
}

// Pointers of those keys.
int gather_block(const AttentionArgs& a, int64_t t, int64_t b0, const float** keys) {
  int32_t ids[kAttnBlock];
  const int nv = gather_ids(a, t, b0, ids);
  for (int j = 0; j < nv; ++j) keys[j] = a.key(ids[j]);
  return nv;
}

}  // namespace

#if !defined(DSV4_AVX512_FMA_PASS)  // the scalar / AVX2 tiers: in the first pass only
namespace scalar {

// The reference's online softmax (kernels/ref/attention.cpp): the list is consumed in blocks of
// kAttnBlock positions; per block the running maximum m is raised to the block's, the previous sum
// and accumulator are scaled by exp(m_old - m), the probabilities exp(s - m) are summed for the
// denominator and rounded to BF16 for the weighted sum. The sink joins the denominator last.
void sparse_attention_rows(const AttentionArgs& a, int64_t t, int h0, int hn) {
  const int D = a.head_dim;
  const float* keys[kAttnBlock];
  float sc[kAttnBlock];
  float acc[kMaxHeadDim], pv[kMaxHeadDim];
  for (int h = h0; h < h0 + hn; ++h) {
    const float* q = a.q + (t * a.n_heads + h) * D;
    float m = kNegInf, l = 0.0f;
    std::fill(acc, acc + D, 0.0f);
    for (int64_t b0 = 0; b0 < a.list_len; b0 += kAttnBlock) {
      const int nv = gather_block(a, t, b0, keys);
      if (nv == 0) continue;
      float mb = kNegInf;
      for (int j = 0; j < nv; ++j) {
        float s = 0;
        for (int d = 0; d < D; ++d) s += q[d] * keys[j][d];
        sc[j] = s * a.scale;
        mb = std::max(mb, sc[j]);
      }
      const float mn = std::max(m, mb), alpha = std::exp(m - mn);
      float psum = 0;
      std::fill(pv, pv + D, 0.0f);
      for (int j = 0; j < nv; ++j) {
        const float p = std::exp(sc[j] - mn);
        psum += p;
        const float pb = bf16_round(p);
        for (int d = 0; d < D; ++d) pv[d] += pb * keys[j][d];
      }
      l = std::fma(l, alpha, psum);
      for (int d = 0; d < D; ++d) acc[d] = acc[d] * alpha + pv[d];
      m = mn;
    }
    l += std::exp(a.sink[h] - m);
    float* o = a.out + (t * a.n_heads + h) * D;
    for (int d = 0; d < D; ++d) o[d] = bf16_round(acc[d] / l);
  }
}

void indexer_scores_rows(const IndexerScoreArgs& a, int64_t t, int64_t i0, int64_t i1) {
  const int H = a.n_heads, D = a.head_dim;
  const float* qt = a.q + t * H * D;
  const float* wt = a.w + t * H;
  float* out = a.scores + t * a.n_keys;
  for (int64_t i = i0; i < i1; ++i) {
    if (i >= a.visible[t]) {
      out[i] = kNegInf;
      continue;
    }
    const float* k = a.keys + i * D;
    double total = 0;
    for (int h = 0; h < H; ++h) {
      float s = 0;
      for (int d = 0; d < D; ++d) s += qt[h * D + d] * k[d];
      total += bf16_round(std::max(bf16_round(s), 0.0f) * wt[h]);
    }
    out[i] = bf16_round(static_cast<float>(total));
  }
}

}  // namespace scalar
#endif  // !DSV4_AVX512_FMA_PASS

namespace DSV4_AVX512_NS {
namespace {

// Round each lane to BF16 (RNE) and back.
DSV4_AVX512 inline __m512 bf16_round_ps(__m512 x) {
  const __m256i b = cvt_bf16(x);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16));
}

// Scores of 4 heads (BF16 rows q[4]) against 4 keys (BF16 rows k[4]) over Dp (multiple of 32):
// vdpbf16ps multiplies the BF16 values exactly and sums pairs in float32.
DSV4_AVX512 inline void qk_4x4(const uint16_t* const* q, const uint16_t* const* k, int Dp,
                               float out[4][4]) {
  __m512 acc[4][4];
  for (auto& r : acc)
    for (auto& v : r) v = _mm512_setzero_ps();
  for (int d = 0; d < Dp; d += 32) {
    __m512bh kv[4];
    for (int j = 0; j < 4; ++j) kv[j] = (__m512bh)_mm512_loadu_si512(k[j] + d);
    for (int h = 0; h < 4; ++h) {
      const __m512bh qv = (__m512bh)_mm512_loadu_si512(q[h] + d);
      for (int j = 0; j < 4; ++j) acc[h][j] = dpbf16(acc[h][j], qv, kv[j]);
    }
  }
  _mm512_storeu_ps(&out[0][0], hsum16(&acc[0][0]));
}

// Row x[0, D) (BF16 values in float32, D % 16 == 0) -> BF16 words out[0, Dp), zero past D.
DSV4_AVX512 inline void to_bf16_row(const float* x, int D, int Dp, uint16_t* out) {
  int d = 0;
  for (; d + 32 <= D; d += 32)
    _mm512_storeu_si512(out + d, cvt2_bf16(_mm512_loadu_ps(x + d + 16),
                                                              _mm512_loadu_ps(x + d)));
  if (d < Dp)  // D % 32 == 16: the last 16 values and 16 zeros
    _mm512_storeu_si512(out + d, cvt2_bf16(_mm512_setzero_ps(),
                                                              _mm512_loadu_ps(x + d)));
}

// Two keys' BF16 rows (to_bf16_row: D values, zeros up to a multiple of 32) -> their words
// interleaved: out[2d] = r0[d], out[2d + 1] = r1[d], the pair layout of the PV products. Built
// from the block's BF16 copy in cache, not from the keys' float rows a second time.
DSV4_AVX512 inline void to_bf16_pair(const uint16_t* r0, const uint16_t* r1, int D, uint16_t* out) {
  const __m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8,
                                      39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
  const __m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
  for (int d = 0; d < D; d += 32) {
    const __m512i a = _mm512_loadu_si512(r0 + d), b = _mm512_loadu_si512(r1 + d);
    _mm512_storeu_si512(out + 2 * d, _mm512_permutex2var_epi16(a, lo, b));
    if (d + 16 < D) _mm512_storeu_si512(out + 2 * d + 32, _mm512_permutex2var_epi16(a, hi, b));
  }
}

// One block's weighted sum over `NV` vectors of 16 dims starting at d0, folded into the running
// accumulators: acc[h] = acc[h] * alpha[h] + sum_j p[h][j] * key_j. The keys come in pairs (pair
// u at kt + u * ldk, to_bf16_pair layout) and the BF16 weights p (ldp per head, zero past the
// last key) two at a time: one vdpbf16ps takes both keys' exact products for 16 dims.
template <int NV>
DSV4_AVX512 inline void pv_block(const uint16_t* kt, int64_t ldk, int pairs, const uint16_t* p,
                                 int ldp, int d0, const float* alpha, float* acc, int lda) {
  __m512 r[kHeadGroup][NV];
  for (auto& row : r)
    for (auto& v : row) v = _mm512_setzero_ps();
  for (int u = 0; u < pairs; ++u) {
    __m512bh kv[NV];
    for (int v = 0; v < NV; ++v)
      kv[v] = (__m512bh)_mm512_loadu_si512(kt + u * ldk + 2 * (d0 + 16 * v));
    for (int h = 0; h < kHeadGroup; ++h) {
      int32_t pair;
      std::memcpy(&pair, p + h * ldp + 2 * u, sizeof pair);
      const __m512bh pb = (__m512bh)_mm512_set1_epi32(pair);
      for (int v = 0; v < NV; ++v) r[h][v] = dpbf16(r[h][v], pb, kv[v]);
    }
  }
  for (int h = 0; h < kHeadGroup; ++h) {
    const __m512 al = _mm512_set1_ps(alpha[h]);
    float* ah = acc + h * lda + d0;
    for (int v = 0; v < NV; ++v)
      _mm512_storeu_ps(ah + 16 * v, _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(ah + 16 * v), al), r[h][v]));
  }
}

// 16 scores times the softmax scale, lanes outside mk -inf.
DSV4_AVX512 inline __m512 scaled_scores(const float* s, __mmask16 mk, __m512 scale) {
  return _mm512_mask_mul_ps(_mm512_set1_ps(kNegInf), mk, _mm512_maskz_loadu_ps(mk, s), scale);
}

// One head's step of the online softmax over a block of nv >= 1 scores sh times `scale` (> 0; the
// products the reference scales, made as the scores are read): the running maximum
// *m and sum *l move to the block, the returned alpha = exp(m_old - m_new) rescales the
// accumulator, and the BF16 probabilities (the reference's PV weights; the denominator keeps
// float32) go to ph[0, width), zero from nv on (width: a multiple of 16, >= nv).
DSV4_AVX512 inline float softmax_block(const float* sh, float scale, int nv, int width, float* m, float* l,
                                       uint16_t* ph) {
  const __m512 ninf = _mm512_set1_ps(kNegInf), scl = _mm512_set1_ps(scale);
  __m512 mv = ninf;
  for (int j = 0; j < nv; j += 16) {
    const __mmask16 mk = nv - j >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (nv - j)) - 1);
    mv = _mm512_max_ps(mv, scaled_scores(sh + j, mk, scl));
  }
  const float mn = std::max(*m, hmax(mv));
  const float alpha = std::exp(*m - mn);
  __m512 lv = _mm512_setzero_ps();
  const __m512 mb = _mm512_set1_ps(mn);
  for (int j = 0; j < width; j += 16) {
    const __mmask16 mk = nv - j >= 16 ? __mmask16(0xFFFF) : nv > j ? __mmask16((1u << (nv - j)) - 1) : __mmask16(0);
    const __m512 p = _mm512_maskz_mov_ps(mk, exp_ps(_mm512_sub_ps(scaled_scores(sh + j, mk, scl), mb)));
    lv = _mm512_add_ps(lv, p);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ph + j), cvt_bf16(p));
  }
  *l = std::fma(*l, alpha, hsum(lv));
  *m = mn;
  return alpha;
}

// The outputs of heads h0 + [0, hn) of row t: accumulator / (sum + exp(sink - max)), BF16
// (accumulator rows kMaxHeadDim apart).
DSV4_AVX512 inline void write_heads(const AttentionArgs& a, int64_t t, int h0, int hn, const float* m,
                                    const float* l, const float* acc) {
  const int D = a.head_dim;
  for (int h = 0; h < hn; ++h) {
    const __m512 lt = _mm512_set1_ps(l[h] + std::exp(a.sink[h0 + h] - m[h]));
    const float* ah = acc + h * kMaxHeadDim;
    float* out = a.out + (t * a.n_heads + h0 + h) * D;
    for (int d = 0; d < D; d += 16)
      _mm512_storeu_ps(out + d, bf16_round_ps(_mm512_div_ps(_mm512_loadu_ps(ah + d), lt)));
  }
}

}  // namespace

#if defined(DSV4_AVX512_FMA_PASS)
namespace {

// Scores of 4 heads (float32 rows q[4]) against 4 keys (float32 rows k[4]) over D (multiple of
// 16), out[h][j]: exact products of the BF16 values the rows hold, float32 sums (FMA).
DSV4_AVX512 inline void qk_4x4_f32(const float* const* q, const float* const* k, int D, float out[4][4]) {
  __m512 acc[4][4];
  for (auto& r : acc)
    for (auto& v : r) v = _mm512_setzero_ps();
  for (int d = 0; d < D; d += 16) {
    __m512 kv[4];
    for (int j = 0; j < 4; ++j) kv[j] = _mm512_loadu_ps(k[j] + d);
    for (int h = 0; h < 4; ++h) {
      __m512 qv = _mm512_loadu_ps(q[h] + d);
      asm("" : "+v"(qv));  // one load per query vector, not one per FMA
      for (int j = 0; j < 4; ++j) acc[h][j] = _mm512_fmadd_ps(qv, kv[j], acc[h][j]);
    }
  }
  _mm512_storeu_ps(&out[0][0], hsum16(&acc[0][0]));
}

// pv_block on float32 keys: acc[h] = acc[h] * alpha[h] + sum_j p[h][j] * key_j over NV vectors of
// 16 dims from d0 (p: the BF16 weights as float32, ldp per head).
template <int NV>
DSV4_AVX512 inline void pv_block_f32(const float* const* keys, int nv, const float* p, int ldp, int d0,
                                     const float* alpha, float* acc, int lda) {
  __m512 r[kHeadGroup][NV];
  for (auto& row : r)
    for (auto& v : row) v = _mm512_setzero_ps();
  for (int j = 0; j < nv; ++j) {
    __m512 kv[NV];
    for (int v = 0; v < NV; ++v) kv[v] = _mm512_loadu_ps(keys[j] + d0 + 16 * v);
    for (int h = 0; h < kHeadGroup; ++h) {
      const __m512 pb = _mm512_set1_ps(p[h * ldp + j]);
      for (int v = 0; v < NV; ++v) r[h][v] = _mm512_fmadd_ps(pb, kv[v], r[h][v]);
    }
  }
  for (int h = 0; h < kHeadGroup; ++h) {
    const __m512 al = _mm512_set1_ps(alpha[h]);
    float* ah = acc + h * lda + d0;
    for (int v = 0; v < NV; ++v)
      _mm512_storeu_ps(ah + 16 * v, _mm512_fmadd_ps(_mm512_loadu_ps(ah + 16 * v), al, r[h][v]));
  }
}

}  // namespace

// The FMA level (AVX-512 without BF16 instructions): the same online softmax on float32 FMA over
// the keys' float rows. vdpbf16ps emulated by FMAs (the BF16 path below) spends a shift or a mask
// per operand and product pair on top of the FMAs, and converts every key block to BF16 first;
// here the products are the same exact ones, summed in float32 in another order. The loops run
// over the unit's head groups innermost, so each 4-key tile (scores) and each 64-dim slab of the
// block's keys (weighted sums, 16 KiB) is read from L2 once and from L1 by the other groups.
DSV4_AVX512 void sparse_attention_rows(const AttentionArgs& a, int64_t t, int h0, int hn) {
  const int D = a.head_dim;
  const int groups = (hn + kHeadGroup - 1) / kHeadGroup;
  thread_local AlignedVector<float> t_acc;
  float* acc = grow(t_acc, static_cast<size_t>(kTaskHeads) * kMaxHeadDim);
  const float* keys[kAttnBlock + 3];
  alignas(64) float s[kTaskHeads * kAttnBlock];
  alignas(64) uint16_t pw[kAttnBlock];
  alignas(64) float pf[kTaskHeads * kAttnBlock];
  const float* q[kTaskHeads];
  float m[kTaskHeads], l[kTaskHeads], alpha[kTaskHeads];
  for (int h = 0; h < groups * kHeadGroup; ++h) {
    q[h] = a.q + (t * a.n_heads + h0 + std::min(h, hn - 1)) * D;
    m[h] = kNegInf;
    l[h] = 0.0f;
    std::fill(acc + h * kMaxHeadDim, acc + h * kMaxHeadDim + D, 0.0f);
  }
  for (int64_t b0 = 0; b0 < a.list_len; b0 += kAttnBlock) {
    const int nv = gather_block(a, t, b0, keys);
    if (nv == 0) continue;
    for (int j = nv; j < nv + 3; ++j) keys[j] = keys[0];  // padding for the 4-key tiles
    const int width = (nv + 15) / 16 * 16;
    for (int j = 0; j < nv; j += 4)
      for (int g = 0; g < groups; ++g) {
        const int hg = g * kHeadGroup;
        float sc[4][4];
        qk_4x4_f32(q + hg, keys + j, D, sc);
        for (int h = 0; h < kHeadGroup; ++h)
          for (int jj = 0; jj < 4 && j + jj < nv; ++jj) s[(hg + h) * kAttnBlock + j + jj] = sc[h][jj];
      }
    for (int h = 0; h < groups * kHeadGroup; ++h) {
      alpha[h] = softmax_block(s + h * kAttnBlock, a.scale, nv, width, m + h, l + h, pw);
      widen_bf16(pw, width, pf + h * kAttnBlock);
    }
    int d0 = 0;
    for (; d0 + 64 <= D; d0 += 64)
      for (int g = 0; g < groups; ++g) {
        const int hg = g * kHeadGroup;
        pv_block_f32<4>(keys, nv, pf + hg * kAttnBlock, kAttnBlock, d0, alpha + hg, acc + hg * kMaxHeadDim, kMaxHeadDim);
      }
    for (; d0 < D; d0 += 16)
      for (int g = 0; g < groups; ++g) {
        const int hg = g * kHeadGroup;
        pv_block_f32<1>(keys, nv, pf + hg * kAttnBlock, kAttnBlock, d0, alpha + hg, acc + hg * kMaxHeadDim, kMaxHeadDim);
      }
  }
  write_heads(a, t, h0, hn, m, l, acc);
}
#else
// The same online softmax as the scalar twin over up to kBf16MaxHeads heads: each block's keys are
// copied to BF16 once for all of them (or read in place where the table holds them as BF16 too:
// a decode step's window ring), as rows (the QK products) and as interleaved pairs (the PV
// products), both on vdpbf16ps; the heads go through the block 4 at a time sharing each key load.
DSV4_AVX512 void sparse_attention_rows(const AttentionArgs& a, int64_t t, int h0, int hn) {
  const int D = a.head_dim, Dp = (D + 31) / 32 * 32;
  const int groups = (hn + kHeadGroup - 1) / kHeadGroup;
  thread_local AlignedVector<uint16_t> t_keys, t_pairs, t_q;
  thread_local AlignedVector<float> t_acc;
  uint16_t* kb = grow(t_keys, static_cast<size_t>(kAttnBlock) * Dp);
  uint16_t* kt = grow(t_pairs, static_cast<size_t>(kAttnBlock) * D);
  uint16_t* qb = grow(t_q, static_cast<size_t>(kBf16MaxHeads) * Dp);
  float* acc = grow(t_acc, static_cast<size_t>(kBf16MaxHeads) * kMaxHeadDim);
  const uint16_t* kp[kAttnBlock + 4];
  alignas(64) float s[kHeadGroup * kAttnBlock];
  alignas(64) uint16_t pw[kHeadGroup * kAttnBlock];  // BF16 PV weights
  // Heads past hn (padding of the last group of 4) repeat head hn - 1 and are not written.
  const uint16_t* q[kBf16MaxHeads];
  float m[kBf16MaxHeads], l[kBf16MaxHeads];
  for (int h = 0; h < groups * kHeadGroup; ++h) {
    const int hh = h0 + std::min(h, hn - 1);
    to_bf16_row(a.q + (t * a.n_heads + hh) * D, D, Dp, qb + h * Dp);
    q[h] = qb + h * Dp;
    m[h] = kNegInf;
    l[h] = 0.0f;
    std::fill(acc + h * kMaxHeadDim, acc + h * kMaxHeadDim + D, 0.0f);
  }
  // Keys the table also holds as BF16 rows (a.keys_bf16, rows < split) are read there in place
  // when a row has no padding to add (D == Dp); the others are converted into kb.
  const bool bf16_rows = a.keys_bf16 != nullptr && D == Dp;
  int32_t ids[kAttnBlock];
  for (int64_t b0 = 0; b0 < a.list_len; b0 += kAttnBlock) {
    const int nv = gather_ids(a, t, b0, ids);
    if (nv == 0) continue;
    for (int j = 0; j < nv; ++j) {
      if (bf16_rows && ids[j] < a.split) {
        kp[j] = a.keys_bf16 + int64_t{ids[j]} * D;
      } else {
        to_bf16_row(a.key(ids[j]), D, Dp, kb + j * Dp);
        kp[j] = kb + j * Dp;
      }
    }
    const int pairs = (nv + 1) / 2;
    for (int j = nv; j < nv + 4; ++j) kp[j] = kp[0];  // padding for the 4-key tiles
    for (int u = 0; u < pairs; ++u)  // an odd last key pairs with itself (its weight is 0)
      to_bf16_pair(kp[2 * u], kp[std::min(2 * u + 1, nv - 1)], D, kt + u * 2 * D);
    for (int g = 0; g < groups; ++g) {
      const int hg = g * kHeadGroup;
      for (int j = 0; j < nv; j += 4) {
        float sc[4][4];
        qk_4x4(q + hg, kp + j, Dp, sc);
        for (int h = 0; h < kHeadGroup; ++h)
          for (int jj = 0; jj < 4 && j + jj < nv; ++jj) s[h * kAttnBlock + j + jj] = sc[h][jj];
      }
      float alpha[kHeadGroup];
      for (int h = 0; h < kHeadGroup; ++h)
        alpha[h] = softmax_block(s + h * kAttnBlock, a.scale, nv, (nv + 15) / 16 * 16, m + hg + h, l + hg + h,
                                 pw + h * kAttnBlock);
      float* ag = acc + hg * kMaxHeadDim;
      int d0 = 0;
      for (; d0 + 64 <= D; d0 += 64) pv_block<4>(kt, 2 * D, pairs, pw, kAttnBlock, d0, alpha, ag, kMaxHeadDim);
      for (; d0 < D; d0 += 16) pv_block<1>(kt, 2 * D, pairs, pw, kAttnBlock, d0, alpha, ag, kMaxHeadDim);
    }
  }
  write_heads(a, t, h0, hn, m, l, acc);
}
#endif  // DSV4_AVX512_FMA_PASS

#if !defined(DSV4_AVX512_FMA_PASS)  // AMX (a BF16-level extension): in the first pass only
// PV tiles of one 32-key step: accumulators tmm0..nt-1 (16 heads x 16 dims each) += the BF16
// weights in tile A (16 heads x 32 keys) times 16 key pairs x 16 dims of each of nt dim tiles.
// (A macro: the tile intrinsics take their register numbers as literal tokens.)
#define DSV4_PV_STEP(A, bt, stride, nt)    \
  do {                                      \
    _tile_loadd(6, (bt), (stride));         \
    _tile_dpbf16ps(0, A, 6);                \
    if ((nt) > 1) {                         \
      _tile_loadd(7, (bt) + 32, (stride));  \
      _tile_dpbf16ps(1, A, 7);              \
    }                                       \
    if ((nt) > 2) {                         \
      _tile_loadd(6, (bt) + 64, (stride));  \
      _tile_dpbf16ps(2, A, 6);              \
    }                                       \
    if ((nt) > 3) {                         \
      _tile_loadd(7, (bt) + 96, (stride));  \
      _tile_dpbf16ps(3, A, 7);              \
    }                                       \
  } while (0)

// The AVX-512 version's online softmax for one unit of up to kAmxMaxHeads heads with the
// products on AMX tiles. Each block of 64 keys is converted once for the unit (BF16 rows, their
// tile-operand layout, interleaved pairs); then per group of 16 heads the scores C[head][key] = Q (16 heads x 32 dims per tile) x the keys
// in the tile-operand layout (amx::to_vnni of their BF16 rows), 4 key tiles at once; then the
// weighted sum C[head][dim] = P (16 heads x 32 BF16 weights) x the key pairs (to_bf16_pair
// layout: 16 pairs x 16 dims per tile), 4 dim tiles at once, folded into the float32
// accumulators with the block's alpha. Same BF16 inputs and exact products, float32 sums in the
// tile unit's order.
DSV4_AMX void sparse_attention_rows_amx(const AttentionArgs& a, int64_t t, int h0, int hn,
                                        const uint16_t* k16, int64_t ld16) {
  constexpr int kHeads = kAmxMaxHeads;
  const int D = a.head_dim, Dp = (D + 31) / 32 * 32;
  const int groups = (hn + 15) / 16;
  thread_local AlignedVector<uint16_t> t_keys, t_vnni, t_pairs, t_q;
  thread_local AlignedVector<float> t_acc;
  uint16_t* kb = grow(t_keys, static_cast<size_t>(kAttnBlock) * Dp);
  uint16_t* kv = grow(t_vnni, static_cast<size_t>(kAttnBlock) * Dp);
  uint16_t* kt = grow(t_pairs, static_cast<size_t>(kAttnBlock) * D);
  uint16_t* qb = grow(t_q, static_cast<size_t>(kHeads) * Dp);
  float* acc = grow(t_acc, static_cast<size_t>(kHeads) * kMaxHeadDim);
  const float* keys[kAttnBlock + 1];
  const uint16_t* krow[kAttnBlock];  // the block's BF16 key rows
  alignas(64) static const uint16_t zero_row[(kMaxHeadDim + 31) / 32 * 32] = {};
  alignas(64) float s[16 * kAttnBlock];      // C[head][key] of one group
  alignas(64) uint16_t pw[16 * kAttnBlock];  // its BF16 PV weights [head][key]
  alignas(64) float cb[4][256];
  float m[kHeads], l[kHeads], alpha[16];
  // Heads past hn repeat head hn - 1 and are not written.
  for (int h = 0; h < groups * 16; ++h) {
    const int hh = h0 + std::min(h, hn - 1);
    to_bf16_row(a.q + (t * a.n_heads + hh) * D, D, Dp, qb + h * Dp);
    m[h] = kNegInf;
    l[h] = 0.0f;
    std::fill(acc + h * kMaxHeadDim, acc + h * kMaxHeadDim + D, 0.0f);
  }
  amx::begin();
  for (int64_t b0 = 0; b0 < a.list_len; b0 += kAttnBlock) {
    // The block's keys as BF16 rows: straight from the table, or converted into kb.
    int nv = 0;
    if (k16 != nullptr) {
      const int32_t* list = a.lists + t * a.list_len;
      for (int64_t j = b0; j < std::min(a.list_len, b0 + kAttnBlock); ++j)
        if (list[j] >= 0) krow[nv++] = k16 + list[j] * ld16;
    } else {
      nv = gather_block(a, t, b0, keys);
      for (int j = 0; j < nv; ++j) {
        to_bf16_row(keys[j], D, Dp, kb + j * Dp);
        krow[j] = kb + j * Dp;
      }
    }
    if (nv == 0) continue;
    const int pairs = (nv + 1) / 2, ktiles = (nv + 15) / 16, steps = (nv + 31) / 32;
    for (int j = nv; j < ktiles * 16; ++j) krow[j] = zero_row;  // rows past nv: zero keys
    // Tile operand layout of the keys (pairs of dims x 16 keys per tile row), as amx::to_vnni.
    for (int k = 0; k < ktiles; ++k)
      for (int r = 0; r < Dp / 2; r += 16)
        avx512::transpose16x16_32(reinterpret_cast<const void* const*>(krow + 16 * k), int64_t{4} * r,
                                  kv + 16 * k * Dp + 32 * r, 64);
    for (int u = 0; u < pairs; ++u) to_bf16_pair(krow[2 * u], krow[std::min(2 * u + 1, nv - 1)], D, kt + u * 2 * D);
    std::fill(kt + pairs * 2 * D, kt + steps * 16 * 2 * D, uint16_t{0});  // whole 32-key steps
    for (int g = 0; g < groups; ++g) {
    const uint16_t* qg = qb + 16 * g * Dp;
    // Scores.
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int d = 0; d < Dp; d += 32) {
      _tile_loadd(4, qg + d, Dp * 2);
      _tile_loadd(5, kv + d * 16, 64);
      _tile_dpbf16ps(0, 4, 5);
      if (ktiles > 1) {
        _tile_loadd(6, kv + 16 * Dp + d * 16, 64);
        _tile_dpbf16ps(1, 4, 6);
      }
      if (ktiles > 2) {
        _tile_loadd(7, kv + 32 * Dp + d * 16, 64);
        _tile_dpbf16ps(2, 4, 7);
      }
      if (ktiles > 3) {
        _tile_loadd(5, kv + 48 * Dp + d * 16, 64);
        _tile_dpbf16ps(3, 4, 5);
      }
    }
    _tile_stored(0, s, kAttnBlock * 4);
    _tile_stored(1, s + 16, kAttnBlock * 4);
    _tile_stored(2, s + 32, kAttnBlock * 4);
    _tile_stored(3, s + 48, kAttnBlock * 4);
    // Online softmax per head; the weights are zero up to whole 32-key steps.
    for (int h = 0; h < 16; ++h)
      alpha[h] = softmax_block(s + h * kAttnBlock, a.scale, nv, steps * 32, m + 16 * g + h, l + 16 * g + h,
                               pw + h * kAttnBlock);
    // Weighted sum, 4 dim tiles at a time.
    _tile_loadd(4, pw, kAttnBlock * 2);
    if (steps > 1) _tile_loadd(5, pw + 32, kAttnBlock * 2);
    const int64_t kstride = 4 * D;  // bytes from one key pair to the next
    for (int d0 = 0; d0 < D; d0 += 64) {
      const int nt = std::min(4, (D - d0) / 16);
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      DSV4_PV_STEP(4, kt + 2 * d0, kstride, nt);
      if (steps > 1) DSV4_PV_STEP(5, kt + 16 * 2 * D + 2 * d0, kstride, nt);
      _tile_stored(0, cb[0], 64);
      _tile_stored(1, cb[1], 64);
      _tile_stored(2, cb[2], 64);
      _tile_stored(3, cb[3], 64);
      for (int h = 0; h < 16; ++h) {
        const __m512 al = _mm512_set1_ps(alpha[h]);
        float* ah = acc + (16 * g + h) * kMaxHeadDim + d0;
        for (int i = 0; i < nt; ++i)
          _mm512_storeu_ps(ah + 16 * i, _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(ah + 16 * i), al),
                                                      _mm512_load_ps(cb[i] + 16 * h)));
      }
    }
    }
  }
  write_heads(a, t, h0, hn, m, l, acc);
}
#undef DSV4_PV_STEP

// Keys [i0, i1) of the table (a.key(i)) in BF16, row i at out + i * Dp (zeros past head_dim).
static DSV4_AVX512 void keys_to_bf16(const AttentionArgs& a, int64_t i0, int64_t i1, int Dp, uint16_t* out) {
  for (int64_t i = i0; i < i1; ++i) to_bf16_row(a.key(i), a.head_dim, Dp, out + i * Dp);
}
#endif  // !DSV4_AVX512_FMA_PASS

DSV4_AVX512 void indexer_scores_rows(const IndexerScoreArgs& a, int64_t t, int64_t i0, int64_t i1) {
  const int H = a.n_heads, D = a.head_dim;
  const int Hp = (H + 15) / 16 * 16;
  // Query transposed to [D][Hp] and the head weights padded with zeros (padded heads add 0).
  if (t_qt.size() < static_cast<size_t>(D * Hp + Hp)) t_qt.resize(D * Hp + Hp);
  float* qt = t_qt.data();
  float* wp = qt + D * Hp;
  const float* q = a.q + t * H * D;
  for (int d = 0; d < D; ++d)
    for (int h = 0; h < Hp; ++h) qt[d * Hp + h] = h < H ? q[h * D + d] : 0.0f;
  for (int h = 0; h < Hp; ++h) wp[h] = h < H ? a.w[t * H + h] : 0.0f;
  float* out = a.scores + t * a.n_keys;
  const int64_t vis = std::min<int64_t>(a.visible[t], i1);
  int64_t i = i0;
  for (; i < vis; i += 4) {
    const float* k[4];
    for (int j = 0; j < 4; ++j) k[j] = a.keys + std::min<int64_t>(i + j, vis - 1) * D;
    double total[4] = {0, 0, 0, 0};
    for (int hc = 0; hc < Hp; hc += 64) {
      const int nvec = std::min(4, (Hp - hc) / 16);
      __m512 acc[4][4];
      for (auto& r : acc)
        for (auto& v : r) v = _mm512_setzero_ps();
      for (int d = 0; d < D; ++d) {
        __m512 qv[4];
        for (int v = 0; v < 4; ++v) qv[v] = v < nvec ? _mm512_loadu_ps(qt + d * Hp + hc + 16 * v) : _mm512_setzero_ps();
        for (int j = 0; j < 4; ++j) {
          const __m512 kb = _mm512_set1_ps(k[j][d]);
          for (int v = 0; v < 4; ++v) acc[j][v] = _mm512_fmadd_ps(qv[v], kb, acc[j][v]);
        }
      }
      // The reference's rounding points: bf16(relu(bf16(dot)) * w) per head, summed in head order.
      for (int j = 0; j < 4; ++j) {
        alignas(64) float hv[64];
        for (int v = 0; v < nvec; ++v) {
          const __m512 d = _mm512_max_ps(bf16_round_ps(acc[j][v]), _mm512_setzero_ps());
          _mm512_store_ps(hv + 16 * v, bf16_round_ps(_mm512_mul_ps(d, _mm512_loadu_ps(wp + hc + 16 * v))));
        }
        const int hn = std::min(64, H - hc);
        for (int h = 0; h < hn; ++h) total[j] += hv[h];
      }
    }
    for (int j = 0; j < 4 && i + j < vis; ++j) out[i + j] = bf16_round(static_cast<float>(total[j]));
  }
  for (i = std::max(i0, vis); i < i1; ++i) out[i] = kNegInf;
}

}  // namespace DSV4_AVX512_NS

#if !defined(DSV4_AVX512_FMA_PASS)  // the scalar / AVX2 tiers: in the first pass only
namespace avx2 {
namespace {

// Lane i = the sum of the lanes of v[i] (three vhaddps instead of four single sums).
DSV4_AVX2 inline __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

// Scores of 4 heads (pointers q[4]) against 3 keys (k[3]) over D (multiple of 8): out[j][h].
// 12 accumulators; each query vector is loaded once per step into a register (GCC would fold
// it into every FMA as a memory operand: 10 loads per 8 FMAs in the 4 x 2 tile this replaced).
DSV4_AVX2 inline void qk_4x3(const float* const* q, const float* const* k, int D, float out[3][4]) {
  __m256 acc[3][4];
  for (auto& r : acc)
    for (auto& v : r) v = _mm256_setzero_ps();
  for (int d = 0; d < D; d += 8) {
    const __m256 k0 = _mm256_loadu_ps(k[0] + d), k1 = _mm256_loadu_ps(k[1] + d), k2 = _mm256_loadu_ps(k[2] + d);
    for (int h = 0; h < 4; ++h) {
      __m256 qv = _mm256_loadu_ps(q[h] + d);
      asm("" : "+x"(qv));
      acc[0][h] = _mm256_fmadd_ps(qv, k0, acc[0][h]);
      acc[1][h] = _mm256_fmadd_ps(qv, k1, acc[1][h]);
      acc[2][h] = _mm256_fmadd_ps(qv, k2, acc[2][h]);
    }
  }
  for (int j = 0; j < 3; ++j) _mm_storeu_ps(out[j], hsum4(acc[j][0], acc[j][1], acc[j][2], acc[j][3]));
}

// acc[h] = acc[h] * alpha[h] + sum_j p[h][j] * key_j over NV vectors of 8 dims from d0.
template <int NV>
DSV4_AVX2 inline void pv_block(const float* const* keys, int nv, const float* p, int ldp, int d0,
                               const float* alpha, float* acc, int lda) {
  __m256 r[kHeadGroup][NV];
  for (auto& row : r)
    for (auto& v : row) v = _mm256_setzero_ps();
  for (int j = 0; j < nv; ++j) {
    __m256 kv[NV];
    for (int v = 0; v < NV; ++v) kv[v] = _mm256_loadu_ps(keys[j] + d0 + 8 * v);
    for (int h = 0; h < kHeadGroup; ++h) {
      const __m256 pb = _mm256_broadcast_ss(p + h * ldp + j);
      for (int v = 0; v < NV; ++v) r[h][v] = _mm256_fmadd_ps(pb, kv[v], r[h][v]);
    }
  }
  for (int h = 0; h < kHeadGroup; ++h) {
    const __m256 al = _mm256_set1_ps(alpha[h]);
    float* ah = acc + h * lda + d0;
    for (int v = 0; v < NV; ++v)
      _mm256_storeu_ps(ah + 8 * v, _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(ah + 8 * v), al), r[h][v]));
  }
}

// pv_block for every group of 4 heads (weights p, alpha and accumulators of head 4 g + h at
// group g's offsets) over the same NV x 8 dims of the keys.
template <int NV>
DSV4_AVX2 inline void pv_groups(const float* const* keys, int nv, int groups, const float* p, int d0,
                                const float* alpha, float* acc) {
  for (int g = 0; g < groups; ++g) {
    const int hg = g * kHeadGroup;
    pv_block<NV>(keys, nv, p + hg * kAttnBlock, kAttnBlock, d0, alpha + hg, acc + hg * kMaxHeadDim, kMaxHeadDim);
  }
}

}  // namespace

// The same online softmax as the scalar twin over up to kTaskHeads heads in groups of 4; the
// loops run over the groups innermost, so each 3-key tile (scores) and each 24-dim slab of the
// block's keys (weighted sums, 6 KiB) is read from L2 once and from L1 by the other groups.
DSV4_AVX2 void sparse_attention_rows(const AttentionArgs& a, int64_t t, int h0, int hn) {
  const int D = a.head_dim;
  const int groups = (hn + kHeadGroup - 1) / kHeadGroup;
  const float* keys[kAttnBlock + 2];
  alignas(32) float s[kTaskHeads * kAttnBlock];
  thread_local AlignedVector<float> t_acc;
  float* acc = grow(t_acc, static_cast<size_t>(kTaskHeads) * kMaxHeadDim);
  // Heads past hn (padding of the last group of 4) repeat head hn - 1 and are not written.
  const float* q[kTaskHeads];
  float m[kTaskHeads], l[kTaskHeads], alpha[kTaskHeads];
  for (int h = 0; h < groups * kHeadGroup; ++h) {
    q[h] = a.q + (t * a.n_heads + h0 + std::min(h, hn - 1)) * D;
    m[h] = kNegInf;
    l[h] = 0.0f;
    std::fill(acc + h * kMaxHeadDim, acc + h * kMaxHeadDim + D, 0.0f);
  }
  const __m256 ninf = _mm256_set1_ps(kNegInf);
  for (int64_t b0 = 0; b0 < a.list_len; b0 += kAttnBlock) {
    const int nv = gather_block(a, t, b0, keys);
    if (nv == 0) continue;
    keys[nv] = keys[nv + 1] = keys[0];  // padding for the 3-key tiles
    for (int j = 0; j < nv; j += 3)
      for (int g = 0; g < groups; ++g) {
        const int hg = g * kHeadGroup;
        float sc[3][4];
        qk_4x3(q + hg, keys + j, D, sc);
        for (int jj = 0; jj < 3 && j + jj < nv; ++jj)
          for (int h = 0; h < kHeadGroup; ++h) s[(hg + h) * kAttnBlock + j + jj] = sc[jj][h] * a.scale;
      }
    for (int h = 0; h < groups * kHeadGroup; ++h) {
      float* sh = s + h * kAttnBlock;
      __m256 mv = ninf;
      for (int j = 0; j < nv; j += 8) {
        const __m256i mk = tail_mask(nv - j);
        mv = _mm256_max_ps(mv, _mm256_blendv_ps(ninf, _mm256_maskload_ps(sh + j, mk), _mm256_castsi256_ps(mk)));
      }
      const float mn = std::max(m[h], hmax(mv));
      alpha[h] = std::exp(m[h] - mn);
      __m256 lv = _mm256_setzero_ps();
      const __m256 mb = _mm256_set1_ps(mn);
      for (int j = 0; j < nv; j += 8) {
        const __m256i mk = tail_mask(nv - j);
        const __m256 v = _mm256_blendv_ps(ninf, _mm256_maskload_ps(sh + j, mk), _mm256_castsi256_ps(mk));
        const __m256 p = exp_ps(_mm256_sub_ps(v, mb));
        lv = _mm256_add_ps(lv, p);
        // BF16 numerator weights (the reference's PV input); the denominator keeps float32.
        _mm256_maskstore_ps(sh + j, mk, bf16_round_ps(p));
      }
      l[h] = std::fma(l[h], alpha[h], hsum(lv));
      m[h] = mn;
    }
    // 24 dims at a time: 12 independent FMA chains per key (8 with 16 dims, 4 with 8).
    int d0 = 0;
    for (; d0 + 24 <= D; d0 += 24) pv_groups<3>(keys, nv, groups, s, d0, alpha, acc);
    if (d0 + 16 <= D) pv_groups<2>(keys, nv, groups, s, d0, alpha, acc), d0 += 16;
    if (d0 < D) pv_groups<1>(keys, nv, groups, s, d0, alpha, acc);
  }
  for (int h = 0; h < hn; ++h) {
    const __m256 lt = _mm256_set1_ps(l[h] + std::exp(a.sink[h0 + h] - m[h]));
    const float* ah = acc + h * kMaxHeadDim;
    float* out = a.out + (t * a.n_heads + h0 + h) * D;
    for (int d = 0; d < D; d += 8)
      _mm256_storeu_ps(out + d, bf16_round_ps(_mm256_div_ps(_mm256_loadu_ps(ah + d), lt)));
  }
}

// As the AVX-512 version: the query transposed to [D][Hp] so one broadcast key element meets
// 8 heads per FMA; 4 keys x 16 heads per register tile.
DSV4_AVX2 void indexer_scores_rows(const IndexerScoreArgs& a, int64_t t, int64_t i0, int64_t i1) {
  const int H = a.n_heads, D = a.head_dim;
  const int Hp = (H + 7) / 8 * 8;
  if (t_qt.size() < static_cast<size_t>(D * Hp + Hp)) t_qt.resize(D * Hp + Hp);
  float* qt = t_qt.data();
  float* wp = qt + D * Hp;
  const float* q = a.q + t * H * D;
  for (int d = 0; d < D; ++d)
    for (int h = 0; h < Hp; ++h) qt[d * Hp + h] = h < H ? q[h * D + d] : 0.0f;
  for (int h = 0; h < Hp; ++h) wp[h] = h < H ? a.w[t * H + h] : 0.0f;
  float* out = a.scores + t * a.n_keys;
  const int64_t vis = std::min<int64_t>(a.visible[t], i1);
  int64_t i = i0;
  for (; i < vis; i += 4) {
    const float* k[4];
    for (int j = 0; j < 4; ++j) k[j] = a.keys + std::min<int64_t>(i + j, vis - 1) * D;
    double total[4] = {0, 0, 0, 0};
    for (int hc = 0; hc < Hp; hc += 16) {
      const int nvec = std::min(2, (Hp - hc) / 8);
      __m256 acc[4][2];
      for (auto& r : acc)
        for (auto& v : r) v = _mm256_setzero_ps();
      for (int d = 0; d < D; ++d) {
        const __m256 q0 = _mm256_loadu_ps(qt + d * Hp + hc);
        const __m256 q1 = nvec > 1 ? _mm256_loadu_ps(qt + d * Hp + hc + 8) : _mm256_setzero_ps();
        for (int j = 0; j < 4; ++j) {
          const __m256 kb = _mm256_broadcast_ss(k[j] + d);
          acc[j][0] = _mm256_fmadd_ps(q0, kb, acc[j][0]);
          acc[j][1] = _mm256_fmadd_ps(q1, kb, acc[j][1]);
        }
      }
      // The reference's rounding points: bf16(relu(bf16(dot)) * w) per head, summed in head order.
      for (int j = 0; j < 4; ++j) {
        alignas(32) float hv[16];
        for (int v = 0; v < nvec; ++v) {
          const __m256 d = _mm256_max_ps(bf16_round_ps(acc[j][v]), _mm256_setzero_ps());
          _mm256_store_ps(hv + 8 * v, bf16_round_ps(_mm256_mul_ps(d, _mm256_loadu_ps(wp + hc + 8 * v))));
        }
        const int hn = std::min(16, H - hc);
        for (int h = 0; h < hn; ++h) total[j] += hv[h];
      }
    }
    for (int j = 0; j < 4 && i + j < vis; ++j) out[i + j] = bf16_round(static_cast<float>(total[j]));
  }
  for (i = std::max(i0, vis); i < i1; ++i) out[i] = kNegInf;
}

}  // namespace avx2

void sparse_attention(const AttentionArgs& a, ThreadPool* pool) {
  if (a.n <= 0) return;
  if (a.n_heads <= 0 || a.head_dim <= 0 || a.head_dim > kMaxHeadDim || !a.q || !a.out || !a.sink || (a.list_len > 0 && !a.lists))
    throw_error("sparse_attention: bad arguments (heads ", a.n_heads, ", head_dim ", a.head_dim,
                ", at most ", kMaxHeadDim, ")");
  const bool simd = isa_at_least(Isa::Avx512) && a.head_dim % 16 == 0;
  const bool bf16 = isa_at_least(Isa::Avx512Bf16);
  const bool simd2 = isa_at_least(Isa::Avx2) && a.head_dim % 8 == 0;
  const bool amx = isa_at_least(Isa::Avx512Amx);
  // Heads per work unit: what each level's kernel takes (the AVX2 and AVX-512 FMA ones up to
  // kTaskHeads, the vdpbf16ps one up to kBf16MaxHeads, the AMX one up to kAmxMaxHeads, the scalar
  // twin any number).
  const double work = 2.0 * a.n * a.n_heads * a.list_len * a.head_dim;
  pool = pool_for_work(pool, work);
  int unit_heads = !simd ? (simd2 ? kTaskHeads : kHeadGroup)
                   : !amx ? kTaskHeads
                          : (a.n >= kAmxWideRows ? kAmxMaxHeads : kAmxTaskHeads);
  if (simd && bf16 && !amx) {
    // The widest unit (64, 32 or 16 heads) that still gives every thread one: fewer copies of
    // each key block. Zen 5 VM, 2 threads, BM_SparseAttention 1 / 16 / 128 rows: 16-head units
    // 207-216 us / 4.5 ms / 27.1-27.3 ms; 32: 154-178 us / 3.1-3.3 ms / 21.9-24.8 ms; 64:
    // 265-291 us (one thread idle) / 2.5-2.7 ms / 18.5-20.2 ms.
    const int64_t threads = pool != nullptr ? pool->size() : 1;
    for (unit_heads = kBf16MaxHeads; unit_heads > kTaskHeads; unit_heads /= 2)
      if (a.n * ((a.n_heads + unit_heads - 1) / unit_heads) >= threads) break;
  }
  const int64_t groups = (a.n_heads + unit_heads - 1) / unit_heads;
  // Prefill on AMX: every key the lists reference is converted to BF16 once for all rows, which
  // then read their blocks from it instead of converting the float rows (a row's 640 keys at
  // depth would otherwise be converted again for each of the chunk's rows). Only where the rows
  // share keys (the table at most half the references) and the table stays within 64 MiB (a
  // 512-row chunk at 32K: 9 MiB); otherwise each row converts its own, as in decode.
  const int Dp = (a.head_dim + 31) / 32 * 32;
  const uint16_t* k16 = nullptr;
  if (simd && amx && a.n >= kAmxWideRows) {
    int64_t rows = a.split;
    for (int64_t i = 0; i < a.n * a.list_len; ++i) rows = std::max<int64_t>(rows, a.lists[i] + 1);
    if (2 * rows > a.n * a.list_len || rows * Dp * 2 > (int64_t{64} << 20)) rows = 0;
    static thread_local AlignedVector<uint16_t> t_k16;
    if (rows > 0) {
      uint16_t* k = grow(t_k16, static_cast<size_t>(rows * Dp));
      parallel_for(pool, rows, 16, [&](int64_t b, int64_t e, int) { avx512::keys_to_bf16(a, b, e, Dp, k); });
      k16 = k;
    }
  }
  parallel_for(pool, a.n * groups, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t u = b; u < e; ++u) {
      const int64_t t = u / groups;
      const int h0 = static_cast<int>(u % groups) * unit_heads;
      const int hn = std::min(unit_heads, a.n_heads - h0);
      if (simd && amx) {
        avx512::sparse_attention_rows_amx(a, t, h0, hn, k16, Dp);
      } else if (simd && bf16) {
        avx512::sparse_attention_rows(a, t, h0, hn);
      } else if (simd) {
        avx512fma::sparse_attention_rows(a, t, h0, hn);
      } else if (simd2) {
        avx2::sparse_attention_rows(a, t, h0, hn);
      } else {
        scalar::sparse_attention_rows(a, t, h0, hn);
      }
    }
  });
}

void indexer_scores(const IndexerScoreArgs& a, ThreadPool* pool) {
  if (a.n <= 0 || a.n_keys <= 0) return;
  if (a.n_heads <= 0 || a.head_dim <= 0 || a.head_dim > kMaxHeadDim || !a.q || !a.w || !a.keys || !a.visible || !a.scores)
    throw_error("indexer_scores: bad arguments (heads ", a.n_heads, ", head_dim ", a.head_dim, ")");
  const bool simd = isa_at_least(Isa::Avx512), bf16 = isa_at_least(Isa::Avx512Bf16);
  const bool simd2 = isa_at_least(Isa::Avx2);
  const int64_t chunks = (a.n_keys + kKeyChunk - 1) / kKeyChunk;
  const double work = double(a.n) * a.n_keys * a.n_heads * a.head_dim;
  parallel_for(pool_for_work(pool, work), a.n * chunks, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t u = b; u < e; ++u) {
      const int64_t t = u / chunks, i0 = (u % chunks) * kKeyChunk;
      const int64_t i1 = std::min(a.n_keys, i0 + kKeyChunk);
      if (simd && bf16) {
        avx512::indexer_scores_rows(a, t, i0, i1);
      } else if (simd) {
        avx512fma::indexer_scores_rows(a, t, i0, i1);
      } else if (simd2) {
        avx2::indexer_scores_rows(a, t, i0, i1);
      } else {
        scalar::indexer_scores_rows(a, t, i0, i1);
      }
    }
  });
}

#endif  // !DSV4_AVX512_FMA_PASS
}  // namespace dsv4::cpu
