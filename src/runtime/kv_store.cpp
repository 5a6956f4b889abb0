#include "runtime/kv_store.h"

#include <array>
#include <bit>
#include <cstring>

#include "core/error.h"
#include "quant/quant.h"

namespace dsv4 {
namespace {

// Decode tables, filled from the quant codecs so that table[code] * scale[e] reproduces
// KvEntryCodec / IndexKeyCodec::decode bit for bit.
struct Tables {
  std::array<float, 256> e4m3{}, e8m0{};
  std::array<float, 16> e2m1{};
  Tables() {
    for (int c = 0; c < 256; ++c) {
      e4m3[static_cast<size_t>(c)] = quant::e4m3_to_f32(static_cast<uint8_t>(c));
      e8m0[static_cast<size_t>(c)] = quant::e8m0_to_f32(static_cast<uint8_t>(c));
    }
    for (int c = 0; c < 16; ++c) e2m1[static_cast<size_t>(c)] = quant::e2m1_to_f32(static_cast<uint8_t>(c));
  }
};
const Tables& tables() {
  static const Tables t;
  return t;
}

inline float bf16_bits(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

}  // namespace

void KvRows::init(int64_t capacity, int width, KvRowKind kind, KvLayout layout, int rope_dim) {
  if (capacity < 0 || width <= 0) throw_error("KV store: bad shape ", capacity, " x ", width);
  capacity_ = capacity;
  width_ = width;
  kind_ = kind;
  layout_ = layout;
  rope_ = kind == KvRowKind::Attention ? rope_dim : 0;
  if (layout == KvLayout::Bf16) entry_bytes_ = 2 * static_cast<size_t>(width);
  else if (kind == KvRowKind::Attention) entry_bytes_ = KvEntryCodec(width, rope_dim).entry_bytes();
  else entry_bytes_ = IndexKeyCodec(width).entry_bytes();
  bytes_.assign(static_cast<size_t>(capacity) * entry_bytes_, 0);
  floats_.clear();
  bf16_.clear();
}

void KvRows::keep_floats() {
  floats_.resize(static_cast<size_t>(capacity_) * static_cast<size_t>(width_));
  bf16_.resize(floats_.size());
  for (int64_t i = 0; i < capacity_; ++i) copy_row(i, bytes_.data() + static_cast<size_t>(i) * entry_bytes_);
}

void KvRows::copy_row(int64_t i, const uint8_t* e) {
  const size_t at = static_cast<size_t>(i) * static_cast<size_t>(width_);
  float* row = floats_.data() + at;
  decode(e, row);
  // The entries hold BF16 values only (encode refuses others): their high 16 bits are the BF16.
  for (int d = 0; d < width_; ++d)
    bf16_[at + static_cast<size_t>(d)] = static_cast<uint16_t>(std::bit_cast<uint32_t>(row[d]) >> 16);
}

void KvRows::check(int64_t first, int64_t n) const {
  if (first < 0 || n < 0 || first + n > capacity_)
    throw_error("KV store: entries [", first, ", ", first + n, ") out of capacity ", capacity_,
                " (context longer than the session's max_context?)");
}

void KvRows::write(int64_t i, const float* v) {
  check(i, 1);
  uint8_t* e = bytes_.data() + static_cast<size_t>(i) * entry_bytes_;
  const bool copy = !floats_.empty();
  try {
    encode(e, i, v);
  } catch (...) {
    if (copy) copy_row(i, e);  // whatever the refused write left in the entry, the copies read the same
    throw;
  }
  if (copy) copy_row(i, e);
}

void KvRows::encode(uint8_t* e, int64_t i, const float* v) {
  if (layout_ == KvLayout::Bf16) {
    for (int d = 0; d < width_; ++d) {
      const uint16_t h = quant::f32_to_bf16(v[d]);
      if (std::bit_cast<uint32_t>(bf16_bits(h)) != std::bit_cast<uint32_t>(v[d]))
        throw_error("KV store: entry ", i, " dim ", d, ": value ", v[d], " is not a BF16 value");
      std::memcpy(e + 2 * d, &h, 2);
    }
  } else if (kind_ == KvRowKind::Attention) {
    KvEntryCodec(width_, rope_).encode(v, 1, e);
  } else {
    IndexKeyCodec(width_).encode(v, 1, e);
  }
}

void KvRows::decode(const uint8_t* e, float* v) const {
  const Tables& t = tables();
  if (layout_ == KvLayout::Bf16) {
    for (int d = 0; d < width_; ++d) {
      uint16_t h;
      std::memcpy(&h, e + 2 * d, 2);
      v[d] = bf16_bits(h);
    }
  } else if (kind_ == KvRowKind::Attention) {
    const int nope = width_ - rope_;
    const uint8_t* scales = e + nope;
    const uint8_t* rope = scales + (nope + KvEntryCodec::kBlock - 1) / KvEntryCodec::kBlock;
    for (int b0 = 0; b0 < nope; b0 += KvEntryCodec::kBlock) {
      const float s = t.e8m0[scales[b0 / KvEntryCodec::kBlock]];
      const int end = std::min(nope, b0 + KvEntryCodec::kBlock);
      for (int d = b0; d < end; ++d) v[d] = t.e4m3[e[d]] * s;
    }
    for (int d = 0; d < rope_; ++d)
      v[nope + d] = bf16_bits(static_cast<uint16_t>(rope[2 * d] | (rope[2 * d + 1] << 8)));
  } else {
    const uint8_t* scales = e + width_ / 2;
    for (int b0 = 0; b0 < width_; b0 += IndexKeyCodec::kBlock) {
      const float s = t.e8m0[scales[b0 / IndexKeyCodec::kBlock]];
      const int end = std::min(width_, b0 + IndexKeyCodec::kBlock);
      for (int d = b0; d < end; d += 2) {
        const uint8_t byte = e[d / 2];
        v[d] = t.e2m1[byte & 0xF] * s;
        if (d + 1 < end) v[d + 1] = t.e2m1[byte >> 4] * s;
      }
    }
  }
}

void KvRows::read_range(int64_t first, int64_t n, float* out) const {
  check(first, n);
  for (int64_t r = 0; r < n; ++r) decode(entry(first + r), out + r * width_);
}

void KvRows::read_rows(const int32_t* ids, int64_t n, float* out) const {
  for (int64_t r = 0; r < n; ++r) {
    check(ids[r], 1);
    decode(entry(ids[r]), out + r * width_);
  }
}

}  // namespace dsv4
