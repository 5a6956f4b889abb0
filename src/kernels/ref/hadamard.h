#pragma once
#include <cstdint>

namespace dsv4::ref {
// y = bf16( f32( f32(exact H x) * f32(n^-0.5) ) ), H the natural-order Sylvester Walsh-Hadamard
// matrix, n a power of two. In place over x[0..n).
void hadamard(float* x, int n);
}  // namespace dsv4::ref
