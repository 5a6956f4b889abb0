#include "kernels/cpu/simd_avx512.h"  // first: wraps <immintrin.h>

#include "kernels/cpu/rowwise.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/cpu/dispatch.h"

namespace dsv4::cpu {

namespace scalar {

void rms_norm(const float* x, int64_t ldx, int64_t rows, int64_t n, const float* w, float eps,
              float* y, int64_t ldy) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    float ss = 0.0f;
    for (int64_t i = 0; i < n; ++i) ss += xr[i] * xr[i];
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
    float* yr = y + r * ldy;
    for (int64_t i = 0; i < n; ++i) yr[i] = w[i] * (xr[i] * inv);
  }
}

void softmax(float* x, int64_t ld, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * ld;
    float m = -INFINITY;
    for (int64_t i = 0; i < n; ++i) m = std::max(m, xr[i]);
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
      xr[i] = std::exp(xr[i] - m);
      s += xr[i];
    }
    const float inv = 1.0f / s;
    for (int64_t i = 0; i < n; ++i) xr[i] *= inv;
  }
}

void rope(float* x, int64_t ld, int64_t rows, int64_t off, int64_t npairs, const float* cos,
          const float* sin, int64_t ldcs, bool inverse) {
  for (int64_t r = 0; r < rows; ++r) {
    float* p = x + r * ld + off;
    for (int64_t i = 0; i < npairs; ++i) {
      const float c = cos[r * ldcs + i], s = inverse ? -sin[r * ldcs + i] : sin[r * ldcs + i];
      const float a = p[2 * i], b = p[2 * i + 1];
      p[2 * i] = a * c - b * s;
      p[2 * i + 1] = a * s + b * c;
    }
  }
}

void hadamard(float* x, int64_t ld, int64_t rows, int64_t n) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(n));
  for (int64_t r = 0; r < rows; ++r) {
    float* v = x + r * ld;
    for (int64_t h = 1; h < n; h *= 2)
      for (int64_t i = 0; i < n; i += 2 * h)
        for (int64_t j = i; j < i + h; ++j) {
          const float a = v[j], b = v[j + h];
          v[j] = a + b;
          v[j + h] = a - b;
        }
    for (int64_t i = 0; i < n; ++i) v[i] *= scale;
  }
}

}  // namespace scalar

namespace avx512 {
namespace {
DSV4_AVX512 inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
}
}  // namespace

DSV4_AVX512 void rms_norm(const float* x, int64_t ldx, int64_t rows, int64_t n, const float* w,
                          float eps, float* y, int64_t ldy) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
      const __m512 a = _mm512_loadu_ps(xr + i), b = _mm512_loadu_ps(xr + i + 16);
      s0 = _mm512_fmadd_ps(a, a, s0);
      s1 = _mm512_fmadd_ps(b, b, s1);
    }
    for (; i < n; i += 16) {
      const __m512 a = _mm512_maskz_loadu_ps(tail_mask(n - i), xr + i);
      s0 = _mm512_fmadd_ps(a, a, s0);
    }
    const float ss = hsum(_mm512_add_ps(s0, s1));
    const __m512 inv = _mm512_set1_ps(1.0f / std::sqrt(ss / static_cast<float>(n) + eps));
    float* yr = y + r * ldy;
    for (i = 0; i < n; i += 16) {
      const __mmask16 mk = tail_mask(n - i);
      const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, xr + i), inv);
      _mm512_mask_storeu_ps(yr + i, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, w + i), v));
    }
  }
}

DSV4_AVX512 void softmax(float* x, int64_t ld, int64_t rows, int64_t n) {
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * ld;
    __m512 mv = ninf;
    for (int64_t i = 0; i < n; i += 16)
      mv = _mm512_max_ps(mv, _mm512_mask_loadu_ps(ninf, tail_mask(n - i), xr + i));
    const __m512 m = _mm512_set1_ps(hmax(mv));
    __m512 sv = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 mk = tail_mask(n - i);
      const __m512 e = exp_ps(_mm512_sub_ps(_mm512_mask_loadu_ps(ninf, mk, xr + i), m));
      _mm512_mask_storeu_ps(xr + i, mk, e);
      sv = _mm512_add_ps(sv, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / hsum(sv));
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 mk = tail_mask(n - i);
      _mm512_mask_storeu_ps(xr + i, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, xr + i), inv));
    }
  }
}

