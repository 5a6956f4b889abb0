#include "kernels/ref/linear.h"

#include <array>
#include <vector>

#include "core/error.h"
#include "kernels/ref/fmath.h"
#include "quant/quant.h"

namespace dsv4::ref {
namespace {

constexpr int kActBlock = 128;  // act_quant block along K (spec 6.2)
constexpr int kFp4Block = 32;   // FP4 weight scale block along K

// Decode table of a code format: table[c] = decode(c) for every code, built once.
template <typename T, size_t N, float (*Decode)(uint8_t)>
const std::array<T, N>& code_table() {
  static const std::array<T, N> t = [] {
    std::array<T, N> a{};
    for (size_t i = 0; i < N; ++i) a[i] = Decode(static_cast<uint8_t>(i));
    return a;
  }();
  return t;
}
const std::array<double, 256>& e4m3_table() { return code_table<double, 256, quant::e4m3_to_f32>(); }
const std::array<double, 16>& e2m1_table() { return code_table<double, 16, quant::e2m1_to_f32>(); }
const std::array<float, 256>& e8m0_table() { return code_table<float, 256, quant::e8m0_to_f32>(); }

// act_quant of one row: values (exact e4m3 values as double) and per-128 scales (float).
struct ActQuant {
  std::vector<uint8_t> codes, scale_codes;
  std::vector<double> q;
  std::vector<float> s;
  void run(const float* x, int64_t k) {
    const int64_t nb = (k + kActBlock - 1) / kActBlock;
    codes.resize(static_cast<size_t>(k));
    scale_codes.resize(static_cast<size_t>(nb));
    q.resize(static_cast<size_t>(k));
    s.resize(static_cast<size_t>(nb));
    quant::quantize_e4m3_blocks(x, k, kActBlock, codes.data(), scale_codes.data());
    const auto& t = e4m3_table();
    for (int64_t i = 0; i < k; ++i) q[i] = t[codes[i]];
    const auto& e8 = e8m0_table();
    for (int64_t b = 0; b < nb; ++b) s[b] = e8[scale_codes[b]];
  }
};

// Sum of products over [0, n) in double. For the FP8/FP4 codes every partial sum is exact (bounded
// exponent range), so the summation order (SIMD lanes) cannot change the result; for the "ideal"
// float32 sums the double sum stands for the exact one (rounded once to float32 by the caller).
inline double dot_exact(const double* a, const double* b, int64_t n) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void check_rows(const char* op, int64_t xw_needed, ConstRows x, Rows y) {
  if (x.n != y.n) throw_error(op, ": input has ", x.n, " rows, output ", y.n);
  if (x.ld < xw_needed && x.n > 1) throw_error(op, ": input row stride ", x.ld, " < width ", xw_needed);
}

}  // namespace

void linear_fp8(const Fp8Mat& w, ConstRows x, Rows y) {
  check_rows("linear_fp8", w.cols, x, y);
  const auto& t = e4m3_table();
  const auto& e8 = e8m0_table();
  const int64_t K = w.cols, N = w.rows, nb = (K + kActBlock - 1) / kActBlock, sc = w.scale_cols();
  thread_local ActQuant aq;
  thread_local std::vector<double> wrow, qall;
  thread_local std::vector<float> sall;
  wrow.resize(static_cast<size_t>(K));
  qall.resize(static_cast<size_t>(x.n * K));
  sall.resize(static_cast<size_t>(x.n * nb));
  for (int64_t m = 0; m < x.n; ++m) {
    aq.run(x.row(m), K);
    std::copy(aq.q.begin(), aq.q.end(), qall.begin() + m * K);
    std::copy(aq.s.begin(), aq.s.end(), sall.begin() + m * nb);
  }
  // Weight-row outer loop: each weight row is decoded once for all activation rows.
  for (int64_t o = 0; o < N; ++o) {
    const uint8_t* wr = w.w + o * K;
    for (int64_t k = 0; k < K; ++k) wrow[k] = t[wr[k]];
    const uint8_t* srow = w.s + (o / kActBlock) * sc;
    for (int64_t m = 0; m < x.n; ++m) {
      const double* qa = qall.data() + m * K;
      const float* sa = sall.data() + m * nb;
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        const int64_t k0 = b * kActBlock, len = std::min<int64_t>(kActBlock, K - k0);
        const float p = static_cast<float>(dot_exact(qa + k0, wrow.data() + k0, len));
        const float scale = sa[b] * e8[srow[b]];
        acc = acc + p * scale;
      }
      y.row(m)[o] = bf16r(acc);
    }
  }
}

