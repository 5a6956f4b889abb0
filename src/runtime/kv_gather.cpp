#include "runtime/kv_gather.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace dsv4 {

void read_kv_rows(const Backend& be, const KvRows& rows, const int32_t* ids, int64_t first, int64_t n,
                  float* out) {
  if (n <= 0) return;
  // the same bounds checks as KvRows' own reads (the backend's kernel reads the entries directly)
  if (ids == nullptr) rows.check(first, n);
  else
    for (int64_t r = 0; r < n; ++r) rows.check(ids[r], 1);
  if (rows.layout() == KvLayout::Compact && rows.kind() == KvRowKind::Attention &&
      be.decode_kv_rows(rows.entry(0), rows.entry_bytes(), ids, first, n, rows.width() - rows.rope_dim(),
                        rows.rope_dim(), out)) {
    return;
  }
  if (ids != nullptr) rows.read_rows(ids, n, out);
  else rows.read_range(first, n, out);
}

void gather_compressed(const Backend& be, const KvRows& ckv, int64_t split, int32_t* lists,
                       int64_t count, std::vector<float>& rows, KvGatherScratch& sc) {
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
  // Each row is decoded on its own, so the split over threads does not change a bit. A row of
  // 512 values costs about 0.2 us with the backend's kernel (1 us with the table decode).
  const int64_t width = ckv.width();
  be.for_units(used, 0.5 * width, [&](int64_t b, int64_t e) {
    // every entry referenced (HCA): a plain range
    read_kv_rows(be, ckv, used == hi ? nullptr : ids.data() + b, b, e - b, rows.data() + b * width);
  });
  for (int64_t i = 0; i < count; ++i)
    if (lists[i] >= split)
      lists[i] = static_cast<int32_t>(split + slot[static_cast<size_t>(lists[i] - split)]);
}

namespace {

// Scores keys [k0, k0+len) into out [n][len] (visibility relative to the whole key list).
void score_range(const Backend& be, const IndexerScoreArgs& a, const KvRows& keys, int64_t k0, int64_t len,
                 float* out, KvGatherScratch& sc) {
  const int64_t n = a.n;
  std::vector<int64_t>& vis = sc.visible;
  vis.resize(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) vis[static_cast<size_t>(t)] = std::clamp<int64_t>(a.visible[t] - k0, 0, len);
  IndexerScoreArgs b = a;
  b.n_keys = len;
  b.visible = vis.data();
  b.scores = out;
  if (keys.layout() == KvLayout::Compact && be.indexer_scores_fp4(b, keys.entry(k0), keys.entry_bytes())) return;
  std::vector<float>& kb = sc.key_block;  // decoded keys of the range
  kb.resize(static_cast<size_t>(std::max<int64_t>(len, 1) * keys.width()));
  keys.read_range(k0, len, kb.data());
  b.keys = kb.data();
  be.indexer_scores(b);
}

}  // namespace

void indexer_scores_stored(const Backend& be, const IndexerScoreArgs& a, const KvRows& keys,
                           KvGatherScratch& sc) {
  if (a.n_keys > keys.capacity())
    throw_error("indexer: ", a.n_keys, " keys requested, store holds ", keys.capacity());
  // Every score depends on one (query, key) pair only, so blocking does not change a bit.
  const int64_t n = a.n, nk = a.n_keys;
  std::vector<float>& sb = sc.score_block;
  for (int64_t k0 = 0; k0 < nk; k0 += kIndexerKeyBlock) {
    const int64_t len = std::min(kIndexerKeyBlock, nk - k0);
    if (len == nk) return score_range(be, a, keys, 0, nk, a.scores, sc);
    sb.resize(static_cast<size_t>(n * len));
    score_range(be, a, keys, k0, len, sb.data(), sc);
    for (int64_t t = 0; t < n; ++t)
      std::copy(sb.begin() + t * len, sb.begin() + (t + 1) * len, a.scores + t * nk + k0);
  }
}

