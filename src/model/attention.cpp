// Attention sub-layer: projections, compressor state machine, lightning indexer, key lists,
// sparse attention, grouped output projection.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/phase_stats.h"
#include "kernels/ref/compressor.h"
#include "kernels/ref/fmath.h"
#include "kernels/ref/indexer.h"
#include "kernels/ref/norm.h"
#include "kernels/ref/rope.h"
#include "model/sublayers.h"
#include "runtime/kv_gather.h"

namespace dsv4 {
namespace {

constexpr int kKvSimBlock = 64;    // FP8 simulation block of the kv non-RoPE dims (model.py)
constexpr int kIdxSimBlock = 32;   // FP4 simulation block of indexer queries / keys

enum class EntryKind { Attention, Indexer };

void emit(const char* name, const DebugHook* hook, int id, int64_t pos0, int64_t rows,
          int64_t width, const float* data) {
  if (hook && *hook) (*hook)(name, id, pos0, rows, width, data);
}

// cos/sin tables of the chunk's positions: [n][Dr/2] each.
struct RopeRows {
  std::vector<float>& cos;
  std::vector<float>& sin;
  int half = 0;
  const RowOps* ops = nullptr;
  // The tables of block `id` for positions [pos0, pos0 + n), unless the scratch already holds
  // those of its rope class for the same positions (an earlier layer of the chunk).
  void fill(const ModelContext& mc, int id, int64_t pos0, int64_t n, ForwardScratch& sc) {
    const ref::RopeFreqs& f = mc.rope[static_cast<size_t>(id)];
    const int cls = mc.rope_class[static_cast<size_t>(id)];
    const Backend& be = *mc.be;
    half = static_cast<int>(f.inv_freq.size());
    ops = &be.row_ops();
    if (sc.rope_class == cls && sc.rope_pos0 == pos0 && sc.rope_rows == n) return;
    cos.resize(static_cast<size_t>(n * half));
    sin.resize(static_cast<size_t>(n * half));
    be.for_units(n, 40.0 * half, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) ref::rope_cos_sin(f, pos0 + t, &cos[t * half], &sin[t * half]);
    });
    sc.rope_class = cls;
    sc.rope_pos0 = pos0;
    sc.rope_rows = n;
  }
  void apply(float* v, int64_t t, bool inverse) const {
    ops->rope_apply(v, &cos[t * half], &sin[t * half], half, inverse);
  }
};

