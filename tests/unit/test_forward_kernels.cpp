// Reference kernels of the forward pass in isolation: linear kinds against float64 dequantised
// products, row independence (one function over a span of rows), strides, FP4 nibble order, sparse
// attention against a float64 softmax with sink and the neutrality of -1 padding, the top-k tie
// rule, gate routing, the asymmetric SwiGLU clamp, compressor pooling, and the fast backend against
// the reference backend.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/ref/attention.h"
#include "kernels/ref/compressor.h"
#include "kernels/ref/fmath.h"
#include "kernels/ref/indexer.h"
#include "kernels/ref/linear.h"
#include "kernels/ref/moe.h"
#include "model/backend.h"
#include "quant/quant.h"

namespace dsv4 {
namespace {

std::vector<float> bf16_values(size_t n, std::mt19937& rng, float sd = 1.0f) {
  std::normal_distribution<float> nd(0.0f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = ref::bf16r(nd(rng));
  return v;
}

struct Fp8Fixture {
  std::vector<uint8_t> w, s;
  Fp8Mat m;
  Fp8Fixture(int64_t rows, int64_t cols, std::mt19937& rng) {
    w.resize(static_cast<size_t>(rows * cols));
    for (auto& c : w) {
      do c = static_cast<uint8_t>(rng() & 0xff);
      while ((c & 0x7f) == 0x7f);  // no NaN codes
    }
    const int64_t sr = (rows + 127) / 128, sc = (cols + 127) / 128;
    s.resize(static_cast<size_t>(sr * sc));
    for (auto& b : s) b = static_cast<uint8_t>(120 + rng() % 8);
    m = Fp8Mat{w.data(), s.data(), rows, cols};
  }
  double value(int64_t r, int64_t c) const {
    return double(quant::e4m3_to_f32(w[r * m.cols + c])) * quant::e8m0_to_f32(s[(r / 128) * m.scale_cols() + c / 128]);
  }
};

// x after the FP8 activation simulation (what the GEMM consumes), in double.
std::vector<double> act_dequant(const float* x, int64_t k) {
  std::vector<uint8_t> codes(static_cast<size_t>(k)), sc(static_cast<size_t>((k + 127) / 128));
  quant::quantize_e4m3_blocks(x, k, 128, codes.data(), sc.data());
  std::vector<double> out(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) out[i] = double(quant::e4m3_to_f32(codes[i])) * quant::e8m0_to_f32(sc[i / 128]);
  return out;
}

TEST(ForwardKernels, LinearFp8MatchesDequantisedProductAndRowsAreIndependent) {
  std::mt19937 rng(7);
  const int64_t N = 130, K = 384, M = 5;
  Fp8Fixture f(N, K, rng);
  const auto x = bf16_values(static_cast<size_t>(M * K), rng);
  std::vector<float> y(static_cast<size_t>(M * N)), y1(static_cast<size_t>(N));
  ref::linear_fp8(f.m, ConstRows{x.data(), M, K}, Rows{y.data(), M, N});
  for (int64_t m = 0; m < M; ++m) {
    const auto xa = act_dequant(&x[m * K], K);
    ref::linear_fp8(f.m, ConstRows{&x[m * K], 1, K}, Rows{y1.data(), 1, N});
    EXPECT_EQ(0, std::memcmp(y1.data(), &y[m * N], N * 4)) << "row " << m << " depends on the batch";
    for (int64_t o = 0; o < N; ++o) {
      double want = 0;
      for (int64_t k = 0; k < K; ++k) want += xa[k] * f.value(o, k);
      EXPECT_NEAR(y[m * N + o], want, std::abs(want) * 1.0 / 256 + 1e-6) << m << "," << o;
      EXPECT_EQ(y[m * N + o], ref::bf16r(y[m * N + o]));  // bf16 output
    }
  }
}

TEST(ForwardKernels, LinearFp4NibbleOrderAndScales) {
  const int64_t N = 2, K = 128;
  std::vector<uint8_t> w(static_cast<size_t>(N * K / 2), 0), s(static_cast<size_t>(N * K / 32), 127);
  w[0] = 0x02;       // row 0: element 0 (low nibble) = 1.0
  w[K / 2 + 20] = 0x70;  // row 1: element 41 (high nibble of byte 20) = 6.0
  s[1 * (K / 32) + 41 / 32] = 126;  // row 1, block 1: scale 0.5
  const Fp4Mat m{w.data(), s.data(), N, K};
  std::vector<float> x(static_cast<size_t>(K), 0.0f), y(2);
  x[0] = 3.0f;
  x[41] = 1.5f;
  ref::linear_fp4(m, ConstRows{x.data(), 1, K}, Rows{y.data(), 1, N});
  EXPECT_EQ(y[0], 3.0f);
  EXPECT_EQ(y[1], 1.5f * 6.0f * 0.5f);
}

TEST(ForwardKernels, IdealLinearsAndStrides) {
  std::mt19937 rng(3);
  const int64_t N = 7, K = 300;
  std::vector<uint16_t> wb(static_cast<size_t>(N * K));
  const auto wv = bf16_values(wb.size(), rng);
  for (size_t i = 0; i < wb.size(); ++i) wb[i] = quant::f32_to_bf16(wv[i]);
  const Bf16Mat m{wb.data(), N, K};
  const int64_t ld = K + 13;  // strided rows
  std::vector<float> x(static_cast<size_t>(2 * ld), 99.0f);
  const auto xv = bf16_values(static_cast<size_t>(2 * K), rng);
  for (int r = 0; r < 2; ++r) std::copy(&xv[r * K], &xv[(r + 1) * K], &x[r * ld]);
  std::vector<float> yf(static_cast<size_t>(2 * N)), yb(static_cast<size_t>(2 * N));
  ref::linear_f32(m, ConstRows{x.data(), 2, ld}, Rows{yf.data(), 2, N});
  ref::linear_bf16(m, ConstRows{x.data(), 2, ld}, Rows{yb.data(), 2, N});
  for (int r = 0; r < 2; ++r)
    for (int64_t o = 0; o < N; ++o) {
      double want = 0;
      for (int64_t k = 0; k < K; ++k) want += double(xv[r * K + k]) * wv[o * K + k];
      EXPECT_EQ(yf[r * N + o], static_cast<float>(want));
      EXPECT_EQ(yb[r * N + o], ref::bf16r(static_cast<float>(want)));
    }
}

TEST(ForwardKernels, SparseAttentionMatchesSoftmaxWithSinkAndPaddingIsNeutral) {
  std::mt19937 rng(11);
  const int H = 2, D = 64, NK = 150;
  const auto keys = bf16_values(static_cast<size_t>(NK * D), rng);
  const auto q = bf16_values(static_cast<size_t>(H * D), rng);
  const float sink[H] = {0.5f, -1.0f};
  const float scale = static_cast<float>(std::pow(double(D), -0.5));
  std::vector<int32_t> list(200, -1);
  for (int i = 0; i < NK; ++i) list[static_cast<size_t>(i + (i >= 100 ? 40 : 0))] = i;  // a -1 gap
  std::vector<float> out(static_cast<size_t>(H * D));
  AttentionArgs a;
  a.q = q.data(); a.n = 1; a.n_heads = H; a.head_dim = D; a.keys = keys.data(); a.split = NK;
  a.lists = list.data(); a.list_len = 200; a.sink = sink; a.scale = scale; a.out = out.data();
  ref::sparse_attention(a);
  for (int h = 0; h < H; ++h) {
    std::vector<double> s(NK);
    double mx = -1e300;
    for (int j = 0; j < NK; ++j) {
      double d = 0;
      for (int k = 0; k < D; ++k) d += double(q[h * D + k]) * keys[j * D + k];
      s[j] = d * scale;
      mx = std::max(mx, s[j]);
    }
    double den = std::exp(sink[h] - mx);
    for (int j = 0; j < NK; ++j) den += std::exp(s[j] - mx);
    for (int k = 0; k < D; ++k) {
      double num = 0;
      for (int j = 0; j < NK; ++j) num += std::exp(s[j] - mx) * keys[j * D + k];
      EXPECT_NEAR(out[h * D + k], num / den, 1e-2 * (std::abs(num / den) + 0.05));
    }
  }
  // a -1 entry is neutral wherever it sits inside a block: swap a key with padding in block 2
  ASSERT_EQ(list[130], -1);
  std::vector<int32_t> l4 = list;
  std::swap(l4[130], l4[140]);
  std::vector<float> o4(out.size());
  a.lists = l4.data();
  a.out = o4.data();
  ref::sparse_attention(a);
  EXPECT_EQ(0, std::memcmp(o4.data(), out.data(), out.size() * 4));
}

TEST(ForwardKernels, TopkTiesGoToTheLowerIndexInDescendingOrder) {
  const float v[] = {1.0f, 3.0f, 3.0f, -std::numeric_limits<float>::infinity(), 2.0f, 3.0f, 0.0f};
  int32_t out[4], work[7];
  ref::topk_desc(v, 7, 4, out, work);
  EXPECT_EQ(out[0], 1);
  EXPECT_EQ(out[1], 2);
  EXPECT_EQ(out[2], 5);
  EXPECT_EQ(out[3], 4);
}

TEST(ForwardKernels, GateRouting) {
  const float scores[4] = {0.5f, 0.2f, 0.9f, 0.4f};
  const float bias[4] = {0.0f, 1.0f, 0.0f, 0.0f};  // bias only selects
  int32_t idx[2];
  float w[2];
  ref::gate_route(scores, bias, nullptr, 4, 2, ScoreFunc::SqrtSoftplus, 1.5f, idx, w);
  EXPECT_EQ(idx[0], 1);  // 1.2
  EXPECT_EQ(idx[1], 2);  // 0.9
  EXPECT_FLOAT_EQ(w[0], 0.2f / 1.1f * 1.5f);
  EXPECT_FLOAT_EQ(w[1], 0.9f / 1.1f * 1.5f);
  const int32_t hash[2] = {3, 0};  // table order kept
  ref::gate_route(scores, nullptr, hash, 4, 2, ScoreFunc::SqrtSoftplus, 1.0f, idx, w);
  EXPECT_EQ(idx[0], 3);
  EXPECT_EQ(idx[1], 0);
  EXPECT_FLOAT_EQ(w[0] + w[1], 1.0f);
  float s[3] = {0.0f, 25.0f, -3.0f};
  ref::gate_scores(s, 3, ScoreFunc::SqrtSoftplus);
  EXPECT_FLOAT_EQ(s[0], std::sqrt(std::log(2.0f)));
  EXPECT_EQ(s[1], std::sqrt(25.0f));  // softplus threshold 20: identity
}

TEST(ForwardKernels, SwigluClampIsAsymmetric) {
  const float g[3] = {20.0f, -20.0f, 1.0f}, u[3] = {-30.0f, 30.0f, 2.0f};
  float h[3], hs[3];
  ref::swiglu(g, u, 3, 10.0f, 0.5f, h);
  EXPECT_EQ(h[0], ref::bf16r(ref::silu32(10.0f) * -10.0f * 0.5f));   // gate max 10, up min -10
  EXPECT_EQ(h[1], ref::bf16r(ref::silu32(-20.0f) * 10.0f * 0.5f));   // gate not clamped below
  ref::swiglu(g, u, 3, 0.0f, -1.0f, hs);                             // shared expert: no clamp
  EXPECT_EQ(hs[0], ref::bf16r(ref::silu32(20.0f) * -30.0f));
}

TEST(ForwardKernels, CompressorPoolingIgnoresMinusInfCandidates) {
  const float ninf = -std::numeric_limits<float>::infinity();
  const float v0[2] = {5.0f, 5.0f}, v1[2] = {1.0f, 2.0f}, v2[2] = {3.0f, 4.0f};
  const float s0[2] = {ninf, ninf}, s1[2] = {0.0f, 1.0f}, s2[2] = {0.0f, 1.0f};
  const float* vals[3] = {v0, v1, v2};
  const float* scs[3] = {s0, s1, s2};
  float z[2];
  ref::softmax_pool(vals, scs, 3, 2, z);
  EXPECT_FLOAT_EQ(z[0], 2.0f);
  EXPECT_FLOAT_EQ(z[1], 3.0f);
}

TEST(ForwardKernels, FastBackendTracksReference) {
  std::mt19937 rng(5);
  const auto rb = make_reference_backend();
  const auto fb = cpu::make_cpu_backend(1);
  const int64_t N = 64, K = 256, M = 3;
  Fp8Fixture f(N, K, rng);
  const auto x = bf16_values(static_cast<size_t>(M * K), rng);
  std::vector<float> yr(static_cast<size_t>(M * N)), yf(yr.size());
  rb->linear_fp8(f.m, ConstRows{x.data(), M, K}, Rows{yr.data(), M, N});
  fb->linear_fp8(f.m, ConstRows{x.data(), M, K}, Rows{yf.data(), M, N});
  double num = 0, den = 0;
  for (size_t i = 0; i < yr.size(); ++i) {
    num += std::pow(double(yr[i]) - yf[i], 2);
    den += std::pow(double(yr[i]), 2);
  }
  EXPECT_LT(std::sqrt(num / den), 4e-3);  // bf16 output: at most an ulp here and there
}

}  // namespace
}  // namespace dsv4
