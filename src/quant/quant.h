// Plain-data number formats of DeepSeek-V4 and their scalar encode/decode (spec 3.3, 6.2-6.3,
// golden NOTES.md section 2-3). These are the bit-exact definitions every kernel builds on.
#pragma once
#include <cstdint>

namespace dsv4::quant {

// ---- BF16 (raw bits in uint16_t) ----
float bf16_to_f32(uint16_t b);
uint16_t f32_to_bf16(float f);          // round to nearest even; NaN stays NaN (quiet)
inline float bf16_round(float f) { return bf16_to_f32(f32_to_bf16(f)); }

// ---- FP8 E4M3 "e4m3fn" (bias 7, max 448, no inf, 0x7F/0xFF NaN) ----
// act_quant's FP8 constants (kernel.py): fmax, f32(1 / fmax) and the amax floor.
inline constexpr float kFp8Max = 448.0f;
inline constexpr float kFp8MaxInv = static_cast<float>(1.0 / 448.0);
inline constexpr float kFp8AmaxFloor = 1e-4f;
float e4m3_to_f32(uint8_t code);
uint8_t f32_to_e4m3(float f);           // RNE with saturation to +-448 (satfinite); NaN -> 0x7F

// ---- E8M0 scale byte: 2^(b-127), b == 255 NaN ----
float e8m0_to_f32(uint8_t b);

// ---- FP4 E2M1 nibble: sign<<3 | index into {0, .5, 1, 1.5, 2, 3, 4, 6} ----
// act_quant's FP4 constants: fmax, f32(1 / fmax) and the amax floor fmax * 2^-126.
inline constexpr float kFp4Max = 6.0f;
inline constexpr float kFp4MaxInv = static_cast<float>(1.0 / 6.0);
inline constexpr float kFp4AmaxFloor = 0x1.8p-124f;
float e2m1_to_f32(uint8_t nibble);
uint8_t f32_to_e2m1(float f);           // RNE (ties to even mantissa), saturating at +-6; NaN -> +6

// Packed E2M1 (checkpoint layout, spec 3.3): element 2j in the LOW nibble of byte j, 2j+1 in the
// high nibble. n may be odd (the last high nibble is then 0).
void pack_e2m1(const uint8_t* nibbles, int64_t n, uint8_t* packed /*(n+1)/2 bytes*/);
void unpack_e2m1(const uint8_t* packed, int64_t n, uint8_t* nibbles /*n bytes*/);

// fast_round_scale (kernel.py): exponent k of the smallest power of two s = 2^k with
// amax / s <= fmax, computed as ceil_log2(f32(amax * f32(1/fmax))) from the float32 bits:
// k = (exponent_field - 127) + (mantissa != 0) for normal t (sign ignored). Outside that range
// (never reached through act_quant's amax floors): 0 and subnormal t <= 2^-127 give -127, larger
// subnormals -126 (the smallest E8M0-representable k with 2^k >= t); +inf gives 128, NaN 129.
int ceil_log2_bits(float t);

// Block quantisation as act_quant does it (spec 6.2): per block of `block` values,
// amax = max(max|x|, floor) (floor 1e-4 for FP8; 6*2^-126 for FP4), k = ceil_log2_bits(f32(amax *
// f32(1/fmax))), q = round(clamp(x / 2^k, -fmax, fmax)). Writes codes and E8M0 bytes (k + 127),
// ceil(n / block) of them (a short last block is quantised on its own). A block holding NaN or inf
// gets the E8M0 NaN byte 255.
void quantize_e4m3_blocks(const float* x, int64_t n, int block, uint8_t* codes, uint8_t* scales);
void quantize_e2m1_blocks(const float* x, int64_t n, int block, uint8_t* nibbles /*one per byte*/,
                          uint8_t* scales);

// Quantise-dequantise simulations (spec 6.3), in place, results exact in BF16:
void fp8_sim(float* v, int64_t n, int block);   // KV non-RoPE dims (block 64)
void fp4_sim(float* v, int64_t n, int block);   // indexer q and keys (block 32)

}  // namespace dsv4::quant
