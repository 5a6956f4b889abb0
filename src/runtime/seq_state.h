// Per-sequence inference state of DeepSeek-V4 (spec 5.1): for every block (main layers and MTP
// blocks) the window ring, the compressed KV entries, the indexer keys and the two compressor
// states. Pure data; the forward pass (model/forward.cpp) implements the state machine.
#pragma once
#include <cstdint>
#include <vector>

#include "format/config.h"
#include "runtime/kv_store.h"

namespace dsv4 {

// Partial-block state of one compressor (spec 5.4 step 4): rows [coff*r][coff*c].
struct CompressorState {
  int ratio = 0, coff = 1, width = 0;
  std::vector<float> kv, score;
  void init(int r, int c);
  void reset();  // kv = 0, score = -inf (fresh sequence)
  uint64_t bytes() const { return (kv.size() + score.size()) * sizeof(float); }
  float* kv_row(int i) { return kv.data() + static_cast<int64_t>(i) * coff * width; }
  float* score_row(int i) { return score.data() + static_cast<int64_t>(i) * coff * width; }
};

struct BlockState {
  int ratio = 0;
  KvRows window;          // ring: slot p mod window holds the kv of position p (with floats())
  KvRows ckv;             // compressed entries (ratio > 0)
  KvRows ikv;             // indexer keys (ratio == 4)
  int64_t n_ckv = 0;      // entries emitted so far
  int64_t n_ikv = 0;
  CompressorState comp;   // attention compressor
  CompressorState icomp;  // indexer compressor
};

struct SequenceState {
  std::vector<BlockState> blocks;  // n_layers main blocks, then MTP blocks
  int64_t max_context = 0;
  KvLayout layout = KvLayout::Compact;
  // Capacity for `max_context` tokens: window ring, ctx div r compressed entries, ctx div 4
  // indexer keys per block, allocated exactly as kv_budget() accounts them.
  void init(const ModelConfig& cfg, int n_blocks, int64_t max_context,
            KvLayout layout = KvLayout::Compact);
  void reset();
  uint64_t allocated_bytes() const;  // == kv_budget(cfg, max_context, layout, with MTP iff bound).total
};

}  // namespace dsv4
