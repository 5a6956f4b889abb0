// Versioned, checksummed container for saved session state.
//
// Layout (all integers little-endian):
//   magic "DSV4SESS" (8 bytes) | u32 format version | u32 fingerprint length | fingerprint bytes |
//   u32 section count | per section: u32 name length, name bytes, u64 offset, u64 size, u32 CRC32 |
//   u32 CRC32 of every header byte before it | section payloads (at their offsets, in order).
// The fingerprint identifies the model the state belongs to (the caller supplies the bytes, e.g. a
// hash of config.json fields and tensor shapes); a reader only accepts a file with the same one.
// The reader maps the file and validates everything before the first section is handed out, and
// throws dsv4::Error naming the file and the problem: bad magic, other format version, truncated
// header or section, header checksum, other model fingerprint, section checksum (named), trailing
// bytes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/mmap_file.h"

namespace dsv4 {

// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), chainable: crc32(b, crc32(a)) == crc32(a+b).
uint32_t crc32(const void* data, size_t size, uint32_t crc = 0);

inline constexpr uint32_t kSessionFormatVersion = 1;

class SessionWriter {
 public:
  explicit SessionWriter(std::vector<uint8_t> fingerprint) : fingerprint_(std::move(fingerprint)) {}
  // The bytes are referenced, not copied: they must stay alive and unchanged until write().
  // Names must be unique and non-empty.
  void add(const std::string& name, std::span<const uint8_t> bytes);
  // Writes path + ".tmp", then renames it over path (a crash never leaves a half-written file).
  void write(const std::string& path) const;

 private:
  struct Section {
    std::string name;
    std::span<const uint8_t> bytes;
  };
  std::vector<uint8_t> fingerprint_;
  std::vector<Section> sections_;
};

class SessionReader {
 public:
  SessionReader(const std::string& path, std::span<const uint8_t> expected_fingerprint);

  uint32_t version() const { return kSessionFormatVersion; }
  std::vector<std::string> names() const;
  bool has(const std::string& name) const;
  // The section's bytes (valid while the reader lives); throws Error if there is no such section.
  std::span<const uint8_t> section(const std::string& name) const;

 private:
  struct Section {
    std::string name;
    uint64_t offset, size;
  };
  MappedFile file_;
  std::vector<Section> sections_;
};

}  // namespace dsv4
