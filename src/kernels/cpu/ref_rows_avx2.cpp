// AVX2 twins of the reference's row ops (ref_rows.h, namespace avx2_ref): the AVX-512 twins'
// operations on 8 float32 / 4 float64 lanes. Tails go through maskload / maskstore (zero-filled
// lanes), so any width works. Per element the results equal the AVX-512 twins' (the same float64
// exp polynomial, 2^n built in the exponent field where AVX-512 has vscalefpd); the row sums of
// the norms add over 4 float64 lanes where those add over 8 (and the reference one by one).
#include "kernels/cpu/simd_avx2.h"  // first: wraps <immintrin.h>

#include "kernels/cpu/ref_rows.h"
#include "kernels/cpu/ref_rows_shared.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/ref/fmath.h"
#include "kernels/ref/moe.h"
#include "quant/quant.h"

namespace dsv4::cpu::avx2_ref {
namespace {

using avx2::tail_mask;

DSV4_AVX2 inline __m256 load8(const float* p, int64_t left) {
  return left >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, tail_mask(left));
}
DSV4_AVX2 inline void store8(float* p, __m256 v, int64_t left) {
  if (left >= 8) {
    _mm256_storeu_ps(p, v);
  } else {
    _mm256_maskstore_ps(p, tail_mask(left), v);
  }
}

// Round to the nearest BF16 value (RNE on the bits). NaN lanes: unchanged (ref::bf16r), or made
// quiet with the low 16 bits cleared (quant::bf16_round) when Quiet.
template <bool Quiet>
DSV4_AVX2 inline __m256 bf16_round(__m256 x) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i up = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), lsb));
  const __m256i hi = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  const __m256i r = _mm256_and_si256(up, hi);
  const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF)),
                                         _mm256_set1_epi32(0x7F800000));
  const __m256i n = Quiet ? _mm256_or_si256(_mm256_and_si256(u, hi), _mm256_set1_epi32(0x00400000)) : u;
  return _mm256_castsi256_ps(_mm256_blendv_epi8(r, n, nan));
}

DSV4_AVX2 inline __m256d lo_pd(__m256 x) { return _mm256_cvtps_pd(_mm256_castps256_ps128(x)); }
DSV4_AVX2 inline __m256d hi_pd(__m256 x) { return _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)); }
// 8 floats from two float64 vectors (each rounded once, to nearest even).
DSV4_AVX2 inline __m256 to_ps(__m256d lo, __m256d hi) {
  return _mm256_set_m128(_mm256_cvtpd_ps(hi), _mm256_cvtpd_ps(lo));
}

// sum_i x[i]^2 in float64: the float32 squares (BF16-rounded when asked) added over 4 lanes.
DSV4_AVX2 double sum_squares(const float* x, int64_t n, bool bf16_squares) {
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 v = load8(x + i, n - i);
    __m256 sq = _mm256_mul_ps(v, v);
    if (bf16_squares) sq = bf16_round<false>(sq);
    a0 = _mm256_add_pd(a0, lo_pd(sq));
    a1 = _mm256_add_pd(a1, hi_pd(sq));
  }
  const __m256d s = _mm256_add_pd(a0, a1);
  const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
  return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

DSV4_AVX2 float rms_scale(const float* x, int64_t n, float eps) {
  return ref_rows_shared::rms_scale(sum_squares(x, n, false), n, eps);
}

// out[k * w + (d - d0)] for d in [d0, d1): bf16( first + f32(sum_j f64(f32(c[j] * x[j * dim + d]))) )
// with first = f32(p * f[d]) when f is given (hc_post), else 0 and no add (the weighted collapse).
DSV4_AVX2 void mix_streams(const float* x, int hc, int64_t dim, const float* c, int cstride,
                           const float* f, float p, int64_t d0, int64_t d1, float* out) {
  for (int64_t d = d0; d < d1; d += 8) {
    const int64_t left = d1 - d;
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    for (int j = 0; j < hc; ++j) {
      const __m256 prod = _mm256_mul_ps(_mm256_set1_ps(c[j * cstride]), load8(x + j * dim + d, left));
      s0 = _mm256_add_pd(s0, lo_pd(prod));
      s1 = _mm256_add_pd(s1, hi_pd(prod));
    }
    __m256 v = to_ps(s0, s1);
    if (f != nullptr) v = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(p), load8(f + d, left)), v);
    store8(out + (d - d0), bf16_round<false>(v), left);
  }
}

