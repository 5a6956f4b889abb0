// Storage of cached attention rows (window ring slots, compressed KV entries, indexer keys).
// Entries are written and read as float rows; what is kept in memory depends on the layout:
//   compact: KV entries as E4M3 + E8M0 + BF16 RoPE dims (runtime/kv_codec.h, 583 B for Flash),
//            indexer keys as packed E2M1 + E8M0 (68 B);
//   bf16:    every value as BF16 (the reference layout, 2 B per value).
// Both are lossless for the values the forward pass stores (write() throws on any other value), so
// the layout never changes a result. The allocation is exactly capacity * entry_bytes() bytes,
// the figure runtime/kv_budget.h reports.
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
  size_t allocated_bytes() const { return bytes_.size(); }

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
  int64_t capacity_ = 0;
  int width_ = 0, rope_ = 0;
  KvRowKind kind_ = KvRowKind::Attention;
  KvLayout layout_ = KvLayout::Compact;
  size_t entry_bytes_ = 0;
  std::vector<uint8_t> bytes_;
};

}  // namespace dsv4
