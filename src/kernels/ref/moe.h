// Reference MoE routing and SwiGLU (spec 4.11, NOTES.md section 9).
#pragma once
#include <cstdint>

#include "format/config.h"

namespace dsv4::ref {

// Gate scores from float32 logits (in place): sqrtsoftplus f32(sqrt(softplus32)), sigmoid32, or a
// float32 softmax over the n experts.
void gate_scores(float* s, int n, ScoreFunc f);
// Chooses k experts: hash routing when `hash_ids` is given (tid2eid row, table order), otherwise the
// k largest of f32(score + bias) (bias may be null), descending, ties -> lower expert id.
// Weights: w = s[idx]; unless softmax, w = f32(w / f32(ideal sum w)); then f32(w * f32(route_scale)).
void gate_route(const float* scores, const float* bias, const int32_t* hash_ids, int n, int k,
                ScoreFunc f, float route_scale, int32_t* idx, float* w);
// h[i] = bf16( f32( f32(silu32(g) * u) * weight ) ) with the asymmetric clamp when limit > 0
// (u to [-limit, limit], g to (-inf, limit]). weight < 0 means "no routing weight" (shared expert,
// which is also never clamped: pass limit = 0).
void swiglu(const float* g, const float* u, int64_t n, float limit, float weight, float* h);

}  // namespace dsv4::ref
