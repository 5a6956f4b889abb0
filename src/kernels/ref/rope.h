// RoPE with YaRN (spec 4.2, NOTES.md section 9): frequencies evaluated one float32 op at a time,
// angle f32(float(p) * f_i), cos/sin correctly rounded from double. Interleaved pairs on the LAST
// rope_dims of a vector.
#pragma once
#include <cstdint>
#include <vector>

#include "format/config.h"

namespace dsv4::ref {

struct RopeFreqs {
  std::vector<float> inv_freq;  // rope_dims / 2 entries
};

// Table for a layer with compress ratio `ratio` (0: rope_theta, no YaRN; >0: compress_rope_theta
// with YaRN when original_seq_len > 0).
RopeFreqs rope_freqs(const ModelConfig& cfg, int ratio);

// cos/sin of position p for every pair: out_cos[i], out_sin[i], i < inv_freq.size().
void rope_cos_sin(const RopeFreqs& f, int64_t p, float* out_cos, float* out_sin);

// Rotates the interleaved pairs of x[0..2*npairs) in place (x holds bf16 values as float) and
// rounds each result to bf16. inverse = true uses the conjugate (-sin).
void rope_apply(float* x, const float* cos, const float* sin, int npairs, bool inverse);

}  // namespace dsv4::ref