// Feeds the chunk's tokens through one compressor's per-token state machine (spec 5.4 step 4),
// emitting every completed entry (post-processed per spec 4.6) into `store`.
void compress_chunk(const ModelContext& mc, const CompressorWeights& cw, const ref::RopeFreqs& rf,
                    CompressorState& cs, KvRows& store, int64_t& n_emitted, ConstRows x,
                    int64_t pos0, EntryKind kind, ForwardScratch& sc) {
  const ModelConfig& cfg = mc.w->config;
  const int r = cw.ratio, c = cw.width, coff = cw.coff;
  const int64_t cc = static_cast<int64_t>(coff) * c, n = x.n;
  const int Dr = cfg.rope_head_dim;
  const float eps = static_cast<float>(cfg.norm_eps);
  auto &a = sc.ca, &g = sc.cg, &z = sc.cz, &cs_cos = sc.ccos, &cs_sin = sc.csin;
  a.resize(static_cast<size_t>(n * cc));
  g.resize(static_cast<size_t>(n * cc));
  z.resize(static_cast<size_t>(c));
  cs_cos.resize(static_cast<size_t>(Dr / 2));
  cs_sin.resize(static_cast<size_t>(Dr / 2));
  mc.be->linear_f32(cw.wkv, x, Rows{a.data(), n, cc});
  mc.be->linear_f32(cw.wgate, x, Rows{g.data(), n, cc});
  DSV4_PHASE("compressor");
  auto &vals = sc.cvals, &scs = sc.cscores;
  vals.resize(static_cast<size_t>(coff * r));
  scs.resize(static_cast<size_t>(coff * r));
  for (int64_t t = 0; t < n; ++t) {
    const int64_t p = pos0 + t;
    const int j = static_cast<int>(p % r);
    float* gt = g.data() + t * cc;
    const float* ape = cw.ape + static_cast<int64_t>(j) * cc;
    for (int64_t ch = 0; ch < cc; ++ch) gt[ch] = gt[ch] + ape[ch];
    const int row = coff == 2 ? r + j : j;
    std::copy(a.data() + t * cc, a.data() + (t + 1) * cc, cs.kv_row(row));
    std::copy(gt, gt + cc, cs.score_row(row));
    if (j != r - 1) continue;
    // Block complete: pool the candidates per channel.
    const int rows = coff * r;
    for (int i = 0; i < rows; ++i) {
      const int64_t off = (coff == 2 && i >= r) ? c : 0;
      vals[static_cast<size_t>(i)] = cs.kv_row(i) + off;
      scs[static_cast<size_t>(i)] = cs.score_row(i) + off;
    }
    mc.be->row_ops().softmax_pool(vals.data(), scs.data(), rows, c, z.data());
    if (coff == 2) {  // this block becomes the "previous block" half
      std::copy(cs.kv_row(r), cs.kv_row(r) + r * cc, cs.kv_row(0));
      std::copy(cs.score_row(r), cs.score_row(r) + r * cc, cs.score_row(0));
    }
    const int64_t entry = p / r;
    for (auto& v : z) v = ref::bf16r(v);
    const RowOps& ops = mc.be->row_ops();
    ops.rms_norm(z.data(), cw.norm, c, eps, z.data());
    ref::rope_cos_sin(rf, entry * r, cs_cos.data(), cs_sin.data());  // block's first position
    ops.rope_apply(z.data() + c - Dr, cs_cos.data(), cs_sin.data(), Dr / 2, false);
    if (kind == EntryKind::Attention) {
      ops.fp8_sim(z.data(), c - Dr, kKvSimBlock);
    } else {
      mc.be->hadamard_rows(z.data(), 1, c);
      ops.fp4_sim(z.data(), c, kIdxSimBlock);
    }
    store.write(entry, z.data());
    n_emitted = entry + 1;
  }
}

// Lightning indexer (spec 4.7, ratio-4 layers): scores every visible indexer entry for each query
// and keeps the min(index_topk, visible) best in descending score order (ties -> lower entry) in
// sc.sel [n][index_topk] (count per row in sc.nsel). Runs the indexer's compressor first.
void indexer_select(const ModelContext& mc, int id, BlockState& st, ConstRows X, const float* qlat,
                    int64_t pos0, const RopeRows& rr, ForwardScratch& sc, const DebugHook* hook) {
  const ModelConfig& cfg = mc.w->config;
  const Backend& be = *mc.be;
  const IndexerWeights& iw = *mc.block(id).attn.indexer;
  const int64_t n = X.n, ql = cfg.q_lora_rank;
  const int Dr = cfg.rope_head_dim, topk = cfg.index_topk;
  auto& sel = sc.sel;
  auto& nsel = sc.nsel;
  const int nih = cfg.index_n_heads, ihd = cfg.index_head_dim;
  const int64_t qw = int64_t{nih} * ihd;
  auto &qi = sc.qi, &wts = sc.wts;
  auto& visible = sc.visible;
  qi.resize(static_cast<size_t>(n * qw));
  wts.resize(static_cast<size_t>(n * nih));
  be.linear_fp8(iw.wq_b, ConstRows{qlat, n, ql}, Rows{qi.data(), n, qw});
  {
    DSV4_PHASE("indexer_q");
    be.for_units(n * nih, 6.0 * Dr, [&](int64_t b, int64_t e) {  // unit: one head of one row
      for (int64_t r = b; r < e; ++r) rr.apply(&qi[r * ihd] + ihd - Dr, r / nih, false);
    });
    be.hadamard_rows(qi.data(), n * nih, ihd);
    be.for_units(n * nih, 5.0 * ihd, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) be.row_ops().fp4_sim(&qi[r * ihd], ihd, kIdxSimBlock);
    });
  }
  be.linear_bf16(iw.weights_proj, X, Rows{wts.data(), n, nih});
  // Python float constant times a bf16 tensor: the constant is rounded to bf16 first.
  const float ws = ref::bf16r(static_cast<float>(std::pow(static_cast<double>(ihd), -0.5) *
                                                 std::pow(static_cast<double>(nih), -0.5)));
  for (auto& v : wts) v = ref::bf16r(v * ws);
  compress_chunk(mc, iw.compressor, mc.rope[static_cast<size_t>(id)], st.icomp, st.ikv, st.n_ikv,
                 X, pos0, EntryKind::Indexer, sc);
  DSV4_PHASE("indexer_topk");
  const int64_t nk = st.n_ikv;
  visible.resize(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) visible[t] = std::min<int64_t>((pos0 + t + 1) / 4, nk);
  // scores in bounded blocks of keys, top-k kept per row (runtime/kv_gather.h)
  sel.assign(static_cast<size_t>(n * topk), -1);
  indexer_topk_stored(be, IndexerScoreArgs{qi.data(), wts.data(), n, nih, ihd, nullptr, nk, visible.data(), nullptr},
                      st.ikv, topk, sel.data(), nsel.data(), sc.gather);
  if (hook && *hook) {  // ascending, -1 padded (the golden indexer_sel layout)
    std::vector<float> sorted;  // debug hook only
    sorted.assign(static_cast<size_t>(n * topk), -1.0f);
    for (int64_t t = 0; t < n; ++t) {
      std::vector<int32_t> s(sel.begin() + t * topk, sel.begin() + t * topk + nsel[t]);
      std::sort(s.begin(), s.end());
      for (size_t i = 0; i < s.size(); ++i) sorted[t * topk + i] = static_cast<float>(s[i]);
    }
    emit("indexer_sel", hook, id, pos0, n, topk, sorted.data());
  }
}

