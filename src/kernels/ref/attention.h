// Reference sparse attention with sink (spec 4.9, NOTES.md section 9): online softmax over 64-key
// blocks in key-list order, probabilities rounded to bf16 for P.V, sink only in the denominator.
#pragma once
#include "model/backend.h"

namespace dsv4::ref {
inline constexpr int kAttnBlock = 64;  // keys per online-softmax block of the reference kernel
void sparse_attention(const AttentionArgs& a);
}  // namespace dsv4::ref
