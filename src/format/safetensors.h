// safetensors files, single or sharded through model.safetensors.index.json; mmapped, zero-copy.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mmap_file.h"

namespace dsv4 {

enum class DType { BF16, F32, F8_E4M3, F8_E8M0, I8, I32, I64 };

const char* dtype_name(DType t);
size_t dtype_size(DType t);
// Parses a safetensors dtype string ("BF16", ...); returns false for an unknown one.
bool dtype_from_name(const std::string& s, DType* out);

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // into the mapped shard (may be unaligned) or the private copy
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
  // MappedFile::populate on every shard; progress(done, total) in bytes after each shard.
  void populate(const std::function<void(uint64_t done, uint64_t total)>& progress = {}) const;
  // Reads every tensor into private anonymous memory (map_huge: 2 MiB aligned, transparent huge
  // pages advised), each at a kPrivateAlign-aligned address, and points the views there; the
  // shards' page cache is released piece by piece as it is read. Safetensors offsets carry no
  // alignment, so in the file most weight rows start mid cache line, and every 64-byte load of
  // a decode GEMV is then a split load: on the Zen 5 VM an FP8 GEMV read 0.80 instead of 0.91 of
  // the probe that way when the memory was fast (docs/performance.md). Run it before any view's
  // data pointer is copied (load_weights: LoadOptions::prepare); pointers taken earlier keep
  // pointing into the file mapping. progress(done, total) in bytes as it reads, ending at
  // file_bytes(). Throws Error naming the shard on an I/O or allocation failure (the views are
  // then unchanged). A second call does nothing.
  void read_private(const std::function<void(uint64_t done, uint64_t total)>& progress = {});
  static constexpr size_t kPrivateAlign = 64;
  // Bytes of all shard files (headers included).
  uint64_t file_bytes() const;
  bool is_private() const { return !arenas_.empty(); }

 private:
  struct Unmap {
    size_t bytes;
    void operator()(uint8_t* p) const;
  };
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorView> tensors_;
  std::vector<std::unique_ptr<uint8_t, Unmap>> arenas_;  // one per shard once private
};

// Streaming safetensors writer: the header (names, dtypes, shapes, offsets in the given order) is
// written first, then each tensor's bytes are appended in the same order through write(). Large
// checkpoints are produced without holding them in memory. Tensors are contiguous (no holes, as
// the format requires); the header is padded with spaces so that the data section starts at an
// 8-byte aligned file offset. Callers that want every view aligned declare tensors in order of
// decreasing dtype size (I64, F32, BF16, bytes).
struct TensorDecl {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  size_t nbytes() const;
};

class SafetensorsWriter {
 public:
  SafetensorsWriter(const std::string& path, std::vector<TensorDecl> tensors,
                    const std::map<std::string, std::string>& metadata = {});
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // Appends bytes of the current tensor (may be called several times per tensor). Throws when
  // more bytes are written than the declared tensors hold.
  void write(const void* data, size_t n);
  // Checks that every declared byte was written, flushes and closes. Throws on I/O errors.
  void finish();
  uint64_t data_bytes() const { return data_size_; }

 private:
  std::string path_;
  std::vector<TensorDecl> tensors_;
  std::vector<uint64_t> begin_;
  uint64_t data_size_ = 0;
  uint64_t written_ = 0;  // bytes of the data section written so far
  size_t current_ = 0;    // index of the tensor being written
  void* file_ = nullptr;  // FILE*
};

}  // namespace dsv4
