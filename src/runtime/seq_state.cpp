#include "runtime/seq_state.h"

#include <limits>

namespace dsv4 {

void CompressorState::init(int r, int c) {
  ratio = r;
  coff = (r == 4) ? 2 : 1;
  width = c;
  const size_t n = static_cast<size_t>(coff) * r * coff * c;
  kv.assign(n, 0.0f);
  score.assign(n, 0.0f);
  reset();
}

void CompressorState::reset() {
  std::fill(kv.begin(), kv.end(), 0.0f);
  std::fill(score.begin(), score.end(), -std::numeric_limits<float>::infinity());
}

void SequenceState::init(const ModelConfig& cfg, int n_blocks, int64_t ctx, KvLayout kv_layout) {
  max_context = ctx;
  layout = kv_layout;
  blocks.assign(static_cast<size_t>(n_blocks), BlockState{});
  for (int b = 0; b < n_blocks; ++b) {
    BlockState& s = blocks[static_cast<size_t>(b)];
    s.ratio = cfg.ratio(b);
    s.window.init(cfg.window, cfg.head_dim, KvRowKind::Attention, kv_layout, cfg.rope_head_dim);
    s.window.keep_floats();  // decode steps attend to these rows in place (model/attention.cpp)
    if (s.ratio > 0) {
      // entry i completes at position (i+1)*r - 1 < ctx, so ctx div r entries suffice
      s.ckv.init(ctx / s.ratio, cfg.head_dim, KvRowKind::Attention, kv_layout, cfg.rope_head_dim);
      s.comp.init(s.ratio, cfg.head_dim);
    }
    if (s.ratio == 4) {
      s.ikv.init(ctx / 4, cfg.index_head_dim, KvRowKind::Indexer, kv_layout, 0);
      s.icomp.init(4, cfg.index_head_dim);
    }
  }
}

void SequenceState::reset() {
  for (auto& s : blocks) {
    s.n_ckv = 0;
    s.n_ikv = 0;
    if (s.ratio > 0) s.comp.reset();
    if (s.ratio == 4) s.icomp.reset();
  }
}

uint64_t SequenceState::allocated_bytes() const {
  uint64_t b = 0;
  for (const auto& s : blocks) {
    b += s.window.allocated_bytes() + s.ckv.allocated_bytes() + s.ikv.allocated_bytes();
    if (s.ratio > 0) b += s.comp.bytes();
    if (s.ratio == 4) b += s.icomp.bytes();
  }
  return b;
}

}  // namespace dsv4
