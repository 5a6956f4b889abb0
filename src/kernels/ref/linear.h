// Scalar reference linear layers (NOTES.md sections 3 and 9). Each function computes y = W x for a
// span of rows; results are bit-identical to the golden reference. x rows hold bf16 values unless
// stated; weights are read straight from the checkpoint formats.
#pragma once
#include <cstdint>

#include "model/backend.h"

namespace dsv4::ref {

// FP8 x FP8: act_quant(x) per 128-wide block; per 128 K-block the exact dot product is rounded
// once to float32, multiplied by both (power-of-two) scales and accumulated in float32 in ascending
// block order; bf16 output.
void linear_fp8(const Fp8Mat& w, ConstRows x, Rows y);
// FP8 activations x FP4 weights: 32-wide K blocks, activation scale per 128, weight scale per 32.
void linear_fp4(const Fp4Mat& w, ConstRows x, Rows y);
// BF16 weights, ideal float32 accumulation (double sum rounded once), bf16 output.
void linear_bf16(const Bf16Mat& w, ConstRows x, Rows y);
// BF16 weights used as float32, ideal float32 accumulation, float32 output.
void linear_f32(const Bf16Mat& w, ConstRows x, Rows y);
// Float32 weights [rows][cols], ideal float32 accumulation, float32 output.
void linear_f32w(const float* f, int64_t rows, int64_t cols, ConstRows x, Rows y);

}  // namespace dsv4::ref
