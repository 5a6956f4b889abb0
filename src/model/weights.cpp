// load_weights: binds every tensor of the checkpoint inventory (spec 3.2, golden TENSORS.md) into
// ModelWeights from ONE declarative table built from the config.
//
// Decisions:
// * Unexpected tensors are an ERROR. The inventory is a pure function of the config, so an extra
//   tensor means the config and the checkpoint disagree (e.g. a compressor in a layer the config
//   calls ratio 0, or more experts than n_routed_experts); running anyway would silently ignore
//   trained weights. The only tolerated extras are the MTP aliases `mtp.K.emb*` /
//   `mtp.K.head.weight` (convert.py drops them; the MTP block shares embed/head), and all `mtp.*`
//   tensors when LoadOptions::load_mtp is false.
// * Alignment: views point straight into the mapped shards, or into the private copy where
//   LoadOptions::prepare made one (every tensor 64-byte aligned). A BF16/F32 tensor whose data pointer is
//   not aligned for its element type (possible: safetensors offsets carry no alignment guarantee)
//   is copied into aligned storage owned by ModelWeights::owned, whatever its size. For the small
//   tensors this is free; a large misaligned tensor (e.g. an embedding) costs its size in RAM once,
//   which is preferable to unaligned typed loads (UB) in every kernel. Byte tensors (FP8/FP4/E8M0)
//   need no alignment. tid2eid is always copied (converted to int32).
#include "model/weights.h"

#include <cstring>
#include <filesystem>
#include <set>
#include <unordered_set>
#include <variant>

#include "core/error.h"

