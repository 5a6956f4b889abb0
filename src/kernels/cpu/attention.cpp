#include "kernels/cpu/simd_avx512.h"  // first: wraps <immintrin.h>
#include "kernels/cpu/simd_avx2.h"

#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/formats.h"
#include "kernels/ref/attention.h"

namespace dsv4::cpu {
namespace {

constexpr int kHeadGroup = 4;
constexpr int kAttnBlock = ref::kAttnBlock;  // list positions per online-softmax block
constexpr int kMaxHeadDim = 1024;            // bound of the on-stack accumulators
constexpr int64_t kKeyChunk = 256;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline float bf16_round(float v) { return bf16_bits_to_f32(f32_to_bf16_bits(v)); }

thread_local AlignedVector<float> t_qt;

// Pointers of the valid keys among list positions [b0, b0 + kAttnBlock) of row t (-1 skipped).
int gather_block(const AttentionArgs& a, int64_t t, int64_t b0, const float** keys) {
  const int32_t* list = a.lists + t * a.list_len;
  const int64_t b1 = std::min(a.list_len, b0 + kAttnBlock);
  int nv = 0;
  for (int64_t j = b0; j < b1; ++j)
    if (list[j] >= 0) keys[nv++] = a.key(list[j]);
  return nv;
}

}  // namespace

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

namespace avx512 {
namespace {

// Round each lane to BF16 (RNE) and back.
DSV4_AVX512 inline __m512 bf16_round_ps(__m512 x) {
  const __m256i b = (__m256i)_mm512_cvtneps_pbh(x);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16));
}

// Scores of 4 heads (pointers q[4]) against 4 keys (k[4]) over D (multiple of 16).
DSV4_AVX512 inline void qk_4x4(const float* const* q, const float* const* k, int D, float out[4][4]) {
  __m512 acc[4][4];
  for (auto& r : acc)
    for (auto& v : r) v = _mm512_setzero_ps();
  for (int d = 0; d < D; d += 16) {
    __m512 kv[4];
    for (int j = 0; j < 4; ++j) kv[j] = _mm512_loadu_ps(k[j] + d);
    for (int h = 0; h < 4; ++h) {
      const __m512 qv = _mm512_loadu_ps(q[h] + d);
      for (int j = 0; j < 4; ++j) acc[h][j] = _mm512_fmadd_ps(qv, kv[j], acc[h][j]);
    }
  }
  for (int h = 0; h < 4; ++h)
    for (int j = 0; j < 4; ++j) out[h][j] = hsum(acc[h][j]);
}

// One block's weighted sum over `NV` vectors of 16 dims starting at d0, folded into the running
// accumulators: acc[h] = acc[h] * alpha[h] + sum_j p[h][j] * key_j.
template <int NV>
DSV4_AVX512 inline void pv_block(const float* const* keys, int nv, const float* p, int ldp, int d0,
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
      _mm512_storeu_ps(ah + 16 * v, _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(ah + 16 * v), al), r[h][v]));
  }
}

}  // namespace

