// config.json (Hugging Face layout of DeepSeek-V4) -> ModelConfig. Spec section 2.
// Every field is read from the file; nothing is hard-coded to the Flash shapes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dsv4 {

enum class ScoreFunc { SqrtSoftplus, Sigmoid, Softmax };

struct ModelConfig {
  // identity
  std::string model_type;           // "deepseek_v4"
  int64_t vocab_size = 0;
  int64_t dim = 0;                  // hidden_size
  int n_layers = 0;                 // num_hidden_layers (MTP not included)
  int n_mtp_layers = 0;             // num_nextn_predict_layers
  // attention
  int n_heads = 0;                  // num_attention_heads
  int head_dim = 0;                 // D (512 for Flash/Pro)
  int rope_head_dim = 0;            // Dr (64), the LAST Dr dims of a head
  int64_t q_lora_rank = 0;
  int64_t o_lora_rank = 0;
  int o_groups = 0;
  int window = 0;                   // sliding_window
  std::vector<int> compress_ratios; // n_layers + n_mtp_layers entries, each 0 / 4 / >4 (HCA)
  // RoPE
  double rope_theta = 10000.0;          // ratio-0 layers, no YaRN
  double compress_rope_theta = 160000.0;// compressed layers, YaRN
  double rope_factor = 1.0;             // rope_scaling.factor
  int64_t original_seq_len = 0;         // rope_scaling.original_max_position_embeddings (0: no YaRN)
  double beta_fast = 32.0, beta_slow = 1.0;
  int64_t max_position_embeddings = 0;
  // indexer
  int index_n_heads = 0;
  int index_head_dim = 0;
  int index_topk = 0;
  // MoE
  int n_routed_experts = 0;
  int n_shared_experts = 1;
  int n_activated_experts = 0;      // num_experts_per_tok
  int64_t moe_inter_dim = 0;        // moe_intermediate_size
  ScoreFunc score_func = ScoreFunc::SqrtSoftplus;
  double route_scale = 1.0;         // routed_scaling_factor
  int n_hash_layers = 0;
  double swiglu_limit = 0.0;        // 0 = no clamp
  // hyper-connections
  int hc_mult = 4;
  int hc_sinkhorn_iters = 20;
  double hc_eps = 1e-6;
  double norm_eps = 1e-6;           // rms_norm_eps
  // tokens
  int bos_token_id = 0;
  int eos_token_id = 1;

  // derived
  int ratio(int layer) const { return compress_ratios.at(static_cast<size_t>(layer)); }
  int nope_dim() const { return head_dim - rope_head_dim; }
  int hc_mix() const { return (2 + hc_mult) * hc_mult; }
};

// Parses and validates (ranges, consistency, block divisibility). Throws Error naming the field,
// the expected and the actual value. `source` names the file in messages.
ModelConfig parse_config(const nlohmann::json& j, const std::string& source = "config.json");
ModelConfig load_config(const std::string& path);  // reads + parses a config.json file

}  // namespace dsv4
