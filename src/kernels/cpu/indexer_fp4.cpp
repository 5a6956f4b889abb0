#include "kernels/cpu/simd_avx512.h"  // first (see the header)

#include "kernels/cpu/indexer_fp4.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <vector>

#include "core/error.h"
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

}  // namespace

void indexer_scores_fp4_scalar(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes) {
  check(a, key_bytes);
  const int H = a.n_heads, D = a.head_dim;
  const Lut& t = lut();
  const float ninf = -std::numeric_limits<float>::infinity();
  std::vector<float> k(static_cast<size_t>(D)), dots(static_cast<size_t>(H));
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

DSV4_AVX512 void indexer_scores_fp4_avx512(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes) {
  check(a, key_bytes);
  const int H = a.n_heads, D = a.head_dim;
  if (D % kBlock != 0) return indexer_scores_fp4_scalar(a, keys, key_bytes);
  const int nb = D / kBlock;
  const Lut& t = lut();
  const float ninf = -std::numeric_limits<float>::infinity();
  // Queries de-interleaved per 32-block: [16 even dims][16 odd dims], matching the nibble order.
  thread_local std::vector<float> qd, dots;
  qd.resize(static_cast<size_t>(a.n * H * D));
  dots.resize(static_cast<size_t>(H));
  for (int64_t rh = 0; rh < a.n * H; ++rh) {
    const float* q = a.q + rh * D;
    float* o = qd.data() + rh * D;
    for (int b = 0; b < nb; ++b)
      for (int j = 0; j < 16; ++j) {
        o[b * 32 + j] = q[b * 32 + 2 * j];
        o[b * 32 + 16 + j] = q[b * 32 + 2 * j + 1];
      }
  }
  const __m512 table = _mm512_loadu_ps(t.e2m1.data());
  const __m512i low4 = _mm512_set1_epi32(0xF);
  constexpr int kMaxBlocks = 16;  // head_dim <= 512
  if (nb > kMaxBlocks) return indexer_scores_fp4_scalar(a, keys, key_bytes);
  __m512 ke[kMaxBlocks], ko[kMaxBlocks];
  int64_t max_vis = 0;
  for (int64_t r = 0; r < a.n; ++r) max_vis = std::max(max_vis, std::min(a.visible[r], a.n_keys));
  for (int64_t i = 0; i < a.n_keys; ++i) {
    float* col = a.scores + i;
    if (i >= max_vis) {
      for (int64_t r = 0; r < a.n; ++r) col[r * a.n_keys] = ninf;
      continue;
    }
    const uint8_t* e = keys + static_cast<size_t>(i) * key_bytes;
    const uint8_t* sc = e + D / 2;
    for (int b = 0; b < nb; ++b) {
      const __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(e + b * 16)));
      const __m512 s = _mm512_set1_ps(t.e8m0[sc[b]]);
      ke[b] = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_and_si512(bytes, low4), table), s);
      ko[b] = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), table), s);
    }
    for (int64_t r = 0; r < a.n; ++r) {
      if (i >= a.visible[r]) {
        col[r * a.n_keys] = ninf;
        continue;
      }
      for (int h = 0; h < H; ++h) {
        const float* q = qd.data() + (r * H + h) * D;
        __m512 acc = _mm512_mul_ps(_mm512_loadu_ps(q), ke[0]);
        acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + 16), ko[0], acc);
        for (int b = 1; b < nb; ++b) {
          acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + b * 32), ke[b], acc);
          acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + b * 32 + 16), ko[b], acc);
        }
        dots[static_cast<size_t>(h)] = avx512::hsum(acc);
      }
      col[r * a.n_keys] = combine(dots.data(), a.w + r * H, H);
    }
  }
}

void indexer_scores_fp4(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes) {
  if (active_isa() == Isa::Avx512Bf16 && a.head_dim % kBlock == 0) indexer_scores_fp4_avx512(a, keys, key_bytes);
  else indexer_scores_fp4_scalar(a, keys, key_bytes);
}

}  // namespace dsv4::cpu
