#include "runtime/kv_budget.h"

#include "core/error.h"

namespace dsv4 {

const char* kv_layout_name(KvLayout l) { return l == KvLayout::Compact ? "compact" : "bf16"; }

uint64_t kv_entry_bytes(const ModelConfig& c, KvLayout l) {
  if (l == KvLayout::Bf16) return uint64_t(c.head_dim) * 2;
  const uint64_t nope = uint64_t(c.nope_dim());
  return nope + nope / 64 + uint64_t(c.rope_head_dim) * 2;
}

uint64_t index_key_bytes(const ModelConfig& c, KvLayout l) {
  const uint64_t d = uint64_t(c.index_head_dim);
  return l == KvLayout::Bf16 ? d * 2 : d / 2 + d / 32;
}

KvBudget kv_budget(const ModelConfig& c, int64_t context, KvLayout layout, bool include_mtp) {
  if (context < 0) throw_error("kv_budget: context must be >= 0, got ", context);
  KvBudget b;
  b.layout = layout;
  b.context = context;
  b.kv_entry = kv_entry_bytes(c, layout);
  b.index_key = index_key_bytes(c, layout);
  const int n = c.n_layers + (include_mtp ? c.n_mtp_layers : 0);
  for (int l = 0; l < n; ++l) {
    LayerKvBytes x;
    x.layer_id = l;
    x.ratio = c.ratio(l);
    x.window_entries = c.window;
    x.window = uint64_t(c.window) * b.kv_entry;
    if (x.ratio > 0) {
      const uint64_t r = uint64_t(x.ratio), coff = x.ratio == 4 ? 2 : 1;
      x.compressed_entries = context / x.ratio;
      x.compressed = uint64_t(x.compressed_entries) * b.kv_entry;
      x.compressor_state = 2 * (coff * r) * (coff * uint64_t(c.head_dim)) * sizeof(float);
      b.bytes_per_token += double(b.kv_entry) / double(x.ratio);
    }
    if (x.ratio == 4) {
      x.indexer_entries = context / 4;
      x.indexer = uint64_t(x.indexer_entries) * b.index_key;
      x.indexer_state = 2 * (2 * 4) * (2 * uint64_t(c.index_head_dim)) * sizeof(float);
      b.bytes_per_token += double(b.index_key) / 4.0;
    }
    b.window += x.window;
    b.compressed += x.compressed;
    b.indexer += x.indexer;
    b.states += x.compressor_state + x.indexer_state;
    b.total += x.total();
    b.layers.push_back(x);
  }
  return b;
}

}  // namespace dsv4
