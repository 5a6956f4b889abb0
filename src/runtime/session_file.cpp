#include "runtime/session_file.h"

#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <set>
#include <sstream>

#include "core/error.h"

namespace dsv4 {

namespace {

constexpr char kMagic[8] = {'D', 'S', 'V', '4', 'S', 'E', 'S', 'S'};

// Slicing-by-8 tables: T[0] is the classic byte table, T[k][b] advances T[k-1][b] by one zero byte.
struct CrcTables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  CrcTables() {
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t c = b;
      for (int i = 0; i < 8; ++i) c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : (c >> 1);
      t[0][b] = c;
    }
    for (int k = 1; k < 8; ++k)
      for (uint32_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFF];
  }
};

const CrcTables& tables() {
  static const CrcTables t;
  return t;
}

std::string hex32(uint32_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << std::setw(8) << std::setfill('0') << v;
  return os.str();
}

void put_u32(std::vector<uint8_t>& o, uint32_t v) {
  for (int i = 0; i < 4; ++i) o.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put_u64(std::vector<uint8_t>& o, uint64_t v) {
  for (int i = 0; i < 8; ++i) o.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// Bounds-checked little-endian cursor over the mapped header.
class Cursor {
 public:
  Cursor(const uint8_t* p, size_t size, const std::string& path) : p_(p), size_(size), path_(path) {}
  void need(uint64_t n, const char* what) const {
    if (n > size_ - pos_)
      throw_error("session file ", path_, ": truncated (", what, " needs ", n, " bytes at offset ", pos_,
                  ", file has ", size_, " bytes)");
  }
  uint32_t u32(const char* what) {
    need(4, what);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p_[pos_ + i]) << (8 * i);
    pos_ += 4;
    return v;
  }
  uint64_t u64(const char* what) {
    need(8, what);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p_[pos_ + i]) << (8 * i);
    pos_ += 8;
    return v;
  }
  const uint8_t* bytes(uint64_t n, const char* what) {
    need(n, what);
    const uint8_t* q = p_ + pos_;
    pos_ += n;
    return q;
  }
  size_t pos() const { return pos_; }

 private:
  const uint8_t* p_;
  size_t size_, pos_ = 0;
  const std::string& path_;
};

}  // namespace

uint32_t crc32(const void* data, size_t size, uint32_t crc) {
  const auto& t = tables().t;
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  while (size >= 8) {
    const uint32_t lo = c ^ (uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24);
    c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^ t[3][p[4]] ^
        t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    size -= 8;
  }
  while (size--) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xFF];
  return ~c;
}

// ---------------------------------------------------------------- writer
void SessionWriter::add(const std::string& name, std::span<const uint8_t> bytes) {
  if (name.empty()) throw_error("session file: section name must not be empty");
  for (const auto& s : sections_)
    if (s.name == name) throw_error("session file: duplicate section '", name, "'");
  sections_.push_back({name, bytes});
}