// Key lists (spec 4.8) of the chunk's queries into sc.lists [n][L]; returns L. Query p's list is
// [window positions max(0, p-window+1)..p ascending, -1 padded to the layout's window width] then
// its compressed entries (HCA: all visible, ascending; CSA: the indexer's selection in descending
// score order), -1 padded. Window position q is key row q - base_pos (the staged rows), or row
// q mod ring when ring > 0 (the window ring's own rows); compressed entry i is split + i. The
// layout decides which keys share a 64-key block of the attention kernel.
int64_t build_key_lists(const ModelConfig& cfg, int ratio, int64_t pos0, int64_t n, ChunkLayout layout,
                        int64_t base_pos, int64_t ring, int64_t split, ForwardScratch& sc) {
  const int64_t W = cfg.window, topk = cfg.index_topk;
  const int64_t ww = std::max<int64_t>(layout.window_width, std::min<int64_t>(pos0 + n, W));
  int64_t ncomp = 0;
  if (ratio == 4) ncomp = std::min<int64_t>(topk, (pos0 + n) / 4);
  else if (ratio > 0) ncomp = (pos0 + n) / ratio;
  const int64_t L = ww + ncomp;
  auto& lists = sc.lists;
  lists.assign(static_cast<size_t>(n * L), -1);
  for (int64_t t = 0; t < n; ++t) {
    const int64_t p = pos0 + t;
    int32_t* lt = &lists[t * L];
    const int64_t lo = std::max<int64_t>(0, p - W + 1);
    for (int64_t qp = lo; qp <= p; ++qp)
      lt[qp - lo] = static_cast<int32_t>(ring > 0 ? qp % ring : qp - base_pos);
    if (ratio == 4) {
      for (int64_t k = 0; k < sc.nsel[t]; ++k) lt[ww + k] = static_cast<int32_t>(split + sc.sel[t * topk + k]);
    } else if (ratio > 0) {
      const int64_t vis = (p + 1) / ratio;
      for (int64_t i = 0; i < vis; ++i) lt[ww + i] = static_cast<int32_t>(split + i);
    }
  }
  return L;
}

}  // namespace

