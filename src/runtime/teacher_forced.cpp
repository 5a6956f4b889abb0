#include "runtime/teacher_forced.h"

#include <algorithm>

#include "core/error.h"

namespace dsv4 {

std::vector<float> teacher_forced_blocks(const EngineImpl& eng, const std::vector<int32_t>& tokens,
                                         int64_t prompt_len, const std::vector<float>& inputs) {
  const ModelConfig& cfg = eng.weights().config;
  const ModelContext& mc = eng.context();
  const int64_t n = static_cast<int64_t>(tokens.size()), flat = cfg.hc_mult * cfg.dim;
  const int L = cfg.n_layers;
  if (prompt_len < 1 || prompt_len > n) throw_error("teacher: prompt length ", prompt_len, " not in [1, ", n, "]");
  if (static_cast<int64_t>(inputs.size()) != (L + 1) * n * flat)
    throw_error("teacher: input has ", inputs.size(), " values, expected [", L + 1, ", ", n, ", ",
                cfg.hc_mult, ", ", cfg.dim, "]");
  std::vector<float> out(static_cast<size_t>(L * n * flat));
  SequenceState st;
  ForwardScratch sc;
  st.init(cfg, L, n + 1);
  for (int l = 0; l < L; ++l) {
    float* X = out.data() + l * n * flat;
    std::copy(inputs.begin() + l * n * flat, inputs.begin() + (l + 1) * n * flat, X);
    BlockState& bs = st.blocks[static_cast<size_t>(l)];
    block_forward(mc, l, bs, tokens.data(), 0, prompt_len,
                  ChunkLayout{std::min<int64_t>(prompt_len, cfg.window)}, X, sc, nullptr);
    for (int64_t p = prompt_len; p < n; ++p)
      block_forward(mc, l, bs, tokens.data() + p, p, 1, ChunkLayout{cfg.window}, X + p * flat, sc, nullptr);
  }
  return out;
}

}  // namespace dsv4
