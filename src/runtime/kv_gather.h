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

// Buffers of the two functions below, owned by the caller (a session's scratch) so that steady-state
// decode does not allocate.
struct KvGatherScratch {
  std::vector<int32_t> slot, ids;
  std::vector<float> key_block, score_block;
  std::vector<int64_t> visible;
};

// Key list entries >= split refer to compressed entry (index - split) of `ckv`. Decodes every
// referenced entry (ascending, once) into `rows` [used][width] and rewrites those list entries to
// split + (row in `rows`). `lists` has `count` entries (-1 = no key, left alone).
void gather_compressed(const KvRows& ckv, int64_t split, int32_t* lists, int64_t count,
                       std::vector<float>& rows, KvGatherScratch& sc);

// IndexerScoreArgs `a` without keys (a.keys ignored) over the first a.n_keys entries of `keys`.
void indexer_scores_stored(const Backend& be, const IndexerScoreArgs& a, const KvRows& keys,
                           KvGatherScratch& sc);

}  // namespace dsv4