void attention_forward(const ModelContext& mc, int id, BlockState& st, const float* x, int64_t pos0,
                       int64_t n, ChunkLayout layout, float* out, ForwardScratch& sc,
                       const DebugHook* hook) {
  const ModelConfig& cfg = mc.w->config;
  const BlockWeights& bw = mc.block(id);
  const AttentionWeights& aw = bw.attn;
  const Backend& be = *mc.be;
  const int H = cfg.n_heads, D = cfg.head_dim, Dr = cfg.rope_head_dim, Dn = D - Dr;
  const int64_t dim = cfg.dim, ql = cfg.q_lora_rank, W = cfg.window, HD = int64_t{H} * D;
  const float eps = static_cast<float>(cfg.norm_eps);
  const int ratio = st.ratio;
  const ConstRows X{x, n, dim};

  RopeRows rr{sc.rope_cos, sc.rope_sin};
  {
    DSV4_PHASE("rope_tables");
    rr.fill(mc, id, pos0, n, sc);
  }

  // ---- query path: wq_a -> q_norm -> wq_b -> per-head norm -> RoPE
  auto &qlat = sc.qlat, &q = sc.q, &kv = sc.kv;
  qlat.resize(static_cast<size_t>(n * ql));
  q.resize(static_cast<size_t>(n * HD));
  kv.resize(static_cast<size_t>(n * D));
  be.linear_fp8(aw.wq_a, X, Rows{qlat.data(), n, ql});
  {
    DSV4_PHASE("q_norm");
    be.for_units(n, 3.0 * ql, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) be.row_ops().rms_norm(&qlat[t * ql], aw.q_norm, ql, eps, &qlat[t * ql]);
    });
  }
  be.linear_fp8(aw.wq_b, ConstRows{qlat.data(), n, ql}, Rows{q.data(), n, HD});
  {
    DSV4_PHASE("q_heads");
    be.for_units(n * H, 4.0 * D, [&](int64_t b, int64_t e) {  // unit: one head of one row
      for (int64_t r = b; r < e; ++r) {
        float* qh = &q[r * D];
        be.row_ops().head_norm_bf16(qh, D, eps);
        rr.apply(qh + Dn, r / H, false);
      }
    });
  }
  emit("q", hook, id, pos0, n, HD, q.data());

  // ---- this token's window entry: wkv -> kv_norm -> RoPE -> FP8 simulation of the nope dims
  be.linear_fp8(aw.wkv, X, Rows{kv.data(), n, D});
  {
    DSV4_PHASE("kv_row");
    be.for_units(n, 8.0 * D, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        float* kt = &kv[t * D];
        be.row_ops().rms_norm(kt, aw.kv_norm, D, eps, kt);
        rr.apply(kt + Dn, t, false);
        be.row_ops().fp8_sim(kt, Dn, kKvSimBlock);
      }
    });
  }
  emit("kv", hook, id, pos0, n, D, kv.data());

  // ---- compressor(s) run before attention: entries completed inside the chunk are visible
  if (ratio > 0)
    compress_chunk(mc, *aw.compressor, mc.rope[static_cast<size_t>(id)], st.comp, st.ckv, st.n_ckv,
                   X, pos0, EntryKind::Attention, sc);

  // ---- lightning indexer (ratio 4): top-k compressed entries per query, descending score
  sc.nsel.assign(static_cast<size_t>(n), 0);
  if (ratio == 4) indexer_select(mc, id, st, X, qlat.data(), pos0, rr, sc, hook);

  // ---- key table: the window's keys, then the compressed rows. A decode step (one row) writes
  // its kv into the window ring first and attends to the ring's float rows in place; a chunk
  // stages [older window positions from the ring ; the chunk's kv] (the ring cannot hold a
  // chunk's rows and the older ones they attend to at once).
  const int64_t nold = std::min<int64_t>(pos0, W - 1);
  const int64_t base_pos = pos0 - nold;  // position of staging row 0
  static const int kPhaseKeys = phase_register("attn_keys");
  PhaseScope phase_keys(kPhaseKeys);  // window rows, key lists and the gather
  const bool in_ring = n == 1 && st.window.floats() && st.window.capacity() == W;
  const float* window_keys = nullptr;
  const uint16_t* window_bf16 = nullptr;
  int64_t split = 0;
  if (in_ring) {
    st.window.write(pos0 % W, kv.data());
    window_keys = st.window.floats();
    window_bf16 = st.window.bf16();
    split = W;
  } else {
    auto& staging = sc.staging;
    staging.resize(static_cast<size_t>((nold + n) * D));
    // older window rows: ring slots (base_pos + i) % W, decoded in pieces over the backend's threads
    be.for_units(nold, 0.5 * D, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e;) {
        const int64_t slot = (base_pos + i) % W, len = std::min(e - i, W - slot);
        read_kv_rows(be, st.window, nullptr, slot, len, &staging[i * D]);
        i += len;
      }
    });
    std::copy(kv.begin(), kv.begin() + n * D, staging.begin() + nold * D);
    window_keys = staging.data();
    split = nold + n;
  }

  // ---- key lists (spec 4.8): window part, then the compressed part
  const int64_t L = build_key_lists(cfg, ratio, pos0, n, layout, base_pos, in_ring ? W : 0, split, sc);
  const auto& lists = sc.lists;

  // ---- sparse attention with sink, inverse RoPE on the outputs
  auto& o = sc.o;
  o.resize(static_cast<size_t>(n * HD));
  AttentionArgs args;
  args.q = q.data();
  args.n = n;
  args.n_heads = H;
  args.head_dim = D;
  args.keys = window_keys;
  args.keys_bf16 = window_bf16;
  args.split = split;
  // the compressed entries the lists reference, decoded from the store
  if (ratio > 0) gather_compressed(*mc.be, st.ckv, split, sc.lists.data(), n * L, sc.comp_rows, sc.gather);
  args.keys2 = ratio > 0 ? sc.comp_rows.data() : nullptr;
  args.lists = lists.data();
  args.list_len = L;
  args.sink = aw.attn_sink;
  args.scale = static_cast<float>(std::pow(static_cast<double>(D), -0.5));
  args.out = o.data();
  phase_keys.end();
  {
    DSV4_PHASE("attention");
    be.sparse_attention(args);
    be.for_units(n * H, 6.0 * Dr, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) rr.apply(&o[r * D] + Dn, r / H, true);
    });
  }
  emit("attn_o", hook, id, pos0, n, HD, o.data());

  // ---- grouped output projection: wo_a per group (bf16, no act quant), then wo_b (FP8)
  const int G = cfg.o_groups;
  const int64_t R = cfg.o_lora_rank, gw = HD / G, GR = int64_t{G} * R;
  auto& u = sc.u;
  u.resize(static_cast<size_t>(n * GR));
  if (mc.wo_a[static_cast<size_t>(id)].empty() && aw.wo_a_fp8.w) {
    const Fp8Mat& m = aw.wo_a_fp8;  // group g: rows [g R, (g + 1) R) (whole 128-row blocks)
    auto& mats = sc.wo_a_groups;
    mats.resize(static_cast<size_t>(G));
    sc.fp8groups.clear();
    for (int g = 0; g < G; ++g) {
      mats[static_cast<size_t>(g)] = Fp8Mat{m.w + g * R * m.cols, m.s + (g * R / 128) * m.scale_cols(), R, m.cols};
      sc.fp8groups.push_back({&mats[static_cast<size_t>(g)], ConstRows{o.data() + g * gw, n, HD},
                              Rows{u.data() + g * R, n, GR}});
    }
    be.linear_fp8_grouped(sc.fp8groups, true);
  } else {
    const Bf16Mat woa = mc.wo_a_mat(id);
    for (int g = 0; g < G; ++g) {
      const Bf16Mat wg{woa.w + g * R * gw, R, gw};
      be.linear_bf16(wg, ConstRows{o.data() + g * gw, n, HD}, Rows{u.data() + g * R, n, GR});
    }
  }
  be.linear_fp8(aw.wo_b, ConstRows{u.data(), n, GR}, Rows{out, n, dim});
  emit("attn_out", hook, id, pos0, n, dim, out);

  // ---- window ring keeps the last `window` positions
  DSV4_PHASE("window_write");
  if (!in_ring)
    for (int64_t t = std::max<int64_t>(0, n - W); t < n; ++t) st.window.write((pos0 + t) % W, &kv[t * D]);
}

}  // namespace dsv4
