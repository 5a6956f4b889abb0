// Typed views of every tensor of a DeepSeek-V4 checkpoint (spec 3.2). Bound and validated at load
// from one declarative table (weights.cpp): name, dtype, shape implied by the config, required.
// All pointers point into the mmapped shards, or into the store's aligned private copy when
// LoadOptions::prepare made one (or into aligned copies for the few small tensors whose file
// offset is not aligned for their type). Weights are immutable and shared by sessions.
#pragma once
#include <functional>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "format/config.h"
#include "format/safetensors.h"

namespace dsv4 {

// FP8 E4M3 weight [rows, cols] with E8M0 scales [ceil(rows/128), ceil(cols/128)].
struct Fp8Mat {
  const uint8_t* w = nullptr;
  const uint8_t* s = nullptr;
  int64_t rows = 0, cols = 0;
  int64_t scale_cols() const { return (cols + 127) / 128; }
};

// FP4 E2M1 weight, logical [rows, cols]; stored [rows, cols/2] bytes, low nibble = even column;
// E8M0 scales [rows, cols/32].
struct Fp4Mat {
  const uint8_t* w = nullptr;
  const uint8_t* s = nullptr;
  int64_t rows = 0, cols = 0;
};

// BF16 weight [rows, cols] (raw bf16 bits).
struct Bf16Mat {
  const uint16_t* w = nullptr;
  int64_t rows = 0, cols = 0;
};

// Hyper-connection mixing parameters: fn [mix, hc*dim], base [mix], scale [3] (or [1] for hc_head).
struct HcParams {
  const float* fn = nullptr;
  const float* base = nullptr;
  const float* scale = nullptr;
  int mix = 0;  // rows of fn: (2+hc)*hc for sub-layers, hc for the head
};

struct CompressorWeights {
  int ratio = 0;            // r
  int coff = 1;             // 2 when overlapping (r == 4)
  int width = 0;            // c: head_dim for attention, index_head_dim for the indexer
  Bf16Mat wkv, wgate;       // [coff*c, dim], used in float32
  const float* ape = nullptr;     // [r, coff*c]
  const uint16_t* norm = nullptr; // [c] bf16
};

struct IndexerWeights {
  Fp8Mat wq_b;                    // [index_n_heads*index_head_dim, q_lora_rank]
  Bf16Mat weights_proj;           // [index_n_heads, dim]
  CompressorWeights compressor;   // c = index_head_dim, overlapping
};

struct AttentionWeights {
  Fp8Mat wq_a;                      // [q_lora, dim]
  const uint16_t* q_norm = nullptr; // [q_lora]
  Fp8Mat wq_b;                      // [H*D, q_lora]
  Fp8Mat wkv;                       // [D, dim]
  const uint16_t* kv_norm = nullptr;// [D]
  // wo_a [G*R, (H/G)*D]: FP8 in the release (wo_a_fp8.w != nullptr); an already converted
  // checkpoint may ship it as BF16 without a scale (wo_a_bf16.w != nullptr). Exactly one is set.
  Fp8Mat wo_a_fp8;
  Bf16Mat wo_a_bf16;
  Fp8Mat wo_b;                      // [dim, G*R]
  const float* attn_sink = nullptr; // [H]
  std::optional<CompressorWeights> compressor;  // ratio > 0
  std::optional<IndexerWeights> indexer;        // ratio == 4
};

struct ExpertWeights {
  Fp4Mat w1, w2, w3;  // w1 gate [I, dim], w3 up [I, dim], w2 down [dim, I]
};

struct SharedExpertWeights {
  Fp8Mat w1, w2, w3;
};

struct MoeWeights {
  Bf16Mat gate;                       // [E, dim], used in float32
  const float* bias = nullptr;        // [E], score-routed layers (nullptr in hash layers)
  std::vector<int32_t> tid2eid;       // [vocab, K] copy (I64 or I32 in the file), hash layers only
  std::vector<ExpertWeights> experts; // E routed experts
  SharedExpertWeights shared;
};

struct BlockWeights {
  int layer_id = 0;                   // index into compress_ratios (n_layers + k for MTP block k)
  int ratio = 0;
  bool hash_routed = false;
  const uint16_t* attn_norm = nullptr;
  const uint16_t* ffn_norm = nullptr;
  HcParams hc_attn, hc_ffn;
  AttentionWeights attn;
  MoeWeights ffn;
};

struct MtpWeights {
  BlockWeights block;
  Fp8Mat e_proj, h_proj;              // [dim, dim]
  const uint16_t* enorm = nullptr;
  const uint16_t* hnorm = nullptr;
  const uint16_t* norm = nullptr;
  HcParams hc_head;                   // mix = hc
};

struct ModelWeights {
  ModelConfig config;
  Bf16Mat embed;                      // [vocab, dim]
  Bf16Mat head;                       // [vocab, dim]
  const uint16_t* norm = nullptr;     // [dim]
  HcParams hc_head;                   // mix = hc
  std::vector<BlockWeights> layers;   // n_layers
  std::vector<MtpWeights> mtp;        // n_mtp_layers (empty when not loaded)

  // Owns the mapped files and the aligned copies the views point into.
  std::shared_ptr<TensorStore> store;
  std::vector<std::unique_ptr<uint8_t[]>> owned;
};

struct LoadOptions {
  bool load_mtp = true;
  // Runs on the opened checkpoint before any tensor is bound, so that what it does to the views
  // reaches the model: the engine reads the weights into aligned private memory here
  // (TensorStore::read_private) or populates the mapping.
  std::function<void(TensorStore&)> prepare;
};

// The checkpoint's tensor list implied by a config (names, dtypes and stored shapes, release layout:
// wo_a FP8 + scale, tid2eid I64), in inventory order with every FP8/FP4 weight directly followed by
// its scale. Built from the same table load_weights validates against.
std::vector<TensorDecl> checkpoint_inventory(const ModelConfig& c, bool include_mtp = true);

// Logical parameter counts from the inventory (FP4 bytes count two parameters, scales none).
struct ParamCounts {
  int64_t total = 0;       // main model + MTP
  int64_t main = 0;        // main model only (embed, head and the n_layers blocks)
  int64_t mtp = 0;         // MTP blocks
  int64_t routed_experts = 0;  // routed expert parameters of the main model
  int64_t active = 0;      // main model parameters used per token: all but the unselected routed
                           // experts and all but one embedding row (spec 7.3: 13.27 B for Flash)
};
ParamCounts count_params(const ModelConfig& c);

// Reads config.json + safetensors from `dir`, binds and validates every tensor of the inventory.
// Throws Error naming file, tensor, expected and actual on any mismatch.
std::unique_ptr<ModelWeights> load_weights(const std::string& dir, const LoadOptions& opts = {});

}  // namespace dsv4
