// Dot-product micro-kernels over a panel of kPanelRows weight rows and a span of activation rows.
//   dot_bf16:      BF16 panel x BF16 activations. AVX-512: vdpbf16ps (AVX512-BF16), which forms
//                  the exact products of BF16 pairs and accumulates them in float32; register
//                  block 4 weight rows x up to 4 activation rows (16 zmm accumulators).
//   dot_f32:       float32 panel x float32 activations with FMA (vfmadd231ps); the prefill path,
//                  since on the measured CPU vdpbf16ps retires half the MACs per cycle of two
//                  FMA ports (bench BM_PeakMac).
//   dot_bf16w_f32: BF16 weights (upcast exactly by a 16-bit shift) x float32 activations with
//                  float32 FMA (vfmadd231ps), masked loads for any K tail.
// Scalar twins: plain loops with one float32 accumulator per output (dot_f32: eight fused ones, see there).
#include "kernels/cpu/simd_avx512.h"  // first: wraps <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/formats.h"
#include "kernels/cpu/linear_kernels.h"

namespace dsv4::cpu {

#if !defined(DSV4_AVX512_FMA_PASS)  // the scalar / AVX2 tiers: in the first pass only
namespace scalar {

void dot_bf16(const uint16_t* panel, int64_t ldp, int nr, const uint16_t* a, int64_t lda,
              int64_t m, int64_t kp, float* y, int64_t ldy) {
  for (int64_t i = 0; i < m; ++i) {
    for (int r = 0; r < nr; ++r) {
      float acc = 0.0f;
      for (int64_t p = 0; p < kp; ++p)
        acc += bf16_bits_to_f32(panel[r * ldp + p]) * bf16_bits_to_f32(a[i * lda + p]);
      y[i * ldy + r] = acc;
    }
  }
}

// Eight fused partial sums (position p into sum p % 8, kp % 16 == 0) combined pairwise: exactly
// the arithmetic of the AVX2 kernel. One sequential mul+add float32 sum over the long K of the
// float32 linears was an order of magnitude less accurate and flipped a near-tie in tiny-a's
// layer 3 (CpuBackendGolden failed at DSV4_ISA=scalar). std::fma is a libm call here (hardware
// FMA where the CPU has it, a slow software fallback on CPUs without; those run this level only).
void dot_f32(const float* panel, int64_t ldp, int nr, const float* a, int64_t lda, int64_t m,
             int64_t kp, float* y, int64_t ldy) {
  for (int64_t i = 0; i < m; ++i) {
    for (int r = 0; r < nr; ++r) {
      float acc[8] = {};
      for (int64_t p = 0; p < kp; ++p) acc[p % 8] = std::fma(panel[r * ldp + p], a[i * lda + p], acc[p % 8]);
      y[i * ldy + r] = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    }
  }
}

void widen_bf16(const uint16_t* x, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_bits_to_f32(x[i]);
}

void dot_bf16w_f32(const uint16_t* w, int64_t ldw, int nr, const float* a, int64_t lda, int64_t m,
                   int64_t k, float* y, int64_t ldy) {
  for (int64_t i = 0; i < m; ++i) {
    for (int r = 0; r < nr; ++r) {
      float acc = 0.0f;
      for (int64_t p = 0; p < k; ++p) acc += bf16_bits_to_f32(w[r * ldw + p]) * a[i * lda + p];
      y[i * ldy + r] = acc;
    }
  }
}

}  // namespace scalar
#endif  // !DSV4_AVX512_FMA_PASS

namespace DSV4_AVX512_NS {
namespace {

template <int MR>
DSV4_AVX512 inline void dot_bf16_tile(const uint16_t* panel, int64_t ldp, int nr,
                                      const uint16_t* a, int64_t lda, int64_t kp, float* y,
                                      int64_t ldy) {
  __m512 acc[kPanelRows][MR];
  for (int r = 0; r < kPanelRows; ++r)
    for (int i = 0; i < MR; ++i) acc[r][i] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kp; p += 32) {
    __m512bh av[MR];
    for (int i = 0; i < MR; ++i) av[i] = (__m512bh)_mm512_loadu_si512(a + i * lda + p);
    for (int r = 0; r < kPanelRows; ++r) {
      const __m512bh wv = (__m512bh)_mm512_loadu_si512(panel + r * ldp + p);
      for (int i = 0; i < MR; ++i) acc[r][i] = dpbf16(acc[r][i], wv, av[i]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int r = 0; r < nr; ++r) y[i * ldy + r] = hsum(acc[r][i]);
}

// NR weight rows (clamped pointers: rows >= nr repeat the last, so no row past nr is read) x MR
// activation rows over panel positions [p0, p1). The NR x MR vector partial sums live in `part`
// between K chunks (loaded and stored once per chunk, off the FMA ports); the horizontal sums
// into y happen once, after the last chunk.
template <int NR, int MR>
DSV4_AVX512 inline void dot_f32_panel_tile(const float* panel, int64_t ldp, int nr, const float* a,
                                           int64_t lda, int64_t p0, int64_t p1, float* part,
                                           bool first, bool last, float* y, int64_t ldy) {
  const float* rows[NR];
  for (int r = 0; r < NR; ++r) rows[r] = panel + std::min(r, nr - 1) * ldp;
  __m512 acc[NR][MR];
  for (int r = 0; r < NR; ++r)
    for (int i = 0; i < MR; ++i)
      acc[r][i] = first ? _mm512_setzero_ps() : _mm512_load_ps(part + 16 * (r * MR + i));
  for (int64_t p = p0; p < p1; p += 16) {
    __m512 av[MR];
    for (int i = 0; i < MR; ++i) av[i] = _mm512_loadu_ps(a + i * lda + p);
    for (int r = 0; r < NR; ++r) {
      __m512 wv = _mm512_loadu_ps(rows[r] + p);
      // Keep wv in a register: otherwise GCC folds the load into every FMA that uses it, doubling
      // the loads per FMA.
      asm("" : "+v"(wv));
      for (int i = 0; i < MR; ++i) acc[r][i] = _mm512_fmadd_ps(wv, av[i], acc[r][i]);
    }
  }
  if (last) {
    for (int i = 0; i < MR; ++i)
      for (int r = 0; r < nr; ++r) y[i * ldy + r] = hsum(acc[r][i]);
  } else {
    for (int r = 0; r < NR; ++r)
      for (int i = 0; i < MR; ++i) _mm512_store_ps(part + 16 * (r * MR + i), acc[r][i]);
  }
}

// dot_f32 over NR-row tiles of MR = 3, 2, 1 activation rows, K in chunks that keep the panel
// slice (NR x 2 KiB) in L1 while activation rows stream from L2.
template <int NR>
DSV4_AVX512 void dot_f32_rows(const float* panel, int64_t ldp, int nr, const float* a, int64_t lda,
                              int64_t m, int64_t kp, float* y, int64_t ldy) {
  constexpr int64_t kChunk = 512;
  struct alignas(64) Vec { float v[16]; };
  thread_local std::vector<Vec> t_part;
  const size_t need = static_cast<size_t>((m + 2) / 3 * 3 * NR);
  if (t_part.size() < need) t_part.resize(need);
  float* part = t_part.data()->v;
  for (int64_t p0 = 0; p0 < kp; p0 += kChunk) {
    const int64_t p1 = std::min(kp, p0 + kChunk);
    const bool first = p0 == 0, last = p1 == kp;
    int64_t i = 0;
    for (; i + 3 <= m; i += 3)
      dot_f32_panel_tile<NR, 3>(panel, ldp, nr, a + i * lda, lda, p0, p1, part + 16 * i * NR,
                                first, last, y + i * ldy, ldy);
    if (m - i == 2)
      dot_f32_panel_tile<NR, 2>(panel, ldp, nr, a + i * lda, lda, p0, p1, part + 16 * i * NR,
                                first, last, y + i * ldy, ldy);
    if (m - i == 1)
      dot_f32_panel_tile<NR, 1>(panel, ldp, nr, a + i * lda, lda, p0, p1, part + 16 * i * NR,
                                first, last, y + i * ldy, ldy);
  }
}

// 16 BF16 values -> float32 (exact).
DSV4_AVX512 inline __m512 widen(__m256i h) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// 4 weight rows x MR activation rows; 32 K values per step (one 64-byte line per weight row,
// widened in two halves), a masked step for the K tail. Like the FP8/FP4 GEMVs, each row streams
// the next panel's bytes one line ahead per line consumed (`ahead` bytes; rows are short).
template <int MR>
DSV4_AVX512 inline void dot_f32_tile(const uint16_t* const* rows, int nr, const float* a,
                                     int64_t lda, int64_t k, float* y, int64_t ldy,
                                     int64_t ahead) {
  __m512 acc[kPanelRows][MR];
  for (int r = 0; r < kPanelRows; ++r)
    for (int i = 0; i < MR; ++i) acc[r][i] = _mm512_setzero_ps();
  int64_t p = 0;
  for (; p + 32 <= k; p += 32) {
    __m512 a0[MR], a1[MR];
    for (int i = 0; i < MR; ++i) {
      a0[i] = _mm512_loadu_ps(a + i * lda + p);
      a1[i] = _mm512_loadu_ps(a + i * lda + p + 16);
    }
    for (int r = 0; r < kPanelRows; ++r) {
      const char* line = reinterpret_cast<const char*>(rows[r] + p);
      prefetch_l2(line + ahead);
      const __m512i wb = _mm512_loadu_si512(line);
      const __m512 w0 = widen(_mm512_castsi512_si256(wb));
      const __m512 w1 = widen(_mm512_extracti64x4_epi64(wb, 1));
      for (int i = 0; i < MR; ++i) {
        acc[r][i] = _mm512_fmadd_ps(w0, a0[i], acc[r][i]);
        acc[r][i] = _mm512_fmadd_ps(w1, a1[i], acc[r][i]);
      }
    }
  }
  for (; p < k; p += 16) {
    const __mmask16 mk = k - p >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (k - p)) - 1);
    __m512 av[MR];
    for (int i = 0; i < MR; ++i) av[i] = _mm512_maskz_loadu_ps(mk, a + i * lda + p);
    for (int r = 0; r < kPanelRows; ++r) {
      const __m512 wv = widen(_mm256_maskz_loadu_epi16(mk, rows[r] + p));
      for (int i = 0; i < MR; ++i) acc[r][i] = _mm512_fmadd_ps(wv, av[i], acc[r][i]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int r = 0; r < nr; ++r) y[i * ldy + r] = hsum(acc[r][i]);
}

// One activation row (decode), rows [0, nr) one after the other (GemvOrder::Rows): each thread
// reads its rows as one stream in memory order (prefetch_stream); four sums per row.
DSV4_AVX512 inline void dot_f32_row_by_row(const uint16_t* w, int64_t ldw, int nr, const float* a, int64_t k,
                                           float* y, int64_t ahead) {
  for (int r = 0; r < nr; ++r) {
    const char* row = reinterpret_cast<const char*>(w + r * ldw);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t p = 0;
    for (; p + 64 <= k; p += 64) {
      for (int h = 0; h < 2; ++h) {
        const char* line = row + 2 * (p + 32 * h);
        prefetch_stream(line + ahead);
        const __m512i wb = _mm512_loadu_si512(line);
        acc[2 * h] = _mm512_fmadd_ps(widen(_mm512_castsi512_si256(wb)), _mm512_loadu_ps(a + p + 32 * h), acc[2 * h]);
        acc[2 * h + 1] = _mm512_fmadd_ps(widen(_mm512_extracti64x4_epi64(wb, 1)), _mm512_loadu_ps(a + p + 32 * h + 16), acc[2 * h + 1]);
      }
    }
    for (; p < k; p += 16) {
      const __mmask16 mk = k - p >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (k - p)) - 1);
      acc[0] = _mm512_fmadd_ps(widen(_mm256_maskz_loadu_epi16(mk, w + r * ldw + p)), _mm512_maskz_loadu_ps(mk, a + p), acc[0]);
    }
    y[r] = hsum(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
  }
}

}  // namespace

DSV4_AVX512 void dot_bf16(const uint16_t* panel, int64_t ldp, int nr, const uint16_t* a,
                          int64_t lda, int64_t m, int64_t kp, float* y, int64_t ldy) {
  int64_t i = 0;
  for (; i + 4 <= m; i += 4) dot_bf16_tile<4>(panel, ldp, nr, a + i * lda, lda, kp, y + i * ldy, ldy);
  switch (m - i) {
    case 3: dot_bf16_tile<3>(panel, ldp, nr, a + i * lda, lda, kp, y + i * ldy, ldy); break;
    case 2: dot_bf16_tile<2>(panel, ldp, nr, a + i * lda, lda, kp, y + i * ldy, ldy); break;
    case 1: dot_bf16_tile<1>(panel, ldp, nr, a + i * lda, lda, kp, y + i * ldy, ldy); break;
    default: break;
  }
}

DSV4_AVX512 void widen_bf16(const uint16_t* x, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(out + i, widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i))));
  if (i < n) {
    const __mmask16 mk = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(out + i, mk, widen(_mm256_maskz_loadu_epi16(mk, x + i)));
  }
}

