// Storage of cached attention rows (window ring slots, compressed KV entries, indexer keys).
// Entries are read and written as float rows whose values are exact bf16 numbers. This is the seam
// where a compact lossless encoding (FP8 nope dims + bf16 rope dims per entry, FP4 indexer keys)
// can replace the plain storage without touching the forward pass.
#pragma once
#include <cstdint>
#include <vector>

namespace dsv4 {

class KvRows {
 public:
  KvRows() = default;
  KvRows(int64_t capacity, int width) { init(capacity, width); }
  void init(int64_t capacity, int width);
  int64_t capacity() const { return capacity_; }
  int width() const { return width_; }
  void write(int64_t i, const float* v);           // throws past capacity
  void read(int64_t i, float* out) const;
  // Contiguous view of rows [0, capacity): valid for the plain float storage used now.
  const float* data() const { return rows_.data(); }
  const float* row(int64_t i) const { return rows_.data() + i * width_; }

 private:
  int64_t capacity_ = 0;
  int width_ = 0;
  std::vector<float> rows_;
};

}  // namespace dsv4
