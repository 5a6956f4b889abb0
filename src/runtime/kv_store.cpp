#include "runtime/kv_store.h"

#include <algorithm>

#include "core/error.h"

namespace dsv4 {

void KvRows::init(int64_t capacity, int width) {
  capacity_ = capacity;
  width_ = width;
  rows_.assign(static_cast<size_t>(capacity * width), 0.0f);
}

void KvRows::write(int64_t i, const float* v) {
  if (i < 0 || i >= capacity_)
    throw_error("KV store: entry ", i, " out of capacity ", capacity_,
                " (context longer than the session's max_context?)");
  std::copy(v, v + width_, rows_.begin() + i * width_);
}

void KvRows::read(int64_t i, float* out) const {
  if (i < 0 || i >= capacity_) throw_error("KV store: read of entry ", i, " beyond capacity ", capacity_);
  std::copy(rows_.begin() + i * width_, rows_.begin() + (i + 1) * width_, out);
}

}  // namespace dsv4
