#include "kernels/cpu/simd_avx512.h"  // first: wraps <immintrin.h>
#include "kernels/cpu/simd_avx2.h"

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
DSV4_AVX512F inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
}
}  // namespace

DSV4_AVX512F void rms_norm(const float* x, int64_t ldx, int64_t rows, int64_t n, const float* w,
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

DSV4_AVX512F void softmax(float* x, int64_t ld, int64_t rows, int64_t n) {
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

DSV4_AVX512F void rope(float* x, int64_t ld, int64_t rows, int64_t off, int64_t npairs,
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

DSV4_AVX512F void hadamard(float* x, int64_t ld, int64_t rows, int64_t n) {
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

namespace avx2 {

DSV4_AVX2 void rms_norm(const float* x, int64_t ldx, int64_t rows, int64_t n, const float* w,
                        float eps, float* y, int64_t ldy) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      const __m256 a = _mm256_loadu_ps(xr + i), b = _mm256_loadu_ps(xr + i + 8);
      s0 = _mm256_fmadd_ps(a, a, s0);
      s1 = _mm256_fmadd_ps(b, b, s1);
    }
    for (; i < n; i += 8) {
      const __m256 a = _mm256_maskload_ps(xr + i, tail_mask(n - i));
      s0 = _mm256_fmadd_ps(a, a, s0);
    }
    const float ss = hsum(_mm256_add_ps(s0, s1));
    const __m256 inv = _mm256_set1_ps(1.0f / std::sqrt(ss / static_cast<float>(n) + eps));
    float* yr = y + r * ldy;
    for (i = 0; i + 8 <= n; i += 8)
      _mm256_storeu_ps(yr + i, _mm256_mul_ps(_mm256_loadu_ps(w + i), _mm256_mul_ps(_mm256_loadu_ps(xr + i), inv)));
    if (i < n) {
      const __m256i mk = tail_mask(n - i);
      const __m256 v = _mm256_mul_ps(_mm256_maskload_ps(xr + i, mk), inv);
      _mm256_maskstore_ps(yr + i, mk, _mm256_mul_ps(_mm256_maskload_ps(w + i, mk), v));
    }
  }
}

DSV4_AVX2 void softmax(float* x, int64_t ld, int64_t rows, int64_t n) {
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * ld;
    __m256 mv = ninf;
    for (int64_t i = 0; i < n; i += 8) {
      const __m256i mk = tail_mask(n - i);
      mv = _mm256_max_ps(mv, _mm256_blendv_ps(ninf, _mm256_maskload_ps(xr + i, mk), _mm256_castsi256_ps(mk)));
    }
    const __m256 m = _mm256_set1_ps(hmax(mv));
    __m256 sv = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) {
      const __m256i mk = tail_mask(n - i);
      const __m256 v = _mm256_blendv_ps(ninf, _mm256_maskload_ps(xr + i, mk), _mm256_castsi256_ps(mk));
      const __m256 e = exp_ps(_mm256_sub_ps(v, m));  // masked lanes: exp(-inf) = 0
      _mm256_maskstore_ps(xr + i, mk, e);
      sv = _mm256_add_ps(sv, e);
    }
    const __m256 inv = _mm256_set1_ps(1.0f / hsum(sv));
    for (int64_t i = 0; i < n; i += 8) {
      const __m256i mk = tail_mask(n - i);
      _mm256_maskstore_ps(xr + i, mk, _mm256_mul_ps(_mm256_maskload_ps(xr + i, mk), inv));
    }
  }
}

DSV4_AVX2 void rope(float* x, int64_t ld, int64_t rows, int64_t off, int64_t npairs,
                    const float* cos, const float* sin, int64_t ldcs, bool inverse) {
  // 4 pairs per vector: cos/sin duplicated to (c, c), x swapped within pairs to (b, a); then
  // out = x * c + swap(x) * (-s, s). The last npairs % 4 pairs run the scalar formula.
  const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
  const __m256 sign = _mm256_setr_ps(-1, 1, -1, 1, -1, 1, -1, 1);
  const __m256 ssign = inverse ? _mm256_sub_ps(_mm256_setzero_ps(), sign) : sign;
  for (int64_t r = 0; r < rows; ++r) {
    float* p = x + r * ld + off;
    const float* cr = cos + r * ldcs;
    const float* sr = sin + r * ldcs;
    int64_t i = 0;
    for (; i + 4 <= npairs; i += 4) {
      const __m256 c = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(cr + i)), dup);
      const __m256 s = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(sr + i)), dup);
      const __m256 v = _mm256_loadu_ps(p + 2 * i);
      const __m256 sw = _mm256_permute_ps(v, 0xB1);  // (b, a) in every pair
      _mm256_storeu_ps(p + 2 * i, _mm256_fmadd_ps(v, c, _mm256_mul_ps(sw, _mm256_mul_ps(s, ssign))));
    }
    for (; i < npairs; ++i) {
      const float c = cr[i], s = inverse ? -sr[i] : sr[i];
      const float a = p[2 * i], b = p[2 * i + 1];
      p[2 * i] = a * c - b * s;
      p[2 * i + 1] = a * s + b * c;
    }
  }
}

