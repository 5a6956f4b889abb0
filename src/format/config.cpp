// config.json -> ModelConfig with validation (spec 2.1, 2.3, 3.2, 12.1).
#include "format/config.h"

#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>

#include "core/error.h"

namespace dsv4 {

using nlohmann::json;

namespace {

// Reads fields of one JSON object and reports problems as "<source>: field <name>: ...".
class Fields {
 public:
  Fields(const json& j, const std::string& source, std::string prefix = "")
      : j_(j), src_(source), prefix_(std::move(prefix)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& msg) const {
    throw_error(src_, ": field ", prefix_, field, ": ", msg);
  }
  bool has(const char* k) const { return j_.contains(k) && !j_.at(k).is_null(); }
  const json& at(const char* k) const { return j_.at(k); }

  int64_t integer(const char* k, std::optional<int64_t> def = std::nullopt) const {
    if (!has(k)) {
      if (def) return *def;
      fail(k, "required integer is missing");
    }
    const json& v = j_.at(k);
    if (v.is_number_integer()) return v.get<int64_t>();
    // 4096.0 is accepted as 4096 (some exporters write integral floats).
    if (v.is_number_float()) {
      double d = v.get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
    }
    fail(k, "expected an integer, got " + v.dump());
  }
  double number(const char* k, std::optional<double> def = std::nullopt) const {
    if (!has(k)) {
      if (def) return *def;
      fail(k, "required number is missing");
    }
    const json& v = j_.at(k);
    if (!v.is_number()) fail(k, "expected a number, got " + v.dump());
    double d = v.get<double>();
    if (!std::isfinite(d)) fail(k, "expected a finite number, got " + v.dump());
    return d;
  }
  std::string string(const char* k, std::optional<std::string> def = std::nullopt) const {
    if (!has(k)) {
      if (def) return *def;
      fail(k, "required string is missing");
    }
    const json& v = j_.at(k);
    if (!v.is_string()) fail(k, "expected a string, got " + v.dump());
    return v.get<std::string>();
  }

  // Integer in [lo, hi] (hi optional), stored into an int (range-checked).
  int64_t ranged(const char* k, int64_t lo, int64_t hi, std::optional<int64_t> def = std::nullopt) const {
    int64_t v = integer(k, def);
    if (v < lo || v > hi) {
      std::ostringstream os;
      os << "expected an integer in [" << lo << ", " << hi << "], got " << v;
      fail(k, os.str());
    }
    return v;
  }
  double positive(const char* k, std::optional<double> def = std::nullopt) const {
    double v = number(k, def);
    if (!(v > 0)) {
      std::ostringstream os;
      os << "expected a positive number, got " << v;
      fail(k, os.str());
    }
    return v;
  }

 private:
  const json& j_;
  const std::string& src_;
  std::string prefix_;
};

constexpr int64_t kIntMax = 1 << 30;   // bound for "int" fields (keeps products in int64)
constexpr int64_t kBig = int64_t(1) << 40;

bool is_pow2(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

}  // namespace

ModelConfig parse_config(const json& j, const std::string& source) {
  if (!j.is_object()) throw_error(source, ": top level is not a JSON object");
  Fields f(j, source);
  ModelConfig c;

  // ---- later variants we do not support (spec 12.1) ----
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key().rfind("dspark", 0) == 0)
      f.fail(it.key(), "DSpark draft stages (DeepSeek-V4-Flash-0731 / V4-Pro-0813 and later) are not supported; "
                       "this engine implements the April 2026 V4 release with one MTP block per "
                       "num_nextn_predict_layers");
    if (it.key().rfind("engram", 0) == 0)
      f.fail(it.key(), "engram tables (DeepSeek-V4.1) are not supported; this engine implements the April 2026 "
                       "V4 release");
  }

  c.model_type = f.string("model_type");
  if (c.model_type != "deepseek_v4")
    f.fail("model_type", "expected \"deepseek_v4\", got \"" + c.model_type + "\"");
  if (f.has("architectures")) {
    const json& a = f.at("architectures");
    bool ok = a.is_array();
    if (ok) {
      ok = false;
      for (const auto& e : a) ok = ok || (e.is_string() && e.get<std::string>() == "DeepseekV4ForCausalLM");
    }
    if (!ok) f.fail("architectures", "expected a list containing \"DeepseekV4ForCausalLM\", got " + a.dump());
  }