// exp(x) in float64 for |x| <= kExpClamp (callers clamp), ref_rows_shared.h's polynomial as in
// the AVX-512 twin, times 2^n with n put into the exponent field (|n| <= 174, so 2^n is a normal
// float64 and the product exact). NaN stays NaN (the polynomial carries it).
DSV4_AVX2 inline __m256d exp_pd(__m256d x) {
  using namespace ref_rows_shared;
  const __m256d n = _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(kLog2e)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(kLn2Hi), x);
  r = _mm256_fnmadd_pd(n, _mm256_set1_pd(kLn2Lo), r);
  __m256d p = _mm256_set1_pd(kExpInvFact[kExpDegree]);
  for (int i = kExpDegree - 1; i >= 0; --i) p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(kExpInvFact[i]));
  // NaN lanes give an arbitrary n here; p is NaN there already.
  const __m256i e = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(n)), _mm256_set1_epi64x(1023));
  return _mm256_mul_pd(p, _mm256_castsi256_pd(_mm256_slli_epi64(e, 52)));
}

// Clamped to [-kExpClamp, kExpClamp]; max / min return their second operand on NaN, so NaN
// passes through.
DSV4_AVX2 inline __m256d exp_clamped_pd(__m256d x) {
  constexpr double c = ref_rows_shared::kExpClamp;
  return exp_pd(_mm256_max_pd(_mm256_set1_pd(-c), _mm256_min_pd(_mm256_set1_pd(c), x)));
}

// 8 lanes of f32(exp(f64(-g))), as ref::silu32 computes it.
DSV4_AVX2 inline __m256 exp_neg_ps(__m256 g) {
  const __m256d z = _mm256_setzero_pd();
  return to_ps(exp_clamped_pd(_mm256_sub_pd(z, lo_pd(g))), exp_clamped_pd(_mm256_sub_pd(z, hi_pd(g))));
}

DSV4_AVX2 inline __m256 abs_ps(__m256 x) {
  return _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF)));
}

