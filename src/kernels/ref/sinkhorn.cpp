// Hyper-connection split with the Sinkhorn projection, following NOTES.md section 9 operation by
// operation: fma32(a,b,c) = f32((double)a*b + c); exp in double rounded once; "ideal" sums in double
// rounded once; every other operation one float32 operation.
#include "kernels/ref/sinkhorn.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace dsv4::ref {

namespace {
inline float f32(double x) { return static_cast<float>(x); }
inline float fma32(float a, float b, float c) {
  return f32(static_cast<double>(a) * static_cast<double>(b) + static_cast<double>(c));
}
inline float exp32(float x) { return f32(std::exp(static_cast<double>(x))); }
inline float sigmoid32(float z) { return 1.0f / (1.0f + exp32(-z)); }
}  // namespace

void hc_split_sinkhorn(const float* mixes, const float* scale, const float* base, int hc, int iters,
                       float eps, float* pre, float* post, float* comb) {
  if (hc <= 0) throw_error("hc_split_sinkhorn: hc_mult must be positive, got ", hc);
  if (iters < 1) throw_error("hc_split_sinkhorn: hc_sinkhorn_iters must be >= 1, got ", iters);
  for (int j = 0; j < hc; ++j) {
    pre[j] = sigmoid32(fma32(mixes[j], scale[0], base[j])) + eps;
    post[j] = 2.0f * sigmoid32(fma32(mixes[hc + j], scale[1], base[hc + j]));
  }
  float* C = comb;  // C[j*hc + k]: j = source stream (row), k = destination stream (column)
  const int off = 2 * hc;
  for (int i = 0; i < hc * hc; ++i) C[i] = fma32(mixes[off + i], scale[2], base[off + i]);

  auto normalize_cols = [&]() {
    for (int k = 0; k < hc; ++k) {
      double c = 0.0;
      for (int j = 0; j < hc; ++j) c += C[j * hc + k];
      const float d = f32(c) + eps;
      for (int j = 0; j < hc; ++j) C[j * hc + k] = C[j * hc + k] / d;
    }
  };
  // Row softmax, then + eps.
  for (int j = 0; j < hc; ++j) {
    float* row = C + j * hc;
    const float m = *std::max_element(row, row + hc);
    double r = 0.0;
    for (int k = 0; k < hc; ++k) {
      row[k] = exp32(row[k] - m);
      r += row[k];
    }
    const float r32 = f32(r);
    for (int k = 0; k < hc; ++k) row[k] = row[k] / r32 + eps;
  }
  normalize_cols();
  for (int it = 1; it < iters; ++it) {
    for (int j = 0; j < hc; ++j) {
      float* row = C + j * hc;
      double r = 0.0;
      for (int k = 0; k < hc; ++k) r += row[k];
      const float d = f32(r) + eps;
      for (int k = 0; k < hc; ++k) row[k] = row[k] / d;
    }
    normalize_cols();
  }
}

}  // namespace dsv4::ref
