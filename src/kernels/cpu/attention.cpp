#include "kernels/cpu/simd_avx512.h"  // first: wraps <immintrin.h>

#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/formats.h"

namespace dsv4::cpu {
namespace {

constexpr int kHeadGroup = 4;
constexpr int64_t kKeyChunk = 256;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline float bf16_round(float v) { return bf16_bits_to_f32(f32_to_bf16_bits(v)); }

thread_local std::vector<const float*> t_keys;
thread_local AlignedVector<float> t_scores;
thread_local AlignedVector<float> t_qt;

// Pointers of the valid keys of row t's list (-1 entries skipped).
int64_t gather_keys(const AttentionArgs& a, int64_t t) {
  if (t_keys.size() < static_cast<size_t>(a.list_len) + 4) t_keys.resize(a.list_len + 4);
  const int32_t* list = a.lists + t * a.list_len;
  int64_t nv = 0;
  for (int64_t j = 0; j < a.list_len; ++j)
    if (list[j] >= 0) t_keys[nv++] = a.key(list[j]);
  return nv;
}

}  // namespace

namespace scalar {

void sparse_attention_rows(const AttentionArgs& a, int64_t t, int h0, int hn) {
  const int D = a.head_dim;
  const int64_t nv = gather_keys(a, t);
  if (t_scores.size() < static_cast<size_t>(nv)) t_scores.resize(nv);
  std::vector<float> acc(D);
  for (int h = h0; h < h0 + hn; ++h) {
    const float* q = a.q + (t * a.n_heads + h) * D;
    float* o = a.out + (t * a.n_heads + h) * D;
    float m = a.sink[h];
    for (int64_t j = 0; j < nv; ++j) {
      float s = 0;
      for (int d = 0; d < D; ++d) s += q[d] * t_keys[j][d];
      t_scores[j] = s * a.scale;
      m = std::max(m, t_scores[j]);
    }
    float l = std::exp(a.sink[h] - m);
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t j = 0; j < nv; ++j) {
      const float p = std::exp(t_scores[j] - m);
      l += p;
      const float pb = bf16_round(p);  // numerator weight rounded like the reference's PV input
      for (int d = 0; d < D; ++d) acc[d] += pb * t_keys[j][d];
    }
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
    float total = 0;
    for (int h = 0; h < H; ++h) {
      float s = 0;
      for (int d = 0; d < D; ++d) s += qt[h * D + d] * k[d];
      total += std::max(s, 0.0f) * wt[h];
    }
    out[i] = bf16_round(total);
  }
}

}  // namespace scalar

namespace avx512 {
namespace {

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

// acc[h] over `NV` vectors of 16 dims starting at d0: sum_j p[h][j] * key_j[d0..].
template <int NV>
DSV4_AVX512 inline void pv_chunk(const float* const* keys, int64_t nv, const float* p, int64_t ldp,
                                 int d0, const float* inv_l, float* const* out) {
  __m512 acc[kHeadGroup][NV];
  for (auto& r : acc)
    for (auto& v : r) v = _mm512_setzero_ps();
  for (int64_t j = 0; j < nv; ++j) {
    __m512 kv[NV];
    for (int v = 0; v < NV; ++v) kv[v] = _mm512_loadu_ps(keys[j] + d0 + 16 * v);
    for (int h = 0; h < kHeadGroup; ++h) {
      const __m512 pb = _mm512_set1_ps(p[h * ldp + j]);
      for (int v = 0; v < NV; ++v) acc[h][v] = _mm512_fmadd_ps(pb, kv[v], acc[h][v]);
    }
  }
  for (int h = 0; h < kHeadGroup; ++h) {
    if (out[h] == nullptr) continue;
    const __m512 il = _mm512_set1_ps(inv_l[h]);
    for (int v = 0; v < NV; ++v) {
      const __m512 r = _mm512_mul_ps(acc[h][v], il);
      // Round to BF16 (RNE) and back: the output holds bf16 values.
      const __m256i b = (__m256i)_mm512_cvtneps_pbh(r);
      _mm512_storeu_ps(out[h] + d0 + 16 * v,
                       _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16)));
    }
  }
}

}  // namespace

