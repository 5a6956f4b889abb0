// safetensors files, single or sharded through model.safetensors.index.json; mmapped, zero-copy.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mmap_file.h"

namespace dsv4 {

enum class DType { BF16, F32, F8_E4M3, F8_E8M0, I8, I32, I64 };

const char* dtype_name(DType t);
size_t dtype_size(DType t);

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // points into the mapped shard (may be unaligned)
  size_t nbytes = 0;
  std::string file;               // shard file name, for error messages
  int64_t numel() const;
};

class TensorStore {
 public:
  // `dir` holds model.safetensors.index.json (+ shards) or a single model.safetensors.
  // Validates every header (JSON, dtypes, offsets in range, sizes == shape * dtype size).
  static TensorStore open_dir(const std::string& dir);

  const TensorView* find(const std::string& name) const;  // nullptr if absent
  const std::map<std::string, TensorView>& all() const { return tensors_; }
  uint64_t total_bytes() const;

 private:
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorView> tensors_;
};

}  // namespace dsv4
