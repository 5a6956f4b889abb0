// The integer indexer scan's shared parts (indexer_int8.h): the key table, the query exponent,
// and the driver that prepares the queries, runs a kernel's scan and hands what the integers
// cannot hold to the level's BF16 / float32 kernel.
#include "kernels/cpu/indexer_int8.h"

#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "quant/quant.h"

namespace dsv4::cpu::int8 {
namespace {

struct KeyTable {
  alignas(64) std::array<uint8_t, 64> t{};
  KeyTable() {
    for (int s = 0; s <= kMaxShift; ++s)
      for (int c = 0; c < 16; ++c)
        t[static_cast<size_t>(16 * s + c)] = static_cast<uint8_t>(
            static_cast<int>(2.0f * quant::e2m1_to_f32(static_cast<uint8_t>(c))) * (1 << (kMaxShift - s)) + kOffset);
  }
};

// Every row's heads into iq; the rows with a head that does not fit go to `rows_out` (ascending)
// with zero queries and weights (the kernel's sums for them are then zero, and replaced).
void prepare_queries(const Kernel& k, const IndexerScoreArgs& a, int Dp, IntQueries& iq, std::vector<int64_t>& rows_out) {
  const int H = a.n_heads, D = a.head_dim;
  int8_t* q8 = grow(iq.q, static_cast<size_t>(a.n * H * Dp));
  iq.w.resize(static_cast<size_t>(a.n * H));
  iq.corr.resize(static_cast<size_t>(a.n * H));
  for (int64_t r = 0; r < a.n; ++r)
    for (int h = 0; h < H; ++h) {
      const size_t hi = static_cast<size_t>(r * H + h);
      int32_t sum = 0;
      int e = 0;
      if (!k.head(a.q + hi * D, D, Dp, q8 + hi * Dp, &sum, &e)) {
        rows_out.push_back(r);
        std::memset(q8 + r * H * Dp, 0, static_cast<size_t>(H) * Dp);
        std::fill(iq.w.begin() + r * H, iq.w.begin() + (r + 1) * H, 0.0f);
        std::fill(iq.corr.begin() + r * H, iq.corr.begin() + (r + 1) * H, 0);
        break;
      }
      iq.corr[hi] = -kOffset * sum;
      iq.w[hi] = a.w[hi] * std::ldexp(1.0f, e);
    }
}

// Keys of `odd` (ascending; not of the exact form) for every row, gathered and scored by the
// other kernel.
void score_odd_keys(const Kernel& k, const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes,
                    const std::vector<int64_t>& odd) {
  if (odd.empty()) return;
  const int64_t m = static_cast<int64_t>(odd.size());
  thread_local std::vector<uint8_t> gathered;
  thread_local std::vector<int64_t> vis;
  thread_local std::vector<float> out;
  gathered.resize(static_cast<size_t>(m) * key_bytes);
  for (int64_t j = 0; j < m; ++j) {
    const size_t i = static_cast<size_t>(odd[static_cast<size_t>(j)]);
    std::memcpy(gathered.data() + j * key_bytes, keys + i * key_bytes, key_bytes);
  }
  vis.resize(static_cast<size_t>(a.n));
  for (int64_t r = 0; r < a.n; ++r)  // the odd keys below the row's visible count
    vis[static_cast<size_t>(r)] = std::lower_bound(odd.begin(), odd.end(), a.visible[r]) - odd.begin();
  out.resize(static_cast<size_t>(a.n * m));
  IndexerScoreArgs b = a;
  b.n_keys = m;
  b.visible = vis.data();
  b.scores = out.data();
  k.other(b, gathered.data(), key_bytes);
  for (int64_t r = 0; r < a.n; ++r)
    for (int64_t j = 0; j < m; ++j)
      a.scores[r * a.n_keys + odd[static_cast<size_t>(j)]] = out[static_cast<size_t>(r * m + j)];
}

// Query rows `rows` (a head of each does not fit in int8) scored whole by the other kernel.
void score_odd_rows(const Kernel& k, const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes,
                    const std::vector<int64_t>& rows) {
  if (rows.empty()) return;
  const int64_t m = static_cast<int64_t>(rows.size()), qw = int64_t{a.n_heads} * a.head_dim;
  thread_local std::vector<float> q, w, out;
  thread_local std::vector<int64_t> vis;
  q.resize(static_cast<size_t>(m * qw));
  w.resize(static_cast<size_t>(m * a.n_heads));
  vis.resize(static_cast<size_t>(m));
  out.resize(static_cast<size_t>(m * a.n_keys));
  for (int64_t j = 0; j < m; ++j) {
    const int64_t r = rows[static_cast<size_t>(j)];
    std::copy(a.q + r * qw, a.q + (r + 1) * qw, q.begin() + j * qw);
    std::copy(a.w + r * a.n_heads, a.w + (r + 1) * a.n_heads, w.begin() + j * a.n_heads);
    vis[static_cast<size_t>(j)] = a.visible[r];
  }
  IndexerScoreArgs b = a;
  b.q = q.data();
  b.w = w.data();
  b.n = m;
  b.visible = vis.data();
  b.scores = out.data();
  k.other(b, keys, key_bytes);
  for (int64_t j = 0; j < m; ++j)
    std::copy(out.begin() + j * a.n_keys, out.begin() + (j + 1) * a.n_keys, a.scores + rows[static_cast<size_t>(j)] * a.n_keys);
}

}  // namespace

const uint8_t* key_table() {
  static const KeyTable k;
  return k.t.data();
}

bool head_exponent(float m, int* e) {
  if (m == 0.0f) {
    *e = 0;
    return true;
  }
  if (!(m >= std::numeric_limits<float>::min()) || !(m <= std::numeric_limits<float>::max())) return false;
  *e = static_cast<int>((f32_to_bits(m) >> 23) & 0xFF) - 127 - 6;
  return *e >= -60 && *e <= 60;
}

bool score(const Kernel& k, const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes) {
  const int H = a.n_heads, D = a.head_dim;
  if (D % kBlock != 0 || D > 1024 || H <= 0) return false;
  const int Dp = (D + k.dp_multiple - 1) / k.dp_multiple * k.dp_multiple;
  thread_local IntQueries iq;
  thread_local std::vector<int64_t> odd_rows, odd;
  odd_rows.clear();
  odd.clear();
  prepare_queries(k, a, Dp, iq, odd_rows);
  if (a.n > 0 && static_cast<int64_t>(odd_rows.size()) == a.n) return false;  // no row fits: decline
  k.scan(a, keys, key_bytes, iq, Dp, odd);
  score_odd_keys(k, a, keys, key_bytes, odd);
  score_odd_rows(k, a, keys, key_bytes, odd_rows);
  return true;
}

}  // namespace dsv4::cpu::int8