// log1p(y) in float64 for y >= 0 or NaN (ref_rows_shared.h), 4 lanes: 2^k and m from the bits
// (1 + y >= 1 is a normal float64), NaN put back at the end.
DSV4_AVX2 inline __m256d log1p_pd(__m256d y) {
  using namespace ref_rows_shared;
  const __m256d one = _mm256_set1_pd(1.0), half = _mm256_set1_pd(0.5);
  const __m256d u = _mm256_add_pd(one, y);
  const __m256i bits = _mm256_castpd_si256(u);
  const __m256i kbias = _mm256_set1_epi64x(0x4330000000000000ll);  // 2^52: k + 2^52 as a float64
  __m256d k = _mm256_sub_pd(
      _mm256_castsi256_pd(_mm256_add_epi64(_mm256_sub_epi64(_mm256_srli_epi64(bits, 52), _mm256_set1_epi64x(1023)), kbias)),
      _mm256_castsi256_pd(kbias));
  __m256d m = _mm256_castsi256_pd(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi64x(0x000FFFFFFFFFFFFFll)),
                                                  _mm256_set1_epi64x(0x3FF0000000000000ll)));
  const __m256d big = _mm256_cmp_pd(m, _mm256_set1_pd(kSqrt2), _CMP_GT_OQ);
  m = _mm256_blendv_pd(m, _mm256_mul_pd(m, half), big);
  k = _mm256_blendv_pd(k, _mm256_add_pd(k, one), big);
  const __m256d f = _mm256_sub_pd(m, one);
  const __m256d s = _mm256_div_pd(f, _mm256_add_pd(_mm256_set1_pd(2.0), f));
  const __m256d z = _mm256_mul_pd(s, s);
  __m256d r = _mm256_set1_pd(kLog1pCoef[kLog1pTerms - 1]);
  for (int i = kLog1pTerms - 2; i >= 0; --i) r = _mm256_fmadd_pd(r, z, _mm256_set1_pd(kLog1pCoef[i]));
  r = _mm256_mul_pd(r, z);
  const __m256d hfsq = _mm256_mul_pd(half, _mm256_mul_pd(f, f));
  const __m256d t = _mm256_add_pd(_mm256_mul_pd(s, _mm256_add_pd(hfsq, r)), _mm256_mul_pd(k, _mm256_set1_pd(kLn2Lo)));
  const __m256d big_u = _mm256_sub_pd(_mm256_mul_pd(k, _mm256_set1_pd(kLn2Hi)), _mm256_sub_pd(_mm256_sub_pd(hfsq, t), f));
  const __m256d tiny = _mm256_sub_pd(y, _mm256_mul_pd(half, _mm256_mul_pd(y, y)));
  const __m256d v = _mm256_blendv_pd(big_u, tiny, _mm256_cmp_pd(y, _mm256_set1_pd(kLog1pTiny), _CMP_LT_OQ));
  return _mm256_blendv_pd(v, y, _mm256_cmp_pd(y, y, _CMP_UNORD_Q));
}

}  // namespace

DSV4_AVX2 void gate_scores(float* s, int n, ScoreFunc f) {
  if (f == ScoreFunc::Softmax) {
    ref::gate_scores(s, n, f);
    return;
  }
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int i = 0; i < n; i += 8) {
    const int64_t left = n - i;
    const __m256 x = load8(s + i, left);
    __m256 v;
    if (f == ScoreFunc::Sigmoid) {  // 1 / f32(1 + exp32(-x))
      v = _mm256_div_ps(one, _mm256_add_ps(one, exp_neg_ps(x)));
    } else {  // sqrt(x > 20 ? x : log1p32(exp32(x)))
      const __m256 y = to_ps(exp_clamped_pd(lo_pd(x)), exp_clamped_pd(hi_pd(x)));
      const __m256 sp = to_ps(log1p_pd(lo_pd(y)), log1p_pd(hi_pd(y)));
      v = _mm256_sqrt_ps(_mm256_blendv_ps(sp, x, _mm256_cmp_ps(x, _mm256_set1_ps(20.0f), _CMP_GT_OQ)));
    }
    store8(s + i, v, left);
  }
}

DSV4_AVX2 void rms_norm(const float* x, const uint16_t* w, int64_t n, float eps, float* y) {
  const __m256 r = _mm256_set1_ps(rms_scale(x, n, eps));
  for (int64_t i = 0; i < n; i += 8) {
    const int64_t left = n - i;
    __m128i wv;
    if (left >= 8) {
      wv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i));
    } else {  // no 16-bit masked load in AVX2: the tail through a zeroed copy
      alignas(16) uint16_t wt[8] = {};
      std::memcpy(wt, w + i, static_cast<size_t>(left) * 2);
      wv = _mm_load_si128(reinterpret_cast<const __m128i*>(wt));
    }
    const __m256 xn = _mm256_mul_ps(load8(x + i, left), r);
    const __m256 wf = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(wv), 16));
    store8(y + i, bf16_round<false>(_mm256_mul_ps(wf, xn)), left);
  }
}

DSV4_AVX2 void head_norm_bf16(float* q, int64_t n, float eps) {
  const __m256 rs = _mm256_set1_ps(ref_rows_shared::head_norm_scale(sum_squares(q, n, true), n, eps));
  for (int64_t i = 0; i < n; i += 8)
    store8(q + i, bf16_round<false>(_mm256_mul_ps(load8(q + i, n - i), rs)), n - i);
}