DSV4_AVX512 void sparse_attention_rows(const AttentionArgs& a, int64_t t, int h0, int hn) {
  const int D = a.head_dim;
  const int64_t nv = gather_keys(a, t);
  const int64_t ldp = (nv + 4 + 15) / 16 * 16;
  if (t_scores.size() < static_cast<size_t>(kHeadGroup * ldp)) t_scores.resize(kHeadGroup * ldp);
  float* s = t_scores.data();
  for (int64_t j = nv; j < nv + 4; ++j) t_keys[j] = nv > 0 ? t_keys[0] : a.q;  // padding
  const float* q[kHeadGroup];
  float* out[kHeadGroup];
  for (int h = 0; h < kHeadGroup; ++h) {
    const int hh = h0 + std::min(h, hn - 1);
    q[h] = a.q + (t * a.n_heads + hh) * D;
    out[h] = h < hn ? a.out + (t * a.n_heads + hh) * D : nullptr;
  }
  for (int64_t j = 0; j < nv; j += 4) {
    float sc[4][4];
    qk_4x4(q, t_keys.data() + j, D, sc);
    for (int h = 0; h < kHeadGroup; ++h)
      for (int jj = 0; jj < 4 && j + jj < nv; ++jj) s[h * ldp + j + jj] = sc[h][jj] * a.scale;
  }
  float inv_l[kHeadGroup];
  const __m512 ninf = _mm512_set1_ps(kNegInf);
  for (int h = 0; h < kHeadGroup; ++h) {
    const float sink = a.sink[h0 + std::min(h, hn - 1)];
    float* sh = s + h * ldp;
    __m512 mv = _mm512_set1_ps(sink);
    for (int64_t j = 0; j < nv; j += 16) {
      const __mmask16 mk = nv - j >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (nv - j)) - 1);
      mv = _mm512_max_ps(mv, _mm512_mask_loadu_ps(ninf, mk, sh + j));
    }
    const float m = hmax(mv);
    __m512 lv = _mm512_setzero_ps();
    const __m512 mb = _mm512_set1_ps(m);
    for (int64_t j = 0; j < nv; j += 16) {
      const __mmask16 mk = nv - j >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (nv - j)) - 1);
      const __m512 p = exp_ps(_mm512_sub_ps(_mm512_mask_loadu_ps(ninf, mk, sh + j), mb));
      lv = _mm512_add_ps(lv, p);
      // The numerator weights are BF16-rounded like the reference's PV product; the denominator
      // keeps the float32 probabilities.
      const __m256i pb = (__m256i)_mm512_cvtneps_pbh(p);
      _mm512_mask_storeu_ps(sh + j, mk,
                            _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(pb), 16)));
    }
    inv_l[h] = 1.0f / (hsum(lv) + std::exp(sink - m));
  }
  int d0 = 0;
  for (; d0 + 64 <= D; d0 += 64) pv_chunk<4>(t_keys.data(), nv, s, ldp, d0, inv_l, out);
  for (; d0 < D; d0 += 16) pv_chunk<1>(t_keys.data(), nv, s, ldp, d0, inv_l, out);
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
    float total[4] = {0, 0, 0, 0};
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
      for (int j = 0; j < 4; ++j) {
        __m512 sum = _mm512_setzero_ps();
        for (int v = 0; v < nvec; ++v)
          sum = _mm512_fmadd_ps(_mm512_max_ps(acc[j][v], _mm512_setzero_ps()),
                                _mm512_loadu_ps(wp + hc + 16 * v), sum);
        total[j] += hsum(sum);
      }
    }
    for (int j = 0; j < 4 && i + j < vis; ++j) out[i + j] = bf16_round(total[j]);
  }
  for (i = std::max(i0, vis); i < i1; ++i) out[i] = kNegInf;
}

}  // namespace avx512

void sparse_attention(const AttentionArgs& a, ThreadPool* pool) {
  if (a.n <= 0) return;
  if (a.n_heads <= 0 || a.head_dim <= 0 || !a.q || !a.out || !a.sink || (a.list_len > 0 && !a.lists))
    throw_error("sparse_attention: bad arguments (heads ", a.n_heads, ", head_dim ", a.head_dim, ")");
  const bool simd = active_isa() == Isa::Avx512Bf16 && a.head_dim % 16 == 0;
  const int64_t groups = (a.n_heads + kHeadGroup - 1) / kHeadGroup;
  const double work = 2.0 * a.n * a.n_heads * a.list_len * a.head_dim;
  parallel_for(pool_for_work(pool, work), a.n * groups, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t u = b; u < e; ++u) {
      const int64_t t = u / groups;
      const int h0 = static_cast<int>(u % groups) * kHeadGroup;
      const int hn = std::min(kHeadGroup, a.n_heads - h0);
      if (simd) {
        avx512::sparse_attention_rows(a, t, h0, hn);
      } else {
        scalar::sparse_attention_rows(a, t, h0, hn);
      }
    }
  });
}

void indexer_scores(const IndexerScoreArgs& a, ThreadPool* pool) {
  if (a.n <= 0 || a.n_keys <= 0) return;
  if (a.n_heads <= 0 || a.head_dim <= 0 || !a.q || !a.w || !a.keys || !a.visible || !a.scores)
    throw_error("indexer_scores: bad arguments (heads ", a.n_heads, ", head_dim ", a.head_dim, ")");
  const bool simd = active_isa() == Isa::Avx512Bf16;
  const int64_t chunks = (a.n_keys + kKeyChunk - 1) / kKeyChunk;
  const double work = double(a.n) * a.n_keys * a.n_heads * a.head_dim;
  parallel_for(pool_for_work(pool, work), a.n * chunks, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t u = b; u < e; ++u) {
      const int64_t t = u / chunks, i0 = (u % chunks) * kKeyChunk;
      const int64_t i1 = std::min(a.n_keys, i0 + kKeyChunk);
      if (simd) {
        avx512::indexer_scores_rows(a, t, i0, i1);
      } else {
        scalar::indexer_scores_rows(a, t, i0, i1);
      }
    }
  });
}

}  // namespace dsv4::cpu
