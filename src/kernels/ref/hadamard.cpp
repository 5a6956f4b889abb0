// Walsh-Hadamard reference. The +-1 sums must be exact before the single float32 rounding.
//
// Exactness argument for the fast path: every finite float is an integer multiple of 2^lsb where
// lsb is the exponent of its lowest set significand bit, and |x| < 2^emax. Every butterfly value is a
// +-1 sum of at most n inputs, so it is a multiple of 2^lsb_min (lsb_min over the inputs) with
// magnitude < n * 2^emax_max = 2^(emax_max + log2 n). If emax_max + log2 n - lsb_min <= 53 such a
// value fits a double's 53-bit significand, so every double butterfly addition is exact. BF16
// activations usually satisfy this (8 significant bits, moderate dynamic range), but not always
// (e.g. 1.0 next to 2^-60), so when the bound fails we fall back to a wide fixed-point accumulator
// that is exact for any finite floats and rounds once to float32.
#include "kernels/ref/hadamard.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "quant/quant.h"

namespace dsv4::ref {

namespace {

// Exact sum of +-float32 values as a fixed-point number with lsb 2^-149, in 32-bit digits held in
// int64 (carries deferred; fine for up to 2^30 additions).
class ExactSum {
 public:
  void add(float x, bool negate) {
    const uint32_t u = std::bit_cast<uint32_t>(x);
    const uint32_t ef = (u >> 23) & 0xFF;
    int64_t m = u & 0x7FFFFF;
    int pos = 0;  // bit index of the significand's lsb, relative to 2^-149
    if (ef != 0) {
      m |= 0x800000;
      pos = static_cast<int>(ef) - 1;
    }
    if (m == 0) return;
    if (((u >> 31) != 0) != negate) m = -m;
    const int d = pos / 32, sh = pos % 32;
    // m << sh has at most 55 significant bits: split into the low 32 bits and the rest.
    const int64_t v = m * (int64_t{1} << sh);
    const int64_t lo = v & 0xFFFFFFFF;  // two's complement low part, v = hi*2^32 + lo
    digit_[d] += lo;
    digit_[d + 1] += (v - lo) / (int64_t{1} << 32);
  }

  float round_f32() const {
    int64_t dg[kDigits];
    std::memcpy(dg, digit_, sizeof dg);
    normalize(dg);
    const bool neg = dg[kDigits - 1] < 0;
    if (neg) {
      for (auto& v : dg) v = -v;
      normalize(dg);
    }
    int hi = -1;
    for (int d = kDigits - 1; d >= 0 && hi < 0; --d)
      if (dg[d] != 0) hi = d * 32 + 31 - std::countl_zero(static_cast<uint32_t>(dg[d]));
    if (hi < 0) return neg ? -0.0f : 0.0f;
    auto bit = [&](int i) { return i >= 0 && ((dg[i / 32] >> (i % 32)) & 1) != 0; };
    // Normal results keep 24 bits; below 2^-126 (hi < 23) the grid is the subnormal lsb 2^-149.
    const int lsb = hi >= 23 ? hi - 23 : 0;
    uint64_t mant = 0;
    for (int i = hi; i >= lsb; --i) mant = (mant << 1) | (bit(i) ? 1 : 0);
    const bool round = bit(lsb - 1);
    bool sticky = false;
    for (int i = lsb - 2; i >= 0 && !sticky; --i) sticky = bit(i);
    if (round && (sticky || (mant & 1))) ++mant;
    const float r = std::ldexp(static_cast<float>(mant), lsb - 149);  // exact or overflow to inf
    return neg ? -r : r;
  }

 private:
  static constexpr int kDigits = 11;  // bits up to 2^(11*32-149): 2^203, covers n*FLT_MAX
  static void normalize(int64_t* dg) {
    for (int d = 0; d + 1 < kDigits; ++d) {
      const int64_t lo = dg[d] & 0xFFFFFFFF;
      dg[d + 1] += (dg[d] - lo) / (int64_t{1} << 32);
      dg[d] = lo;
    }
  }
  int64_t digit_[kDigits] = {};
};

void check_n(int n) {
  if (n <= 0 || (n & (n - 1)) != 0) throw_error("hadamard: size must be a power of two, got ", n);
}

}  // namespace

void hadamard_exact_f32(const float* x, int n, float* out) {
  check_n(n);
  const int log2n = std::countr_zero(static_cast<unsigned>(n));
  int emax = -1000, lsb_min = 1000;
  bool finite = true;
  for (int i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) { finite = false; break; }
    if (x[i] == 0.0f) continue;
    const uint32_t u = std::bit_cast<uint32_t>(x[i]);
    const int ef = static_cast<int>((u >> 23) & 0xFF);
    const uint32_t m = (u & 0x7FFFFF) | (ef != 0 ? 0x800000u : 0u);
    const int e_lsb = (ef != 0 ? ef : 1) - 150;  // exponent of the significand's bit 0
    lsb_min = std::min(lsb_min, e_lsb + std::countr_zero(m));
    emax = std::max(emax, e_lsb + 32 - std::countl_zero(m));
  }
  if (!finite || emax + log2n - lsb_min <= 53) {
    // Butterfly in double: exact under the bound above (non-finite inputs propagate as IEEE does).
    std::vector<double> t(x, x + n);
    for (int h = 1; h < n; h *= 2)
      for (int i = 0; i < n; i += 2 * h)
        for (int j = i; j < i + h; ++j) {
          const double a = t[j], b = t[j + h];
          t[j] = a + b;
          t[j + h] = a - b;
        }
    for (int i = 0; i < n; ++i) out[i] = static_cast<float>(t[i]);
    return;
  }
  for (int i = 0; i < n; ++i) {
    ExactSum acc;
    for (int j = 0; j < n; ++j) acc.add(x[j], (std::popcount(static_cast<unsigned>(i & j)) & 1) != 0);
    out[i] = acc.round_f32();
  }
}

void hadamard(float* x, int n) {
  check_n(n);
  std::vector<float> y(static_cast<size_t>(n));
  hadamard_exact_f32(x, n, y.data());
  const float scale = static_cast<float>(std::pow(static_cast<double>(n), -0.5));
  for (int i = 0; i < n; ++i) x[i] = quant::bf16_round(y[static_cast<size_t>(i)] * scale);
}

}  // namespace dsv4::ref