DSV4_AVX512 void dot_f32(const float* panel, int64_t ldp, int nr, const float* a, int64_t lda,
                         int64_t m, int64_t kp, float* y, int64_t ldy) {
  // 4-row units (the decode split of the hc mixes) take 4-row tiles: no wasted FMAs and no read
  // past the unit's rows when it is the matrix's last.
  if (nr <= kPanelRows)
    dot_f32_rows<kPanelRows>(panel, ldp, nr, a, lda, m, kp, y, ldy);
  else
    dot_f32_rows<kWidePanelRows>(panel, ldp, nr, a, lda, m, kp, y, ldy);
}

DSV4_AVX512 void dot_bf16w_f32(const uint16_t* w, int64_t ldw, int nr, const float* a,
                               int64_t lda, int64_t m, int64_t k, float* y, int64_t ldy) {
  const int64_t ahead = prefetch_ahead(ldw * 2);
  const bool rows_order = m == 1 && gemv_order() == GemvOrder::Rows;
  for_gemv_blocks(nr, rows_order, [&](int n0, int rows) DSV4_AVX512 {
    if (rows_order) {
      dot_f32_row_by_row(w + n0 * ldw, ldw, rows, a, k, y + n0, ahead);
      return;
    }
    const uint16_t* rp[kPanelRows];
    panel_rows(w + n0 * ldw, ldw, rows, rp);
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) dot_f32_tile<4>(rp, rows, a + i * lda, lda, k, y + i * ldy + n0, ldy, ahead);
    switch (m - i) {
      case 3: dot_f32_tile<3>(rp, rows, a + i * lda, lda, k, y + i * ldy + n0, ldy, ahead); break;
      case 2: dot_f32_tile<2>(rp, rows, a + i * lda, lda, k, y + i * ldy + n0, ldy, ahead); break;
      case 1: dot_f32_tile<1>(rp, rows, a + i * lda, lda, k, y + i * ldy + n0, ldy, ahead); break;
      default: break;
    }
  });
}

}  // namespace DSV4_AVX512_NS
}  // namespace dsv4::cpu
