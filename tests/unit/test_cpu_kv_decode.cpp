// The KV entry decode kernel (kernels/cpu/kv_decode.h) against its scalar twin and the runtime's
// own table decode (KvRows), bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/kv_decode.h"
#include "quant/quant.h"
#include "runtime/kv_codec.h"
#include "runtime/kv_gather.h"
#include "runtime/kv_store.h"

using namespace dsv4;
using namespace dsv4::cpu;

namespace {

// Equal bits, or both NaN.
bool same(float a, float b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  uint32_t x, y;
  std::memcpy(&x, &a, 4);
  std::memcpy(&y, &b, 4);
  return x == y;
}

}  // namespace

// Hand-built entries: every E4M3 code (zeros, subnormals, NaN codes included) under scales from
// 2^-127 to 2^127 and the NaN scale, and BF16 tails of every kind; 3 rope values past the last
// 16 (the scalar tail of the kernel).
TEST(CpuKvDecode, EveryCodeAndScaleMatchesTheTwinAndTheTables) {
  const int nope = 256, rope = 19;
  const size_t bytes = nope + nope / 64 + 2 * rope;
  const uint8_t scale_set[] = {0, 1, 60, 120, 127, 134, 200, 254, 255};
  const int64_t n = static_cast<int64_t>(std::size(scale_set));
  std::vector<uint8_t> entries(n * bytes);
  std::mt19937 rng(5);
  for (int64_t r = 0; r < n; ++r) {
    uint8_t* e = entries.data() + r * bytes;
    for (int d = 0; d < nope; ++d) e[d] = static_cast<uint8_t>(d + 37 * r);  // every code
    for (int b = 0; b < nope / 64; ++b) e[nope + b] = scale_set[(r + b) % n];
    for (int d = 0; d < 2 * rope; ++d) e[nope + nope / 64 + d] = static_cast<uint8_t>(rng());
  }
  const int64_t w = nope + rope;
  std::vector<float> want(n * w, -1.0f), got(n * w, -2.0f);
  scalar::decode_kv_rows(entries.data(), bytes, nullptr, 0, n, nope, rope, want.data(), w);
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t* e = entries.data() + r * bytes;
    for (int d = 0; d < nope; ++d)
      ASSERT_TRUE(same(want[r * w + d], quant::e4m3_to_f32(e[d]) * quant::e8m0_to_f32(e[nope + d / 64])))
          << r << " " << d;
  }
  if (detected_isa() < Isa::Avx512) GTEST_SKIP() << "needs AVX-512";
  avx512::decode_kv_rows(entries.data(), bytes, nullptr, 0, n, nope, rope, got.data(), w);
  for (int64_t i = 0; i < n * w; ++i) ASSERT_TRUE(same(got[i], want[i])) << i << ": " << got[i] << " vs " << want[i];
  // gathered rows (ids), in another order, into a wider output stride
  const int32_t ids[] = {4, 0, 8, 8, 2};
  std::vector<float> g1(5 * (w + 3), -3.0f), g2(5 * (w + 3), -4.0f);
  scalar::decode_kv_rows(entries.data(), bytes, ids, 99, 5, nope, rope, g1.data(), w + 3);
  avx512::decode_kv_rows(entries.data(), bytes, ids, 99, 5, nope, rope, g2.data(), w + 3);
  for (int r = 0; r < 5; ++r)
    for (int64_t d = 0; d < w + 3; ++d) {
      const float expect = d < w ? want[ids[r] * w + d] : -3.0f;
      ASSERT_TRUE(same(g1[r * (w + 3) + d], expect)) << r << " " << d;
      ASSERT_TRUE(same(g2[r * (w + 3) + d], d < w ? expect : -4.0f)) << r << " " << d;
    }
}

// Rows stored by KvRows (compact layout, Flash widths) read back through read_kv_rows with the
// CPU backend (its kernel) and with the reference backend (KvRows' table decode): the same bits.
TEST(CpuKvDecode, StoredRowsReadTheSameThroughEitherBackend) {
  const int D = 512, Dr = 64;
  const int64_t cap = 40;
  KvRows store;
  store.init(cap, D, KvRowKind::Attention, KvLayout::Compact, Dr);
  std::mt19937 rng(6);
  std::uniform_real_distribution<float> lg(-30.0f, 10.0f);
  std::vector<float> row(D);
  for (int64_t i = 0; i < cap; ++i) {
    for (int d = 0; d < D; ++d) {
      float x = quant::bf16_round(std::exp2(lg(rng)) * ((rng() & 1) ? -1.0f : 1.0f));
      if (rng() % 13 == 0) x = 0.0f;
      row[d] = x;
    }
    quant::fp8_sim(row.data(), D - Dr, KvEntryCodec::kBlock);  // what the forward pass stores
    store.write(i, row.data());
  }
  auto cpu = make_cpu_backend(2);
  auto ref = make_reference_backend();
  const int32_t ids[] = {39, 0, 7, 7, 21, 3};
  for (const int32_t* id : {static_cast<const int32_t*>(nullptr), ids}) {
    const int64_t n = id ? 6 : cap - 5;
    std::vector<float> a(n * D, -1.0f), b(n * D, -2.0f);
    read_kv_rows(*cpu, store, id, 5, n, a.data());
    read_kv_rows(*ref, store, id, 5, n, b.data());
    for (int64_t i = 0; i < n * D; ++i) ASSERT_TRUE(same(a[i], b[i])) << i;
  }
  // Entries past the capacity are refused on either path, not read.
  std::vector<float> out(2 * D);
  const int32_t bad[] = {3, static_cast<int32_t>(cap)};
  for (const Backend* be : {cpu.get(), ref.get()}) {
    EXPECT_THROW(read_kv_rows(*be, store, nullptr, cap - 1, 2, out.data()), Error);
    EXPECT_THROW(read_kv_rows(*be, store, bad, 0, 2, out.data()), Error);
  }
}
