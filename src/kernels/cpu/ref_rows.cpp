// AVX-512 twins of the reference's row ops (ref_rows.h). Float64 work runs on 8 lanes, float32 and
// integer work on 16; tails are masked, so any width works.
#include "kernels/cpu/simd_avx512.h"  // first: wraps <immintrin.h>

#include "kernels/cpu/ref_rows.h"
#include "kernels/cpu/ref_rows_shared.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/ref/fmath.h"
#include "kernels/ref/moe.h"
#include "quant/quant.h"

namespace dsv4::cpu::avx512_ref {
namespace {

DSV4_AVX512F inline __mmask16 tail16(int64_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
}

// Round to the nearest BF16 value (RNE on the bits). NaN lanes: unchanged (ref::bf16r), or made
// quiet with the low 16 bits cleared (quant::bf16_round) when Quiet.
template <bool Quiet>
DSV4_AVX512F inline __m512 bf16_round(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i up = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), lsb));
  const __m512i hi = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  const __m512i r = _mm512_and_si512(up, hi);
  const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF)),
                                                _mm512_set1_epi32(0x7F800000));
  const __m512i n = Quiet ? _mm512_or_si512(_mm512_and_si512(u, hi), _mm512_set1_epi32(0x00400000)) : u;
  return _mm512_castsi512_ps(_mm512_mask_mov_epi32(r, nan, n));
}

DSV4_AVX512F inline __m512d lo_pd(__m512 x) { return _mm512_cvtps_pd(_mm512_castps512_ps256(x)); }
DSV4_AVX512F inline __m512d hi_pd(__m512 x) { return _mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1)); }
// 16 floats from two float64 vectors (each rounded once, to nearest even).
DSV4_AVX512F inline __m512 to_ps(__m512d lo, __m512d hi) {
  return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo)), _mm512_cvtpd_ps(hi), 1);
}

// sum_i x[i]^2 in float64: the float32 squares (BF16-rounded when asked) added over 8 lanes.
DSV4_AVX512F double sum_squares(const float* x, int64_t n, bool bf16_squares) {
  __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 v = _mm512_maskz_loadu_ps(tail16(n - i), x + i);
    __m512 sq = _mm512_mul_ps(v, v);
    if (bf16_squares) sq = bf16_round<false>(sq);
    a0 = _mm512_add_pd(a0, lo_pd(sq));
    a1 = _mm512_add_pd(a1, hi_pd(sq));
  }
  return _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
}

DSV4_AVX512F float rms_scale(const float* x, int64_t n, float eps) {
  return ref_rows_shared::rms_scale(sum_squares(x, n, false), n, eps);
}

// out[k * w + (d - d0)] for d in [d0, d1): bf16( first + f32(sum_j f64(f32(c[j] * x[j * dim + d]))) )
// with first = f32(p * f[d]) when f is given (hc_post), else 0 and no add (the weighted collapse).
// The float64 sum runs over j in order per lane, as the reference's does per element.
DSV4_AVX512F void mix_streams(const float* x, int hc, int64_t dim, const float* c, int cstride,
                              const float* f, float p, int64_t d0, int64_t d1, float* out) {
  for (int64_t d = d0; d < d1; d += 16) {
    const __mmask16 m = tail16(d1 - d);
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    for (int j = 0; j < hc; ++j) {
      const __m512 prod = _mm512_mul_ps(_mm512_set1_ps(c[j * cstride]),
                                        _mm512_maskz_loadu_ps(m, x + j * dim + d));
      s0 = _mm512_add_pd(s0, lo_pd(prod));
      s1 = _mm512_add_pd(s1, hi_pd(prod));
    }
    __m512 v = to_ps(s0, s1);
    if (f != nullptr) v = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(p), _mm512_maskz_loadu_ps(m, f + d)), v);
    _mm512_mask_storeu_ps(out + (d - d0), m, bf16_round<false>(v));
  }
}

// exp(x) in float64 for |x| <= kExpClamp (callers clamp), ref_rows_shared.h's polynomial, 2^n
// by vscalefpd. Within about 1 ulp of float64; NaN stays NaN.
DSV4_AVX512F inline __m512d exp_pd(__m512d x) {
  using namespace ref_rows_shared;
  const __m512d n = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(kLog2e)),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(kLn2Hi), x);
  r = _mm512_fnmadd_pd(n, _mm512_set1_pd(kLn2Lo), r);
  __m512d p = _mm512_set1_pd(kExpInvFact[kExpDegree]);
  for (int i = kExpDegree - 1; i >= 0; --i) p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(kExpInvFact[i]));
  return _mm512_scalef_pd(p, n);
}

