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
  struct Cand {
    float v;
    int32_t i;
  };
  std::vector<Cand> best;     // per row: up to 2 * topk candidates [n][2 * topk]
  std::vector<int64_t> have;  // candidates per row
  std::vector<float> bar;     // per row: the score a later key must beat to be kept
};

// Keys per indexer scoring block (bounds key_block / score_block).
inline constexpr int64_t kIndexerKeyBlock = 4096;

// Rows of `rows` into out [n][width]: entry ids[r] (ids == nullptr: entry first + r), through the
// backend's decode_kv_rows where it has one (compact attention rows), else KvRows' own decode;
// the same values either way; entries past the store's capacity throw, as KvRows' reads do.
// Single-threaded.
void read_kv_rows(const Backend& be, const KvRows& rows, const int32_t* ids, int64_t first, int64_t n,
                  float* out);

// Key list entries >= split refer to compressed entry (index - split) of `ckv`. Decodes every
// referenced entry (ascending, once) into `rows` [used][width] and rewrites those list entries to
// split + (row in `rows`). `lists` has `count` entries (-1 = no key, left alone). The rows are
// decoded in pieces over the backend's threads (be.for_units).
void gather_compressed(const Backend& be, const KvRows& ckv, int64_t split, int32_t* lists,
                       int64_t count, std::vector<float>& rows, KvGatherScratch& sc);

// IndexerScoreArgs `a` without keys (a.keys ignored) over the first a.n_keys entries of `keys`.
void indexer_scores_stored(const Backend& be, const IndexerScoreArgs& a, const KvRows& keys,
                           KvGatherScratch& sc);

// Top-k indexer selection without an [n][n_keys] score matrix: keys are scored in blocks of
// `block` (scratch [n][block]) and each row keeps its k = min(topk, visible) best, descending,
// equal scores -> lower index first (ref::topk_desc's order; a total order, so the k best of the
// candidates kept along the way are exactly the one-shot selection). A row keeps only the keys that
// beat its k-th best so far, reduced (nth_element) to k when 2 * topk are held: O(keys) compares
// plus O(topk log topk) at the end. Rows are split over the backend's threads (be.for_units).
// Writes sel [n][topk] (first nsel[t] valid). a.scores is ignored.
void indexer_topk_stored(const Backend& be, const IndexerScoreArgs& a, const KvRows& keys, int topk,
                         int32_t* sel, int64_t* nsel, KvGatherScratch& sc,
                         int64_t block = kIndexerKeyBlock);

}  // namespace dsv4
