#include "kernels/ref/attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/ref/fmath.h"

namespace dsv4::ref {

void sparse_attention(const AttentionArgs& a) {
  const int D = a.head_dim;
  const float ninf = -std::numeric_limits<float>::infinity();
  thread_local std::vector<double> pv;
  thread_local std::vector<float> acc, sc;
  thread_local std::vector<int32_t> idx;
  pv.resize(static_cast<size_t>(D));
  acc.resize(static_cast<size_t>(D));
  sc.resize(kAttnBlock);
  idx.resize(kAttnBlock);
  for (int64_t t = 0; t < a.n; ++t) {
    const int32_t* list = a.lists + t * a.list_len;
    for (int h = 0; h < a.n_heads; ++h) {
      const float* q = a.q + (t * a.n_heads + h) * D;
      float m = ninf, l = 0.0f;
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t b0 = 0; b0 < a.list_len; b0 += kAttnBlock) {
        const int64_t b1 = std::min<int64_t>(a.list_len, b0 + kAttnBlock);
        int nv = 0;
        float mb = ninf;
        for (int64_t j = b0; j < b1; ++j) {
          if (list[j] < 0) continue;
          const float* k = a.key(list[j]);
          double s = 0.0;
          for (int d = 0; d < D; ++d) s += static_cast<double>(q[d]) * k[d];
          const float sv = static_cast<float>(s) * a.scale;
          sc[nv] = sv;
          idx[nv] = list[j];
          ++nv;
          if (sv > mb) mb = sv;
        }
        if (nv == 0) continue;  // an all-padding block leaves m, l, acc unchanged
        const float mn = std::max(m, mb);
        const float alpha = exp32(m - mn);
        double psum = 0.0;
        std::fill(pv.begin(), pv.end(), 0.0);
        for (int j = 0; j < nv; ++j) {
          const float p = exp32(sc[j] - mn);
          psum += p;
          const double pb = bf16r(p);
          const float* v = a.key(idx[j]);
          for (int d = 0; d < D; ++d) pv[d] += pb * v[d];
        }
        l = fma32(l, alpha, static_cast<float>(psum));
        for (int d = 0; d < D; ++d) {
          const float scaled = acc[d] * alpha;
          acc[d] = static_cast<float>(static_cast<double>(scaled) + pv[d]);
        }
        m = mn;
      }
      l = l + exp32(a.sink[h] - m);
      float* o = a.out + (t * a.n_heads + h) * D;
      for (int d = 0; d < D; ++d) o[d] = bf16r(acc[d] / l);
    }
  }
}

}  // namespace dsv4::ref