namespace dsv4 {

namespace {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// What a table row binds into; the alternative also fixes the storage format:
//   Fp8Mat*            FP8 E4M3 weight `<name>.weight` [rows, cols] + E8M0 `<name>.scale` [ceil/128, ceil/128]
//   Fp4Mat*            packed E2M1 `<name>.weight` I8 [rows, cols/2] + E8M0 `<name>.scale` [rows, cols/32]
//   Bf16Mat*           BF16 `<name>` [rows, cols]
//   const uint16_t**   BF16 `<name>` vector
//   const float**      F32 `<name>` of the given shape
//   std::vector<int32_t>*  `<name>` I64 or I32 [vocab, K] expert ids (hash routing table)
//   AttentionWeights*  wo_a: FP8 + scale, or BF16 without scale
using Target = std::variant<Fp8Mat*, Fp4Mat*, Bf16Mat*, const uint16_t**, const float**, std::vector<int32_t>*,
                            AttentionWeights*>;

struct Row {
  std::string name;  // full tensor name, or base name (without .weight/.scale) for FP8/FP4/wo_a
  Shape shape;       // logical shape
  Target target;
};

// ---- the inventory ----------------------------------------------------------------------

struct Table {
  std::vector<Row> rows;
  void add(std::string name, Shape shape, Target t) { rows.push_back({std::move(name), std::move(shape), t}); }
};

void hc_rows(Table& t, const std::string& p, const std::string& which, HcParams& hc, int mix, int64_t hcd, int64_t nscale) {
  hc.mix = mix;
  t.add(p + "hc_" + which + "_fn", {mix, hcd}, &hc.fn);
  t.add(p + "hc_" + which + "_base", {mix}, &hc.base);
  t.add(p + "hc_" + which + "_scale", {nscale}, &hc.scale);
}

void compressor_rows(Table& t, const std::string& p, const ModelConfig& c, CompressorWeights& cw, int ratio, int width) {
  cw.ratio = ratio;
  cw.coff = ratio == 4 ? 2 : 1;
  cw.width = width;
  const int64_t out = int64_t(cw.coff) * width;
  t.add(p + "wkv.weight", {out, c.dim}, &cw.wkv);
  t.add(p + "wgate.weight", {out, c.dim}, &cw.wgate);
  t.add(p + "ape", {ratio, out}, &cw.ape);
  t.add(p + "norm.weight", {width}, &cw.norm);
}

void block_rows(Table& t, const ModelConfig& c, const std::string& p, BlockWeights& b) {
  const int64_t d = c.dim, H = c.n_heads, D = c.head_dim, G = c.o_groups, R = c.o_lora_rank;
  const int64_t I = c.moe_inter_dim, E = c.n_routed_experts;
  t.add(p + "attn_norm.weight", {d}, &b.attn_norm);
  t.add(p + "ffn_norm.weight", {d}, &b.ffn_norm);
  hc_rows(t, p, "attn", b.hc_attn, c.hc_mix(), int64_t(c.hc_mult) * d, 3);
  hc_rows(t, p, "ffn", b.hc_ffn, c.hc_mix(), int64_t(c.hc_mult) * d, 3);

  AttentionWeights& a = b.attn;
  t.add(p + "attn.wq_a", {c.q_lora_rank, d}, &a.wq_a);
  t.add(p + "attn.q_norm.weight", {c.q_lora_rank}, &a.q_norm);
  t.add(p + "attn.wq_b", {H * D, c.q_lora_rank}, &a.wq_b);
  t.add(p + "attn.wkv", {D, d}, &a.wkv);
  t.add(p + "attn.kv_norm.weight", {D}, &a.kv_norm);
  t.add(p + "attn.wo_a", {G * R, (H / G) * D}, &a);
  t.add(p + "attn.wo_b", {d, G * R}, &a.wo_b);
  t.add(p + "attn.attn_sink", {H}, &a.attn_sink);
  if (b.ratio > 0) {
    a.compressor.emplace();
    compressor_rows(t, p + "attn.compressor.", c, *a.compressor, b.ratio, c.head_dim);
  }
  if (b.ratio == 4) {
    a.indexer.emplace();
    IndexerWeights& ix = *a.indexer;
    t.add(p + "attn.indexer.wq_b", {int64_t(c.index_n_heads) * c.index_head_dim, c.q_lora_rank}, &ix.wq_b);
    t.add(p + "attn.indexer.weights_proj.weight", {c.index_n_heads, d}, &ix.weights_proj);
    compressor_rows(t, p + "attn.indexer.compressor.", c, ix.compressor, 4, c.index_head_dim);
  }

  MoeWeights& m = b.ffn;
  t.add(p + "ffn.gate.weight", {E, d}, &m.gate);
  if (b.hash_routed)
    t.add(p + "ffn.gate.tid2eid", {c.vocab_size, c.n_activated_experts}, &m.tid2eid);
  else
    t.add(p + "ffn.gate.bias", {E}, &m.bias);
  m.experts.resize(static_cast<size_t>(E));
  for (int64_t e = 0; e < E; ++e) {
    const std::string q = p + "ffn.experts." + std::to_string(e) + ".";
    ExpertWeights& x = m.experts[static_cast<size_t>(e)];
    t.add(q + "w1", {I, d}, &x.w1);
    t.add(q + "w2", {d, I}, &x.w2);
    t.add(q + "w3", {I, d}, &x.w3);
  }
  t.add(p + "ffn.shared_experts.w1", {I, d}, &m.shared.w1);
  t.add(p + "ffn.shared_experts.w2", {d, I}, &m.shared.w2);
  t.add(p + "ffn.shared_experts.w3", {I, d}, &m.shared.w3);
}

// Sizes every container first (so the pointers in the table stay valid), then lists the rows.
Table build_inventory(const ModelConfig& c, ModelWeights& w, bool load_mtp) {
  Table t;
  const int64_t d = c.dim, V = c.vocab_size, hcd = int64_t(c.hc_mult) * d;
  t.add("embed.weight", {V, d}, &w.embed);
  t.add("head.weight", {V, d}, &w.head);
  t.add("norm.weight", {d}, &w.norm);
  hc_rows(t, "", "head", w.hc_head, c.hc_mult, hcd, 1);
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    BlockWeights& b = w.layers[static_cast<size_t>(l)];
    b.layer_id = l;
    b.ratio = c.ratio(l);
    b.hash_routed = l < c.n_hash_layers;
    block_rows(t, c, "layers." + std::to_string(l) + ".", b);
  }
  if (load_mtp) {
    w.mtp.resize(static_cast<size_t>(c.n_mtp_layers));
    for (int k = 0; k < c.n_mtp_layers; ++k) {
      MtpWeights& m = w.mtp[static_cast<size_t>(k)];
      const std::string p = "mtp." + std::to_string(k) + ".";
      m.block.layer_id = c.n_layers + k;
      m.block.ratio = c.ratio(c.n_layers + k);
      m.block.hash_routed = false;  // MTP is always score-routed (layer id >= n_hash_layers)
      block_rows(t, c, p, m.block);
      t.add(p + "e_proj", {d, d}, &m.e_proj);
      t.add(p + "h_proj", {d, d}, &m.h_proj);
      t.add(p + "enorm.weight", {d}, &m.enorm);
      t.add(p + "hnorm.weight", {d}, &m.hnorm);
      t.add(p + "norm.weight", {d}, &m.norm);
      hc_rows(t, p, "head", m.hc_head, c.hc_mult, hcd, 1);
    }
  }
  return t;
}

// ---- binding ----------------------------------------------------------------------------

class Binder {
 public:
  Binder(const TensorStore& st, ModelWeights& w, const std::string& dir) : w_(w), dir_(dir) {
    for (const auto& [name, v] : st.all()) {
      std::string n = name.rfind("model.", 0) == 0 ? name.substr(6) : name;
      auto [it, fresh] = by_name_.emplace(n, &v);
      if (!fresh)
        throw_error(v.file, ": tensor ", name, " duplicates tensor ", it->second->name, " in ", it->second->file,
                    " (same name after stripping the optional \"model.\" prefix)");
    }
  }