DSV4_AVX2 void hadamard(float* x, int64_t ld, int64_t rows, int64_t n) {
  if (n < 8) {
    scalar::hadamard(x, ld, rows, n);
    return;
  }
  const __m256 scale = _mm256_set1_ps(1.0f / std::sqrt(static_cast<float>(n)));
  // Stage h inside a vector: lane j pairs with lane j ^ h; the lanes with bit h set take
  // partner - self, the others self + partner: fma(self, +-1, partner) (one rounding).
  const __m256 s1 = _mm256_setr_ps(1, -1, 1, -1, 1, -1, 1, -1);
  const __m256 s2 = _mm256_setr_ps(1, 1, -1, -1, 1, 1, -1, -1);
  const __m256 s4 = _mm256_setr_ps(1, 1, 1, 1, -1, -1, -1, -1);
  for (int64_t r = 0; r < rows; ++r) {
    float* v = x + r * ld;
    for (int64_t i = 0; i < n; i += 8) {
      __m256 a = _mm256_loadu_ps(v + i);
      a = _mm256_fmadd_ps(a, s1, _mm256_permute_ps(a, 0xB1));
      a = _mm256_fmadd_ps(a, s2, _mm256_permute_ps(a, 0x4E));
      a = _mm256_fmadd_ps(a, s4, _mm256_permute2f128_ps(a, a, 0x01));
      _mm256_storeu_ps(v + i, a);
    }
    for (int64_t h = 8; h < n; h *= 2)
      for (int64_t i = 0; i < n; i += 2 * h)
        for (int64_t j = i; j < i + h; j += 8) {
          const __m256 a = _mm256_loadu_ps(v + j), b = _mm256_loadu_ps(v + j + h);
          _mm256_storeu_ps(v + j, _mm256_add_ps(a, b));
          _mm256_storeu_ps(v + j + h, _mm256_sub_ps(a, b));
        }
    for (int64_t i = 0; i < n; i += 8) _mm256_storeu_ps(v + i, _mm256_mul_ps(_mm256_loadu_ps(v + i), scale));
  }
}

}  // namespace avx2

namespace {
bool simd() { return isa_at_least(Isa::Avx512); }
bool simd2() { return isa_at_least(Isa::Avx2); }
}  // namespace

void rms_norm(const float* x, int64_t ldx, int64_t rows, int64_t n, const float* w, float eps,
              float* y, int64_t ldy) {
  if (n <= 0) throw_error("rms_norm: row width ", n, " must be positive");
  if (simd()) return avx512::rms_norm(x, ldx, rows, n, w, eps, y, ldy);
  if (simd2()) return avx2::rms_norm(x, ldx, rows, n, w, eps, y, ldy);
  scalar::rms_norm(x, ldx, rows, n, w, eps, y, ldy);
}

void softmax(float* x, int64_t ld, int64_t rows, int64_t n) {
  if (n <= 0) throw_error("softmax: row width ", n, " must be positive");
  if (simd()) return avx512::softmax(x, ld, rows, n);
  if (simd2()) return avx2::softmax(x, ld, rows, n);
  scalar::softmax(x, ld, rows, n);
}

void rope(float* x, int64_t ld, int64_t rows, int64_t off, int64_t npairs, const float* cos,
          const float* sin, int64_t ldcs, bool inverse) {
  if (simd()) return avx512::rope(x, ld, rows, off, npairs, cos, sin, ldcs, inverse);
  if (simd2()) return avx2::rope(x, ld, rows, off, npairs, cos, sin, ldcs, inverse);
  scalar::rope(x, ld, rows, off, npairs, cos, sin, ldcs, inverse);
}

void hadamard(float* x, int64_t ld, int64_t rows, int64_t n) {
  if (n <= 0 || (n & (n - 1)) != 0) throw_error("hadamard: size ", n, " is not a power of two");
  if (simd()) return avx512::hadamard(x, ld, rows, n);
  if (simd2()) return avx2::hadamard(x, ld, rows, n);
  scalar::hadamard(x, ld, rows, n);
}

}  // namespace dsv4::cpu
