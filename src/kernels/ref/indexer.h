// Reference lightning-indexer scoring and the deterministic top-k (spec 4.7, NOTES.md section 3).
#pragma once
#include <cstdint>

#include "model/backend.h"

namespace dsv4::ref {
void indexer_scores(const IndexerScoreArgs& a);
// Indices of the k largest of v[0..n) in descending order; equal values -> lower index first.
// Writes k indices to out (k <= n); `work` holds n indices of scratch.
void topk_desc(const float* v, int64_t n, int64_t k, int32_t* out, int32_t* work);
}  // namespace dsv4::ref
