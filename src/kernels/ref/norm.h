// Reference normalisations (NOTES.md section 9): RMSNorm with a bf16 weight and the weightless
// per-head query normalisation carried out in bf16 tensor ops.
#pragma once
#include <cstdint>

namespace dsv4::ref {

// r = rsqrt32( f32( mean32(f32(x*x)) + eps ) ) over n values; mean32(v) = f32(ideal sum * f32(1/n)).
float rms_scale(const float* x, int64_t n, float eps);
// y = bf16( f32( w * f32(x * r) ) ), w = bf16 weight bits. y may alias x.
void rms_norm(const float* x, const uint16_t* w, int64_t n, float eps, float* y);
// In place: q = bf16(q * bf16(rsqrt(bf16(bf16(mean(bf16(q*q))) + bf16(eps))))) over n values.
void head_norm_bf16(float* q, int64_t n, float eps);

}  // namespace dsv4::ref
