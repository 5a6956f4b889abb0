#include "runtime/kv_gather.h"

#include <algorithm>

#include "core/error.h"

namespace dsv4 {

void gather_compressed(const KvRows& ckv, int64_t split, int32_t* lists, int64_t count,
                       std::vector<float>& rows, KvGatherScratch& sc) {
  std::vector<int32_t>& slot = sc.slot;  // entry id -> row in `rows`, -1 = not referenced
  int64_t hi = 0;
  for (int64_t i = 0; i < count; ++i)
    if (lists[i] >= split) hi = std::max<int64_t>(hi, lists[i] - split + 1);
  if (hi > ckv.capacity()) throw_error("KV gather: entry ", hi - 1, " beyond capacity ", ckv.capacity());
  slot.assign(static_cast<size_t>(hi), -1);
  for (int64_t i = 0; i < count; ++i)
    if (lists[i] >= split) slot[static_cast<size_t>(lists[i] - split)] = 0;
  std::vector<int32_t>& ids = sc.ids;
  ids.clear();
  for (int64_t e = 0; e < hi; ++e)
    if (slot[static_cast<size_t>(e)] == 0) {
      slot[static_cast<size_t>(e)] = static_cast<int32_t>(ids.size());
      ids.push_back(static_cast<int32_t>(e));
    }
  rows.resize(std::max<size_t>(1, ids.size() * static_cast<size_t>(ckv.width())));
  const int64_t used = static_cast<int64_t>(ids.size());
  if (used == hi) ckv.read_range(0, used, rows.data());  // every entry referenced (HCA): no gather
  else ckv.read_rows(ids.data(), used, rows.data());
  for (int64_t i = 0; i < count; ++i)
    if (lists[i] >= split)
      lists[i] = static_cast<int32_t>(split + slot[static_cast<size_t>(lists[i] - split)]);
}

void indexer_scores_stored(const Backend& be, const IndexerScoreArgs& a, const KvRows& keys,
                           KvGatherScratch& sc) {
  if (a.n_keys > keys.capacity())
    throw_error("indexer: ", a.n_keys, " keys requested, store holds ", keys.capacity());
  if (keys.layout() == KvLayout::Compact && be.indexer_scores_fp4(a, keys.entry(0), keys.entry_bytes()))
    return;
  // Decode blocks of keys into a scratch and score them with the float kernel. Every score depends
  // on one (query, key) pair only, so blocking does not change a bit.
  constexpr int64_t kBlock = 512;
  const int64_t n = a.n, nk = a.n_keys, D = keys.width();
  std::vector<float>& kb = sc.key_block;
  std::vector<float>& sb = sc.score_block;
  std::vector<int64_t>& vis = sc.visible;
  kb.resize(static_cast<size_t>(std::min(kBlock, std::max<int64_t>(nk, 1)) * D));
  vis.resize(static_cast<size_t>(n));
  for (int64_t k0 = 0; k0 < nk; k0 += kBlock) {
    const int64_t len = std::min(kBlock, nk - k0);
    keys.read_range(k0, len, kb.data());
    if (k0 == 0 && len == nk) {  // one block: score straight into the output
      IndexerScoreArgs b = a;
      b.keys = kb.data();
      be.indexer_scores(b);
      return;
    }
    sb.resize(static_cast<size_t>(n * len));
    for (int64_t t = 0; t < n; ++t) vis[static_cast<size_t>(t)] = std::clamp<int64_t>(a.visible[t] - k0, 0, len);
    IndexerScoreArgs b = a;
    b.keys = kb.data();
    b.n_keys = len;
    b.visible = vis.data();
    b.scores = sb.data();
    be.indexer_scores(b);
    for (int64_t t = 0; t < n; ++t)
      std::copy(sb.begin() + t * len, sb.begin() + (t + 1) * len, a.scores + t * nk + k0);
  }
}

}  // namespace dsv4
