// Teacher-forced per-block run (golden NOTES.md section 4): block i is fed the golden input of
// block i at every position (prefill of positions [0, P) as one chunk, then one decode step per
// position, with the block's own fresh caches); its outputs are collected. Immune to error
// accumulation, so a layer-local check against the noise floor is meaningful for the fast mode.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/engine_impl.h"

namespace dsv4 {

// inputs: [n_layers+1][n][hc][dim] floats (block inputs; the last slice is unused).
// Returns outputs [n_layers][n][hc][dim].
std::vector<float> teacher_forced_blocks(const EngineImpl& eng, const std::vector<int32_t>& tokens,
                                         int64_t prompt_len, const std::vector<float>& inputs);

}  // namespace dsv4