DSV4_AVX2 void hc_pre_finish(const float* x, int hc, int64_t dim, const float* dots,
                             const float* scale, const float* base, int iters, float norm_eps,
                             float hc_eps, ref::HcSplit split, float* a) {
  ref_rows_shared::hc_split(rms_scale(x, hc * dim, norm_eps), dots, hc, scale, base, iters, hc_eps, split);
  mix_streams(x, hc, dim, split.pre, 1, nullptr, 0.0f, 0, dim, a);
}

DSV4_AVX2 void hc_head_finish(const float* x, int hc, int64_t dim, const float* dots, const float* scale,
                              const float* base, float norm_eps, float hc_eps, float* a) {
  thread_local std::vector<float> pre;
  pre.resize(static_cast<size_t>(hc));
  ref::hc_head_pre(dots, rms_scale(x, hc * dim, norm_eps), hc, scale, base, hc_eps, pre.data());
  mix_streams(x, hc, dim, pre.data(), 1, nullptr, 0.0f, 0, dim, a);
}

DSV4_AVX2 void hc_post(const float* x, const float* f, int hc, int64_t dim, const float* post,
                       const float* comb, int64_t d0, int64_t d1, float* y) {
  for (int k = 0; k < hc; ++k) mix_streams(x, hc, dim, comb + k, hc, f, post[k], d0, d1, y + k * (d1 - d0));
}

DSV4_AVX2 void swiglu(const float* g, const float* u, int64_t n, float limit, float weight, float* h) {
  const __m256 lim = _mm256_set1_ps(limit), nlim = _mm256_set1_ps(-limit), one = _mm256_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 8) {
    const int64_t left = n - i;
    __m256 gi = load8(g + i, left), ui = load8(u + i, left);
    if (limit > 0.0f) {  // std::min / std::max keep a NaN x: x is the second operand here
      ui = _mm256_min_ps(lim, _mm256_max_ps(nlim, ui));
      gi = _mm256_min_ps(lim, gi);
    }
    const __m256 silu = _mm256_div_ps(gi, _mm256_add_ps(one, exp_neg_ps(gi)));
    __m256 v = _mm256_mul_ps(silu, ui);
    if (weight >= 0.0f) v = _mm256_mul_ps(v, _mm256_set1_ps(weight));
    store8(h + i, bf16_round<false>(v), left);
  }
}

DSV4_AVX2 void rope_apply(float* x, const float* cos, const float* sin, int npairs, bool inverse) {
  // 2 pairs (a, b) per float64 vector [a0 b0 a1 b1]: re = a c - b s in the even lanes,
  // im = b c + a s in the odd ones, as v * [c c ..] + swap(v) * [-s s ..] (x + (-y) == x - y).
  const __m256d sign = inverse ? _mm256_set_pd(-1, 1, -1, 1) : _mm256_set_pd(1, -1, 1, -1);
  for (int i = 0; i < npairs; i += 2) {
    const bool two = npairs - i >= 2;
    const __m128i m4 = two ? _mm_set1_epi32(-1) : _mm_set_epi32(0, 0, -1, -1);
    const __m256d v = _mm256_cvtps_pd(_mm_maskload_ps(x + 2 * i, m4));
    const double c1 = two ? cos[i + 1] : 0.0, s1 = two ? sin[i + 1] : 0.0;
    const __m256d c = _mm256_set_pd(c1, c1, cos[i], cos[i]);
    const __m256d s = _mm256_set_pd(s1, s1, sin[i], sin[i]);
    const __m256d r = _mm256_add_pd(_mm256_mul_pd(v, c),
                                    _mm256_mul_pd(_mm256_permute_pd(v, 0x5), _mm256_mul_pd(s, sign)));
    const __m256 out = bf16_round<true>(_mm256_castps128_ps256(_mm256_cvtpd_ps(r)));
    _mm_maskstore_ps(x + 2 * i, m4, _mm256_castps256_ps128(out));
  }
}

