#include "model/forward.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/phase_stats.h"
#include "kernels/ref/fmath.h"
#include "kernels/ref/mhc.h"
#include "kernels/ref/norm.h"
#include "model/sublayers.h"
#include "quant/quant.h"

namespace dsv4 {

void ModelContext::init(const ModelWeights& weights, const Backend& backend) {
  w = &weights;
  be = &backend;
  const ModelConfig& cfg = weights.config;
  const int nblocks = cfg.n_layers + static_cast<int>(weights.mtp.size());
  rope.clear();
  rope_class.clear();
  wo_a.assign(static_cast<size_t>(nblocks), {});
  for (int id = 0; id < nblocks; ++id) {
    rope.push_back(ref::rope_freqs(cfg, cfg.ratio(id)));
    int cls = id;  // the first block with the same table (every compressed layer's are equal)
    for (int j = 0; j < id; ++j)
      if (rope[static_cast<size_t>(j)].inv_freq == rope.back().inv_freq) {
        cls = rope_class[static_cast<size_t>(j)];
        break;
      }
    rope_class.push_back(cls);
    const AttentionWeights& aw = block(id).attn;
    // The backend multiplies FP8 wo_a itself when it can and the groups are whole 128-row,
    // 128-column blocks; otherwise (reference) it is converted like convert.py does.
    const bool fp8_ok = backend.keeps_wo_a_fp8() && cfg.o_lora_rank % 128 == 0 &&
                        aw.wo_a_fp8.cols % 128 == 0;
    if (aw.wo_a_fp8.w && !fp8_ok) {  // convert.py: weight * scale per 128x128 block, exact in bf16
      const Fp8Mat& m = aw.wo_a_fp8;
      std::vector<uint16_t>& dst = wo_a[static_cast<size_t>(id)];
      dst.resize(static_cast<size_t>(m.rows * m.cols));
      for (int64_t r = 0; r < m.rows; ++r)
        for (int64_t c = 0; c < m.cols; ++c) {
          const float v = quant::e4m3_to_f32(m.w[r * m.cols + c]) *
                          quant::e8m0_to_f32(m.s[(r / 128) * m.scale_cols() + c / 128]);
          dst[static_cast<size_t>(r * m.cols + c)] = quant::f32_to_bf16(v);
        }
    }
  }
}

const BlockWeights& ModelContext::block(int id) const {
  const int nl = w->config.n_layers;
  if (id < nl) return w->layers[static_cast<size_t>(id)];
  return w->mtp.at(static_cast<size_t>(id - nl)).block;
}

const Bf16Mat ModelContext::wo_a_mat(int id) const {
  const AttentionWeights& aw = block(id).attn;
  if (aw.wo_a_bf16.w) return aw.wo_a_bf16;
  const auto& v = wo_a[static_cast<size_t>(id)];
  return Bf16Mat{v.data(), aw.wo_a_fp8.rows, aw.wo_a_fp8.cols};
}

namespace {

// hc_pre for every row: sub-layer input a [n][dim], split (pre, post, comb) per row.
struct HcRows {
  std::vector<float>& pre;
  std::vector<float>& post;
  std::vector<float>& comb;
  std::vector<float>& dots;
};

void hc_pre_rows(const ModelContext& mc, const HcParams& hp, const float* X, int64_t n, float* a,
                 HcRows& s) {
  const ModelConfig& cfg = mc.w->config;
  const int hc = cfg.hc_mult, mix = hp.mix;
  const int64_t dim = cfg.dim, flat = hc * dim;
  s.dots.resize(static_cast<size_t>(n * mix));
  s.pre.resize(static_cast<size_t>(n * hc));
  s.post.resize(static_cast<size_t>(n * hc));
  s.comb.resize(static_cast<size_t>(n * hc * hc));
  mc.be->linear_f32w(hp.fn, mix, flat, ConstRows{X, n, flat}, Rows{s.dots.data(), n, mix});
  DSV4_PHASE("hc_pre");
  mc.be->for_units(n, 6.0 * flat, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t)
      mc.be->row_ops().hc_pre_finish(X + t * flat, hc, dim, &s.dots[t * mix], hp.scale, hp.base,
                         cfg.hc_sinkhorn_iters, static_cast<float>(cfg.norm_eps),
                         static_cast<float>(cfg.hc_eps),
                         ref::HcSplit{&s.pre[t * hc], &s.post[t * hc], &s.comb[t * hc * hc]},
                         a + t * dim);
  });
}