// Clamped to [-kExpClamp, kExpClamp]; max / min return their second operand on NaN, so NaN
// passes through.
DSV4_AVX512F inline __m512d exp_clamped_pd(__m512d x) {
  constexpr double c = ref_rows_shared::kExpClamp;
  return exp_pd(_mm512_max_pd(_mm512_set1_pd(-c), _mm512_min_pd(_mm512_set1_pd(c), x)));
}

// ref::exp32(-a) before the float32 rounding.
DSV4_AVX512F inline __m512d exp_neg_pd(__m512d a) {
  return exp_clamped_pd(_mm512_sub_pd(_mm512_setzero_pd(), a));
}

// 16 lanes of f32(exp(f64(-g))), as ref::silu32 computes it.
DSV4_AVX512F inline __m512 exp_neg_ps(__m512 g) { return to_ps(exp_neg_pd(lo_pd(g)), exp_neg_pd(hi_pd(g))); }

// log1p(y) in float64 for y >= 0 or NaN (ref_rows_shared.h), 8 lanes.
DSV4_AVX512F inline __m512d log1p_pd(__m512d y) {
  using namespace ref_rows_shared;
  const __m512d one = _mm512_set1_pd(1.0), half = _mm512_set1_pd(0.5);
  const __m512d u = _mm512_add_pd(one, y);
  __m512d k = _mm512_getexp_pd(u);
  __m512d m = _mm512_getmant_pd(u, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
  const __mmask8 big = _mm512_cmp_pd_mask(m, _mm512_set1_pd(kSqrt2), _CMP_GT_OQ);
  m = _mm512_mask_mul_pd(m, big, m, half);
  k = _mm512_mask_add_pd(k, big, k, one);
  const __m512d f = _mm512_sub_pd(m, one);
  const __m512d s = _mm512_div_pd(f, _mm512_add_pd(_mm512_set1_pd(2.0), f));
  const __m512d z = _mm512_mul_pd(s, s);
  __m512d r = _mm512_set1_pd(kLog1pCoef[kLog1pTerms - 1]);
  for (int i = kLog1pTerms - 2; i >= 0; --i) r = _mm512_fmadd_pd(r, z, _mm512_set1_pd(kLog1pCoef[i]));
  r = _mm512_mul_pd(r, z);
  const __m512d hfsq = _mm512_mul_pd(half, _mm512_mul_pd(f, f));
  const __m512d t = _mm512_add_pd(_mm512_mul_pd(s, _mm512_add_pd(hfsq, r)), _mm512_mul_pd(k, _mm512_set1_pd(kLn2Lo)));
  const __m512d big_u = _mm512_sub_pd(_mm512_mul_pd(k, _mm512_set1_pd(kLn2Hi)), _mm512_sub_pd(_mm512_sub_pd(hfsq, t), f));
  const __m512d tiny = _mm512_sub_pd(y, _mm512_mul_pd(half, _mm512_mul_pd(y, y)));
  return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(y, _mm512_set1_pd(kLog1pTiny), _CMP_LT_OQ), big_u, tiny);
}

}  // namespace

DSV4_AVX512F void gate_scores(float* s, int n, ScoreFunc f) {
  if (f == ScoreFunc::Softmax) {
    ref::gate_scores(s, n, f);
    return;
  }
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int i = 0; i < n; i += 16) {
    const __mmask16 m = tail16(n - i);
    const __m512 x = _mm512_maskz_loadu_ps(m, s + i);
    __m512 v;
    if (f == ScoreFunc::Sigmoid) {  // 1 / f32(1 + exp32(-x))
      v = _mm512_div_ps(one, _mm512_add_ps(one, exp_neg_ps(x)));
    } else {  // sqrt(x > 20 ? x : log1p32(exp32(x)))
      const __m512 y = to_ps(exp_clamped_pd(lo_pd(x)), exp_clamped_pd(hi_pd(x)));
      const __m512 sp = to_ps(log1p_pd(lo_pd(y)), log1p_pd(hi_pd(y)));
      v = _mm512_sqrt_ps(_mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(20.0f), _CMP_GT_OQ), sp, x));
    }
    _mm512_mask_storeu_ps(s + i, m, v);
  }
}

