// A read-only memory-mapped file (weights are used in place, never copied).
#pragma once
#include <cstddef>
#include <cstdint>
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

}  // namespace dsv4
