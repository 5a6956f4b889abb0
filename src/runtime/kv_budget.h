// Exact KV-cache memory accounting for one sequence (spec 5.1, 7.1, 7.2). The KV cache allocates
// exactly the byte counts computed here, so this is the single definition of its footprint.
//
// Per layer (main layers and MTP blocks alike, index = position in compress_ratios):
//   window ring      `window` entries (fixed, every layer)
//   compressed KV    context div r entries (r > 0)
//   indexer keys     context div 4 entries (r == 4)
//   compressor state FP32 kv_state + score_state, [coff*r][coff*head_dim] each (r > 0)
//   indexer state    FP32 kv_state + score_state, [2*4][2*index_head_dim] each (r == 4)
// Entry sizes by layout:
//   compact: KV = (D-Dr) E4M3 + (D-Dr)/64 E8M0 + Dr BF16 (583 B for Flash); indexer key =
//            index_head_dim/2 (E2M1) + index_head_dim/32 (E8M0) (68 B). Entries are unpadded.
//   bf16:    KV = D*2 (1024 B); indexer key = index_head_dim*2 (256 B).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "format/config.h"

namespace dsv4 {

enum class KvLayout { Compact, Bf16 };
const char* kv_layout_name(KvLayout l);  // "compact" / "bf16"

uint64_t kv_entry_bytes(const ModelConfig& c, KvLayout l);     // one 512-dim (head_dim) KV entry
uint64_t index_key_bytes(const ModelConfig& c, KvLayout l);    // one indexer key

struct LayerKvBytes {
  int layer_id = 0;
  int ratio = 0;
  int64_t window_entries = 0, compressed_entries = 0, indexer_entries = 0;
  uint64_t window = 0;            // bytes of the window ring
  uint64_t compressed = 0;        // bytes of the compressed KV entries
  uint64_t indexer = 0;           // bytes of the indexer keys
  uint64_t compressor_state = 0;  // FP32 attention-compressor kv_state + score_state
  uint64_t indexer_state = 0;     // FP32 indexer-compressor kv_state + score_state
  uint64_t total() const { return window + compressed + indexer + compressor_state + indexer_state; }
};

struct KvBudget {
  KvLayout layout = KvLayout::Compact;
  int64_t context = 0;
  uint64_t kv_entry = 0, index_key = 0;  // entry sizes used
  std::vector<LayerKvBytes> layers;      // n_layers (+ n_mtp_layers when included)
  // sums over layers
  uint64_t window = 0, compressed = 0, indexer = 0, states = 0, total = 0;
  // amortised bytes per token of context (compressed + indexer growth; excludes the fixed window
  // and states): sum over layers of kv/r (+ index_key/4 for r == 4)
  double bytes_per_token = 0;
};

// `context` = number of tokens the cache must hold (>= 0). MTP blocks are included by default.
KvBudget kv_budget(const ModelConfig& c, int64_t context, KvLayout layout, bool include_mtp = true);

}  // namespace dsv4
