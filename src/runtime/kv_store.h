// Storage of cached attention rows (window ring slots, compressed KV entries, indexer keys).
// Entries are written and read as float rows; what is kept in memory depends on the layout:
//   compact: KV entries as E4M3 + E8M0 + BF16 RoPE dims (runtime/kv_codec.h, 583 B for Flash),
//            indexer keys as packed E2M1 + E8M0 (68 B);
//   bf16:    every value as BF16 (the reference layout, 2 B per value).
// Both are lossless for the values the forward pass stores (write() throws on any other value), so
// the layout never changes a result. The allocation is exactly capacity * entry_bytes() bytes,
// the figure runtime/kv_budget.h reports. A store may also keep a float copy of its rows
// and BF16 copy of its rows (keep_floats(): the window ring, whose rows every decode step attends
// to), which write() keeps in step; those copies are working memory of the forward pass, not
// counted as KV cache.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/kv_budget.h"
#include "runtime/kv_codec.h"

namespace dsv4 {

enum class KvRowKind {
  Attention,  // window / compressed KV entry: head_dim values, last rope_dim of them BF16
  Indexer,    // indexer key: index_head_dim FP4-simulated values
};

class KvRows {
 public:
  KvRows() = default;
  // `rope_dim` is used by Attention rows only.
  void init(int64_t capacity, int width, KvRowKind kind, KvLayout layout, int rope_dim);
  int64_t capacity() const { return capacity_; }
  int width() const { return width_; }
  int rope_dim() const { return rope_; }
  KvRowKind kind() const { return kind_; }
  KvLayout layout() const { return layout_; }
  size_t entry_bytes() const { return entry_bytes_; }
  size_t allocated_bytes() const { return bytes_.size(); }  // the entries (the KV cache itself)

  // From now on also keep every row decoded as floats (capacity * width floats, filled from the
  // entries now held; write() decodes each new entry into it, so it reads exactly as read()),
  // and the same values as BF16 bits (every value a store keeps is a BF16 value: exact), which
  // the attention kernels that multiply in BF16 read without converting.
  void keep_floats();
  // Row i of the float copy is floats() + i * width(); nullptr unless keep_floats() was called.
  const float* floats() const { return floats_.empty() ? nullptr : floats_.data(); }
  // Row i of the BF16 copy is bf16() + i * width(); nullptr unless keep_floats() was called.
  const uint16_t* bf16() const { return bf16_.empty() ? nullptr : bf16_.data(); }
  size_t copy_bytes() const { return floats_.size() * sizeof(float) + bf16_.size() * sizeof(uint16_t); }

  void write(int64_t i, const float* v);  // throws past capacity or on a value it cannot keep exactly
  void read(int64_t i, float* out) const { read_range(i, 1, out); }
  // Rows [first, first+n) -> out [n][width].
  void read_range(int64_t first, int64_t n, float* out) const;
  // Gather-decode rows ids[0..n) -> out [n][width].
  void read_rows(const int32_t* ids, int64_t n, float* out) const;
  // Raw stored bytes of entry i (entry_bytes() bytes).
  const uint8_t* entry(int64_t i) const { return bytes_.data() + static_cast<size_t>(i) * entry_bytes_; }
  // Throws (naming the range and the capacity) unless entries [first, first+n) exist.
  void check(int64_t first, int64_t n) const;

 private:
  void decode(const uint8_t* e, float* out) const;
  void encode(uint8_t* e, int64_t i, const float* v);  // entry i's bytes e <- v (throws if inexact)
  int64_t capacity_ = 0;
  int width_ = 0, rope_ = 0;
  KvRowKind kind_ = KvRowKind::Attention;
  KvLayout layout_ = KvLayout::Compact;
  size_t entry_bytes_ = 0;
  std::vector<uint8_t> bytes_;
  std::vector<float> floats_;  // keep_floats(): [capacity][width]
  std::vector<uint16_t> bf16_;  // keep_floats(): the same rows as BF16 bits
  void copy_row(int64_t i, const uint8_t* e);  // entry e into row i of both copies
};

}  // namespace dsv4
