#pragma once
#include <cstdint>

namespace dsv4::ref {
// y = bf16( f32( f32(exact H x) * f32(n^-0.5) ) ), H the natural-order Sylvester Walsh-Hadamard
// matrix, n a power of two. In place over x[0..n).
void hadamard(float* x, int n);

// out[i] = f32( exact (H x)[i] ): the unscaled transform, each output the exactly computed +-1 sum
// rounded once to float32 (RNE). x and out must not overlap. Used by hadamard(); exposed for tests.
void hadamard_exact_f32(const float* x, int n, float* out);
}  // namespace dsv4::ref
