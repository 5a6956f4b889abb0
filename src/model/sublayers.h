// The two sub-layers of a block over a chunk of rows (internal to the forward pass).
#pragma once
#include "model/forward.h"
#include "model/scratch.h"

namespace dsv4 {

// Attention sub-layer (spec 4.5-4.10, 5.2-5.6): x = attn_norm output [n][dim] -> out [n][dim].
// Runs the compressors (and the indexer) for the chunk's tokens before attending, then updates the
// window ring.
void attention_forward(const ModelContext& mc, int id, BlockState& st, const float* x, int64_t pos0,
                       int64_t n, ChunkLayout layout, float* out, ForwardScratch& sc,
                       const DebugHook* hook);

// MoE sub-layer (spec 4.11): x = ffn_norm output [n][dim] -> out [n][dim].
void moe_forward(const ModelContext& mc, int id, const int32_t* tokens, const float* x,
                 int64_t pos0, int64_t n, float* out, ForwardScratch& sc, const DebugHook* hook);

}  // namespace dsv4