// The same online softmax as the scalar twin, 4 heads at a time sharing each key load.
DSV4_AVX512 void sparse_attention_rows(const AttentionArgs& a, int64_t t, int h0, int hn) {
  const int D = a.head_dim;
  const float* keys[kAttnBlock + 4];
  alignas(64) float s[kHeadGroup * kAttnBlock];
  alignas(64) float acc[kHeadGroup * kMaxHeadDim];
  const float* q[kHeadGroup];
  float* out[kHeadGroup];
  float m[kHeadGroup], l[kHeadGroup], sink[kHeadGroup];
  for (int h = 0; h < kHeadGroup; ++h) {
    const int hh = h0 + std::min(h, hn - 1);
    q[h] = a.q + (t * a.n_heads + hh) * D;
    out[h] = h < hn ? a.out + (t * a.n_heads + hh) * D : nullptr;
    sink[h] = a.sink[hh];
    m[h] = kNegInf;
    l[h] = 0.0f;
    std::fill(acc + h * kMaxHeadDim, acc + h * kMaxHeadDim + D, 0.0f);
  }
  const __m512 ninf = _mm512_set1_ps(kNegInf);
  for (int64_t b0 = 0; b0 < a.list_len; b0 += kAttnBlock) {
    const int nv = gather_block(a, t, b0, keys);
    if (nv == 0) continue;
    for (int j = nv; j < nv + 4; ++j) keys[j] = keys[0];  // padding for the 4-key tiles
    for (int j = 0; j < nv; j += 4) {
      float sc[4][4];
      qk_4x4(q, keys + j, D, sc);
      for (int h = 0; h < kHeadGroup; ++h)
        for (int jj = 0; jj < 4 && j + jj < nv; ++jj) s[h * kAttnBlock + j + jj] = sc[h][jj] * a.scale;
    }
    float alpha[kHeadGroup];
    for (int h = 0; h < kHeadGroup; ++h) {
      float* sh = s + h * kAttnBlock;
      __m512 mv = ninf;
      for (int j = 0; j < nv; j += 16) {
        const __mmask16 mk = nv - j >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (nv - j)) - 1);
        mv = _mm512_max_ps(mv, _mm512_mask_loadu_ps(ninf, mk, sh + j));
      }
      const float mn = std::max(m[h], hmax(mv));
      alpha[h] = std::exp(m[h] - mn);
      __m512 lv = _mm512_setzero_ps();
      const __m512 mb = _mm512_set1_ps(mn);
      for (int j = 0; j < nv; j += 16) {
        const __mmask16 mk = nv - j >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (nv - j)) - 1);
        const __m512 p = exp_ps(_mm512_sub_ps(_mm512_mask_loadu_ps(ninf, mk, sh + j), mb));
        lv = _mm512_add_ps(lv, p);
        // BF16 numerator weights (the reference's PV input); the denominator keeps float32.
        _mm512_mask_storeu_ps(sh + j, mk, bf16_round_ps(p));
      }
      l[h] = std::fma(l[h], alpha[h], hsum(lv));
      m[h] = mn;
    }
    int d0 = 0;
    for (; d0 + 64 <= D; d0 += 64) pv_block<4>(keys, nv, s, kAttnBlock, d0, alpha, acc, kMaxHeadDim);
    for (; d0 < D; d0 += 16) pv_block<1>(keys, nv, s, kAttnBlock, d0, alpha, acc, kMaxHeadDim);
  }
  for (int h = 0; h < kHeadGroup; ++h) {
    if (out[h] == nullptr) continue;
    const __m512 lt = _mm512_set1_ps(l[h] + std::exp(sink[h] - m[h]));
    const float* ah = acc + h * kMaxHeadDim;
    for (int d = 0; d < D; d += 16)
      _mm512_storeu_ps(out[h] + d, bf16_round_ps(_mm512_div_ps(_mm512_loadu_ps(ah + d), lt)));
  }
}

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

}  // namespace avx512

