// The AVX-512 and AVX2 twins of the reference's row ops (kernels/cpu/ref_rows.h) against the reference
// itself (kernels/ref, quant::fp4_sim), bit for bit: odd widths (masked tails), special values
// (NaN, +-inf, -0, subnormals, E2M1 ties), the clamps of SwiGLU, both RoPE directions. Where the
// twins may differ by design (float64 sums over 8 or 4 lanes, the polynomial exp) the test data shows
// they agree in practice, and a wide-range row checks the bound of one BF16 step.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/ref_rows.h"
#include "kernels/ref/compressor.h"
#include "kernels/ref/fmath.h"
#include "format/config.h"
#include "kernels/ref/mhc.h"
#include "kernels/ref/moe.h"
#include "kernels/ref/norm.h"
#include "kernels/ref/rope.h"
#include "quant/quant.h"

namespace dsv4::cpu {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// One level's twins; each test runs for every level the CPU has.
struct Level {
  const char* name;
  Isa isa;
  decltype(&avx512_ref::rms_norm) rms_norm;
  decltype(&avx512_ref::head_norm_bf16) head_norm_bf16;
  decltype(&avx512_ref::hc_pre_finish) hc_pre_finish;
  decltype(&avx512_ref::hc_post) hc_post;
  decltype(&avx512_ref::hc_head_finish) hc_head_finish;
  decltype(&avx512_ref::swiglu) swiglu;
  decltype(&avx512_ref::exp32) exp32;
  decltype(&avx512_ref::rope_apply) rope_apply;
  decltype(&avx512_ref::fp4_sim) fp4_sim;
  decltype(&avx512_ref::fp8_sim) fp8_sim;
  decltype(&avx512_ref::softmax_pool) softmax_pool;
  decltype(&avx512_ref::gate_scores) gate_scores;
};
#define DSV4_LEVEL(name, isa, ns)                                                                  \
  Level {                                                                                          \
    name, isa, ns::rms_norm, ns::head_norm_bf16, ns::hc_pre_finish, ns::hc_post, ns::hc_head_finish, \
        ns::swiglu, ns::exp32, ns::rope_apply, ns::fp4_sim, ns::fp8_sim, ns::softmax_pool,         \
        ns::gate_scores                                                                            \
  }
const Level kLevels[] = {DSV4_LEVEL("avx512", Isa::Avx512, avx512_ref), DSV4_LEVEL("avx2", Isa::Avx2, avx2_ref)};
#undef DSV4_LEVEL

void PrintTo(const Level& l, std::ostream* os) { *os << l.name; }

class CpuRefRows : public ::testing::TestWithParam<Level> {};

#define SKIP_WITHOUT_LEVEL()      \
  const Level& L = GetParam();    \
  if (detected_isa() < L.isa) GTEST_SKIP() << "no " << L.name << " on this CPU"

// Index of the first element whose bits differ, or -1.
int64_t first_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    if (std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i])) return static_cast<int64_t>(i);
  return -1;
}

