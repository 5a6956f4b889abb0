// The DeepSeek-V4 forward pass over a chunk of n tokens at positions [P, P+n) on top of existing
// per-sequence state (prefill = chunk at 0, decode = chunk of 1, chunked prefill = several chunks).
// Reads like the spec: embed -> per block: hc_pre, attn_norm, attention, hc_post, hc_pre, ffn_norm,
// moe, hc_post -> hc_head, norm, head. Every heavy op goes through the Backend.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "kernels/ref/rope.h"
#include "model/backend.h"
#include "model/scratch.h"
#include "model/weights.h"
#include "runtime/seq_state.h"

namespace dsv4 {

// Named intermediates for debugging / golden comparison: (name, block id, first position, rows,
// row width, data). Block id: main layer index, n_layers + k for MTP block k, -1 for model level.
using DebugHook = std::function<void(std::string_view name, int block, int64_t pos0, int64_t rows,
                                     int64_t width, const float* data)>;

// Immutable per-engine model context: weights, backend, RoPE frequency tables, wo_a dequantised.
struct ModelContext {
  const ModelWeights* w = nullptr;
  const Backend* be = nullptr;
  std::vector<ref::RopeFreqs> rope;          // per block id (main layers then MTP blocks)
  std::vector<int> rope_class;               // per block id: equal ids for equal rope tables
  std::vector<std::vector<uint16_t>> wo_a;   // per block id: wo_a as bf16 [G*R, (H/G)*D]
  void init(const ModelWeights& weights, const Backend& backend);
  const BlockWeights& block(int id) const;
  const Bf16Mat wo_a_mat(int id) const;
};

// Layout of the window part of each attention key list (spec 4.8): its width in keys.
// The reference prefill of s tokens uses min(s, window); decode uses window.
struct ChunkLayout {
  int64_t window_width = 0;
};

// Runs block `id` over rows X [n][hc][dim] (bf16 values, in place) for tokens at positions
// [pos0, pos0+n) (`tokens` are their ids; used by hash routing).
void block_forward(const ModelContext& mc, int id, BlockState& st, const int32_t* tokens,
                   int64_t pos0, int64_t n, ChunkLayout layout, float* X, ForwardScratch& sc,
                   const DebugHook* hook);

// Embedding rows: X[t][s] = embed[tokens[t]] for every stream s.
void embed_rows(const ModelContext& mc, const int32_t* tokens, int64_t n, float* X);

// hc_head + norm + head over rows X [n][hc][dim]: logits [n][vocab]. `hc` / `norm` select the main
// model's or an MTP block's head parameters.
void head_logits(const ModelContext& mc, const HcParams& hc, const uint16_t* norm, const float* X,
                 int64_t n, float* logits, ForwardScratch& sc);

// MTP block k at positions [pos0, pos0+n): input streams Xmain [n][hc][dim] (main model, before
// hc_head) and the ids of the NEXT tokens; writes logits [n][vocab].
void mtp_forward(const ModelContext& mc, int k, BlockState& st, const float* Xmain,
                 const int32_t* next_tokens, int64_t pos0, int64_t n, ChunkLayout layout,
                 float* logits, ForwardScratch& sc, const DebugHook* hook);

}  // namespace dsv4
