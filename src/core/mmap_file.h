// A read-only file image: the file mapped in place (the page cache), or, after read_private,
// the same bytes in private anonymous memory at the same address. Weights are used where they
// lie either way; nothing is converted.
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
  // Reads the whole file into private anonymous memory (transparent huge pages advised) and
  // moves it onto this mapping's address range, which then no longer refers to the file: every
  // pointer into data() stays valid, and the file's page cache is released piece by piece as it
  // is read. Decode streams weights markedly faster from such memory than from page-cache pages
  // on some machines (docs/performance.md). progress(bytes read so far) after each piece.
  // Throws Error naming the file on an I/O or allocation failure (the mapping is then unchanged).
  void read_private(const std::function<void(size_t done)>& progress = {});
  bool is_private() const { return private_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool private_ = false;
};

// Anonymous read-write memory of `bytes` (rounded up to whole pages), 2 MiB aligned, with
// transparent huge pages advised: the kind of memory read_private gives the weights. Streaming
// reads from it can run well above reads from 4 KiB pages (with THP in `madvise` mode, what
// malloc returns): on the AMX Xeon of docs/performance.md an FP8 GEMV read 29 instead of 15-21
// GB/s. The bandwidth probe and the kernel benchmarks read such memory, so that they measure
// what decode sees. map_huge returns nullptr when the mapping fails; unmap_huge(p, bytes)
// releases it (the same bytes).
void* map_huge(size_t bytes);
void unmap_huge(void* p, size_t bytes);

}  // namespace dsv4
