// Fast CPU linear layers y[m][n] = sum_k W[n][k] * x[m][k] over a span of activation rows
// (m = 1 is decode, m > 1 prefill), for the three weight formats of DeepSeek-V4:
//   * FP8 E4M3 [N, K] with E8M0 scales per 128x128 block,
//   * FP4 E2M1 [N, K] packed two per byte (low nibble = even k) with E8M0 scales per 32 along K,
//     also in a grouped form (several experts, each with its own rows, each expert streamed once),
//   * BF16 [N, K].
// Weights are decoded in registers, a panel of 4 rows at a time, into BF16 with the block scale
// folded in (exact: an E4M3/E2M1 value times a power of two is a BF16 value); no dequantised copy
// of a matrix is ever made. Products run as AVX512-BF16 vdpbf16ps (exact products of BF16 values,
// float32 accumulation) or, for float32 activations on BF16 weights, as float32 FMA. The scalar
// twins (Isa::Scalar) compute the same sums in plain loops.
//
// Activations come in as float32 rows. For FP8/FP4 the reference quantises them per 128 along K
// to E4M3 with a power-of-two scale (spec 6.2); `quantize_act` = true reproduces that rounding
// exactly (the dequantised value is then exact in BF16), false only rounds x to BF16.
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <tuple>
#include <vector>

#include "core/thread_pool.h"

namespace dsv4::cpu {

struct Fp8Weight {
  const uint8_t* codes = nullptr;   // [n][k] E4M3
  const uint8_t* scales = nullptr;  // [ceil(n/128)][ceil(k/128)] E8M0
  int64_t n = 0, k = 0;             // k must be a multiple of 128
};

struct Fp4Weight {
  const uint8_t* packed = nullptr;  // [n][k/2], low nibble = element 2j
  const uint8_t* scales = nullptr;  // [n][k/32] E8M0
  int64_t n = 0, k = 0;             // k must be a multiple of 128
};

struct Bf16Weight {
  const uint16_t* bits = nullptr;  // [n][k] BF16 bit patterns
  int64_t n = 0, k = 0;
};

struct Rows {  // float32 activation rows: row i at data + i * ld
  const float* data = nullptr;
  int64_t m = 0, ld = 0;
};

struct OutRows {  // float32 output rows: row i at data + i * ld
  float* data = nullptr;
  int64_t ld = 0;
  // Round every output to the nearest BF16 value (ties to even) as the thread that computed it
  // finishes its share (the reference's bf16 output rounding, without a serial pass after).
  bool round_bf16 = false;
};

void linear_fp8(const Fp8Weight& w, const Rows& x, const OutRows& y, ThreadPool* pool,
                bool quantize_act = true);
// Several independent FP8 products y = W x in one call, with results identical to one
// linear_fp8 per group: the grouped output projection wo_a (8 groups, each its own input) and
// the shared expert's w1 and w3 (one input). In decode (1-2 rows per group) all groups' rows are
// split over the threads in one parallel region (one dispatch, one ramp and tail instead of one
// per group); with more rows each group runs as its own linear_fp8.
struct Fp8Group {
  Fp8Weight w;
  Rows x;
  OutRows y;
};
void linear_fp8_grouped(std::span<const Fp8Group> groups, ThreadPool* pool,
                        bool quantize_act = true);
// The multiply the one-row FP8 decode GEMV runs on at the active level and GEMM unit: "fma"
// (AVX2; AVX-512 with the fma unit, FP8 decoded by shifts), "dpbf16" (AVX-512 with the dpbf16
// unit; emulated by FMA at the plain AVX-512 level) or "scalar". Weights full of zero/subnormal
// codes take the dpbf16 kernel even with the fma unit (linear.cpp, fma_gemv_suits).
const char* fp8_gemv_multiply_name();

void linear_fp4(const Fp4Weight& w, const Rows& x, const OutRows& y, ThreadPool* pool,
                bool quantize_act = true);

// One expert's share of a grouped FP4 product: y row i = W * x row rows[i] (rows == nullptr:
// x row i), for i < count.
struct Fp4Group {
  Fp4Weight w;
  const float* x = nullptr;
  int64_t ldx = 0;
  const int32_t* rows = nullptr;
  int64_t count = 0;
  OutRows y;
};
void linear_fp4_grouped(std::span<const Fp4Group> groups, ThreadPool* pool,
                        bool quantize_act = true);

enum class Bf16Act {
  RoundToBf16,  // x rounded to BF16 (exact when it already is), vdpbf16ps: BF16 x BF16 -> FP32
  Float32,      // x kept in float32, FP32 FMA: the reference's FP32 x FP32 with upcast weights
};
void linear_bf16(const Bf16Weight& w, const Rows& x, const OutRows& y, ThreadPool* pool,
                 Bf16Act act = Bf16Act::Float32);

struct F32Weight {
  const float* data = nullptr;  // [n][k]
  int64_t n = 0, k = 0;
};
// Float32 weights x float32 activations (hyper-connection mixes), float32 FMA.
void linear_f32(const F32Weight& w, const Rows& x, const OutRows& y, ThreadPool* pool);

// The exact activation quantise-dequantise of spec 6.2 on one row of k values (k % 128 == 0
// not required; the last block may be short): out may alias x.
void act_quant_dequant(const float* x, int64_t k, float* out);

// Wall time and weight bytes of the linear calls above, by weight format and by shape (dsv4
// bench --breakdown: which kind and which matrix reads below the machine's bandwidth). Off by
// default; while on, each call costs two clock reads and a map update. Calls made on any thread
// are summed (the model makes them from the thread that runs the forward pass, one at a time).
enum class LinearKind { Fp8, Fp4, Bf16, F32 };
inline constexpr int kLinearKinds = 4;
const char* linear_kind_name(LinearKind kind);
struct LinearTotals {
  int64_t calls = 0;
  double seconds = 0;
  double weight_bytes = 0;  // codes and scales as stored
  LinearTotals& operator+=(const LinearTotals& o) {
    calls += o.calls;
    seconds += o.seconds;
    weight_bytes += o.weight_bytes;
    return *this;
  }
};
// The calls of one kind and shape: n x k weights, `groups` of them per call (a grouped call:
// routed experts, wo_a's groups; n and k of its first group, mixed when the others differ).
struct LinearShape {
  LinearKind kind = LinearKind::Fp8;
  int64_t n = 0, k = 0;
  int groups = 1;
  bool mixed = false;
  auto key() const { return std::tuple(static_cast<int>(kind), n, k, groups, mixed); }
};
struct LinearShapeTotals {
  LinearShape shape;
  LinearTotals totals;
};
void linear_stats_enable(bool on);  // start / stop counting (the totals are kept)
void linear_stats_reset();
std::array<LinearTotals, kLinearKinds> linear_stats();
// Kind by kind, the largest weight traffic first.
std::vector<LinearShapeTotals> linear_stats_by_shape();
// Counts one call of `shape` from construction to destruction while the collector is on.
class LinearTimer {
 public:
  LinearTimer(const LinearShape& shape, double weight_bytes);
  ~LinearTimer();
  LinearTimer(const LinearTimer&) = delete;
  LinearTimer& operator=(const LinearTimer&) = delete;

 private:
  LinearShape shape_;
  double bytes_;
  int64_t start_ns_ = -1;  // -1: the collector was off
};

}  // namespace dsv4::cpu