// X = hc_post(X, f) row by row, in units of kHcPostCols columns of one row (each column of the
// result depends only on the same column of X and f).
void hc_post_rows(const ModelContext& mc, float* X, const float* f, int64_t n, const HcRows& s) {
  constexpr int64_t kHcPostCols = 256;
  DSV4_PHASE("hc_post");
  const ModelConfig& cfg = mc.w->config;
  const int hc = cfg.hc_mult;
  const int64_t dim = cfg.dim, flat = hc * dim;
  const int64_t per_row = (dim + kHcPostCols - 1) / kHcPostCols;
  mc.be->for_units(n * per_row, 4.0 * hc * kHcPostCols, [&](int64_t b, int64_t e) {
    thread_local std::vector<float> y;  // [hc][kHcPostCols], sized once per thread
    y.resize(static_cast<size_t>(hc * kHcPostCols));
    for (int64_t u = b; u < e; ++u) {
      const int64_t t = u / per_row, d0 = (u % per_row) * kHcPostCols;
      const int64_t d1 = std::min(dim, d0 + kHcPostCols), w = d1 - d0;
      float* xt = X + t * flat;
      mc.be->row_ops().hc_post(xt, f + t * dim, hc, dim, &s.post[t * hc], &s.comb[t * hc * hc], d0, d1, y.data());
      for (int k = 0; k < hc; ++k) std::copy(&y[k * w], &y[k * w] + w, xt + k * dim + d0);
    }
  });
}

// y row t = rms_norm(x row t) * w, rows in parallel.
void rms_norm_rows(const Backend& be, const float* x, const uint16_t* w, int64_t n, int64_t dim,
                   float eps, float* y) {
  DSV4_PHASE("rms_norm");
  be.for_units(n, 3.0 * dim, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) be.row_ops().rms_norm(x + t * dim, w, dim, eps, y + t * dim);
  });
}

void emit(const char* name, const DebugHook* hook, int id, int64_t pos0, int64_t rows,
          int64_t width, const float* data) {
  if (hook && *hook) (*hook)(name, id, pos0, rows, width, data);
}

}  // namespace

void block_forward(const ModelContext& mc, int id, BlockState& st, const int32_t* tokens,
                   int64_t pos0, int64_t n, ChunkLayout layout, float* X, ForwardScratch& sc,
                   const DebugHook* hook) {
  const ModelConfig& cfg = mc.w->config;
  const BlockWeights& bw = mc.block(id);
  const int hc = cfg.hc_mult;
  const int64_t dim = cfg.dim, flat = hc * dim;
  const float eps = static_cast<float>(cfg.norm_eps);
  HcRows split{sc.hc_pre, sc.hc_post, sc.hc_comb, sc.hc_dots};
  auto &a = sc.a, &xin = sc.xin, &f = sc.f;
  a.resize(static_cast<size_t>(n * dim));
  xin.resize(static_cast<size_t>(n * dim));
  f.resize(static_cast<size_t>(n * dim));

  // attention sub-layer
  hc_pre_rows(mc, bw.hc_attn, X, n, a.data(), split);
  emit("hc_attn_post", hook, id, pos0, n, hc, split.post.data());
  emit("hc_attn_comb", hook, id, pos0, n, int64_t{hc} * hc, split.comb.data());
  rms_norm_rows(*mc.be, a.data(), bw.attn_norm, n, dim, eps, xin.data());
  emit("attn_in", hook, id, pos0, n, dim, xin.data());
  attention_forward(mc, id, st, xin.data(), pos0, n, layout, f.data(), sc, hook);
  hc_post_rows(mc, X, f.data(), n, split);
  emit("h_after_attn", hook, id, pos0, n, flat, X);

  // feed-forward sub-layer
  hc_pre_rows(mc, bw.hc_ffn, X, n, a.data(), split);
  rms_norm_rows(*mc.be, a.data(), bw.ffn_norm, n, dim, eps, xin.data());
  emit("ffn_in", hook, id, pos0, n, dim, xin.data());
  moe_forward(mc, id, tokens, xin.data(), pos0, n, f.data(), sc, hook);
  hc_post_rows(mc, X, f.data(), n, split);
  emit("h_after_ffn", hook, id, pos0, n, flat, X);
}