void indexer_topk_stored(const Backend& be, const IndexerScoreArgs& a, const KvRows& keys, int topk,
                         int32_t* sel, int64_t* nsel, KvGatherScratch& sc, int64_t block) {
  const int64_t n = a.n, nk = a.n_keys;
  if (nk > keys.capacity()) throw_error("indexer: ", nk, " keys requested, store holds ", keys.capacity());
  if (block <= 0) throw_error("indexer: block must be positive");
  if (topk <= 0) throw_error("indexer: top-k must be positive, got ", topk);
  using Cand = KvGatherScratch::Cand;
  // `better` is a total order (ties -> lower index), so the k best of any candidate set are one
  // well-defined set, whatever order the candidates arrive in.
  auto better = [](const Cand& x, const Cand& y) { return x.v > y.v || (x.v == y.v && x.i < y.i); };
  const int64_t cap = 2 * int64_t{topk};  // per row: the kept candidates plus room for as many new
  std::vector<float>& sb = sc.score_block;
  std::vector<Cand>& best = sc.best;
  std::vector<int64_t>& have = sc.have;
  std::vector<float>& bar = sc.bar;
  best.resize(static_cast<size_t>(n * cap));
  have.assign(static_cast<size_t>(n), 0);
  // bar[t]: the k-th best score of row t's candidates at its last reduction (-inf before). Keys
  // arrive in ascending index, so once k are held a later key scoring <= bar ranks below k earlier
  // ones: only scores above it are kept. Past the first block, almost every key fails that compare.
  bar.assign(static_cast<size_t>(n), -std::numeric_limits<float>::infinity());
  // Reduces row t's candidates to its k best (unordered) and raises its bar.
  auto reduce = [&](Cand* b, int64_t& h, int64_t k, float& row_bar) {
    if (h > k) std::nth_element(b, b + (k - 1), b + h, better);
    h = std::min(h, k);
    if (h == k) row_bar = b[k - 1].v;
  };
  for (int64_t k0 = 0; k0 < nk; k0 += block) {
    const int64_t len = std::min(block, nk - k0);
    sb.resize(static_cast<size_t>(n * len));
    score_range(be, a, keys, k0, len, sb.data(), sc);
    // Rows are independent (each has its own candidates), so the split over threads does not
    // change a result.
    be.for_units(n, 1.0 * static_cast<double>(len), [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t vis = std::clamp<int64_t>(a.visible[t] - k0, 0, len);
        const int64_t k = std::min<int64_t>(topk, std::min(a.visible[t], nk));
        if (vis == 0 || k == 0) continue;
        Cand* b = best.data() + t * cap;
        int64_t h = have[static_cast<size_t>(t)];
        float row_bar = bar[static_cast<size_t>(t)];
        const float* s = sb.data() + t * len;
        for (int64_t j = 0; j < vis; ++j) {
          // with k candidates held, a score <= the bar (still -inf before the first reduction)
          // cannot place
          if (h >= k && !(s[j] > row_bar)) continue;
          if (h == cap) {
            reduce(b, h, k, row_bar);
            if (!(s[j] > row_bar)) continue;  // the bar rose
          }
          b[h++] = Cand{s[j], static_cast<int32_t>(k0 + j)};
        }
        have[static_cast<size_t>(t)] = h;
        bar[static_cast<size_t>(t)] = row_bar;
      }
    });
  }
  be.for_units(n, 4.0 * static_cast<double>(topk), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t k = std::min<int64_t>(topk, std::min(a.visible[t], nk));
      Cand* b = best.data() + t * cap;
      int64_t h = have[static_cast<size_t>(t)];
      float row_bar = bar[static_cast<size_t>(t)];
      if (k > 0) reduce(b, h, k, row_bar);
      std::sort(b, b + h, better);
      nsel[t] = h;
      for (int64_t j = 0; j < h; ++j) sel[t * topk + j] = b[j].i;
    }
  });
}

}  // namespace dsv4
