// The lightning-indexer scan on 8-bit integer dot products (vpdpbusd: 4 multiply-adds per 32-bit
// lane and instruction), shared by its two kernels: AVX-512 VNNI (indexer_int8_avx512.cpp, 64
// products per instruction) and AVX-VNNI (indexer_int8_avxvnni.cpp, the same instruction
// VEX-encoded on 256-bit vectors, for the AVX2 level: Intel's client cores from Alder Lake, its
// E-core servers, AMD Zen 5). Same semantics as indexer_fp4.h (the scalar twin there):
//   score[t][i] = bf16( sum_h bf16( relu(bf16(q[t][h] . k[i])) * w[t][h] ) ).
//
// Exactness. The queries and keys are FP4-simulated (spec 6.3): E2M1 values times a power of two
// per 32 dimensions, so both sides are small integers times powers of two.
// - A key is stored as E2M1 codes and one E8M0 scale S_b per block. Twice an E2M1 value is an
//   integer in [-12, 12]. With S the largest scale of the key's nonzero blocks, block b's values
//   are 2 e2m1 x 2^(3 - (S - S_b)) x 2^(S - 131): integers in [-96, 96] while S - S_b <= 3,
//   times one power of two for the whole key (kfac). Bytes hold the integer + 128 (vpdpbusd
//   multiplies unsigned bytes by signed ones).
// - A query head is scaled by 2^-e, e = exponent of its largest magnitude - 6, so that the
//   largest maps into [64, 128): every value must land on an integer (checked), which holds for
//   the FP4 grid while the head's block scales span at most 2^3.
// - So q . k = (sum of integer products) x 2^e x kfac, with the integer sum exact in int32 (the
//   +128 offset is removed by starting each sum at -128 x the head's integer sum) and exact again
//   in float32 (|sum| <= 128 x 127 x 96 < 2^24). The powers of two commute with the BF16
//   roundings, the ReLU and the float32 products and sums of the combination (barring
//   underflow, kept out of reach by the range checks), so 2^e folds into the head weight and
//   kfac multiplies the finished sum over heads. The result differs from the BF16 kernels only
//   in the float32 rounding of the dot products, which these are without.
// Keys outside that form (a nonzero block more than 2^3 below the largest, or scales near the
// float32 limits) are gathered and scored afterwards by the level's BF16 / float32 kernel, and so
// are the query rows with a head outside it; when no row fits, the call is declined (score()
// returns false, having written nothing). Neither happened in the flash-width model's prefill and
// decode (counted over a pp512 + tg32 at depth 4096): FP4-simulated vectors after the Hadamard
// rotation have block scales close together.
//
// Both kernels decode keys into bytes in the de-interleaved dimension order of the other kernels
// (per 32-dim block: the 16 even dims, then the 16 odd dims) and lay them out as tiles of keys x
// quads of dimensions, one broadcast of 4 query bytes per quad and head (the files say how).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/formats.h"
#include "model/backend.h"

namespace dsv4::cpu::int8 {

constexpr int kBlock = 32;     // E8M0 scale block of the keys and of the query simulation
constexpr int kMaxShift = 3;   // a key block may sit this many powers of two below the largest
constexpr int kOffset = 128;   // key byte = integer value + 128

// t[16 shift + code] = 2 e2m1(code) x 2^(3 - shift) + 128, shift in [0, 3]: the byte-permute
// table of the key decode (64 bytes, 64-byte aligned).
const uint8_t* key_table();

// The largest of the 4 bytes of v.
inline uint32_t byte_max(uint32_t v) {
  return std::max(std::max(v & 0xFF, (v >> 8) & 0xFF), std::max((v >> 16) & 0xFF, v >> 24));
}

// 2^(smax - 131) for a key whose largest nonzero block has E8M0 scale smax, or false when that
// leaves float32's normal range (or the scale is NaN).
inline bool key_factor(uint32_t smax, float* kfac) {
  if (smax < 5 || smax == 255) return false;
  *kfac = bits_to_f32((smax - 4) << 23);
  return true;
}

// The exponent e of a query head whose largest magnitude is m (see the top): false when m is not
// a normal float32 or e leaves the range the checks allow. A head of zeros has e = 0.
bool head_exponent(float m, int* e);

// The queries of a call as integers: q[r][h][Dp] int8 (de-interleaved, zero padded), w[r][h]
// the head weight times the head's 2^e, corr[r][h] = -128 x the sum of the head's integers.
struct IntQueries {
  AlignedVector<int8_t> q;
  std::vector<float> w;
  std::vector<int32_t> corr;
};

// A kernel's parts. head: one query head (D floats) into o (Dp bytes, de-interleaved, zero
// padded), its integer sum and e; false when the head is not of the form. scan: every key against
// every row (rows without integer queries have zero ones), the keys not of the form (ascending)
// appended to odd with scores left for the caller. other: the level's BF16 / float32 kernel.
struct Kernel {
  int dp_multiple;  // Dp = D rounded up to this
  bool (*head)(const float* q, int D, int Dp, int8_t* o, int32_t* sum, int* e);
  void (*scan)(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes, const IntQueries& iq, int Dp,
               std::vector<int64_t>& odd);
  void (*other)(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes);
};

// The whole call on kernel k (false, nothing written, when no query row is of the form).
bool score(const Kernel& k, const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes);

}  // namespace dsv4::cpu::int8