namespace avx2 {
namespace {

// Scores of 4 heads (pointers q[4]) against 2 keys (k[2]) over D (multiple of 8).
DSV4_AVX2 inline void qk_4x2(const float* const* q, const float* const* k, int D, float out[4][2]) {
  __m256 acc[4][2];
  for (auto& r : acc)
    for (auto& v : r) v = _mm256_setzero_ps();
  for (int d = 0; d < D; d += 8) {
    const __m256 k0 = _mm256_loadu_ps(k[0] + d), k1 = _mm256_loadu_ps(k[1] + d);
    for (int h = 0; h < 4; ++h) {
      const __m256 qv = _mm256_loadu_ps(q[h] + d);
      acc[h][0] = _mm256_fmadd_ps(qv, k0, acc[h][0]);
      acc[h][1] = _mm256_fmadd_ps(qv, k1, acc[h][1]);
    }
  }
  for (int h = 0; h < 4; ++h)
    for (int j = 0; j < 2; ++j) out[h][j] = hsum(acc[h][j]);
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

}  // namespace

// The same online softmax as the scalar twin (4 heads share each key load); head_dim % 8 == 0.
DSV4_AVX2 void sparse_attention_rows(const AttentionArgs& a, int64_t t, int h0, int hn) {
  const int D = a.head_dim;
  const float* keys[kAttnBlock + 2];
  alignas(32) float s[kHeadGroup * kAttnBlock];
  alignas(32) float acc[kHeadGroup * kMaxHeadDim];
  const float* q[kHeadGroup];
  float* out[kHeadGroup];
  float m[kHeadGroup], l[kHeadGroup], sink[kHeadGroup];
  for (int h = 0; h < kHeadGroup; ++h) {
    const int hh = h0 + std::min(h, hn - 1);
    q[h] = a.q + (t * a.n_heads + hh) * D;
    out[h] = h < hn ? a.out + (t * a.n_heads + hh) * D : nullptr;
    sink[h] = a.sink[hh];
    m[h] = kNegInf;
    l[h] = 0.0f;
    std::fill(acc + h * kMaxHeadDim, acc + h * kMaxHeadDim + D, 0.0f);
  }
  const __m256 ninf = _mm256_set1_ps(kNegInf);
  for (int64_t b0 = 0; b0 < a.list_len; b0 += kAttnBlock) {
    const int nv = gather_block(a, t, b0, keys);
    if (nv == 0) continue;
    keys[nv] = keys[nv + 1] = keys[0];  // padding for the 2-key tiles
    for (int j = 0; j < nv; j += 2) {
      float sc[4][2];
      qk_4x2(q, keys + j, D, sc);
      for (int h = 0; h < kHeadGroup; ++h)
        for (int jj = 0; jj < 2 && j + jj < nv; ++jj) s[h * kAttnBlock + j + jj] = sc[h][jj] * a.scale;
    }
    float alpha[kHeadGroup];
    for (int h = 0; h < kHeadGroup; ++h) {
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
    int d0 = 0;
    for (; d0 + 16 <= D; d0 += 16) pv_block<2>(keys, nv, s, kAttnBlock, d0, alpha, acc, kMaxHeadDim);
    for (; d0 < D; d0 += 8) pv_block<1>(keys, nv, s, kAttnBlock, d0, alpha, acc, kMaxHeadDim);
  }
  for (int h = 0; h < kHeadGroup; ++h) {
    if (out[h] == nullptr) continue;
    const __m256 lt = _mm256_set1_ps(l[h] + std::exp(sink[h] - m[h]));
    const float* ah = acc + h * kMaxHeadDim;
    for (int d = 0; d < D; d += 8)
      _mm256_storeu_ps(out[h] + d, bf16_round_ps(_mm256_div_ps(_mm256_loadu_ps(ah + d), lt)));
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
  const bool simd = isa_at_least(Isa::Avx512Bf16) && a.head_dim % 16 == 0;
  const bool simd2 = isa_at_least(Isa::Avx2) && a.head_dim % 8 == 0;
  const int64_t groups = (a.n_heads + kHeadGroup - 1) / kHeadGroup;
  const double work = 2.0 * a.n * a.n_heads * a.list_len * a.head_dim;
  parallel_for(pool_for_work(pool, work), a.n * groups, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t u = b; u < e; ++u) {
      const int64_t t = u / groups;
      const int h0 = static_cast<int>(u % groups) * kHeadGroup;
      const int hn = std::min(kHeadGroup, a.n_heads - h0);
      if (simd) {
        avx512::sparse_attention_rows(a, t, h0, hn);
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
  const bool simd = isa_at_least(Isa::Avx512Bf16), simd2 = isa_at_least(Isa::Avx2);
  const int64_t chunks = (a.n_keys + kKeyChunk - 1) / kKeyChunk;
  const double work = double(a.n) * a.n_keys * a.n_heads * a.head_dim;
  parallel_for(pool_for_work(pool, work), a.n * chunks, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t u = b; u < e; ++u) {
      const int64_t t = u / chunks, i0 = (u % chunks) * kKeyChunk;
      const int64_t i1 = std::min(a.n_keys, i0 + kKeyChunk);
      if (simd) {
        avx512::indexer_scores_rows(a, t, i0, i1);
      } else if (simd2) {
        avx2::indexer_scores_rows(a, t, i0, i1);
      } else {
        scalar::indexer_scores_rows(a, t, i0, i1);
      }
    }
  });
}

}  // namespace dsv4::cpu
