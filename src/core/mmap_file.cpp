#include "core/mmap_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace dsv4 {

namespace {

// File mappings and map_huge's buffers start on a 2 MiB boundary, where huge pages can back them.
constexpr size_t kAlign = size_t{2} << 20;

size_t page_round(size_t n) {
  const long page = ::sysconf(_SC_PAGESIZE);
  const size_t p = page > 0 ? static_cast<size_t>(page) : 4096;
  return (n + p - 1) / p * p;
}

// An anonymous, kAlign-aligned range of `size` bytes (rounded up to pages); nullptr on failure.
void* map_aligned(size_t size, int prot) {
  const size_t len = page_round(size), span = len + kAlign;
  void* raw = ::mmap(nullptr, span, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t r = reinterpret_cast<uintptr_t>(raw), a = (r + kAlign - 1) / kAlign * kAlign;
  if (a > r) ::munmap(raw, a - r);
  if (r + span > a + len) ::munmap(reinterpret_cast<void*>(a + len), r + span - (a + len));
  return reinterpret_cast<void*>(a);
}

}  // namespace

void* map_huge(size_t bytes) {
  void* p = map_aligned(bytes, PROT_READ | PROT_WRITE);
#ifdef MADV_HUGEPAGE
  if (p) ::madvise(p, page_round(bytes), MADV_HUGEPAGE);  // advisory: ignored where THP is off
#endif
  return p;
}

void unmap_huge(void* p, size_t bytes) {
  if (p) ::munmap(p, page_round(bytes));
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_error(path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw_error(path, ": cannot stat: ", std::strerror(e));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* at = map_aligned(size_, PROT_NONE);  // a reserved range for the file mapping
    void* p = at ? ::mmap(at, size_, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0) : MAP_FAILED;
    if (p == MAP_FAILED) {
      const int e = errno;  // before munmap / close can overwrite it
      if (at) ::munmap(at, page_round(size_));
      ::close(fd);
      throw_error(path, ": cannot mmap ", size_, " bytes: ", std::strerror(e));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

void MappedFile::populate() const {
  if (!data_) return;
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14
#endif
  if (::madvise(const_cast<uint8_t*>(data_), size_, MADV_POPULATE_READ) == 0) return;
  if (errno != EINVAL) throw_error(path_, ": cannot read the mapped file: ", std::strerror(errno));
  volatile uint8_t sink = 0;  // older kernels: fault every page in
  const long page = ::sysconf(_SC_PAGESIZE);
  for (size_t off = 0; off < size_; off += static_cast<size_t>(page > 0 ? page : 4096)) sink = sink ^ data_[off];
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : path_(std::move(o.path_)), data_(o.data_), size_(o.size_) {
  o.data_ = nullptr;
  o.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    path_ = std::move(o.path_);
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

}  // namespace dsv4