DSV4_AVX512F void rms_norm(const float* x, const uint16_t* w, int64_t n, float eps, float* y) {
  const __m512 r = _mm512_set1_ps(rms_scale(x, n, eps));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail16(n - i);
    const __m512 xn = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), r);
    const __m512 wf = _mm512_castsi512_ps(_mm512_slli_epi32(
        _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, w + i)), 16));
    _mm512_mask_storeu_ps(y + i, m, bf16_round<false>(_mm512_mul_ps(wf, xn)));
  }
}

DSV4_AVX512F void head_norm_bf16(float* q, int64_t n, float eps) {
  const __m512 rs = _mm512_set1_ps(ref_rows_shared::head_norm_scale(sum_squares(q, n, true), n, eps));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail16(n - i);
    _mm512_mask_storeu_ps(q + i, m, bf16_round<false>(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, q + i), rs)));
  }
}

DSV4_AVX512F void hc_pre_finish(const float* x, int hc, int64_t dim, const float* dots,
                                const float* scale, const float* base, int iters, float norm_eps,
                                float hc_eps, ref::HcSplit split, float* a) {
  ref_rows_shared::hc_split(rms_scale(x, hc * dim, norm_eps), dots, hc, scale, base, iters, hc_eps, split);
  mix_streams(x, hc, dim, split.pre, 1, nullptr, 0.0f, 0, dim, a);
}

DSV4_AVX512F void hc_head_finish(const float* x, int hc, int64_t dim, const float* dots, const float* scale,
                                 const float* base, float norm_eps, float hc_eps, float* a) {
  thread_local std::vector<float> pre;
  pre.resize(static_cast<size_t>(hc));
  ref::hc_head_pre(dots, rms_scale(x, hc * dim, norm_eps), hc, scale, base, hc_eps, pre.data());
  mix_streams(x, hc, dim, pre.data(), 1, nullptr, 0.0f, 0, dim, a);
}

DSV4_AVX512F void hc_post(const float* x, const float* f, int hc, int64_t dim, const float* post,
                          const float* comb, int64_t d0, int64_t d1, float* y) {
  for (int k = 0; k < hc; ++k) mix_streams(x, hc, dim, comb + k, hc, f, post[k], d0, d1, y + k * (d1 - d0));
}

DSV4_AVX512F void swiglu(const float* g, const float* u, int64_t n, float limit, float weight, float* h) {
  const __m512 lim = _mm512_set1_ps(limit), nlim = _mm512_set1_ps(-limit), one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail16(n - i);
    __m512 gi = _mm512_maskz_loadu_ps(m, g + i), ui = _mm512_maskz_loadu_ps(m, u + i);
    if (limit > 0.0f) {  // std::min / std::max keep a NaN x: x is the second operand here
      ui = _mm512_min_ps(lim, _mm512_max_ps(nlim, ui));
      gi = _mm512_min_ps(lim, gi);
    }
    const __m512 silu = _mm512_div_ps(gi, _mm512_add_ps(one, exp_neg_ps(gi)));
    __m512 v = _mm512_mul_ps(silu, ui);
    if (weight >= 0.0f) v = _mm512_mul_ps(v, _mm512_set1_ps(weight));
    _mm512_mask_storeu_ps(h + i, m, bf16_round<false>(v));
  }
}

DSV4_AVX512F void rope_apply(float* x, const float* cos, const float* sin, int npairs, bool inverse) {
  // 4 pairs (a, b) per float64 vector [a0 b0 a1 b1 ...]: re = a c - b s in the even lanes,
  // im = b c + a s in the odd ones, as v * [c c ..] + swap(v) * [-s s ..] (x + (-y) == x - y).
  const __m512i dup = _mm512_set_epi64(3, 3, 2, 2, 1, 1, 0, 0);
  const __m512d sign = inverse ? _mm512_set_pd(-1, 1, -1, 1, -1, 1, -1, 1)
                               : _mm512_set_pd(1, -1, 1, -1, 1, -1, 1, -1);
  for (int i = 0; i < npairs; i += 4) {
    const int left = std::min(4, npairs - i);
    const __mmask8 m2 = static_cast<__mmask8>((1u << (2 * left)) - 1);
    const __mmask8 m1 = static_cast<__mmask8>((1u << left) - 1);
    const __m512d v = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m2, x + 2 * i));
    const __m512d c = _mm512_permutexvar_pd(dup, _mm512_castpd256_pd512(_mm256_cvtps_pd(_mm_maskz_loadu_ps(m1, cos + i))));
    const __m512d s = _mm512_permutexvar_pd(dup, _mm512_castpd256_pd512(_mm256_cvtps_pd(_mm_maskz_loadu_ps(m1, sin + i))));
    const __m512d r = _mm512_add_pd(_mm512_mul_pd(v, c),
                                    _mm512_mul_pd(_mm512_permute_pd(v, 0x55), _mm512_mul_pd(s, sign)));
    const __m512 out = bf16_round<true>(_mm512_castps256_ps512(_mm512_cvtpd_ps(r)));
    _mm256_mask_storeu_ps(x + 2 * i, m2, _mm512_castps512_ps256(out));
  }
}

