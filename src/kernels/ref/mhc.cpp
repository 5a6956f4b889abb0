#include "kernels/ref/mhc.h"

#include <vector>

#include "kernels/ref/fmath.h"
#include "kernels/ref/norm.h"
#include "kernels/ref/sinkhorn.h"

namespace dsv4::ref {

namespace {
void weighted_collapse(const float* x, int hc, int64_t dim, const float* pre, float* a) {
  for (int64_t d = 0; d < dim; ++d) {
    double s = 0.0;
    for (int j = 0; j < hc; ++j) s += pre[j] * x[j * dim + d];  // float product, exact double sum
    a[d] = bf16r(static_cast<float>(s));
  }
}
}  // namespace

void hc_pre_finish(const float* x, int hc, int64_t dim, const float* dots, const float* scale,
                   const float* base, int iters, float norm_eps, float hc_eps, HcSplit split,
                   float* a) {
  const float r = rms_scale(x, hc * dim, norm_eps);
  const int mix = (2 + hc) * hc;
  float mixes[64 * 64];
  std::vector<float> big;
  float* m = mixes;
  if (mix > 64 * 64) {
    big.resize(static_cast<size_t>(mix));
    m = big.data();
  }
  for (int i = 0; i < mix; ++i) m[i] = dots[i] * r;
  hc_split_sinkhorn(m, scale, base, hc, iters, hc_eps, split.pre, split.post, split.comb);
  weighted_collapse(x, hc, dim, split.pre, a);
}

void hc_post(const float* x, const float* f, int hc, int64_t dim, const float* post,
             const float* comb, int64_t d0, int64_t d1, float* y) {
  const int64_t w = d1 - d0;
  for (int k = 0; k < hc; ++k) {
    for (int64_t d = d0; d < d1; ++d) {
      double s = 0.0;
      for (int j = 0; j < hc; ++j) {
        const float prod = comb[j * hc + k] * x[j * dim + d];
        s += prod;
      }
      const float first = post[k] * f[d];
      y[k * w + (d - d0)] = bf16r(first + static_cast<float>(s));
    }
  }
}

void hc_head_finish(const float* x, int hc, int64_t dim, const float* dots, const float* scale,
                    const float* base, float norm_eps, float hc_eps, float* a) {
  float small[64];  // no allocation per token (hc is 4 in V4)
  std::vector<float> big;
  float* pre = small;
  if (hc > 64) {
    big.resize(static_cast<size_t>(hc));
    pre = big.data();
  }
  hc_head_pre(dots, rms_scale(x, hc * dim, norm_eps), hc, scale, base, hc_eps, pre);
  weighted_collapse(x, hc, dim, pre, a);
}

void hc_head_pre(const float* dots, float r, int hc, const float* scale, const float* base, float hc_eps,
                 float* pre) {
  for (int j = 0; j < hc; ++j) {
    const float mj = dots[j] * r;
    const float z = mj * scale[0] + base[j];  // -ffp-contract=off: two roundings, no FMA
    pre[j] = sigmoid32(z) + hc_eps;
  }
}

}  // namespace dsv4::ref