  void bind(const Row& r) {
    std::visit([&](auto* p) { bind_one(r, p); }, r.target);
  }

  // Everything not consumed by the table must be an ignorable alias.
  void check_unexpected(bool load_mtp) const {
    for (const auto& [n, v] : by_name_) {
      if (used_.count(n)) continue;
      if (n.rfind("mtp.", 0) == 0) {
        if (!load_mtp) continue;
        const size_t dot = n.find('.', 4);
        const std::string rest = dot == std::string::npos ? "" : n.substr(dot + 1);
        if (rest.rfind("emb", 0) == 0 || rest == "head.weight") continue;  // MTP aliases of embed/head
      }
      throw_error(v->file, ": tensor ", v->name,
                  ": unexpected (not in the tensor inventory implied by config.json; config and checkpoint disagree?)");
    }
  }

 private:
  const TensorView* get(const std::string& name, bool required = true) {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) {
      if (required) throw_error(dir_, ": tensor ", name, ": missing from the checkpoint");
      return nullptr;
    }
    used_.insert(name);
    return it->second;
  }
  static void expect(const TensorView& v, const std::string& name, DType dt, const Shape& shape) {
    if (v.dtype != dt)
      throw_error(v.file, ": tensor ", name, ": expected dtype ", dtype_name(dt), ", got ", dtype_name(v.dtype));
    if (v.shape != shape)
      throw_error(v.file, ": tensor ", name, ": expected shape ", shape_str(shape), ", got ", shape_str(v.shape));
  }
  // Returns a pointer aligned for `align`, copying the data when the mapped one is not.
  const void* aligned(const TensorView& v, size_t align) {
    if (reinterpret_cast<uintptr_t>(v.data) % align == 0) return v.data;
    auto buf = std::make_unique<uint8_t[]>(v.nbytes ? v.nbytes : 1);
    std::memcpy(buf.get(), v.data, v.nbytes);
    w_.owned.push_back(std::move(buf));
    return w_.owned.back().get();
  }

