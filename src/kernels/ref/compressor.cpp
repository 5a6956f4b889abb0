#include "kernels/ref/compressor.h"

#include <limits>
#include <vector>

#include "kernels/ref/fmath.h"

namespace dsv4::ref {

void softmax_pool(const float* const* values, const float* const* scores, int rows, int64_t c,
                  float* z) {
  thread_local std::vector<float> e;
  e.resize(static_cast<size_t>(rows));
  for (int64_t ch = 0; ch < c; ++ch) {
    float mx = -std::numeric_limits<float>::infinity();
    for (int r = 0; r < rows; ++r) mx = std::max(mx, scores[r][ch]);
    double sum = 0.0;
    for (int r = 0; r < rows; ++r) {
      e[r] = exp32(scores[r][ch] - mx);
      sum += e[r];
    }
    const float fs = static_cast<float>(sum);
    double zs = 0.0;
    for (int r = 0; r < rows; ++r) {
      const float p = e[r] / fs;
      zs += values[r][ch] * p;
    }
    z[ch] = static_cast<float>(zs);
  }
}

}  // namespace dsv4::ref
