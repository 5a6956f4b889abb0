// Minimal NumPy .npy (format 1.0/2.0/3.0) reader and writer for little-endian C-order arrays of
// float32, uint16, int32 and int64: golden data, teacher tensors and the CLI's outputs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dsv4 {

struct NpyArray {
  std::string dtype;            // numpy descr: "<f4", "<u2", "<i4", "<i8"
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;    // raw little-endian bytes, C order
  int64_t numel() const;
  // Element access converted to the requested type (throws on a dtype that does not convert).
  std::vector<float> as_f32() const;
  std::vector<int64_t> as_i64() const;
};

NpyArray read_npy(const std::string& path);  // throws Error naming the file and the problem
void write_npy_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data);

}  // namespace dsv4