DSV4_AVX512F void exp32(const float* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail16(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    _mm512_mask_storeu_ps(y + i, m, to_ps(exp_clamped_pd(lo_pd(v)), exp_clamped_pd(hi_pd(v))));
  }
}

DSV4_AVX512F void softmax_pool(const float* const* values, const float* const* scores, int rows, int64_t c,
                               float* z) {
  thread_local std::vector<float> e;  // [rows][16]: this piece's exp values
  e.resize(static_cast<size_t>(rows) * 16);
  for (int64_t ch = 0; ch < c; ch += 16) {
    const __mmask16 m = tail16(c - ch);
    // max(s, mx) returns mx on a NaN s, as std::max(mx, s) does
    __m512 mx = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    for (int r = 0; r < rows; ++r) mx = _mm512_max_ps(_mm512_maskz_loadu_ps(m, scores[r] + ch), mx);
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    for (int r = 0; r < rows; ++r) {
      const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, scores[r] + ch), mx);
      const __m512 er = to_ps(exp_clamped_pd(lo_pd(d)), exp_clamped_pd(hi_pd(d)));
      _mm512_storeu_ps(&e[static_cast<size_t>(r) * 16], er);
      s0 = _mm512_add_pd(s0, lo_pd(er));
      s1 = _mm512_add_pd(s1, hi_pd(er));
    }
    const __m512 fs = to_ps(s0, s1);
    __m512d z0 = _mm512_setzero_pd(), z1 = _mm512_setzero_pd();
    for (int r = 0; r < rows; ++r) {
      const __m512 p = _mm512_div_ps(_mm512_loadu_ps(&e[static_cast<size_t>(r) * 16]), fs);
      const __m512 prod = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, values[r] + ch), p);
      z0 = _mm512_add_pd(z0, lo_pd(prod));
      z1 = _mm512_add_pd(z1, hi_pd(prod));
    }
    _mm512_mask_storeu_ps(z + ch, m, to_ps(z0, z1));
  }
}

DSV4_AVX512F void fp4_sim(float* v, int64_t n, int block) {
  if (block != 32) return quant::fp4_sim(v, n, block);
  // Round-to-nearest on the E2M1 grid by counting midpoints (ref_rows_shared::kE2m1Mid).
  const __m512 grid = _mm512_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m512i sign_bit = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  const __m512i one = _mm512_set1_epi32(1);
  const int64_t whole = n / 32 * 32;
  for (int64_t b0 = 0; b0 < whole; b0 += 32) {
    __m512 x[2] = {_mm512_loadu_ps(v + b0), _mm512_loadu_ps(v + b0 + 16)};
    const __mmask16 nan0 = _mm512_cmp_ps_mask(x[0], x[0], _CMP_UNORD_Q);
    const __mmask16 nan1 = _mm512_cmp_ps_mask(x[1], x[1], _CMP_UNORD_Q);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x[0]), _mm512_abs_ps(x[1])));
    const __m512 s = _mm512_set1_ps(ref_rows_shared::block_scale((nan0 | nan1) != 0, amax, quant::kFp4AmaxFloor, quant::kFp4MaxInv));
    for (__m512& xv : x) {
      // std::clamp(x / s, -6, 6) keeps NaN: max / min return their second operand on NaN.
      const __m512 q = _mm512_min_ps(_mm512_set1_ps(quant::kFp4Max),
                                     _mm512_max_ps(_mm512_set1_ps(-quant::kFp4Max), _mm512_div_ps(xv, s)));
      const __m512 a = _mm512_abs_ps(q);
      __m512i idx = _mm512_setzero_si512();
      for (int i = 0; i < 7; ++i) {
        const __m512 mid = _mm512_set1_ps(ref_rows_shared::kE2m1Mid[i]);
        idx = _mm512_mask_add_epi32(idx, _mm512_cmp_ps_mask(a, mid, _CMP_GT_OQ), idx, one);
        if (i % 2 == 1) idx = _mm512_mask_add_epi32(idx, _mm512_cmp_ps_mask(a, mid, _CMP_EQ_OQ), idx, one);
      }
      const __mmask16 nan = _mm512_cmp_ps_mask(q, q, _CMP_UNORD_Q);  // E2M1 has no NaN: +6
      idx = _mm512_mask_mov_epi32(idx, nan, _mm512_set1_epi32(7));
      const __m512i sgn = _mm512_maskz_and_epi32(static_cast<__mmask16>(~nan), _mm512_castps_si512(q), sign_bit);
      const __m512 val = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(_mm512_permutexvar_ps(idx, grid)), sgn));
      xv = bf16_round<true>(_mm512_mul_ps(val, s));
    }
    _mm512_storeu_ps(v + b0, x[0]);
    _mm512_storeu_ps(v + b0 + 16, x[1]);
  }
  if (whole < n) quant::fp4_sim(v + whole, n - whole, block);
}