  c.vocab_size = f.ranged("vocab_size", 2, kIntMax);
  c.dim = f.ranged("hidden_size", 1, kIntMax);
  c.n_layers = static_cast<int>(f.ranged("num_hidden_layers", 1, 100000));
  c.n_mtp_layers = static_cast<int>(f.ranged("num_nextn_predict_layers", 0, 64, 0));

  c.n_heads = static_cast<int>(f.ranged("num_attention_heads", 1, 1 << 16));
  if (f.has("num_key_value_heads") && f.integer("num_key_value_heads") != 1)
    f.fail("num_key_value_heads", "expected 1 (one shared K=V head), got " + f.at("num_key_value_heads").dump());
  c.head_dim = static_cast<int>(f.ranged("head_dim", 2, 1 << 16));
  c.rope_head_dim = static_cast<int>(f.ranged("qk_rope_head_dim", 2, 1 << 16));
  if (c.rope_head_dim % 2 != 0)
    f.fail("qk_rope_head_dim", "expected an even number (RoPE rotates pairs), got " + std::to_string(c.rope_head_dim));
  if (c.head_dim <= c.rope_head_dim)
    f.fail("head_dim", "expected > qk_rope_head_dim (" + std::to_string(c.rope_head_dim) + "), got " +
                           std::to_string(c.head_dim));
  // The non-RoPE part of every KV entry is FP8-simulated in blocks of 64 (spec 4.5, 7.1).
  if (c.nope_dim() % 64 != 0)
    f.fail("head_dim", "expected head_dim - qk_rope_head_dim to be a multiple of 64 (FP8 KV blocks), got " +
                           std::to_string(c.head_dim) + " - " + std::to_string(c.rope_head_dim) + " = " +
                           std::to_string(c.nope_dim()));
  c.q_lora_rank = f.ranged("q_lora_rank", 1, kIntMax);
  c.o_lora_rank = f.ranged("o_lora_rank", 1, kIntMax);
  c.o_groups = static_cast<int>(f.ranged("o_groups", 1, 1 << 16));
  if (c.n_heads % c.o_groups != 0)
    f.fail("o_groups", "expected a divisor of num_attention_heads (" + std::to_string(c.n_heads) + "), got " +
                           std::to_string(c.o_groups));
  c.window = static_cast<int>(f.ranged("sliding_window", 1, 1 << 24));

  // ---- compress_ratios ----
  if (!f.has("compress_ratios") || !f.at("compress_ratios").is_array())
    f.fail("compress_ratios", "required list of per-layer compression ratios is missing or not a list");
  const size_t want = static_cast<size_t>(c.n_layers) + static_cast<size_t>(c.n_mtp_layers);
  const json& cr = f.at("compress_ratios");
  if (cr.size() != want)
    f.fail("compress_ratios", "expected " + std::to_string(want) + " entries (num_hidden_layers " +
                                  std::to_string(c.n_layers) + " + num_nextn_predict_layers " +
                                  std::to_string(c.n_mtp_layers) + "), got " + std::to_string(cr.size()));
  for (size_t i = 0; i < cr.size(); ++i) {
    const json& e = cr[i];
    if (!e.is_number_integer())
      f.fail("compress_ratios", "entry " + std::to_string(i) + " is not an integer: " + e.dump());
    int64_t r = e.get<int64_t>();
    if (!(r == 0 || r == 4 || (r > 4 && r <= (1 << 20))))
      f.fail("compress_ratios", "entry " + std::to_string(i) + ": expected 0 (SWA), 4 (CSA) or > 4 (HCA), got " +
                                    std::to_string(r) + " (ratios 1-3 belong to later variants such as V4.1)");
    c.compress_ratios.push_back(static_cast<int>(r));
  }
  bool any_csa = false;
  for (int r : c.compress_ratios) any_csa = any_csa || r == 4;