  void bind_one(const Row& r, Fp8Mat* m) {
    const std::string wn = r.name + ".weight", sn = r.name + ".scale";
    const TensorView& wv = *get(wn);
    expect(wv, wn, DType::F8_E4M3, r.shape);
    const TensorView& sv = *get(sn);
    expect(sv, sn, DType::F8_E8M0, {cdiv(r.shape[0], 128), cdiv(r.shape[1], 128)});
    *m = {wv.data, sv.data, r.shape[0], r.shape[1]};
  }
  void bind_one(const Row& r, Fp4Mat* m) {
    const std::string wn = r.name + ".weight", sn = r.name + ".scale";
    const TensorView& wv = *get(wn);
    expect(wv, wn, DType::I8, {r.shape[0], r.shape[1] / 2});
    const TensorView& sv = *get(sn);
    expect(sv, sn, DType::F8_E8M0, {r.shape[0], r.shape[1] / 32});
    *m = {wv.data, sv.data, r.shape[0], r.shape[1]};
  }
  void bind_one(const Row& r, Bf16Mat* m) {
    const TensorView& v = *get(r.name);
    expect(v, r.name, DType::BF16, r.shape);
    *m = {static_cast<const uint16_t*>(aligned(v, 2)), r.shape[0], r.shape[1]};
  }
  void bind_one(const Row& r, const uint16_t** p) {
    const TensorView& v = *get(r.name);
    expect(v, r.name, DType::BF16, r.shape);
    *p = static_cast<const uint16_t*>(aligned(v, 2));
  }
  void bind_one(const Row& r, const float** p) {
    const TensorView& v = *get(r.name);
    expect(v, r.name, DType::F32, r.shape);
    *p = static_cast<const float*>(aligned(v, 4));
  }
  void bind_one(const Row& r, std::vector<int32_t>* ids) {
    const TensorView& v = *get(r.name);
    if (v.dtype != DType::I64 && v.dtype != DType::I32)
      throw_error(v.file, ": tensor ", r.name, ": expected dtype I64 (or I32), got ", dtype_name(v.dtype));
    if (v.shape != r.shape)
      throw_error(v.file, ": tensor ", r.name, ": expected shape ", shape_str(r.shape), " (vocab_size, num_experts_per_tok), got ",
                  shape_str(v.shape));
    const int64_t rows = r.shape[0], k = r.shape[1], E = w_.config.n_routed_experts;
    ids->resize(static_cast<size_t>(rows * k));
    const size_t es = dtype_size(v.dtype);
    for (int64_t i = 0; i < rows * k; ++i) {
      int64_t x = 0;
      if (es == 8) {
        std::memcpy(&x, v.data + i * 8, 8);
      } else {
        int32_t y = 0;
        std::memcpy(&y, v.data + i * 4, 4);
        x = y;
      }
      if (x < 0 || x >= E)
        throw_error(v.file, ": tensor ", r.name, ": row ", i / k, " holds expert id ", x, ", expected [0, ", E, ")");
      (*ids)[static_cast<size_t>(i)] = static_cast<int32_t>(x);
    }
    for (int64_t row = 0; row < rows; ++row)
      for (int64_t a = 0; a < k; ++a)
        for (int64_t b = a + 1; b < k; ++b)
          if ((*ids)[size_t(row * k + a)] == (*ids)[size_t(row * k + b)])
            throw_error(v.file, ": tensor ", r.name, ": row ", row, " lists expert ", (*ids)[size_t(row * k + a)],
                        " twice (expected ", k, " distinct experts)");
  }
  void bind_one(const Row& r, AttentionWeights* a) {
    const std::string wn = r.name + ".weight", sn = r.name + ".scale";
    const TensorView& wv = *get(wn);
    if (wv.dtype == DType::BF16) {
      expect(wv, wn, DType::BF16, r.shape);
      if (const TensorView* s = get(sn, false))
        throw_error(s->file, ": tensor ", sn, ": unexpected scale for a BF16 (already dequantised) wo_a");
      a->wo_a_bf16 = {static_cast<const uint16_t*>(aligned(wv, 2)), r.shape[0], r.shape[1]};
      return;
    }
    if (wv.dtype != DType::F8_E4M3)
      throw_error(wv.file, ": tensor ", wn, ": expected dtype F8_E4M3 (with .scale) or BF16, got ", dtype_name(wv.dtype));
    bind_one(r, &a->wo_a_fp8);
  }

