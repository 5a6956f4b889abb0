// The tile scan of the integer indexer kernels (indexer_int8.h), one template for both widths.
// Lanes are keys: per pass V::kTiles tiles of V::kLanes keys, each [Dp / 4 quads][kLanes keys][4
// bytes]; every query row runs over the pass's tiles, one broadcast of 4 query bytes per quad of
// dimensions and head, two heads per tile load.
//
// Included by each kernel source inside its own (anonymous) namespace, after <immintrin.h>, with
// DSV4_INT8_TARGET defined to its target attribute: the instances differ by target, so each file
// gets its own copy. V supplies the width's operations:
//   I, F                     integer / float vector; kLanes, kTiles
//   Keys                     a key decoder: decode(entry, D, out, kfac) writes one key's D offset
//                            bytes and its power of two, false when it is not of the exact form
//   transpose(rows, Dp, tile)  kLanes rows of Dp bytes into one tile
//   set1(int32), load(tile bytes), dpbusd(acc, u, s), zero(), add(F, F), set1f(float)
//   head_term(I dot, F w)    bf16(relu(bf16(dot)) x w)
//   store(F total, const float* kfac, int64_t keep, int n, float* out)
//                            bf16(total x kfac) for lanes [0, n), -inf from lane `keep` on
#if !defined(DSV4_INT8_TARGET)
#error "define DSV4_INT8_TARGET before including indexer_int8_scan.h"
#endif

// Decodes keys [k0, k0 + n) (reading key min(i, last) for i past `last`, so spans fill whole
// tiles) into rows of Dp bytes (padding bytes 128: zero products) and their factors; keys outside
// the exact form get bytes 128 and factor 0, and go to `odd` (their index).
template <class V>
DSV4_INT8_TARGET void decode_keys(const typename V::Keys& dec, const uint8_t* keys, size_t key_bytes, int D, int Dp,
                                  int64_t k0, int64_t n, int64_t last, uint8_t* out, float* kfac,
                                  std::vector<int64_t>& odd) {
  for (int64_t j = 0; j < n; ++j) {
    const int64_t i = std::min(k0 + j, last);
    uint8_t* o = out + j * Dp;
    if (Dp > D) std::memset(o + D, int8::kOffset, static_cast<size_t>(Dp - D));
    if (!dec.decode(keys + static_cast<size_t>(i) * key_bytes, D, o, &kfac[j])) {
      std::memset(o, int8::kOffset, static_cast<size_t>(D));
      kfac[j] = 0.0f;
      if (k0 + j <= last) odd.push_back(k0 + j);
    }
  }
}

template <class V>
DSV4_INT8_TARGET void scan_tiles(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes,
                                 const int8::IntQueries& iq, int Dp, std::vector<int64_t>& odd) {
  constexpr int kTiles = V::kTiles, kSpan = V::kLanes * kTiles;
  const int H = a.n_heads, D = a.head_dim, G = Dp / 4;
  const float ninf = -std::numeric_limits<float>::infinity();
  thread_local AlignedVector<uint8_t> kbuf, tbuf;
  uint8_t* kb8 = grow(kbuf, static_cast<size_t>(kSpan * Dp));
  uint8_t* tiles = grow(tbuf, static_cast<size_t>(kSpan * Dp));  // [tile][quad][lane][4]
  alignas(64) float kf[kSpan];
  const typename V::Keys dec;
  for (int64_t p0 = 0; p0 < a.n_keys; p0 += kSpan) {
    const int np = static_cast<int>(std::min<int64_t>(kSpan, a.n_keys - p0));
    decode_keys<V>(dec, keys, key_bytes, D, Dp, p0, kSpan, p0 + np - 1, kb8, kf, odd);
    for (int tt = 0; tt < kTiles; ++tt) V::transpose(kb8 + tt * V::kLanes * Dp, Dp, tiles + tt * V::kLanes * Dp);
    for (int64_t r = 0; r < a.n; ++r) {
      const int64_t vis = a.visible[r] - p0;
      float* out = a.scores + r * a.n_keys + p0;
      if (vis <= 0) {
        for (int j = 0; j < np; ++j) out[j] = ninf;
        continue;
      }
      typename V::F total[kTiles];
      for (auto& v : total) v = V::zero();
      for (int h = 0; h < H; h += 2) {
        const int h1 = std::min(h + 1, H - 1);  // an odd last head runs twice, counted once
        const size_t ha = static_cast<size_t>(r * H + h), hb = static_cast<size_t>(r * H + h1);
        const int8_t* qa = iq.q.data() + ha * Dp;
        const int8_t* qb = iq.q.data() + hb * Dp;
        typename V::I acc0[kTiles], acc1[kTiles];
        for (int tt = 0; tt < kTiles; ++tt) {
          acc0[tt] = V::set1(iq.corr[ha]);
          acc1[tt] = V::set1(iq.corr[hb]);
        }
        for (int g = 0; g < G; ++g) {
          int32_t wa, wb;
          std::memcpy(&wa, qa + 4 * g, 4);
          std::memcpy(&wb, qb + 4 * g, 4);
          const typename V::I va = V::set1(wa), vb = V::set1(wb);
          for (int tt = 0; tt < kTiles; ++tt) {
            const typename V::I t = V::load(tiles + (tt * G + g) * 4 * V::kLanes);
            acc0[tt] = V::dpbusd(acc0[tt], t, va);
            acc1[tt] = V::dpbusd(acc1[tt], t, vb);
          }
        }
        const typename V::F w0 = V::set1f(iq.w[ha]);
        for (int tt = 0; tt < kTiles; ++tt) total[tt] = V::add(total[tt], V::head_term(acc0[tt], w0));
        if (h1 != h) {
          const typename V::F w1 = V::set1f(iq.w[hb]);
          for (int tt = 0; tt < kTiles; ++tt) total[tt] = V::add(total[tt], V::head_term(acc1[tt], w1));
        }
      }
      for (int tt = 0; V::kLanes * tt < np; ++tt)
        V::store(total[tt], kf + V::kLanes * tt, vis - V::kLanes * tt, std::min(V::kLanes, np - V::kLanes * tt),
                 out + V::kLanes * tt);
    }
  }
}