std::vector<float> randn(std::mt19937& rng, size_t n, float sd) {
  std::normal_distribution<float> d(0.f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<uint16_t> bf16_weights(std::mt19937& rng, size_t n) {
  std::vector<uint16_t> w;
  for (float x : randn(rng, n, 0.5f)) w.push_back(quant::f32_to_bf16(1.0f + x));
  return w;
}

const int64_t kWidths[] = {1, 7, 16, 17, 64, 100, 512, 1024, 4101};

TEST_P(CpuRefRows, RmsNormBitIdentical) {
  SKIP_WITHOUT_LEVEL();
  std::mt19937 rng(11);
  for (int64_t n : kWidths) {
    for (float sd : {1e-3f, 1.0f, 300.0f}) {
      const auto x = randn(rng, n, sd);
      const auto w = bf16_weights(rng, n);
      std::vector<float> a(n), b(n);
      ref::rms_norm(x.data(), w.data(), n, 1e-6f, a.data());
      L.rms_norm(x.data(), w.data(), n, 1e-6f, b.data());
      ASSERT_EQ(first_diff(a, b), -1) << "n " << n << " sd " << sd;
      // In place, as the forward pass calls it.
      std::vector<float> c = x;
      L.rms_norm(c.data(), w.data(), n, 1e-6f, c.data());
      ASSERT_EQ(first_diff(a, c), -1) << "in place, n " << n;
    }
  }
}

TEST_P(CpuRefRows, NormsOfWideRangeRowsStayWithinOneBf16Step) {
  SKIP_WITHOUT_LEVEL();
  // Squares from 2^-80 to 2^80: the float64 sums round differently in 8 lanes than one by one.
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> e(-40.f, 40.f);
  const int64_t n = 4096;
  std::vector<float> x(n);
  for (auto& v : x) v = std::exp2(e(rng)) * (rng() % 2 ? 1.f : -1.f);
  const auto w = bf16_weights(rng, n);
  std::vector<float> a(n), b(n);
  ref::rms_norm(x.data(), w.data(), n, 1e-6f, a.data());
  L.rms_norm(x.data(), w.data(), n, 1e-6f, b.data());
  std::vector<float> qa = x, qb = x;
  ref::head_norm_bf16(qa.data(), n, 1e-6f);
  L.head_norm_bf16(qb.data(), n, 1e-6f);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_LE(std::fabs(a[i] - b[i]), std::ldexp(std::fabs(a[i]), -7)) << i;
    ASSERT_LE(std::fabs(qa[i] - qb[i]), std::ldexp(std::fabs(qa[i]), -7)) << i;
  }
}

TEST_P(CpuRefRows, HeadNormBitIdentical) {
  SKIP_WITHOUT_LEVEL();
  std::mt19937 rng(13);
  for (int64_t n : kWidths) {
    for (float sd : {0.01f, 1.0f, 50.0f}) {
      const auto q = randn(rng, n, sd);
      std::vector<float> a = q, b = q;
      ref::head_norm_bf16(a.data(), n, 1e-6f);
      L.head_norm_bf16(b.data(), n, 1e-6f);
      ASSERT_EQ(first_diff(a, b), -1) << "n " << n << " sd " << sd;
    }
  }
}

TEST_P(CpuRefRows, HcPostBitIdentical) {
  SKIP_WITHOUT_LEVEL();
  std::mt19937 rng(14);
  for (int hc : {1, 4, 5}) {
    for (int64_t dim : {3, 16, 100, 4099}) {
      auto x = randn(rng, hc * dim, 2.0f);
      auto f = randn(rng, dim, 1.0f);
      const auto post = randn(rng, hc, 1.0f), comb = randn(rng, hc * hc, 0.5f);
      x[0] = kNaN;
      x[dim - 1] = -kInf;
      f[dim / 2] = -0.0f;
      for (auto [d0, d1] : {std::pair<int64_t, int64_t>{0, dim}, {dim / 3, dim - dim / 5}}) {
        if (d1 <= d0) continue;
        std::vector<float> a(hc * (d1 - d0)), b(hc * (d1 - d0));
        ref::hc_post(x.data(), f.data(), hc, dim, post.data(), comb.data(), d0, d1, a.data());
        L.hc_post(x.data(), f.data(), hc, dim, post.data(), comb.data(), d0, d1, b.data());
        ASSERT_EQ(first_diff(a, b), -1) << "hc " << hc << " dim " << dim << " d0 " << d0;
      }
    }
  }
}

TEST_P(CpuRefRows, HcPreFinishBitIdentical) {
  SKIP_WITHOUT_LEVEL();
  std::mt19937 rng(15);
  for (int hc : {2, 4}) {
    for (int64_t dim : {5, 64, 4096}) {
      const int mix = (2 + hc) * hc;
      const auto x = randn(rng, hc * dim, 1.5f);
      const auto dots = randn(rng, mix, 20.0f), base = randn(rng, mix, 0.3f);
      const float scale[3] = {0.7f, 0.9f, 1.1f};
      std::vector<float> pa(hc), qa(hc), ca(hc * hc), aa(dim), pb(hc), qb(hc), cb(hc * hc), ab(dim);
      ref::hc_pre_finish(x.data(), hc, dim, dots.data(), scale, base.data(), 20, 1e-6f, 1e-6f,
                         {pa.data(), qa.data(), ca.data()}, aa.data());
      L.hc_pre_finish(x.data(), hc, dim, dots.data(), scale, base.data(), 20, 1e-6f, 1e-6f,
                                {pb.data(), qb.data(), cb.data()}, ab.data());
      EXPECT_EQ(first_diff(pa, pb), -1);
      EXPECT_EQ(first_diff(qa, qb), -1);
      EXPECT_EQ(first_diff(ca, cb), -1);
      ASSERT_EQ(first_diff(aa, ab), -1) << "hc " << hc << " dim " << dim;
    }
  }
}

TEST_P(CpuRefRows, HcHeadFinishBitIdentical) {
  SKIP_WITHOUT_LEVEL();
  std::mt19937 rng(25);
  for (int hc : {1, 2, 4}) {
    for (int64_t dim : {5, 64, 4096}) {
      const auto x = randn(rng, hc * dim, 1.5f);
      const auto dots = randn(rng, hc, 20.0f), base = randn(rng, hc, 0.3f);
      const float scale[1] = {0.7f};
      std::vector<float> aa(dim), ab(dim);
      ref::hc_head_finish(x.data(), hc, dim, dots.data(), scale, base.data(), 1e-6f, 1e-6f, aa.data());
      L.hc_head_finish(x.data(), hc, dim, dots.data(), scale, base.data(), 1e-6f, 1e-6f, ab.data());
      ASSERT_EQ(first_diff(aa, ab), -1) << "hc " << hc << " dim " << dim;
    }
  }
}

TEST_P(CpuRefRows, SwigluBitIdentical) {
  SKIP_WITHOUT_LEVEL();
  std::mt19937 rng(16);
  // 2^18 values: normal ones of every scale the experts see, and the edges of exp (float32
  // overflow of e^-g near g = -88.7, underflow near g = 103) and the specials.
  const int64_t n = (1 << 18) + 13;
  std::vector<float> g = randn(rng, n, 4.0f), u = randn(rng, n, 4.0f);
  std::uniform_real_distribution<float> edge(-110.f, 110.f);
  for (int64_t i = 0; i < n; i += 7) g[i] = edge(rng);
  const float specials[] = {kNaN, kInf, -kInf, 0.0f, -0.0f, 1e-40f, -1e-40f, 88.72f, -88.72f,
                            -87.0f, 104.0f, 1e30f, -1e30f, 10.0f, -10.0f};
  for (size_t i = 0; i < std::size(specials); ++i) {
    for (size_t j = 0; j < std::size(specials); ++j) {
      g[i * std::size(specials) + j] = specials[i];
      u[i * std::size(specials) + j] = specials[j];
    }
  }
  for (float limit : {0.0f, 10.0f}) {
    for (float weight : {-1.0f, 0.0f, 0.37f}) {
      std::vector<float> a(n), b(n);
      ref::swiglu(g.data(), u.data(), n, limit, weight, a.data());
      L.swiglu(g.data(), u.data(), n, limit, weight, b.data());
      const int64_t d = first_diff(a, b);
      ASSERT_EQ(d, -1) << "limit " << limit << " weight " << weight << " g " << g[d] << " u " << u[d]
                       << ": " << a[d] << " vs " << b[d];
    }
  }
}

// The compressor's pooling: per channel a softmax over the candidate rows, the values summed with
// it. Rows as the compressors have them (8 for ratio 4, overlapping blocks; 128 for ratio 128),
// odd channel counts (masked tails), scores of every scale, -inf candidates (an empty previous
// block), a NaN score and value.
TEST_P(CpuRefRows, SoftmaxPoolBitIdentical) {
  SKIP_WITHOUT_LEVEL();
  std::mt19937 rng(61);
  for (int rows : {1, 2, 8, 128}) {
    for (int64_t c : {1, 7, 16, 17, 100, 512}) {
      for (float sd : {0.1f, 3.0f, 40.0f}) {
        std::vector<std::vector<float>> v(rows), s(rows);
        for (int r = 0; r < rows; ++r) {
          v[r] = randn(rng, static_cast<size_t>(c), 2.0f);
          s[r] = randn(rng, static_cast<size_t>(c), sd);
        }
        if (rows >= 8)
          for (int r = 0; r < rows / 2; ++r)
            for (int64_t ch = 0; ch < c; ch += 3) s[r][ch] = -kInf;
        if (c >= 17 && rows >= 2) {
          s[1][16] = kNaN;
          v[0][5] = kNaN;
          s[0][9] = kInf;
        }
        std::vector<const float*> vp, sp;
        for (int r = 0; r < rows; ++r) {
          vp.push_back(v[r].data());
          sp.push_back(s[r].data());
        }
        std::vector<float> a(static_cast<size_t>(c)), b(static_cast<size_t>(c), 1.0f);
        ref::softmax_pool(vp.data(), sp.data(), rows, c, a.data());
        L.softmax_pool(vp.data(), sp.data(), rows, c, b.data());
        const int64_t d = first_diff(a, b);
        ASSERT_EQ(d, -1) << "rows " << rows << " c " << c << " sd " << sd << " channel " << d << ": " << a[d]
                         << " vs " << b[d];
      }
    }
  }
}

TEST_P(CpuRefRows, Exp32MatchesTheReferenceOnFloat32) {
  SKIP_WITHOUT_LEVEL();
  // Every 97th float32 in [-120, 120], the range ends and the specials: f32(exp) may differ only
  // where exp lies within a float64 ulp or two of a float32 rounding boundary (about 2^-28 of the
  // values), so none of these 23 million may.
  std::vector<float> x;
  for (uint32_t b = 0; b < 0x42F00000u; b += 97) {
    x.push_back(std::bit_cast<float>(b));
    x.push_back(-std::bit_cast<float>(b));
  }
  for (float s : {kNaN, kInf, -kInf, 0.0f, -0.0f, 88.72283f, 88.72284f, -103.97f, -103.98f,
                  -87.33655f, 1e30f, -1e30f, 120.0f, -120.0f, 121.0f, -121.0f})
    x.push_back(s);
  std::vector<float> a(x.size()), b(x.size());
  for (size_t i = 0; i < x.size(); ++i) a[i] = ref::exp32(x[i]);
  L.exp32(x.data(), static_cast<int64_t>(x.size()), b.data());
  const int64_t d = first_diff(a, b);
  ASSERT_EQ(d, -1) << "exp(" << x[d] << "): " << a[d] << " vs " << b[d];
}

// The router's scores: sqrt-softplus and sigmoid of every 97th float32 in [-120, 120] and the
// specials (the float64 exp and log1p may only differ where a result lies within a float64 ulp or
// two of a float32 rounding boundary, so none of these may); softmax is the reference's own.
TEST_P(CpuRefRows, GateScoresMatchTheReference) {
  SKIP_WITHOUT_LEVEL();
  std::vector<float> x;
  for (uint32_t b = 0; b < 0x42F00000u; b += 97) {
    x.push_back(std::bit_cast<float>(b));
    x.push_back(-std::bit_cast<float>(b));
  }
  for (float v : {kNaN, kInf, -kInf, 0.0f, -0.0f, 20.0f, 20.000002f, 19.999998f, 1e-30f, -1e-30f, 88.72f,
                  -103.97f, -104.0f, 1e30f, -1e30f, 121.0f, -121.0f})
    x.push_back(v);
  for (ScoreFunc f : {ScoreFunc::SqrtSoftplus, ScoreFunc::Sigmoid}) {
    std::vector<float> a = x, b = x;
    // in pieces of the expert count, as the router calls it (and one odd tail)
    for (size_t i = 0; i < x.size(); i += 256) {
      const int n = static_cast<int>(std::min<size_t>(256, x.size() - i));
      ref::gate_scores(a.data() + i, n, f);
      L.gate_scores(b.data() + i, n, f);
    }
    for (size_t i = 0; i < x.size(); ++i) {
      if (std::isnan(a[i])) {
        ASSERT_TRUE(std::isnan(b[i])) << "x " << x[i];
        continue;
      }
      ASSERT_EQ(std::bit_cast<uint32_t>(a[i]), std::bit_cast<uint32_t>(b[i]))
          << (f == ScoreFunc::Sigmoid ? "sigmoid(" : "sqrtsoftplus(") << x[i] << "): " << a[i] << " vs " << b[i];
    }
  }
  std::mt19937 rng(7);
  std::vector<float> a = randn(rng, 255, 3.0f), b = a;
  ref::gate_scores(a.data(), 255, ScoreFunc::Softmax);
  L.gate_scores(b.data(), 255, ScoreFunc::Softmax);
  EXPECT_EQ(first_diff(a, b), -1);
}

TEST_P(CpuRefRows, RopeApplyBitIdentical) {
  SKIP_WITHOUT_LEVEL();
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> ang(-3.2f, 3.2f);
  for (int npairs : {1, 3, 4, 5, 32, 33}) {
    auto x = randn(rng, 2 * npairs, 3.0f);
    std::vector<float> c(npairs), s(npairs);
    for (int i = 0; i < npairs; ++i) {
      c[i] = std::cos(ang(rng));
      s[i] = std::sin(ang(rng));
    }
    x[0] = -0.0f;
    if (npairs > 2) x[3] = kNaN;
    for (bool inverse : {false, true}) {
      std::vector<float> a = x, b = x;
      ref::rope_apply(a.data(), c.data(), s.data(), npairs, inverse);
      L.rope_apply(b.data(), c.data(), s.data(), npairs, inverse);
      ASSERT_EQ(first_diff(a, b), -1) << "npairs " << npairs << " inverse " << inverse;
    }
  }
}

TEST_P(CpuRefRows, Fp8SimBitIdentical) {
  SKIP_WITHOUT_LEVEL();
  std::mt19937 rng(19);
  // The KV rows' 448 non-RoPE dims in blocks of 64, partial last blocks, one 16-wide block.
  for (const auto& [n, block] : {std::pair<int64_t, int>{448, 64}, {64, 64}, {100, 64}, {31, 64}, {48, 16}}) {
    for (float sd : {1e-30f, 1e-3f, 1.0f, 300.0f, 1e30f}) {
      std::vector<float> v = randn(rng, n, sd);
      std::vector<float> a = v, b = v;
      quant::fp8_sim(a.data(), n, block);
      L.fp8_sim(b.data(), n, block);
      ASSERT_EQ(first_diff(a, b), -1) << "n " << n << " block " << block << " sd " << sd;
    }
  }
  // A block whose amax is 448 has the scale 1, so x / s is x: every tie between E4M3 values of
  // one binade and the values next to them, the largest values, the subnormal codes (multiples
  // of 2^-9 below 2^-6) and their ties, both signs.
  std::vector<float> v;
  for (float m : {1.0625f, 1.1875f, 1.9375f, 17.0f, 19.0f, 232.0f, 440.0f, 447.9f, 448.0f, 0.015625f,
                  0.0146484375f, 0.0009765625f, 0.0029296875f, 0.0f, 3e-40f}) {
    for (float x : {m, std::nextafter(m, 0.0f), std::nextafter(m, 1000.0f)}) {
      v.push_back(x);
      v.push_back(-x);
    }
  }
  v.resize(128, 448.0f);
  v[127] = -0.0f;
  // Blocks holding NaN, +-inf, only zeros, and an amax under the floor.
  for (float special : {kNaN, kInf, -kInf}) {
    std::vector<float> blk(64, 1.5f);
    blk[9] = special;
    v.insert(v.end(), blk.begin(), blk.end());
  }
  v.insert(v.end(), 64, 0.0f);
  v.insert(v.end(), 64, 3e-5f);
  std::vector<float> a = v, b = v;
  quant::fp8_sim(a.data(), static_cast<int64_t>(v.size()), 64);
  L.fp8_sim(b.data(), static_cast<int64_t>(v.size()), 64);
  const int64_t d = first_diff(a, b);
  ASSERT_EQ(d, -1) << "element " << d << " (" << v[d] << "): " << a[d] << " vs " << b[d];
  // Blocks that are not a multiple of 16 wide go to the scalar code.
  std::vector<float> c = v, e = v;
  quant::fp8_sim(c.data(), 90, 30);
  L.fp8_sim(e.data(), 90, 30);
  ASSERT_EQ(first_diff(c, e), -1);
}

TEST_P(CpuRefRows, Fp4SimBitIdentical) {
  SKIP_WITHOUT_LEVEL();
  std::mt19937 rng(18);
  for (int64_t n : {32, 64, 128, 75, 31}) {
    for (float sd : {1e-30f, 1e-3f, 1.0f, 1e30f}) {
      std::vector<float> v = randn(rng, n, sd);
      std::vector<float> a = v, b = v;
      quant::fp4_sim(a.data(), n, 32);
      L.fp4_sim(b.data(), n, 32);
      ASSERT_EQ(first_diff(a, b), -1) << "n " << n << " sd " << sd;
    }
  }
  // Every tie of the E2M1 grid and the values next to it, both signs: a block whose amax is 6
  // has the scale 1, so x / s is x.
  std::vector<float> v;
  for (float m : {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 0.0f, 6.0f, 7.0f}) {
    for (float x : {m, std::nextafter(m, 0.0f), std::nextafter(m, 10.0f)}) {
      v.push_back(x);
      v.push_back(-x);
    }
  }
  v.resize(64, 6.0f);
  v[60] = -0.0f;
  v[61] = 1e-41f;  // subnormal
  // Blocks holding NaN, +-inf, only zeros, and an amax under the floor.
  for (float special : {kNaN, kInf, -kInf}) {
    std::vector<float> blk(32, 1.5f);
    blk[5] = special;
    v.insert(v.end(), blk.begin(), blk.end());
  }
  v.insert(v.end(), 32, 0.0f);
  v.insert(v.end(), 32, 1e-39f);
  std::vector<float> a = v, b = v;
  quant::fp4_sim(a.data(), static_cast<int64_t>(v.size()), 32);
  L.fp4_sim(b.data(), static_cast<int64_t>(v.size()), 32);
  const int64_t d = first_diff(a, b);
  ASSERT_EQ(d, -1) << "element " << d << " (" << v[d] << "): " << a[d] << " vs " << b[d];
  // Another block width goes to the scalar code.
  std::vector<float> c = v, e = v;
  quant::fp4_sim(c.data(), 96, 16);
  L.fp4_sim(e.data(), 96, 16);
  EXPECT_EQ(first_diff(c, e), -1);
}

INSTANTIATE_TEST_SUITE_P(CpuLevels, CpuRefRows, ::testing::ValuesIn(kLevels),
                         [](const ::testing::TestParamInfo<Level>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace dsv4::cpu
