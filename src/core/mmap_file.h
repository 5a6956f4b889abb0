// A read-only file image: the file mapped in place (the page cache). TensorStore::read_private
// copies the tensors out of it into private memory.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace dsv4 {

class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);  // throws Error naming the path on failure
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Reads every page into memory and fills this mapping's page tables (madvise
  // MADV_POPULATE_READ, or one read per page on kernels without it), so later accesses take no
  // page faults. Throws Error naming the file on an I/O error.
  void populate() const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Anonymous read-write memory of `bytes` (rounded up to whole pages), 2 MiB aligned, with
// transparent huge pages advised: the kind of memory TensorStore::read_private gives the weights. Streaming
// reads from it can run well above reads from 4 KiB pages (with THP in `madvise` mode, what
// malloc returns): on the AMX Xeon of docs/performance.md an FP8 GEMV read 29 instead of 15-21
// GB/s. The bandwidth probe and the kernel benchmarks read such memory, so that they measure
// what decode sees. map_huge returns nullptr when the mapping fails; unmap_huge(p, bytes)
// releases it (the same bytes).
void* map_huge(size_t bytes);
void unmap_huge(void* p, size_t bytes);

}  // namespace dsv4
