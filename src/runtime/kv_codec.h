// Compact lossless encodings of cached KV rows (spec 7.1).
//
// * KV entry (window or compressed KV, head_dim values): the first nope = head_dim - rope_head_dim
//   values went through fp8_sim(block 64), the last rope_head_dim are BF16. Stored as
//     [nope E4M3 codes][ceil(nope/64) E8M0 scales][rope_head_dim BF16, little-endian]
//   = 448 + 7 + 128 = 583 bytes for the Flash shapes (head_dim 512, rope 64).
// * Indexer key (index_head_dim values that went through fp4_sim(block 32)):
//     [index_head_dim/2 packed E2M1 bytes, element 2j in the low nibble][ceil(dim/32) E8M0 scales]
//   = 64 + 4 = 68 bytes for 128 dims.
//
// Exactness. encode() recomputes the block scale exactly like the simulation (act_quant) and stores
// the resulting codes, so decode(encode(v)) == sim(v) bit for bit; hence it reproduces v for every
// v with sim(v) == v. Every sim output is such a fixed point: if y = q * 2^k with codes q, its own
// scale k' satisfies k' <= k (because f32(q_max 2^k * f32(1/fmax)) <= 2^k: f32(1/448) and f32(1/6)
// exceed the exact reciprocals by less than 2^-24 relative) and y / 2^k' = q * 2^(k-k') again has
// at most 4 (E4M3) / 2 (E2M1) significant bits, lies on the format's grid and does not exceed fmax,
// so the second simulation reproduces y (the unit tests check this on random and boundary data).
// A value that is not a fixed point (or a RoPE value that is not BF16) cannot be stored losslessly:
// encode() then throws dsv4::Error naming the entry and dimension instead of storing garbage.
#pragma once
#include <cstddef>
#include <cstdint>

#include "format/config.h"

namespace dsv4 {

class KvEntryCodec {
 public:
  static constexpr int kBlock = 64;
  KvEntryCodec(int head_dim, int rope_dim);
  explicit KvEntryCodec(const ModelConfig& cfg) : KvEntryCodec(cfg.head_dim, cfg.rope_head_dim) {}

  int head_dim() const { return head_dim_; }
  int nope_dim() const { return nope_; }
  int rope_dim() const { return rope_; }
  size_t code_bytes() const { return static_cast<size_t>(nope_); }
  size_t scale_bytes() const { return static_cast<size_t>((nope_ + kBlock - 1) / kBlock); }
  size_t rope_bytes() const { return 2 * static_cast<size_t>(rope_); }
  size_t entry_bytes() const { return code_bytes() + scale_bytes() + rope_bytes(); }

  // n rows of head_dim floats (contiguous) <-> n entries, entry r at out + r * stride
  // (stride 0 = entry_bytes(); a larger stride lets callers align entries).
  void encode(const float* rows, int64_t n, uint8_t* out, size_t stride = 0) const;
  void decode(const uint8_t* in, int64_t n, float* rows, size_t stride = 0) const;

 private:
  int head_dim_, rope_, nope_;
};

class IndexKeyCodec {
 public:
  static constexpr int kBlock = 32;
  explicit IndexKeyCodec(int dim);
  explicit IndexKeyCodec(const ModelConfig& cfg) : IndexKeyCodec(cfg.index_head_dim) {}

  int dim() const { return dim_; }
  size_t packed_bytes() const { return static_cast<size_t>(dim_ / 2); }
  size_t scale_bytes() const { return static_cast<size_t>((dim_ + kBlock - 1) / kBlock); }
  size_t entry_bytes() const { return packed_bytes() + scale_bytes(); }

  void encode(const float* rows, int64_t n, uint8_t* out, size_t stride = 0) const;
  void decode(const uint8_t* in, int64_t n, float* rows, size_t stride = 0) const;

 private:
  int dim_;
};

// Entry sizes as functions of the config (583 and 68 bytes for V4-Flash).
inline size_t kv_entry_bytes(const ModelConfig& cfg) { return KvEntryCodec(cfg).entry_bytes(); }
inline size_t index_key_bytes(const ModelConfig& cfg) { return IndexKeyCodec(cfg).entry_bytes(); }

}  // namespace dsv4
