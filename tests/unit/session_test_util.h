// Helpers of the KV-layout / session / rewind tests: cached tiny engines, deterministic token
// streams and "run a schedule, collect logits" drivers.
#pragma once
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dsv4/engine.h"
#include "runtime/engine_impl.h"

namespace dsv4::testing {

inline EngineImpl& tiny_engine(const std::string& set, Numerics num, bool mtp = false) {
  static std::map<std::string, std::unique_ptr<EngineImpl>> cache;
  const std::string key = set + (num == Numerics::Reference ? "/ref" : "/fast") + (mtp ? "/mtp" : "");
  auto& e = cache[key];
  if (!e) {
    EngineOptions eo;
    eo.model_dir = std::string(DSV4_TEST_DATA) + "/" + set + "/ckpt";
    eo.numerics = num;
    eo.load_mtp = mtp;
    eo.threads = 1;
    e = std::make_unique<EngineImpl>(eo);
  }
  return *e;
}

// Deterministic pseudo-random tokens in [2, vocab).
inline std::vector<int32_t> token_stream(int64_t n, int64_t vocab, uint32_t seed) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  uint32_t x = seed * 2654435761u + 12345u;
  for (auto& v : t) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    v = static_cast<int32_t>(2 + x % static_cast<uint32_t>(vocab - 2));
  }
  return t;
}

using Logits = std::vector<float>;

inline Logits prefill(Session& s, std::span<const int32_t> t, int64_t vocab) {
  Logits l(static_cast<size_t>(vocab));
  s.prefill(t, l);
  return l;
}
inline Logits decode(Session& s, int32_t t, int64_t vocab) {
  Logits l(static_cast<size_t>(vocab));
  s.decode(t, l);
  return l;
}

// Decodes every token of `t` and returns the logits after each, concatenated.
inline Logits decode_all(Session& s, std::span<const int32_t> t, int64_t vocab) {
  Logits out;
  for (int32_t x : t) {
    const Logits l = decode(s, x, vocab);
    out.insert(out.end(), l.begin(), l.end());
  }
  return out;
}

// Bitwise equality of float arrays (reports the first difference).
inline ::testing::AssertionResult same_bits(const Logits& a, const Logits& b) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << "sizes " << a.size() << " vs " << b.size();
  for (size_t i = 0; i < a.size(); ++i)
    if (std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i]))
      return ::testing::AssertionFailure() << "first difference at " << i << ": " << a[i] << " vs " << b[i];
  return ::testing::AssertionSuccess();
}

}  // namespace dsv4::testing
