// Reading the stored KV rows (runtime/kv_store.h) for the attention and indexer kernels, which take
// float rows: gather-decode of just the compressed entries a chunk's key lists reference, and the
// indexer scan over stored keys (the backend's packed-FP4 kernel when there is one, else
// block-wise decode into a small scratch). Neither changes a value: decoding is exact.
#pragma once
#include <cstdint>
#include <vector>

#include "model/backend.h"
#include "runtime/kv_store.h"

namespace dsv4 {

// Key list entries >= split refer to compressed entry (index - split) of `ckv`. Decodes every
// referenced entry (ascending, once) into `rows` [used][width] and rewrites those list entries to
// split + (row in `rows`). `lists` has `count` entries (-1 = no key, left alone).
void gather_compressed(const KvRows& ckv, int64_t split, int32_t* lists, int64_t count,
                       std::vector<float>& rows);

// IndexerScoreArgs `a` without keys (a.keys ignored) over the first a.n_keys entries of `keys`.
void indexer_scores_stored(const Backend& be, const IndexerScoreArgs& a, const KvRows& keys);

// Top-k indexer selection without an [n][n_keys] score matrix: keys are scored in blocks of
// `block` (scratch [n][block]) and each row keeps its k = min(topk, visible) best, descending,
// equal scores -> lower index first (ref::topk_desc's order; a total order, so merging per-block
// winners gives exactly the one-shot selection). Writes sel [n][topk] (first nsel[t] valid).
// a.scores is ignored.
void indexer_topk_stored(const Backend& be, const IndexerScoreArgs& a, const KvRows& keys, int topk,
                         int32_t* sel, int64_t* nsel, int64_t block = 4096);

}  // namespace dsv4
