#include "kernels/ref/indexer.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <vector>

#include "kernels/ref/fmath.h"

namespace dsv4::ref {

void indexer_scores(const IndexerScoreArgs& a) {
  const int H = a.n_heads, D = a.head_dim;
  const float ninf = -std::numeric_limits<float>::infinity();
  for (int64_t t = 0; t < a.n; ++t) {
    const float* qt = a.q + t * H * D;
    const float* wt = a.w + t * H;
    float* out = a.scores + t * a.n_keys;
    const int64_t vis = a.visible[t];
    for (int64_t i = 0; i < a.n_keys; ++i) {
      if (i >= vis) {
        out[i] = ninf;
        continue;
      }
      const float* k = a.keys + i * D;
      double total = 0.0;
      for (int h = 0; h < H; ++h) {
        const float* q = qt + h * D;
        double s = 0.0;
        for (int d = 0; d < D; ++d) s += static_cast<double>(q[d]) * k[d];
        const float dot = bf16r(static_cast<float>(s));
        const float r = dot > 0.0f ? dot : 0.0f;
        total += bf16r(r * wt[h]);
      }
      out[i] = bf16r(static_cast<float>(total));
    }
  }
}

void topk_desc(const float* v, int64_t n, int64_t k, int32_t* out, int32_t* work) {
  std::iota(work, work + n, 0);
  auto better = [v](int32_t x, int32_t y) { return v[x] > v[y] || (v[x] == v[y] && x < y); };
  std::partial_sort(work, work + k, work + n, better);
  std::copy(work, work + k, out);
}

}  // namespace dsv4::ref
