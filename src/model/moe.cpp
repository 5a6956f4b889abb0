// MoE sub-layer: gate (score function, bias for selection only, hash routing), routed FP4 experts
// with clamped SwiGLU summed in ascending expert id, then the FP8 shared expert.
#include <algorithm>
#include <vector>

#include "core/error.h"
#include "kernels/ref/fmath.h"
#include "kernels/ref/moe.h"
#include "model/sublayers.h"

namespace dsv4 {

void moe_forward(const ModelContext& mc, int id, const int32_t* tokens, const float* x,
                 int64_t pos0, int64_t n, float* out, ForwardScratch& sc, const DebugHook* hook) {
  const ModelConfig& cfg = mc.w->config;
  const MoeWeights& mw = mc.block(id).ffn;
  const bool hash = mc.block(id).hash_routed;
  const Backend& be = *mc.be;
  const int E = cfg.n_routed_experts, K = cfg.n_activated_experts;
  const int64_t dim = cfg.dim, I = cfg.moe_inter_dim;
  const ConstRows X{x, n, dim};
  const float route_scale = static_cast<float>(cfg.route_scale);
  const float limit = static_cast<float>(cfg.swiglu_limit);

  // ---- gate
  auto &scores = sc.gate, &w = sc.gw;
  auto& idx = sc.gidx;
  scores.resize(static_cast<size_t>(n * E));
  w.resize(static_cast<size_t>(n * K));
  idx.resize(static_cast<size_t>(n * K));
  be.linear_f32(mw.gate, X, Rows{scores.data(), n, E});
  for (int64_t t = 0; t < n; ++t) {
    float* s = &scores[t * E];
    ref::gate_scores(s, E, cfg.score_func);
    const int32_t* hash_ids = nullptr;
    if (hash) {
      const int64_t tok = tokens[t];
      if (tok < 0 || tok >= cfg.vocab_size) throw_error("token id ", tok, " out of range [0, ", cfg.vocab_size, ")");
      hash_ids = mw.tid2eid.data() + tok * K;
    }
    ref::gate_route(s, mw.bias, hash_ids, E, K, cfg.score_func, route_scale, &idx[t * K], &w[t * K]);
  }
  if (hook && *hook) {
    std::vector<float> fi, fw, si, sw;  // debug hook only
    fi.resize(static_cast<size_t>(n * K));
    fw.resize(static_cast<size_t>(n * K));
    si.resize(static_cast<size_t>(n * K));
    sw.resize(static_cast<size_t>(n * K));
    for (int64_t t = 0; t < n; ++t) {
      std::vector<int> ord(static_cast<size_t>(K));
      for (int k = 0; k < K; ++k) ord[static_cast<size_t>(k)] = k;
      std::sort(ord.begin(), ord.end(), [&](int a, int b) { return idx[t * K + a] < idx[t * K + b]; });
      for (int k = 0; k < K; ++k) {
        fi[t * K + k] = static_cast<float>(idx[t * K + k]);
        fw[t * K + k] = w[t * K + k];
        si[t * K + k] = static_cast<float>(idx[t * K + ord[static_cast<size_t>(k)]]);
        sw[t * K + k] = w[t * K + ord[static_cast<size_t>(k)]];
      }
    }
    (*hook)("moe_indices", id, pos0, n, K, fi.data());
    (*hook)("moe_weights", id, pos0, n, K, fw.data());
    (*hook)("moe_idx", id, pos0, n, K, si.data());
    (*hook)("moe_w", id, pos0, n, K, sw.data());
  }

  // ---- routed experts, ascending expert id; float32 accumulation per token
  auto &acc = sc.acc, &xe = sc.xe, &ge = sc.ge, &ue = sc.ue, &he = sc.he, &ye = sc.ye;
  auto& rows = sc.erows;
  auto& rw = sc.rw;
  acc.assign(static_cast<size_t>(n * dim), 0.0f);
  for (int e = 0; e < E; ++e) {
    rows.clear();
    rw.clear();
    for (int64_t t = 0; t < n; ++t)
      for (int k = 0; k < K; ++k)
        if (idx[t * K + k] == e) {
          rows.push_back(t);
          rw.push_back(w[t * K + k]);
          break;  // a duplicated expert id contributes once (as y[idx] += ... does)
        }
    if (rows.empty()) continue;
    const int64_t m = static_cast<int64_t>(rows.size());
    xe.resize(static_cast<size_t>(m * dim));
    ge.resize(static_cast<size_t>(m * I));
    ue.resize(static_cast<size_t>(m * I));
    he.resize(static_cast<size_t>(m * I));
    ye.resize(static_cast<size_t>(m * dim));
    for (int64_t i = 0; i < m; ++i) std::copy(x + rows[i] * dim, x + (rows[i] + 1) * dim, &xe[i * dim]);
    const ExpertWeights& ew = mw.experts[static_cast<size_t>(e)];
    be.linear_fp4(ew.w1, ConstRows{xe.data(), m, dim}, Rows{ge.data(), m, I});
    be.linear_fp4(ew.w3, ConstRows{xe.data(), m, dim}, Rows{ue.data(), m, I});
    for (int64_t i = 0; i < m; ++i) ref::swiglu(&ge[i * I], &ue[i * I], I, limit, rw[i], &he[i * I]);
    be.linear_fp4(ew.w2, ConstRows{he.data(), m, I}, Rows{ye.data(), m, dim});
    for (int64_t i = 0; i < m; ++i) {
      float* a = &acc[rows[i] * dim];
      const float* y = &ye[i * dim];
      for (int64_t d = 0; d < dim; ++d) a[d] = a[d] + y[d];
    }
  }

  // ---- shared expert (FP8, no clamp, no routing weight), then one bf16 rounding
  ge.resize(static_cast<size_t>(n * I));
  ue.resize(static_cast<size_t>(n * I));
  he.resize(static_cast<size_t>(n * I));
  ye.resize(static_cast<size_t>(n * dim));
  be.linear_fp8(mw.shared.w1, X, Rows{ge.data(), n, I});
  be.linear_fp8(mw.shared.w3, X, Rows{ue.data(), n, I});
  for (int64_t t = 0; t < n; ++t) ref::swiglu(&ge[t * I], &ue[t * I], I, 0.0f, -1.0f, &he[t * I]);
  be.linear_fp8(mw.shared.w2, ConstRows{he.data(), n, I}, Rows{ye.data(), n, dim});
  for (int64_t i = 0; i < n * dim; ++i) out[i] = ref::bf16r(acc[i] + ye[i]);
  if (hook && *hook) (*hook)("ffn_out", id, pos0, n, dim, out);
}

}  // namespace dsv4
