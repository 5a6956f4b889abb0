#include "kernels/ref/moe.h"

#include <cmath>
#include <vector>

#include "kernels/ref/fmath.h"
#include "kernels/ref/indexer.h"

namespace dsv4::ref {

void gate_scores(float* s, int n, ScoreFunc f) {
  switch (f) {
    case ScoreFunc::SqrtSoftplus:
      for (int i = 0; i < n; ++i) s[i] = std::sqrt(softplus32(s[i]));
      break;
    case ScoreFunc::Sigmoid:
      for (int i = 0; i < n; ++i) s[i] = sigmoid32(s[i]);
      break;
    case ScoreFunc::Softmax: {
      float mx = s[0];
      for (int i = 1; i < n; ++i) mx = std::max(mx, s[i]);
      double sum = 0.0;
      for (int i = 0; i < n; ++i) {
        s[i] = exp32(s[i] - mx);
        sum += s[i];
      }
      const float fs = static_cast<float>(sum);
      for (int i = 0; i < n; ++i) s[i] = s[i] / fs;
      break;
    }
  }
}

void gate_route(const float* scores, const float* bias, const int32_t* hash_ids, int n, int k,
                ScoreFunc f, float route_scale, int32_t* idx, float* w) {
  if (hash_ids) {
    for (int i = 0; i < k; ++i) idx[i] = hash_ids[i];
  } else {
    thread_local std::vector<float> biased;  // n experts: sized once
    thread_local std::vector<int32_t> work;
    biased.resize(static_cast<size_t>(n));
    work.resize(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) biased[i] = bias ? scores[i] + bias[i] : scores[i];
    topk_desc(biased.data(), n, k, idx, work.data());
  }
  double sum = 0.0;
  for (int i = 0; i < k; ++i) {
    w[i] = scores[idx[i]];
    sum += w[i];
  }
  if (f != ScoreFunc::Softmax) {
    const float fs = static_cast<float>(sum);
    for (int i = 0; i < k; ++i) w[i] = w[i] / fs;
  }
  for (int i = 0; i < k; ++i) w[i] = w[i] * route_scale;
}

void swiglu(const float* g, const float* u, int64_t n, float limit, float weight, float* h) {
  for (int64_t i = 0; i < n; ++i) {
    float gi = g[i], ui = u[i];
    if (limit > 0.0f) {
      ui = std::min(std::max(ui, -limit), limit);
      gi = std::min(gi, limit);
    }
    float v = silu32(gi) * ui;
    if (weight >= 0.0f) v = v * weight;
    h[i] = bf16r(v);
  }
}

}  // namespace dsv4::ref
