// MoE sub-layer: gate (score function, bias for selection only, hash routing), routed FP4 experts
// with clamped SwiGLU summed in ascending expert id, then the FP8 shared expert.
#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/phase_stats.h"
#include "kernels/ref/fmath.h"
#include "kernels/ref/moe.h"
#include "model/sublayers.h"

namespace dsv4 {
namespace {

constexpr int64_t kMoeCols = 512;  // columns per unit of the element-wise parallel loops

// h row i = swiglu(g row i, u row i) (clamped at `limit` when > 0) times weights[i] (none when
// weights is null), in units of kMoeCols columns of one row.
void swiglu_rows(const Backend& be, const float* g, const float* u, int64_t rows, int64_t I,
                 float limit, const float* weights, float* h) {
  DSV4_PHASE("swiglu");
  const int64_t per_row = (I + kMoeCols - 1) / kMoeCols;
  be.for_units(rows * per_row, 12.0 * kMoeCols, [&](int64_t b, int64_t e) {
    for (int64_t unit = b; unit < e; ++unit) {
      const int64_t i = unit / per_row, c0 = (unit % per_row) * kMoeCols;
      const int64_t off = i * I + c0, len = std::min(I - c0, kMoeCols);
      be.row_ops().swiglu(g + off, u + off, len, limit, weights ? weights[i] : -1.0f, h + off);
    }
  });
}

}  // namespace

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
  if (hash)
    for (int64_t t = 0; t < n; ++t) {
      const int64_t tok = tokens[t];
      if (tok < 0 || tok >= cfg.vocab_size) throw_error("token id ", tok, " out of range [0, ", cfg.vocab_size, ")");
    }
  {
    DSV4_PHASE("router");
    be.for_units(n, 30.0 * E, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        float* s = &scores[t * E];
        be.row_ops().gate_scores(s, E, cfg.score_func);
        const int32_t* hash_ids = hash ? mw.tid2eid.data() + int64_t{tokens[t]} * K : nullptr;
        ref::gate_route(s, mw.bias, hash_ids, E, K, cfg.score_func, route_scale, &idx[t * K], &w[t * K]);
      }
    });
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

  // ---- routed experts, ascending expert id; float32 accumulation per token. The rows routed to
  // each expert are listed first; then batches of whole experts go through one grouped call for
  // w1 and w3 together, the clamped SwiGLU, and one grouped call for w2 (each expert's weights
  // are streamed once per batch; results equal one call per expert and matrix).
  auto &acc = sc.acc, &ge = sc.ge, &ue = sc.ue, &he = sc.he, &ye = sc.ye, &rw = sc.rw;
  auto& rows = sc.erows;
  auto& eoff = sc.eoff;
  auto& groups = sc.egroups;
  acc.assign(static_cast<size_t>(n * dim), 0.0f);
  // Rows per expert, ascending token within an expert (a counting sort). A duplicated expert id
  // in one token's list contributes once, with its first weight (as y[idx] += ... does).
  auto first_of = [&](int64_t t, int k) {
    for (int j = 0; j < k; ++j)
      if (idx[t * K + j] == idx[t * K + k]) return false;
    return true;
  };
  eoff.assign(static_cast<size_t>(E + 1), 0);
  for (int64_t t = 0; t < n; ++t)
    for (int k = 0; k < K; ++k) {
      const int32_t e = idx[t * K + k];
      if (e < 0 || e >= E) throw_error("moe layer ", id, ": routed expert ", e, " out of range [0, ", E, ")");
      if (first_of(t, k)) ++eoff[static_cast<size_t>(e) + 1];
    }
  for (int e = 0; e < E; ++e) eoff[static_cast<size_t>(e) + 1] += eoff[static_cast<size_t>(e)];
  rows.resize(static_cast<size_t>(eoff[static_cast<size_t>(E)]));
  rw.resize(rows.size());
  {
    auto& fill = sc.efill;
    fill.assign(eoff.begin(), eoff.end() - 1);
    for (int64_t t = 0; t < n; ++t)
      for (int k = 0; k < K; ++k) {
        if (!first_of(t, k)) continue;
        const size_t at = static_cast<size_t>(fill[static_cast<size_t>(idx[t * K + k])]++);
        rows[at] = static_cast<int32_t>(t);
        rw[at] = w[t * K + k];
      }
  }
  const int64_t cap = moe_batch_rows(n, K);
  for (int e0 = 0; e0 < E;) {
    // experts [e0, e1) whose rows fit the batch (at least one expert)
    const int64_t r0 = eoff[static_cast<size_t>(e0)];
    int e1 = e0 + 1;
    while (e1 < E && eoff[static_cast<size_t>(e1 + 1)] - r0 <= cap) ++e1;
    const int64_t nr = eoff[static_cast<size_t>(e1)] - r0;
    if (nr > 0) {
      ge.resize(static_cast<size_t>(nr * I));
      ue.resize(static_cast<size_t>(nr * I));
      he.resize(static_cast<size_t>(nr * I));
      ye.resize(static_cast<size_t>(nr * dim));
      groups.clear();
      for (int e = e0; e < e1; ++e) {
        const int64_t off = eoff[static_cast<size_t>(e)] - r0;
        const int64_t m = eoff[static_cast<size_t>(e + 1)] - eoff[static_cast<size_t>(e)];
        if (m == 0) continue;
        const ExpertWeights& ew = mw.experts[static_cast<size_t>(e)];
        const int32_t* rr = &rows[static_cast<size_t>(r0 + off)];
        groups.push_back({&ew.w1, X, rr, m, Rows{&ge[off * I], m, I}});
        groups.push_back({&ew.w3, X, rr, m, Rows{&ue[off * I], m, I}});
      }
      be.linear_fp4_grouped(groups);
      swiglu_rows(be, ge.data(), ue.data(), nr, I, limit, &rw[static_cast<size_t>(r0)], he.data());
      groups.clear();
      for (int e = e0; e < e1; ++e) {
        const int64_t off = eoff[static_cast<size_t>(e)] - r0;
        const int64_t m = eoff[static_cast<size_t>(e + 1)] - eoff[static_cast<size_t>(e)];
        if (m == 0) continue;
        const ExpertWeights& ew = mw.experts[static_cast<size_t>(e)];
        groups.push_back({&ew.w2, ConstRows{&he[off * I], m, I}, nullptr, m, Rows{&ye[off * dim], m, dim}});
      }
      be.linear_fp4_grouped(groups);
      // acc[token] += y in ascending expert order, per block of columns (no two pieces share one)
      const int64_t nb = (dim + kMoeCols - 1) / kMoeCols;
      DSV4_PHASE("expert_sum");
      be.for_units(nb, 1.0 * nr * kMoeCols, [&](int64_t b, int64_t e) {
        const int64_t d0 = b * kMoeCols, d1 = std::min(dim, e * kMoeCols);
        for (int64_t i = 0; i < nr; ++i) {
          float* a = &acc[rows[static_cast<size_t>(r0 + i)] * dim];
          const float* y = &ye[i * dim];
          for (int64_t d = d0; d < d1; ++d) a[d] = a[d] + y[d];
        }
      });
    }
    e0 = e1;
  }

  // ---- shared expert (FP8, no clamp, no routing weight), then one bf16 rounding
  ge.resize(static_cast<size_t>(n * I));
  ue.resize(static_cast<size_t>(n * I));
  he.resize(static_cast<size_t>(n * I));
  ye.resize(static_cast<size_t>(n * dim));
  sc.fp8groups.clear();
  sc.fp8groups.push_back({&mw.shared.w1, X, Rows{ge.data(), n, I}});
  sc.fp8groups.push_back({&mw.shared.w3, X, Rows{ue.data(), n, I}});
  be.linear_fp8_grouped(sc.fp8groups, false);
  swiglu_rows(be, ge.data(), ue.data(), n, I, 0.0f, nullptr, he.data());
  be.linear_fp8(mw.shared.w2, ConstRows{he.data(), n, I}, Rows{ye.data(), n, dim});
  const int64_t nb = (n * dim + kMoeCols - 1) / kMoeCols;
  DSV4_PHASE("ffn_out");
  be.for_units(nb, 1.0 * kMoeCols, [&](int64_t b, int64_t e) {
    for (int64_t i = b * kMoeCols; i < std::min(n * dim, e * kMoeCols); ++i) out[i] = ref::bf16r(acc[i] + ye[i]);
  });
  if (hook && *hook) (*hook)("ffn_out", id, pos0, n, dim, out);
}

}  // namespace dsv4
