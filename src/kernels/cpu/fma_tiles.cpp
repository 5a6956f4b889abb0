// The float32 FMA engine of the tile prefill path (linear_kernels.h, avx512::tile_chunk_f32): the
// chunk product of the AMX / vdpbf16ps tiles as outer products, for cores where FMA is the
// fastest multiply (Intel without AMX; the plain AVX-512 level has nothing else).
//
// The activations are widened once per GEMM into blocks of 16 rows laid out [K][16] (to_f32_blocks),
// so the 16 rows of one block at one K are one 64-byte vector; a weight at that K (float32, from
// the chunk's widened panel) is broadcast to every lane from memory, and one FMA adds its
// products to that weight row's 16 sums (lane i = activation row i). Register block: 8 weight
// rows x up to 3 activation blocks = 24 accumulators, 3 activation loads and 8 broadcasts per K.
// This shape beat the dot-product panels (dot_f32: 8 weight rows x 3 activation rows along K,
// the same 11 loads per 24 FMAs but all of them full vectors) on a 2-core Ice Lake: 65-72% vs
// 42-52% of the FMA peak in a standalone loop over L1/L2-resident data.
// The sums live in the TileAcc between chunks, in the AMX accumulator layout, so amx::store
// serves all three engines.
//
// Numerics: the exact float32 values of the BF16 weights and activations multiplied with FMA
// (one rounding per product-sum): the sums of the scalar twin dot_bf16 in another order.
// Needs AVX-512 F only (DSV4_AVX512F): one copy serves the Avx512 and Avx512Bf16 levels.
#include "kernels/cpu/simd_avx512.h"  // first: wraps <immintrin.h>

#include <algorithm>

#include "kernels/cpu/linear_kernels.h"

namespace dsv4::cpu::avx512 {
namespace {

template <int kRows, int kBlocks>
DSV4_AVX512F void block(const float* panel, int64_t ldp, int n0, const float* act, int64_t kp,
                        int64_t b0, int64_t k0, int64_t k1, TileAcc* acc) {
  __m512 c[kRows][kBlocks];
  for (int w = 0; w < kRows; ++w)
    for (int b = 0; b < kBlocks; ++b)
      c[w][b] = k0 == 0 ? _mm512_setzero_ps() : _mm512_load_ps(tile_acc_row(acc, n0 + w, b0 + b));
  const float* a = act + b0 * 16 * kp;
  const float* rows = panel + n0 * ldp - k0;  // indexed by absolute K
  for (int64_t kk = k0; kk < k1; ++kk) {
    __m512 av[kBlocks];
    for (int b = 0; b < kBlocks; ++b) av[b] = _mm512_load_ps(a + b * 16 * kp + kk * 16);
    for (int w = 0; w < kRows; ++w) {
      const __m512 wv = _mm512_set1_ps(rows[w * ldp + kk]);
      for (int b = 0; b < kBlocks; ++b) c[w][b] = _mm512_fmadd_ps(av[b], wv, c[w][b]);
    }
  }
  for (int w = 0; w < kRows; ++w)
    for (int b = 0; b < kBlocks; ++b) _mm512_store_ps(tile_acc_row(acc, n0 + w, b0 + b), c[w][b]);
}

template <int kRows>
DSV4_AVX512F void blocks(const float* panel, int64_t ldp, int n0, const float* act, int64_t kp,
                         int64_t nb, int64_t k0, int64_t k1, TileAcc* acc) {
  // Blocks of 3, the rest as 2 + 2 rather than 3 + 1 (one activation load per 8 broadcasts and
  // 8 FMAs is bound by the loads).
  int64_t b0 = 0;
  for (; nb - b0 >= 5 || nb - b0 == 3; b0 += 3) block<kRows, 3>(panel, ldp, n0, act, kp, b0, k0, k1, acc);
  for (; nb - b0 >= 2; b0 += 2) block<kRows, 2>(panel, ldp, n0, act, kp, b0, k0, k1, acc);
  if (nb - b0 == 1) block<kRows, 1>(panel, ldp, n0, act, kp, b0, k0, k1, acc);
}

}  // namespace

DSV4_AVX512F void tile_chunk_f32(const float* panel, int64_t ldp, int nr, const float* act,
                                 int64_t m, int64_t kp, int64_t k0, int64_t k1, TileAcc* acc) {
  const int64_t nb = (m + 15) / 16;
  for (int n0 = 0; n0 < nr; n0 += 8) blocks<8>(panel, ldp, n0, act, kp, nb, k0, k1, acc);  // rows >= nr: readable zeros
}

DSV4_AVX512F void to_f32_blocks(const uint16_t* a, int64_t lda, int64_t m, int64_t kp, float* out) {
  alignas(64) float t[16][16];
  for (int64_t b = 0; b * 16 < m; ++b) {
    const int64_t rows = std::min<int64_t>(16, m - b * 16);
    float* ob = out + b * 16 * kp;
    for (int64_t k = 0; k < kp; k += 16) {
      for (int64_t i = 0; i < 16; ++i) {
        const __m256i h = i < rows ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + (b * 16 + i) * lda + k))
                                   : _mm256_setzero_si256();
        _mm512_store_ps(t[i], _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
      }
      transpose16x16_32(t, 64, ob + k * 16, 64);
    }
  }
}

}  // namespace dsv4::cpu::avx512
