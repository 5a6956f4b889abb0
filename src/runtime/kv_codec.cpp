#include "runtime/kv_codec.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "core/error.h"
#include "quant/quant.h"

namespace dsv4 {

namespace {
inline bool same_bits(float a, float b) { return std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b); }
}  // namespace

KvEntryCodec::KvEntryCodec(int head_dim, int rope_dim) : head_dim_(head_dim), rope_(rope_dim), nope_(head_dim - rope_dim) {
  if (head_dim <= 0 || rope_dim < 0 || rope_dim > head_dim)
    throw_error("KV codec: need 0 <= rope_head_dim <= head_dim and head_dim > 0, got head_dim ", head_dim,
                ", rope_head_dim ", rope_dim);
}

void KvEntryCodec::encode(const float* rows, int64_t n, uint8_t* out, size_t stride) const {
  if (stride == 0) stride = entry_bytes();
  if (stride < entry_bytes()) throw_error("KV codec: stride ", stride, " < entry size ", entry_bytes());
  for (int64_t r = 0; r < n; ++r) {
    const float* v = rows + r * head_dim_;
    uint8_t* codes = out + static_cast<size_t>(r) * stride;
    uint8_t* scales = codes + code_bytes();
    uint8_t* rope = scales + scale_bytes();
    for (int b0 = 0, bi = 0; b0 < nope_; b0 += kBlock, ++bi) {
      const int len = std::min(kBlock, nope_ - b0);
      quant::quantize_e4m3_blocks(v + b0, len, kBlock, codes + b0, scales + bi);
      const float s = quant::e8m0_to_f32(scales[bi]);
      for (int i = 0; i < len; ++i)
        if (!same_bits(quant::e4m3_to_f32(codes[b0 + i]) * s, v[b0 + i]))
          throw_error("KV codec: entry ", r, " dim ", b0 + i, ": value ", v[b0 + i],
                      " is not an FP8-simulated value (fp8_sim, block 64); cannot store it losslessly");
    }
    for (int i = 0; i < rope_; ++i) {
      const float x = v[nope_ + i];
      const uint16_t h = quant::f32_to_bf16(x);
      if (!same_bits(quant::bf16_to_f32(h), x))
        throw_error("KV codec: entry ", r, " RoPE dim ", nope_ + i, ": value ", x,
                    " is not a BF16 value; cannot store it losslessly");
      rope[2 * i] = static_cast<uint8_t>(h & 0xFF);
      rope[2 * i + 1] = static_cast<uint8_t>(h >> 8);
    }
  }
}

void KvEntryCodec::decode(const uint8_t* in, int64_t n, float* rows, size_t stride) const {
  if (stride == 0) stride = entry_bytes();
  if (stride < entry_bytes()) throw_error("KV codec: stride ", stride, " < entry size ", entry_bytes());
  for (int64_t r = 0; r < n; ++r) {
    float* v = rows + r * head_dim_;
    const uint8_t* codes = in + static_cast<size_t>(r) * stride;
    const uint8_t* scales = codes + code_bytes();
    const uint8_t* rope = scales + scale_bytes();
    for (int i = 0; i < nope_; ++i) v[i] = quant::e4m3_to_f32(codes[i]) * quant::e8m0_to_f32(scales[i / kBlock]);
    for (int i = 0; i < rope_; ++i)
      v[nope_ + i] = quant::bf16_to_f32(static_cast<uint16_t>(rope[2 * i] | (rope[2 * i + 1] << 8)));
  }
}

IndexKeyCodec::IndexKeyCodec(int dim) : dim_(dim) {
  if (dim <= 0 || dim % 2 != 0) throw_error("indexer key codec: index_head_dim must be positive and even, got ", dim);
}

void IndexKeyCodec::encode(const float* rows, int64_t n, uint8_t* out, size_t stride) const {
  if (stride == 0) stride = entry_bytes();
  if (stride < entry_bytes()) throw_error("indexer key codec: stride ", stride, " < entry size ", entry_bytes());
  uint8_t nib[kBlock];
  for (int64_t r = 0; r < n; ++r) {
    const float* v = rows + r * dim_;
    uint8_t* packed = out + static_cast<size_t>(r) * stride;
    uint8_t* scales = packed + packed_bytes();
    for (int b0 = 0, bi = 0; b0 < dim_; b0 += kBlock, ++bi) {
      const int len = std::min(kBlock, dim_ - b0);
      quant::quantize_e2m1_blocks(v + b0, len, kBlock, nib, scales + bi);
      const float s = quant::e8m0_to_f32(scales[bi]);
      for (int i = 0; i < len; ++i)
        if (!same_bits(quant::e2m1_to_f32(nib[i]) * s, v[b0 + i]))
          throw_error("indexer key codec: entry ", r, " dim ", b0 + i, ": value ", v[b0 + i],
                      " is not an FP4-simulated value (fp4_sim, block 32); cannot store it losslessly");
      quant::pack_e2m1(nib, len, packed + b0 / 2);  // block starts are even
    }
  }
}

void IndexKeyCodec::decode(const uint8_t* in, int64_t n, float* rows, size_t stride) const {
  if (stride == 0) stride = entry_bytes();
  if (stride < entry_bytes()) throw_error("indexer key codec: stride ", stride, " < entry size ", entry_bytes());
  for (int64_t r = 0; r < n; ++r) {
    float* v = rows + r * dim_;
    const uint8_t* packed = in + static_cast<size_t>(r) * stride;
    const uint8_t* scales = packed + packed_bytes();
    for (int i = 0; i < dim_; ++i) {
      const uint8_t byte = packed[i / 2];
      const uint8_t code = (i % 2 == 0) ? (byte & 0xF) : (byte >> 4);
      v[i] = quant::e2m1_to_f32(code) * quant::e8m0_to_f32(scales[i / kBlock]);
    }
  }
}

}  // namespace dsv4
