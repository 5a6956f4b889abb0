// Reference compressor pooling (spec 4.6, NOTES.md section 9): per channel a float32 softmax over
// the candidate rows of the scores, then z = ideal sum_rows f32(value * p).
#pragma once
#include <cstdint>

namespace dsv4::ref {
// values/scores: `rows` candidate rows, each row's channel ch at values[r*ld + ch]; writes z[c].
// A candidate with score -inf contributes nothing.
void softmax_pool(const float* const* values, const float* const* scores, int rows, int64_t c,
                  float* z);
}  // namespace dsv4::ref