  ModelWeights& w_;
  std::string dir_;
  std::map<std::string, const TensorView*> by_name_;  // names without the optional "model." prefix
  std::unordered_set<std::string> used_;
};

// Expands one table row into the stored tensors it stands for.
struct DeclVisitor {
  const Row& r;
  std::vector<TensorDecl>& out;
  void pair(DType w, Shape ws, Shape ss) {
    out.push_back({r.name + ".weight", w, std::move(ws)});
    out.push_back({r.name + ".scale", DType::F8_E8M0, std::move(ss)});
  }
  void operator()(Fp8Mat*) { pair(DType::F8_E4M3, r.shape, {cdiv(r.shape[0], 128), cdiv(r.shape[1], 128)}); }
  void operator()(AttentionWeights*) { (*this)(static_cast<Fp8Mat*>(nullptr)); }
  void operator()(Fp4Mat*) { pair(DType::I8, {r.shape[0], r.shape[1] / 2}, {r.shape[0], r.shape[1] / 32}); }
  void operator()(Bf16Mat*) { out.push_back({r.name, DType::BF16, r.shape}); }
  void operator()(const uint16_t**) { out.push_back({r.name, DType::BF16, r.shape}); }
  void operator()(const float**) { out.push_back({r.name, DType::F32, r.shape}); }
  void operator()(std::vector<int32_t>*) { out.push_back({r.name, DType::I64, r.shape}); }
};

}  // namespace

std::vector<TensorDecl> checkpoint_inventory(const ModelConfig& c, bool include_mtp) {
  ModelWeights scratch;  // the table binds into it; only the row list is used
  const Table t = build_inventory(c, scratch, include_mtp);
  std::vector<TensorDecl> out;
  for (const Row& r : t.rows) std::visit(DeclVisitor{r, out}, r.target);
  return out;
}

ParamCounts count_params(const ModelConfig& c) {
  ParamCounts p;
  int64_t per_expert = 0;  // parameters of one routed expert
  for (const TensorDecl& d : checkpoint_inventory(c, true)) {
    if (d.dtype == DType::F8_E8M0) continue;  // scales
    int64_t n = 1;
    for (int64_t x : d.shape) n *= x;
    if (d.dtype == DType::I8) n *= 2;  // packed FP4
    p.total += n;
    const bool mtp = d.name.rfind("mtp.", 0) == 0;
    (mtp ? p.mtp : p.main) += n;
    if (!mtp && d.name.find(".ffn.experts.") != std::string::npos) {
      p.routed_experts += n;
      if (d.name.rfind("layers.0.ffn.experts.0.", 0) == 0) per_expert += n;
    }
  }
  const int64_t unselected = int64_t(c.n_layers) * (c.n_routed_experts - c.n_activated_experts);
  // An embedding lookup reads one row: count dim parameters for it, not the whole table.
  p.active = p.main - unselected * per_expert - (c.vocab_size - 1) * c.dim;
  return p;
}

std::unique_ptr<ModelWeights> load_weights(const std::string& dir, const LoadOptions& opts) {
  auto w = std::make_unique<ModelWeights>();
  w->config = load_config((std::filesystem::path(dir) / "config.json").string());
  w->store = std::make_shared<TensorStore>(TensorStore::open_dir(dir));
  if (opts.prepare) opts.prepare(*w->store);
  const Table t = build_inventory(w->config, *w, opts.load_mtp);
  Binder b(*w->store, *w, dir);
  for (const Row& r : t.rows) b.bind(r);
  b.check_unexpected(opts.load_mtp);
  return w;
}

}  // namespace dsv4