DSV4_AVX512F void fp8_sim(float* v, int64_t n, int block) {
  if (block <= 0 || block % 16 != 0) return quant::fp8_sim(v, n, block);
  // E4M3 round to nearest even on the bits: from 2^-6 up (normal codes) the float32 significand
  // is rounded to 3 bits (a carry moves to the next binade); below, to a multiple of 2^-9 (the
  // subnormal codes) by adding and removing 2^14. The codes' values times s, then BF16.
  const __m512i one = _mm512_set1_epi32(1), half_ulp = _mm512_set1_epi32(0x7FFFF);
  const __m512i keep = _mm512_set1_epi32(static_cast<int>(0xFFF00000u));
  const __m512 min_normal = _mm512_set1_ps(0x1p-6f), magic = _mm512_set1_ps(16384.0f);
  const __m512 qnan = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FC00000));
  const __m512 sign_bit = _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(0x80000000u)));
  const int64_t whole = n / block * block;
  for (int64_t b0 = 0; b0 < whole; b0 += block) {
    __m512 mx = _mm512_setzero_ps();
    __mmask16 nan = 0;
    for (int i = 0; i < block; i += 16) {
      const __m512 x = _mm512_loadu_ps(v + b0 + i);
      nan |= _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
      mx = _mm512_max_ps(mx, _mm512_abs_ps(x));
    }
    const __m512 s = _mm512_set1_ps(ref_rows_shared::block_scale(
        nan != 0, _mm512_reduce_max_ps(mx), quant::kFp8AmaxFloor, quant::kFp8MaxInv));
    for (int i = 0; i < block; i += 16) {
      // std::clamp(x / s, -448, 448) keeps NaN: max / min return their second operand on NaN.
      const __m512 q = _mm512_min_ps(_mm512_set1_ps(quant::kFp8Max),
                                     _mm512_max_ps(_mm512_set1_ps(-quant::kFp8Max),
                                                   _mm512_div_ps(_mm512_loadu_ps(v + b0 + i), s)));
      const __m512 a = _mm512_abs_ps(q);
      const __m512i mag = _mm512_castps_si512(a);
      const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(mag, 20), one);
      const __m512 rn = _mm512_castsi512_ps(_mm512_and_si512(_mm512_add_epi32(_mm512_add_epi32(mag, half_ulp), odd), keep));
      const __m512 rs = _mm512_sub_ps(_mm512_add_ps(a, magic), magic);
      __m512 r = _mm512_mask_mov_ps(rn, _mm512_cmp_ps_mask(a, min_normal, _CMP_LT_OQ), rs);
      r = _mm512_or_ps(r, _mm512_and_ps(q, sign_bit));
      r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(q, q, _CMP_UNORD_Q), qnan);  // code 0x7F: +NaN
      _mm512_storeu_ps(v + b0 + i, bf16_round<true>(_mm512_mul_ps(r, s)));
    }
  }
  if (whole < n) quant::fp8_sim(v + whole, n - whole, block);
}

}  // namespace dsv4::cpu::avx512_ref