void SessionWriter::write(const std::string& path) const {
  std::vector<uint8_t> h(kMagic, kMagic + 8);
  put_u32(h, kSessionFormatVersion);
  put_u32(h, static_cast<uint32_t>(fingerprint_.size()));
  h.insert(h.end(), fingerprint_.begin(), fingerprint_.end());
  put_u32(h, static_cast<uint32_t>(sections_.size()));
  size_t header_size = h.size() + 4;  // + header CRC
  for (const auto& s : sections_) header_size += 4 + s.name.size() + 8 + 8 + 4;
  uint64_t offset = header_size;
  for (const auto& s : sections_) {
    put_u32(h, static_cast<uint32_t>(s.name.size()));
    h.insert(h.end(), s.name.begin(), s.name.end());
    put_u64(h, offset);
    put_u64(h, s.bytes.size());
    put_u32(h, crc32(s.bytes.data(), s.bytes.size()));
    offset += s.bytes.size();
  }
  put_u32(h, crc32(h.data(), h.size()));

  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw_error("session file ", tmp, ": cannot open for writing");
    out.write(reinterpret_cast<const char*>(h.data()), static_cast<std::streamsize>(h.size()));
    for (const auto& s : sections_)
      out.write(reinterpret_cast<const char*>(s.bytes.data()), static_cast<std::streamsize>(s.bytes.size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      throw_error("session file ", tmp, ": write failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw_error("session file ", path, ": cannot rename ", tmp, " into place");
  }
}

// ---------------------------------------------------------------- reader
SessionReader::SessionReader(const std::string& path, std::span<const uint8_t> expected_fingerprint)
    : file_(path) {
  const uint8_t* base = file_.data();
  const size_t size = file_.size();
  if (size < sizeof kMagic && size > 0 && std::memcmp(base, kMagic, size) == 0)
    throw_error("session file ", path, ": truncated (", size, " bytes, shorter than the magic)");
  if (size < sizeof kMagic || std::memcmp(base, kMagic, sizeof kMagic) != 0)
    throw_error("session file ", path, ": not a dsv4 session file (bad magic)");
  Cursor c(base, size, path);
  c.bytes(sizeof kMagic, "magic");
  const uint32_t version = c.u32("format version");
  if (version != kSessionFormatVersion)
    throw_error("session file ", path, ": format version ", version, ", this build reads version ",
                kSessionFormatVersion);
  const uint32_t fp_len = c.u32("fingerprint length");
  const uint8_t* fp = c.bytes(fp_len, "model fingerprint");
  const uint32_t count = c.u32("section count");
  struct Entry {
    Section s;
    uint32_t crc;
  };
  std::vector<Entry> entries;
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t name_len = c.u32("section name length");
    const uint8_t* name = c.bytes(name_len, "section name");
    Entry e{{std::string(reinterpret_cast<const char*>(name), name_len), 0, 0}, 0};
    e.s.offset = c.u64("section offset");
    e.s.size = c.u64("section size");
    e.crc = c.u32("section checksum");
    entries.push_back(std::move(e));
  }
  const size_t header_len = c.pos();
  const uint32_t stored = c.u32("header checksum");
  const uint32_t computed = crc32(base, header_len);
  if (stored != computed)
    throw_error("session file ", path, ": header checksum mismatch (stored ", hex32(stored), ", computed ",
                hex32(computed), "); the file is corrupt");
  if (fp_len != expected_fingerprint.size() ||
      (fp_len > 0 && std::memcmp(fp, expected_fingerprint.data(), fp_len) != 0))
    throw_error("session file ", path, ": saved for a different model (model fingerprint mismatch)");
  uint64_t expect_offset = c.pos();
  std::set<std::string> seen;
  for (const auto& e : entries) {
    if (!seen.insert(e.s.name).second) throw_error("session file ", path, ": duplicate section '", e.s.name, "'");
    if (e.s.offset != expect_offset)
      throw_error("session file ", path, ": section '", e.s.name, "' at offset ", e.s.offset, ", expected ",
                  expect_offset);
    if (e.s.size > size || e.s.offset > size - e.s.size)
      throw_error("session file ", path, ": truncated (section '", e.s.name, "' ends at byte ",
                  e.s.offset + e.s.size, ", file has ", size, " bytes)");
    const uint32_t crc = crc32(base + e.s.offset, e.s.size);
    if (crc != e.crc)
      throw_error("session file ", path, ": section '", e.s.name, "' checksum mismatch (stored ", hex32(e.crc),
                  ", computed ", hex32(crc), "); the file is corrupt");
    expect_offset = e.s.offset + e.s.size;
    sections_.push_back(e.s);
  }
  if (expect_offset != size)
    throw_error("session file ", path, ": ", size - expect_offset, " unexpected trailing bytes after the last section");
}

std::vector<std::string> SessionReader::names() const {
  std::vector<std::string> v;
  for (const auto& s : sections_) v.push_back(s.name);
  return v;
}

bool SessionReader::has(const std::string& name) const {
  for (const auto& s : sections_)
    if (s.name == name) return true;
  return false;
}

std::span<const uint8_t> SessionReader::section(const std::string& name) const {
  for (const auto& s : sections_)
    if (s.name == name) return {file_.data() + s.offset, static_cast<size_t>(s.size)};
  throw_error("session file ", file_.path(), ": no section '", name, "'");
}

}  // namespace dsv4
