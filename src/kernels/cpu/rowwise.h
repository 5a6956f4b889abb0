// Row-wise float32 kernels over a span of rows (stride ld): RMSNorm, softmax, interleaved RoPE on
// the last dims, and the fast Walsh-Hadamard transform. Runtime dispatch between AVX-512, AVX2 entries
// and the scalar twin (namespace scalar), float32 arithmetic in both; exactness vs the reference
// is not promised (the reference kernels in kernels/ref are the bit-exact oracle).
#pragma once
#include <cstdint>

namespace dsv4::cpu {

// y[r][i] = w[i] * (x[r][i] / sqrt(mean_i x[r][i]^2 + eps)), i < n. y may alias x.
void rms_norm(const float* x, int64_t ldx, int64_t rows, int64_t n, const float* w, float eps,
              float* y, int64_t ldy);

// In place: x[r][i] = exp(x[r][i] - max_r) / sum_r, i < n.
void softmax(float* x, int64_t ld, int64_t rows, int64_t n);

// In place on each row r: the pairs (x[off + 2i], x[off + 2i + 1]), i < npairs, are rotated by the
// angle with cos[r * ldcs + i], sin[r * ldcs + i] (inverse: by the negative angle).
void rope(float* x, int64_t ld, int64_t rows, int64_t off, int64_t npairs, const float* cos,
          const float* sin, int64_t ldcs, bool inverse);

// In place on each row: x <- H x / sqrt(n), H the natural-order Sylvester Hadamard matrix of size
// n (a power of two), as log2(n) butterfly stages.
void hadamard(float* x, int64_t ld, int64_t rows, int64_t n);

#define DSV4_ROWWISE_DECLS                                                                       \
  void rms_norm(const float* x, int64_t ldx, int64_t rows, int64_t n, const float* w, float eps, \
                float* y, int64_t ldy);                                                          \
  void softmax(float* x, int64_t ld, int64_t rows, int64_t n);                                   \
  void rope(float* x, int64_t ld, int64_t rows, int64_t off, int64_t npairs, const float* cos,   \
            const float* sin, int64_t ldcs, bool inverse);                                       \
  void hadamard(float* x, int64_t ld, int64_t rows, int64_t n);
namespace scalar {
DSV4_ROWWISE_DECLS
}
namespace avx2 {  // only when detected_isa() >= Isa::Avx2
DSV4_ROWWISE_DECLS
}
namespace avx512 {  // only when detected_isa() >= Isa::Avx512 (no BF16 instructions)
DSV4_ROWWISE_DECLS
}
#undef DSV4_ROWWISE_DECLS

}  // namespace dsv4::cpu