DSV4_AVX2 void exp32(const float* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 v = load8(x + i, n - i);
    store8(y + i, to_ps(exp_clamped_pd(lo_pd(v)), exp_clamped_pd(hi_pd(v))), n - i);
  }
}

DSV4_AVX2 void softmax_pool(const float* const* values, const float* const* scores, int rows, int64_t c,
                            float* z) {
  thread_local std::vector<float> e;  // [rows][8]: this piece's exp values
  e.resize(static_cast<size_t>(rows) * 8);
  for (int64_t ch = 0; ch < c; ch += 8) {
    const int64_t left = c - ch;
    // max(s, mx) returns mx on a NaN s, as std::max(mx, s) does
    __m256 mx = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    for (int r = 0; r < rows; ++r) mx = _mm256_max_ps(load8(scores[r] + ch, left), mx);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    for (int r = 0; r < rows; ++r) {
      const __m256 d = _mm256_sub_ps(load8(scores[r] + ch, left), mx);
      const __m256 er = to_ps(exp_clamped_pd(lo_pd(d)), exp_clamped_pd(hi_pd(d)));
      _mm256_storeu_ps(&e[static_cast<size_t>(r) * 8], er);
      s0 = _mm256_add_pd(s0, lo_pd(er));
      s1 = _mm256_add_pd(s1, hi_pd(er));
    }
    const __m256 fs = to_ps(s0, s1);
    __m256d z0 = _mm256_setzero_pd(), z1 = _mm256_setzero_pd();
    for (int r = 0; r < rows; ++r) {
      const __m256 p = _mm256_div_ps(_mm256_loadu_ps(&e[static_cast<size_t>(r) * 8]), fs);
      const __m256 prod = _mm256_mul_ps(load8(values[r] + ch, left), p);
      z0 = _mm256_add_pd(z0, lo_pd(prod));
      z1 = _mm256_add_pd(z1, hi_pd(prod));
    }
    store8(z + ch, to_ps(z0, z1), left);
  }
}

DSV4_AVX2 void fp4_sim(float* v, int64_t n, int block) {
  if (block != 32) return quant::fp4_sim(v, n, block);
  // Round-to-nearest on the E2M1 grid by counting midpoints (ref_rows_shared::kE2m1Mid).
  const __m256 grid = _mm256_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f);
  const __m256 sign_bit = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0x80000000u)));
  const int64_t whole = n / 32 * 32;
  for (int64_t b0 = 0; b0 < whole; b0 += 32) {
    __m256 x[4];
    __m256 mx = _mm256_setzero_ps(), unord = _mm256_setzero_ps();
    for (int q = 0; q < 4; ++q) {
      x[q] = _mm256_loadu_ps(v + b0 + 8 * q);
      unord = _mm256_or_ps(unord, _mm256_cmp_ps(x[q], x[q], _CMP_UNORD_Q));
      mx = _mm256_max_ps(mx, abs_ps(x[q]));
    }
    const __m256 s = _mm256_set1_ps(ref_rows_shared::block_scale(_mm256_movemask_ps(unord) != 0, avx2::hmax(mx), quant::kFp4AmaxFloor,
                                                                 quant::kFp4MaxInv));
    for (__m256& xv : x) {
      // std::clamp(x / s, -6, 6) keeps NaN: max / min return their second operand on NaN.
      const __m256 q = _mm256_min_ps(_mm256_set1_ps(quant::kFp4Max),
                                     _mm256_max_ps(_mm256_set1_ps(-quant::kFp4Max), _mm256_div_ps(xv, s)));
      const __m256 a = abs_ps(q);
      __m256i idx = _mm256_setzero_si256();
      for (int i = 0; i < 7; ++i) {  // a true compare is -1 in the lane: subtracting it counts
        const __m256 mid = _mm256_set1_ps(ref_rows_shared::kE2m1Mid[i]);
        idx = _mm256_sub_epi32(idx, _mm256_castps_si256(_mm256_cmp_ps(a, mid, _CMP_GT_OQ)));
        if (i % 2 == 1) idx = _mm256_sub_epi32(idx, _mm256_castps_si256(_mm256_cmp_ps(a, mid, _CMP_EQ_OQ)));
      }
      const __m256 nan = _mm256_cmp_ps(q, q, _CMP_UNORD_Q);  // E2M1 has no NaN: +6
      idx = _mm256_blendv_epi8(idx, _mm256_set1_epi32(7), _mm256_castps_si256(nan));
      const __m256 sgn = _mm256_andnot_ps(nan, _mm256_and_ps(q, sign_bit));
      const __m256 val = _mm256_or_ps(_mm256_permutevar8x32_ps(grid, idx), sgn);
      xv = bf16_round<true>(_mm256_mul_ps(val, s));
    }
    for (int q = 0; q < 4; ++q) _mm256_storeu_ps(v + b0 + 8 * q, x[q]);
  }
  if (whole < n) quant::fp4_sim(v + whole, n - whole, block);
}