DSV4_AVX512 void rope(float* x, int64_t ld, int64_t rows, int64_t off, int64_t npairs,
                      const float* cos, const float* sin, int64_t ldcs, bool inverse) {
  // 8 pairs per vector: cos/sin duplicated to (c, c), x swapped within pairs to (b, a); then
  // out = x * c + swap(x) * (-s, s).
  const __m512i dup = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
  const __m512 sign = _mm512_set_ps(1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1);
  for (int64_t r = 0; r < rows; ++r) {
    float* p = x + r * ld + off;
    for (int64_t i = 0; i < npairs; i += 8) {
      const int64_t left = std::min<int64_t>(8, npairs - i);
      const __mmask16 m8 = __mmask16((1u << left) - 1), m16 = __mmask16((1u << (2 * left)) - 1);
      const __m512 c = _mm512_permutexvar_ps(
          dup, _mm512_castps256_ps512(_mm256_maskz_loadu_ps(__mmask8(m8), cos + r * ldcs + i)));
      __m512 s = _mm512_permutexvar_ps(
          dup, _mm512_castps256_ps512(_mm256_maskz_loadu_ps(__mmask8(m8), sin + r * ldcs + i)));
      if (inverse) s = _mm512_sub_ps(_mm512_setzero_ps(), s);
      const __m512 v = _mm512_maskz_loadu_ps(m16, p + 2 * i);
      const __m512 sw = _mm512_permute_ps(v, 0xB1);  // (b, a) in every pair
      const __m512 out = _mm512_fmadd_ps(v, c, _mm512_mul_ps(sw, _mm512_mul_ps(s, sign)));
      _mm512_mask_storeu_ps(p + 2 * i, m16, out);
    }
  }
}

DSV4_AVX512 void hadamard(float* x, int64_t ld, int64_t rows, int64_t n) {
  if (n < 16) {
    scalar::hadamard(x, ld, rows, n);
    return;
  }
  const __m512 scale = _mm512_set1_ps(1.0f / std::sqrt(static_cast<float>(n)));
  const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  for (int64_t r = 0; r < rows; ++r) {
    float* v = x + r * ld;
    // Stages h = 1, 2, 4, 8 inside each vector: lane j pairs with lane j ^ h.
    for (int64_t i = 0; i < n; i += 16) {
      __m512 a = _mm512_loadu_ps(v + i);
      for (int h = 1; h < 16; h *= 2) {
        const __m512 partner = _mm512_permutexvar_ps(_mm512_xor_si512(lane, _mm512_set1_epi32(h)), a);
        const __mmask16 high = _mm512_test_epi32_mask(lane, _mm512_set1_epi32(h));
        a = _mm512_mask_sub_ps(_mm512_add_ps(a, partner), high, partner, a);
      }
      _mm512_storeu_ps(v + i, a);
    }
    // Stages h >= 16 between whole vectors.
    for (int64_t h = 16; h < n; h *= 2)
      for (int64_t i = 0; i < n; i += 2 * h)
        for (int64_t j = i; j < i + h; j += 16) {
          const __m512 a = _mm512_loadu_ps(v + j), b = _mm512_loadu_ps(v + j + h);
          _mm512_storeu_ps(v + j, _mm512_add_ps(a, b));
          _mm512_storeu_ps(v + j + h, _mm512_sub_ps(a, b));
        }
    for (int64_t i = 0; i < n; i += 16) _mm512_storeu_ps(v + i, _mm512_mul_ps(_mm512_loadu_ps(v + i), scale));
  }
}

}  // namespace avx512

namespace {
bool simd() { return isa_at_least(Isa::Avx512Bf16); }
}  // namespace

void rms_norm(const float* x, int64_t ldx, int64_t rows, int64_t n, const float* w, float eps,
              float* y, int64_t ldy) {
  if (n <= 0) throw_error("rms_norm: row width ", n, " must be positive");
  simd() ? avx512::rms_norm(x, ldx, rows, n, w, eps, y, ldy)
         : scalar::rms_norm(x, ldx, rows, n, w, eps, y, ldy);
}

void softmax(float* x, int64_t ld, int64_t rows, int64_t n) {
  if (n <= 0) throw_error("softmax: row width ", n, " must be positive");
  simd() ? avx512::softmax(x, ld, rows, n) : scalar::softmax(x, ld, rows, n);
}

void rope(float* x, int64_t ld, int64_t rows, int64_t off, int64_t npairs, const float* cos,
          const float* sin, int64_t ldcs, bool inverse) {
  simd() ? avx512::rope(x, ld, rows, off, npairs, cos, sin, ldcs, inverse)
         : scalar::rope(x, ld, rows, off, npairs, cos, sin, ldcs, inverse);
}

void hadamard(float* x, int64_t ld, int64_t rows, int64_t n) {
  if (n <= 0 || (n & (n - 1)) != 0) throw_error("hadamard: size ", n, " is not a power of two");
  simd() ? avx512::hadamard(x, ld, rows, n) : scalar::hadamard(x, ld, rows, n);
}

}  // namespace dsv4::cpu
