#include "kernels/ref/norm.h"

#include "kernels/ref/fmath.h"

namespace dsv4::ref {

namespace {
float mean32_of_squares(const float* x, int64_t n, bool bf16_squares) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    float sq = x[i] * x[i];
    if (bf16_squares) sq = bf16r(sq);
    s += sq;
  }
  const float inv_n = static_cast<float>(1.0 / static_cast<double>(n));
  return static_cast<float>(s) * inv_n;
}
}  // namespace

float rms_scale(const float* x, int64_t n, float eps) {
  const float m = mean32_of_squares(x, n, false);
  return rsqrt32(m + eps);
}

void rms_norm(const float* x, const uint16_t* w, int64_t n, float eps, float* y) {
  const float r = rms_scale(x, n, eps);
  for (int64_t i = 0; i < n; ++i) {
    const float xn = x[i] * r;
    y[i] = bf16r(bf16_bits_to_f32(w[i]) * xn);
  }
}

void head_norm_bf16(float* q, int64_t n, float eps) {
  const float m = bf16r(mean32_of_squares(q, n, true));
  const float d = bf16r(m + bf16r(eps));
  const float rs = bf16r(rsqrt32(d));
  for (int64_t i = 0; i < n; ++i) q[i] = bf16r(q[i] * rs);
}

}  // namespace dsv4::ref