DSV4_AVX2 void fp8_sim(float* v, int64_t n, int block) {
  if (block <= 0 || block % 16 != 0) return quant::fp8_sim(v, n, block);
  // As the AVX-512 twin: E4M3 rounding on the bits from 2^-6 up, by adding 2^14 below.
  const __m256i one = _mm256_set1_epi32(1), half_ulp = _mm256_set1_epi32(0x7FFFF);
  const __m256i keep = _mm256_set1_epi32(static_cast<int>(0xFFF00000u));
  const __m256 min_normal = _mm256_set1_ps(0x1p-6f), magic = _mm256_set1_ps(16384.0f);
  const __m256 qnan = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FC00000));
  const __m256 sign_bit = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0x80000000u)));
  const int64_t whole = n / block * block;
  for (int64_t b0 = 0; b0 < whole; b0 += block) {
    __m256 mx = _mm256_setzero_ps(), unord = _mm256_setzero_ps();
    for (int i = 0; i < block; i += 8) {
      const __m256 x = _mm256_loadu_ps(v + b0 + i);
      unord = _mm256_or_ps(unord, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
      mx = _mm256_max_ps(mx, abs_ps(x));
    }
    const __m256 s = _mm256_set1_ps(ref_rows_shared::block_scale(
        _mm256_movemask_ps(unord) != 0, avx2::hmax(mx), quant::kFp8AmaxFloor, quant::kFp8MaxInv));
    for (int i = 0; i < block; i += 8) {
      // std::clamp(x / s, -448, 448) keeps NaN: max / min return their second operand on NaN.
      const __m256 q = _mm256_min_ps(_mm256_set1_ps(quant::kFp8Max),
                                     _mm256_max_ps(_mm256_set1_ps(-quant::kFp8Max),
                                                   _mm256_div_ps(_mm256_loadu_ps(v + b0 + i), s)));
      const __m256 a = abs_ps(q);
      const __m256i mag = _mm256_castps_si256(a);
      const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(mag, 20), one);
      const __m256 rn = _mm256_castsi256_ps(_mm256_and_si256(_mm256_add_epi32(_mm256_add_epi32(mag, half_ulp), odd), keep));
      const __m256 rs = _mm256_sub_ps(_mm256_add_ps(a, magic), magic);
      __m256 r = _mm256_blendv_ps(rn, rs, _mm256_cmp_ps(a, min_normal, _CMP_LT_OQ));
      r = _mm256_or_ps(r, _mm256_and_ps(q, sign_bit));
      r = _mm256_blendv_ps(r, qnan, _mm256_cmp_ps(q, q, _CMP_UNORD_Q));  // code 0x7F: +NaN
      _mm256_storeu_ps(v + b0 + i, bf16_round<true>(_mm256_mul_ps(r, s)));
    }
  }
  if (whole < n) quant::fp8_sim(v + whole, n - whole, block);
}

}  // namespace dsv4::cpu::avx2_ref