void linear_fp4(const Fp4Mat& w, ConstRows x, Rows y) {
  check_rows("linear_fp4", w.cols, x, y);
  const auto& t = e2m1_table();
  const auto& e8 = e8m0_table();
  const int64_t K = w.cols, N = w.rows, nb = (K + kActBlock - 1) / kActBlock;
  const int64_t nb4 = (K + kFp4Block - 1) / kFp4Block;
  thread_local ActQuant aq;
  thread_local std::vector<double> qall, wrow;
  thread_local std::vector<float> sall, wsc;
  qall.resize(static_cast<size_t>(x.n * K));
  sall.resize(static_cast<size_t>(x.n * nb));
  wrow.resize(static_cast<size_t>(K));
  wsc.resize(static_cast<size_t>(nb4));
  for (int64_t m = 0; m < x.n; ++m) {
    aq.run(x.row(m), K);
    std::copy(aq.q.begin(), aq.q.end(), qall.begin() + m * K);
    std::copy(aq.s.begin(), aq.s.end(), sall.begin() + m * nb);
  }
  const int64_t row_bytes = K / 2;
  for (int64_t o = 0; o < N; ++o) {
    const uint8_t* wr = w.w + o * row_bytes;
    for (int64_t j = 0; j < row_bytes; ++j) {
      wrow[2 * j] = t[wr[j] & 0x0f];
      wrow[2 * j + 1] = t[wr[j] >> 4];
    }
    for (int64_t b = 0; b < nb4; ++b) wsc[b] = e8[w.s[o * nb4 + b]];
    for (int64_t m = 0; m < x.n; ++m) {
      const double* qa = qall.data() + m * K;
      const float* sa = sall.data() + m * nb;
      float acc = 0.0f;
      for (int64_t b = 0; b < nb4; ++b) {
        const int64_t k0 = b * kFp4Block, len = std::min<int64_t>(kFp4Block, K - k0);
        const float p = static_cast<float>(dot_exact(qa + k0, wrow.data() + k0, len));
        const float scale = sa[k0 / kActBlock] * wsc[b];
        acc = acc + p * scale;
      }
      y.row(m)[o] = bf16r(acc);
    }
  }
}

namespace {
// Ideal float32 dot: products exact in double, summed in double, rounded once by the caller.
template <typename WFn>
void ideal_linear(int64_t N, int64_t K, WFn wrow_of, ConstRows x, Rows y, bool to_bf16) {
  thread_local std::vector<double> wrow, xall;
  wrow.resize(static_cast<size_t>(K));
  xall.resize(static_cast<size_t>(x.n * K));
  for (int64_t m = 0; m < x.n; ++m)
    for (int64_t k = 0; k < K; ++k) xall[m * K + k] = x.row(m)[k];
  for (int64_t o = 0; o < N; ++o) {
    wrow_of(o, wrow.data());
    for (int64_t m = 0; m < x.n; ++m) {
      const float v = static_cast<float>(dot_exact(xall.data() + m * K, wrow.data(), K));
      y.row(m)[o] = to_bf16 ? bf16r(v) : v;
    }
  }
}
}  // namespace

void linear_bf16(const Bf16Mat& w, ConstRows x, Rows y) {
  check_rows("linear_bf16", w.cols, x, y);
  const int64_t K = w.cols;
  ideal_linear(
      w.rows, K,
      [&](int64_t o, double* dst) {
        const uint16_t* r = w.w + o * K;
        for (int64_t k = 0; k < K; ++k) dst[k] = bf16_bits_to_f32(r[k]);
      },
      x, y, true);
}

void linear_f32(const Bf16Mat& w, ConstRows x, Rows y) {
  check_rows("linear_f32", w.cols, x, y);
  const int64_t K = w.cols;
  ideal_linear(
      w.rows, K,
      [&](int64_t o, double* dst) {
        const uint16_t* r = w.w + o * K;
        for (int64_t k = 0; k < K; ++k) dst[k] = bf16_bits_to_f32(r[k]);
      },
      x, y, false);
}

void linear_f32w(const float* f, int64_t rows, int64_t cols, ConstRows x, Rows y) {
  check_rows("linear_f32w", cols, x, y);
  ideal_linear(
      rows, cols,
      [&](int64_t o, double* dst) {
        const float* r = f + o * cols;
        for (int64_t k = 0; k < cols; ++k) dst[k] = r[k];
      },
      x, y, false);
}

}  // namespace dsv4::ref
