// The fast backend. For now: plain float32-accumulating loops (activation quantisation kept, so the
// result stays within the reference's noise floor); SIMD kernels from src/kernels/cpu replace
// these bodies behind the same interface. Attention and indexer scoring reuse the reference.
#include <array>
#include <cmath>
#include <vector>

#include "kernels/cpu/indexer_fp4.h"
#include "kernels/ref/attention.h"
#include "kernels/ref/fmath.h"
#include "kernels/ref/indexer.h"
#include "model/backend.h"
#include "quant/quant.h"

namespace dsv4 {
namespace {

constexpr int kActBlock = 128;

struct Tables {
  std::array<float, 256> e4m3{};
  std::array<float, 16> e2m1{};
  std::array<float, 256> e8m0{};
  Tables() {
    for (int i = 0; i < 256; ++i) e8m0[i] = quant::e8m0_to_f32(static_cast<uint8_t>(i));
    for (int i = 0; i < 256; ++i) e4m3[i] = quant::e4m3_to_f32(static_cast<uint8_t>(i));
    for (int i = 0; i < 16; ++i) e2m1[i] = quant::e2m1_to_f32(static_cast<uint8_t>(i));
  }
};
const Tables& tables() {
  static const Tables t;
  return t;
}

// act_quant'ed activations dequantised to float (value * scale), one row after another.
void act_dequant(ConstRows x, int64_t K, std::vector<float>& out) {
  thread_local std::vector<uint8_t> codes, sc;
  const int64_t nb = (K + kActBlock - 1) / kActBlock;
  codes.resize(static_cast<size_t>(K));
  sc.resize(static_cast<size_t>(nb));
  out.resize(static_cast<size_t>(x.n * K));
  const auto& t = tables();
  for (int64_t m = 0; m < x.n; ++m) {
    quant::quantize_e4m3_blocks(x.row(m), K, kActBlock, codes.data(), sc.data());
    for (int64_t k = 0; k < K; ++k) out[m * K + k] = t.e4m3[codes[k]] * t.e8m0[sc[k / kActBlock]];
  }
}

void dense(const std::vector<float>& xa, int64_t n, int64_t K, const float* wrow, int64_t o, Rows y,
           bool to_bf16) {
  for (int64_t m = 0; m < n; ++m) {
    const float* xr = xa.data() + m * K;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t k = 0; k < K; ++k) s += xr[k] * wrow[k];
    y.row(m)[o] = to_bf16 ? ref::bf16r(s) : s;
  }
}

void gather_x(ConstRows x, int64_t K, std::vector<float>& out) {
  out.resize(static_cast<size_t>(x.n * K));
  for (int64_t m = 0; m < x.n; ++m)
    for (int64_t k = 0; k < K; ++k) out[m * K + k] = x.row(m)[k];
}

class FastBackend final : public Backend {
 public:
  const char* name() const override { return "fast"; }

  void linear_fp8(const Fp8Mat& w, ConstRows x, Rows y) const override {
    const int64_t K = w.cols;
    thread_local std::vector<float> xa, wr;
    act_dequant(x, K, xa);
    wr.resize(static_cast<size_t>(K));
    const auto& t = tables();
    for (int64_t o = 0; o < w.rows; ++o) {
      const uint8_t* src = w.w + o * K;
      const uint8_t* srow = w.s + (o / kActBlock) * w.scale_cols();
      for (int64_t k = 0; k < K; ++k) wr[k] = t.e4m3[src[k]] * t.e8m0[srow[k / kActBlock]];
      dense(xa, x.n, K, wr.data(), o, y, true);
    }
  }

  void linear_fp4(const Fp4Mat& w, ConstRows x, Rows y) const override {
    const int64_t K = w.cols;
    thread_local std::vector<float> xa, wr;
    act_dequant(x, K, xa);
    wr.resize(static_cast<size_t>(K));
    const auto& t = tables();
    const int64_t nb = K / 32;
    for (int64_t o = 0; o < w.rows; ++o) {
      const uint8_t* src = w.w + o * (K / 2);
      for (int64_t j = 0; j < K / 2; ++j) {
        const float s = t.e8m0[w.s[o * nb + (2 * j) / 32]];
        wr[2 * j] = t.e2m1[src[j] & 0x0f] * s;
        wr[2 * j + 1] = t.e2m1[src[j] >> 4] * s;
      }
      dense(xa, x.n, K, wr.data(), o, y, true);
    }
  }

  void linear_bf16(const Bf16Mat& w, ConstRows x, Rows y) const override { bf16w(w, x, y, true); }
  void linear_f32(const Bf16Mat& w, ConstRows x, Rows y) const override { bf16w(w, x, y, false); }

  void linear_f32w(const float* f, int64_t rows, int64_t cols, ConstRows x, Rows y) const override {
    thread_local std::vector<float> xa;
    gather_x(x, cols, xa);
    for (int64_t o = 0; o < rows; ++o) dense(xa, x.n, cols, f + o * cols, o, y, false);
  }

  void sparse_attention(const AttentionArgs& a) const override { ref::sparse_attention(a); }
  void indexer_scores(const IndexerScoreArgs& a) const override { ref::indexer_scores(a); }
  bool indexer_scores_fp4(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes) const override {
    cpu::indexer_scores_fp4(a, keys, key_bytes);  // compact keys scanned in place (kernels/cpu/indexer_fp4.h)
    return true;
  }

 private:
  static void bf16w(const Bf16Mat& w, ConstRows x, Rows y, bool to_bf16) {
    const int64_t K = w.cols;
    thread_local std::vector<float> xa, wr;
    gather_x(x, K, xa);
    wr.resize(static_cast<size_t>(K));
    for (int64_t o = 0; o < w.rows; ++o) {
      for (int64_t k = 0; k < K; ++k) wr[k] = ref::bf16_bits_to_f32(w.w[o * K + k]);
      dense(xa, x.n, K, wr.data(), o, y, to_bf16);
    }
  }
};

}  // namespace

void Backend::hadamard_rows(float* x, int64_t rows, int n) const {
  thread_local std::vector<double> t;
  t.resize(static_cast<size_t>(n));
  const float scale = static_cast<float>(std::pow(static_cast<double>(n), -0.5));
  for (int64_t r = 0; r < rows; ++r) {
    float* v = x + r * n;
    for (int i = 0; i < n; ++i) t[i] = v[i];
    for (int h = 1; h < n; h *= 2)
      for (int i = 0; i < n; i += 2 * h)
        for (int j = i; j < i + h; ++j) {
          const double a = t[j], b = t[j + h];
          t[j] = a + b;
          t[j + h] = a - b;
        }
    for (int i = 0; i < n; ++i) v[i] = ref::bf16r(static_cast<float>(t[i]) * scale);
  }
}

std::unique_ptr<Backend> make_fast_backend() { return std::make_unique<FastBackend>(); }

}  // namespace dsv4
