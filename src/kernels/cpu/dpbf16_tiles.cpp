// The vdpbf16ps engine of the tile prefill path (linear_kernels.h, avx512::tile_chunk): the same
// chunk product as the AMX tiles, on AVX-512 BF16 registers, for CPUs whose vdpbf16ps runs at
// full rate but have no AMX (AMD Zen 4/5).
//
// The activations are in the to_vnni layout, so the 16 rows of one activation block at one K pair
// are one 64-byte vector; a weight row's BF16 pair at that K is broadcast to every lane, and
// vdpbf16ps adds both products to that weight row's 16 sums (lane i = activation row i). Register
// block: 8 weight rows x up to 3 activation blocks = 24 accumulators, 3 activation vectors and one
// broadcast. The sums live in the TileAcc between chunks, in the AMX accumulator layout, so
// amx::store serves both engines.
//
// Numerics: vdpbf16ps forms exact products of BF16 values and accumulates in float32 (round to
// nearest even, denormal BF16 inputs read as zero), like the tiles: the sums the scalar twin
// dot_bf16 computes, in another order.
#include "kernels/cpu/simd_avx512.h"  // first: wraps <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/linear_kernels.h"

namespace dsv4::cpu::avx512 {
namespace {

template <int kRows, int kBlocks>
DSV4_AVX512 void block(const uint16_t* panel, int64_t ldp, int n0, const uint16_t* act, int64_t kp,
                       int64_t b0, int64_t k0, int64_t k1, TileAcc* acc) {
  __m512 c[kRows][kBlocks];
  for (int w = 0; w < kRows; ++w)
    for (int b = 0; b < kBlocks; ++b)
      c[w][b] = k0 == 0 ? _mm512_setzero_ps() : _mm512_load_ps(tile_acc_row(acc, n0 + w, b0 + b));
  const uint16_t* a = act + b0 * 16 * kp;
  const uint16_t* rows = panel + n0 * ldp - k0;  // indexed by absolute K
  for (int64_t kk = k0; kk < k1; kk += 2) {
    __m512bh av[kBlocks];
    for (int b = 0; b < kBlocks; ++b)
      av[b] = (__m512bh)_mm512_loadu_si512(a + b * 16 * kp + kk * 16);
    for (int w = 0; w < kRows; ++w) {
      int32_t pair;
      std::memcpy(&pair, rows + w * ldp + kk, 4);
      const __m512bh wv = (__m512bh)_mm512_set1_epi32(pair);
      for (int b = 0; b < kBlocks; ++b) c[w][b] = _mm512_dpbf16_ps(c[w][b], av[b], wv);
    }
  }
  for (int w = 0; w < kRows; ++w)
    for (int b = 0; b < kBlocks; ++b) _mm512_store_ps(tile_acc_row(acc, n0 + w, b0 + b), c[w][b]);
}

template <int kRows>
DSV4_AVX512 void blocks(const uint16_t* panel, int64_t ldp, int n0, const uint16_t* act, int64_t kp,
                        int64_t nb, int64_t k0, int64_t k1, TileAcc* acc) {
  int64_t b0 = 0;
  for (; b0 + 3 <= nb; b0 += 3) block<kRows, 3>(panel, ldp, n0, act, kp, b0, k0, k1, acc);
  if (nb - b0 == 2) block<kRows, 2>(panel, ldp, n0, act, kp, b0, k0, k1, acc);
  if (nb - b0 == 1) block<kRows, 1>(panel, ldp, n0, act, kp, b0, k0, k1, acc);
}

}  // namespace

DSV4_AVX512 void tile_chunk(const uint16_t* panel, int64_t ldp, int nr, const uint16_t* act,
                            int64_t m, int64_t kp, int64_t k0, int64_t k1, TileAcc* acc) {
  const int64_t nb = (m + 15) / 16;
  int n0 = 0;
  for (; n0 + 8 <= nr; n0 += 8) blocks<8>(panel, ldp, n0, act, kp, nb, k0, k1, acc);
  if (n0 < nr) blocks<8>(panel, ldp, n0, act, kp, nb, k0, k1, acc);  // rows >= nr: readable zeros
}

}  // namespace dsv4::cpu::avx512