  // ---- RoPE ----
  c.rope_theta = f.positive("rope_theta", 10000.0);
  c.compress_rope_theta = f.positive("compress_rope_theta", 160000.0);
  c.max_position_embeddings = f.ranged("max_position_embeddings", 1, kBig);
  if (f.has("rope_scaling")) {
    const json& rs = f.at("rope_scaling");
    if (!rs.is_object()) f.fail("rope_scaling", "expected an object, got " + rs.dump());
    Fields r(rs, source, "rope_scaling.");
    std::string type = rs.contains("type") ? r.string("type") : r.string("rope_type", std::string("yarn"));
    if (type != "yarn") r.fail("type", "expected \"yarn\", got \"" + type + "\"");
    c.rope_factor = r.positive("factor");
    c.original_seq_len = r.ranged("original_max_position_embeddings", 1, kBig);
    c.beta_fast = r.positive("beta_fast", 32.0);
    c.beta_slow = r.positive("beta_slow", 1.0);
    if (c.rope_factor < 1.0) f.fail("rope_scaling.factor", "expected >= 1, got " + std::to_string(c.rope_factor));
    if (c.beta_fast <= c.beta_slow)
      f.fail("rope_scaling.beta_fast", "expected > beta_slow (" + std::to_string(c.beta_slow) + "), got " +
                                           std::to_string(c.beta_fast));
  } else {
    c.rope_factor = 1.0;
    c.original_seq_len = 0;  // no YaRN
  }

  // ---- indexer (needed by ratio-4 layers) ----
  if (any_csa || f.has("index_head_dim")) {
    c.index_n_heads = static_cast<int>(f.ranged("index_n_heads", 1, 1 << 16));
    c.index_head_dim = static_cast<int>(f.ranged("index_head_dim", 32, 1 << 16));
    c.index_topk = static_cast<int>(f.ranged("index_topk", 1, 1 << 24));
    if (!is_pow2(c.index_head_dim))
      f.fail("index_head_dim", "expected a power of two (Hadamard transform), got " + std::to_string(c.index_head_dim));
    if (c.index_head_dim < c.rope_head_dim)
      f.fail("index_head_dim", "expected >= qk_rope_head_dim (" + std::to_string(c.rope_head_dim) +
                                   ", its rotary part), got " + std::to_string(c.index_head_dim));
  }

  // ---- MoE ----
  c.n_routed_experts = static_cast<int>(f.ranged("n_routed_experts", 1, 1 << 16));
  c.n_shared_experts = static_cast<int>(f.integer("n_shared_experts", 1));
  if (c.n_shared_experts != 1)
    f.fail("n_shared_experts", "expected 1 (the only value the architecture defines), got " + std::to_string(c.n_shared_experts));
  c.n_activated_experts = static_cast<int>(f.ranged("num_experts_per_tok", 1, 1 << 16));
  if (c.n_activated_experts > c.n_routed_experts)
    f.fail("num_experts_per_tok", "expected <= n_routed_experts (" + std::to_string(c.n_routed_experts) + "), got " +
                                      std::to_string(c.n_activated_experts));
  c.moe_inter_dim = f.ranged("moe_intermediate_size", 1, kIntMax);
  const std::string sf = f.string("scoring_func", std::string("sqrtsoftplus"));
  if (sf == "sqrtsoftplus") c.score_func = ScoreFunc::SqrtSoftplus;
  else if (sf == "sigmoid") c.score_func = ScoreFunc::Sigmoid;
  else if (sf == "softmax") c.score_func = ScoreFunc::Softmax;
  else f.fail("scoring_func", "expected one of sqrtsoftplus, sigmoid, softmax, got \"" + sf + "\"");
  c.route_scale = f.positive("routed_scaling_factor", 1.0);
  c.n_hash_layers = static_cast<int>(f.ranged("num_hash_layers", 0, c.n_layers, 0));
  c.swiglu_limit = f.number("swiglu_limit", 0.0);
  if (c.swiglu_limit < 0) f.fail("swiglu_limit", "expected >= 0 (0 = no clamp), got " + std::to_string(c.swiglu_limit));
  if (f.has("hidden_act") && f.string("hidden_act") != "silu")
    f.fail("hidden_act", "expected \"silu\", got \"" + f.string("hidden_act") + "\"");
  if (f.has("expert_dtype") && f.string("expert_dtype") != "fp4")
    f.fail("expert_dtype", "expected \"fp4\" (packed E2M1 routed experts), got \"" + f.string("expert_dtype") +
                               "\" (re-encoded FP8 experts are not supported)");
  if (f.has("tie_word_embeddings")) {
    const json& t = f.at("tie_word_embeddings");
    if (!t.is_boolean()) f.fail("tie_word_embeddings", "expected a boolean, got " + t.dump());
    if (t.get<bool>()) f.fail("tie_word_embeddings", "expected false (V4 has separate embed and head tensors), got true");
  }