void embed_rows(const ModelContext& mc, const int32_t* tokens, int64_t n, float* X) {
  DSV4_PHASE("embed");
  const ModelConfig& cfg = mc.w->config;
  const int hc = cfg.hc_mult;
  const int64_t dim = cfg.dim;
  for (int64_t t = 0; t < n; ++t) {
    const int64_t tok = tokens[t];
    if (tok < 0 || tok >= cfg.vocab_size)
      throw_error("token id ", tok, " out of range [0, ", cfg.vocab_size, ")");
    const uint16_t* e = mc.w->embed.w + tok * dim;
    for (int s = 0; s < hc; ++s)
      for (int64_t d = 0; d < dim; ++d) X[(t * hc + s) * dim + d] = ref::bf16_bits_to_f32(e[d]);
  }
}

void head_logits(const ModelContext& mc, const HcParams& hp, const uint16_t* norm, const float* X,
                 int64_t n, float* logits, ForwardScratch& sc) {
  const ModelConfig& cfg = mc.w->config;
  const int hc = cfg.hc_mult;
  const int64_t dim = cfg.dim, flat = hc * dim;
  const float eps = static_cast<float>(cfg.norm_eps);
  auto &dots = sc.head_dots, &y = sc.head_y;
  dots.resize(static_cast<size_t>(n * hp.mix));
  y.resize(static_cast<size_t>(n * dim));
  mc.be->linear_f32w(hp.fn, hp.mix, flat, ConstRows{X, n, flat}, Rows{dots.data(), n, hp.mix});
  for (int64_t t = 0; t < n; ++t) {
    DSV4_PHASE("head_norm");
    const RowOps& ops = mc.be->row_ops();
    ops.hc_head_finish(X + t * flat, hc, dim, &dots[t * hp.mix], hp.scale, hp.base, eps,
                       static_cast<float>(cfg.hc_eps), &y[t * dim]);
    ops.rms_norm(&y[t * dim], norm, dim, eps, &y[t * dim]);
  }
  mc.be->linear_f32(mc.w->head, ConstRows{y.data(), n, dim}, Rows{logits, n, cfg.vocab_size});
}

void mtp_forward(const ModelContext& mc, int k, BlockState& st, const float* Xmain,
                 const int32_t* next_tokens, int64_t pos0, int64_t n, ChunkLayout layout,
                 float* logits, ForwardScratch& sc, const DebugHook* hook) {
  const ModelConfig& cfg = mc.w->config;
  const MtpWeights& mw = mc.w->mtp.at(static_cast<size_t>(k));
  const int hc = cfg.hc_mult;
  const int64_t dim = cfg.dim, flat = hc * dim;
  const float eps = static_cast<float>(cfg.norm_eps);
  auto &e = sc.me, &hn = sc.mhn, &ep = sc.mep, &hp = sc.mhp, &X = sc.mx;
  e.resize(static_cast<size_t>(n * dim));
  hn.resize(static_cast<size_t>(n * flat));
  ep.resize(static_cast<size_t>(n * dim));
  hp.resize(static_cast<size_t>(n * flat));
  X.resize(static_cast<size_t>(n * flat));
  for (int64_t t = 0; t < n; ++t) {
    const int64_t tok = next_tokens[t];
    if (tok < 0 || tok >= cfg.vocab_size)
      throw_error("token id ", tok, " out of range [0, ", cfg.vocab_size, ")");
    const uint16_t* er = mc.w->embed.w + tok * dim;
    for (int64_t d = 0; d < dim; ++d) e[t * dim + d] = ref::bf16_bits_to_f32(er[d]);
    ref::rms_norm(&e[t * dim], mw.enorm, dim, eps, &e[t * dim]);
    for (int s = 0; s < hc; ++s)
      ref::rms_norm(Xmain + t * flat + s * dim, mw.hnorm, dim, eps, &hn[t * flat + s * dim]);
  }
  mc.be->linear_fp8(mw.e_proj, ConstRows{e.data(), n, dim}, Rows{ep.data(), n, dim});
  mc.be->linear_fp8(mw.h_proj, ConstRows{hn.data(), n * hc, dim}, Rows{hp.data(), n * hc, dim});
  for (int64_t t = 0; t < n; ++t)
    for (int s = 0; s < hc; ++s)
      for (int64_t d = 0; d < dim; ++d)
        X[t * flat + s * dim + d] = ref::bf16r(ep[t * dim + d] + hp[t * flat + s * dim + d]);
  const int id = cfg.n_layers + k;
  block_forward(mc, id, st, next_tokens, pos0, n, layout, X.data(), sc, hook);
  head_logits(mc, mw.hc_head, mw.norm, X.data(), n, logits, sc);
}

}  // namespace dsv4
