#include "format/npy.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>

#include "core/error.h"

namespace dsv4 {
namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

size_t dtype_bytes(const std::string& d, const std::string& path) {
  if (d == "<f4" || d == "<i4") return 4;
  if (d == "<u2") return 2;
  if (d == "<i8") return 8;
  throw_error(path, ": unsupported npy dtype '", d, "' (expected <f4, <u2, <i4 or <i8)");
}

// Value of key `k` in the header dict literal, as raw text up to the next top-level comma.
std::string header_field(const std::string& h, const std::string& k, const std::string& path) {
  const size_t at = h.find("'" + k + "'");
  if (at == std::string::npos) throw_error(path, ": npy header lacks '", k, "'");
  size_t p = h.find(':', at);
  if (p == std::string::npos) throw_error(path, ": malformed npy header");
  ++p;
  while (p < h.size() && h[p] == ' ') ++p;
  if (h[p] == '(') return h.substr(p, h.find(')', p) - p + 1);
  size_t e = p;
  while (e < h.size() && h[e] != ',' && h[e] != '}') ++e;
  return h.substr(p, e - p);
}

}  // namespace

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

std::vector<float> NpyArray::as_f32() const {
  const int64_t n = numel();
  std::vector<float> out(static_cast<size_t>(n));
  if (dtype == "<f4") {
    std::memcpy(out.data(), data.data(), static_cast<size_t>(n) * 4);
  } else if (dtype == "<u2") {  // bf16 bits
    for (int64_t i = 0; i < n; ++i) {
      uint16_t b;
      std::memcpy(&b, data.data() + 2 * i, 2);
      const uint32_t u = static_cast<uint32_t>(b) << 16;
      std::memcpy(&out[static_cast<size_t>(i)], &u, 4);
    }
  } else {
    const auto v = as_i64();
    for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = static_cast<float>(v[static_cast<size_t>(i)]);
  }
  return out;
}

std::vector<int64_t> NpyArray::as_i64() const {
  const int64_t n = numel();
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (dtype == "<i8") {
      std::memcpy(&out[static_cast<size_t>(i)], data.data() + 8 * i, 8);
    } else if (dtype == "<i4") {
      int32_t v;
      std::memcpy(&v, data.data() + 4 * i, 4);
      out[static_cast<size_t>(i)] = v;
    } else {
      throw_error("npy: cannot read dtype ", dtype, " as integers");
    }
  }
  return out;
}

NpyArray read_npy(const std::string& path) {
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) throw_error(path, ": cannot open npy file");
  char magic[8];
  if (std::fread(magic, 1, 8, f.get()) != 8 || std::memcmp(magic, "\x93NUMPY", 6) != 0)
    throw_error(path, ": not an npy file (bad magic)");
  const int major = static_cast<unsigned char>(magic[6]);
  uint32_t hlen = 0;
  if (major == 1) {
    uint8_t b[2];
    if (std::fread(b, 1, 2, f.get()) != 2) throw_error(path, ": truncated npy header");
    hlen = b[0] | (b[1] << 8);
  } else if (major == 2 || major == 3) {
    uint8_t b[4];
    if (std::fread(b, 1, 4, f.get()) != 4) throw_error(path, ": truncated npy header");
    hlen = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  } else {
    throw_error(path, ": unsupported npy version ", major);
  }
  std::string h(hlen, '\0');
  if (std::fread(h.data(), 1, hlen, f.get()) != hlen) throw_error(path, ": truncated npy header");
  NpyArray a;
  std::string d = header_field(h, "descr", path);
  if (d.size() < 2) throw_error(path, ": bad descr");
  a.dtype = d.substr(1, d.size() - 2);
  if (header_field(h, "fortran_order", path).find("False") == std::string::npos)
    throw_error(path, ": Fortran-order npy arrays are not supported");
  std::string shp = header_field(h, "shape", path);
  std::istringstream ss(shp.substr(1, shp.size() - 2));
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.find_first_not_of(' ') == std::string::npos) continue;
    a.shape.push_back(std::stoll(item));
  }
  const size_t bytes = static_cast<size_t>(a.numel()) * dtype_bytes(a.dtype, path);
  a.data.resize(bytes);
  if (std::fread(a.data.data(), 1, bytes, f.get()) != bytes)
    throw_error(path, ": npy data truncated (expected ", bytes, " bytes)");
  return a;
}

void write_npy_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
  std::string shp = "(";
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    shp += std::to_string(shape[i]);
    shp += (shape.size() == 1 || i + 1 < shape.size()) ? "," : "";
    if (i + 1 < shape.size()) shp += " ";
    n *= shape[i];
  }
  shp += ")";
  std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shp + ", }";
  const size_t total = 10 + h.size() + 1;
  h.append((64 - total % 64) % 64, ' ');
  h += '\n';
  File f(std::fopen(path.c_str(), "wb"));
  if (!f) throw_error(path, ": cannot create output file");
  const uint16_t hl = static_cast<uint16_t>(h.size());
  const char pre[8] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0};
  const uint8_t lb[2] = {static_cast<uint8_t>(hl & 0xff), static_cast<uint8_t>(hl >> 8)};
  if (std::fwrite(pre, 1, 8, f.get()) != 8 || std::fwrite(lb, 1, 2, f.get()) != 2 ||
      std::fwrite(h.data(), 1, h.size(), f.get()) != h.size() ||
      std::fwrite(data, 4, static_cast<size_t>(n), f.get()) != static_cast<size_t>(n))
    throw_error(path, ": write failed");
  if (std::fflush(f.get()) != 0) throw_error(path, ": write failed");
}

}  // namespace dsv4