  // ---- hyper-connections, norms ----
  c.hc_mult = static_cast<int>(f.ranged("hc_mult", 1, 64, 4));
  c.hc_sinkhorn_iters = static_cast<int>(f.ranged("hc_sinkhorn_iters", 1, 10000, 20));
  c.hc_eps = f.positive("hc_eps", 1e-6);
  c.norm_eps = f.positive("rms_norm_eps", 1e-6);

  // ---- tokens (eos may be a list in HF configs; the first entry is the primary one) ----
  c.bos_token_id = static_cast<int>(f.ranged("bos_token_id", 0, c.vocab_size - 1, 0));
  if (f.has("eos_token_id") && f.at("eos_token_id").is_array()) {
    const json& a = f.at("eos_token_id");
    if (a.empty() || !a[0].is_number_integer() || a[0].get<int64_t>() < 0 || a[0].get<int64_t>() >= c.vocab_size)
      f.fail("eos_token_id", "expected token ids in [0, vocab_size), got " + a.dump());
    c.eos_token_id = a[0].get<int>();
  } else {
    c.eos_token_id = static_cast<int>(f.ranged("eos_token_id", 0, c.vocab_size - 1, 1));
  }

  // ---- quantisation ----
  if (f.has("quantization_config")) {
    const json& q = f.at("quantization_config");
    if (!q.is_object()) f.fail("quantization_config", "expected an object, got " + q.dump());
    auto str_is = [&](const char* k, const char* want_v) {
      if (!q.contains(k)) return;
      const json& v = q.at(k);
      if (!v.is_string() || v.get<std::string>() != want_v)
        f.fail(std::string("quantization_config.") + k, std::string("expected \"") + want_v + "\", got " + v.dump());
    };
    str_is("quant_method", "fp8");
    str_is("fmt", "e4m3");
    str_is("scale_fmt", "ue8m0");
    if (q.contains("weight_block_size") && q.at("weight_block_size") != json::array({128, 128}))
      f.fail("quantization_config.weight_block_size", "expected [128, 128], got " + q.at("weight_block_size").dump());
  }

  // ---- block divisibility ----
  // FP8 weight scales use ceil(rows/128) x ceil(cols/128), so the stored format tolerates partial
  // blocks; but every FP8 (and FP4) GEMM quantises its ACTIVATION per 128 consecutive values along
  // K (spec 6.2), so every K (input width) of a quantised linear must be a multiple of 128:
  // hidden_size (wq_a, wkv, shared w1/w3, routed w1/w3, e_proj, h_proj), q_lora_rank (wq_b,
  // indexer.wq_b), o_groups*o_lora_rank (wo_b), moe_intermediate_size (shared and routed w2).
  // This also covers the FP4 per-32 blocks. wo_a is a BF16 product without activation
  // quantisation, and output widths (rows) need no multiple of 128.
  auto k128 = [&](const char* field, int64_t v, const std::string& what) {
    if (v % 128 != 0)
      f.fail(field, "expected " + what + " to be a multiple of 128 (per-128 activation quantisation along K), got " +
                        std::to_string(v));
  };
  k128("hidden_size", c.dim, "hidden_size");
  k128("q_lora_rank", c.q_lora_rank, "q_lora_rank");
  k128("o_lora_rank", c.o_groups * c.o_lora_rank, "o_groups * o_lora_rank");
  k128("moe_intermediate_size", c.moe_inter_dim, "moe_intermediate_size");
  return c;
}

ModelConfig load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(path, ": cannot open config file");
  std::stringstream ss;
  ss << in.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const json::parse_error& e) {
    throw_error(path, ": not valid JSON: ", e.what());
  }
  return parse_config(j, path);
}

}  // namespace dsv4
