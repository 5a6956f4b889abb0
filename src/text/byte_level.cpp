#include "text/byte_level.h"

#include <array>

#include "text/utf8.h"

namespace dsv4::text {
namespace {

constexpr bool stands_for_itself(int b) {
  return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

constexpr int kAlphabetEnd = 256 + 68;  // every mapped code point is below this

struct Tables {
  std::array<char32_t, 256> to_char{};
  std::array<int16_t, kAlphabetEnd> from_char{};
  std::array<std::string, 256> utf8{};
  Tables() {
    from_char.fill(-1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const char32_t cp = stands_for_itself(b) ? static_cast<char32_t>(b) : next++;
      to_char[b] = cp;
      from_char[cp] = static_cast<int16_t>(b);
      append_utf8(utf8[b], cp);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

char32_t byte_to_char(uint8_t b) { return tables().to_char[b]; }

int byte_from_char(char32_t cp) {
  return cp < static_cast<char32_t>(kAlphabetEnd) ? tables().from_char[cp] : -1;
}

std::string bytes_to_byte_level(std::string_view bytes) {
  const Tables& t = tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += t.utf8[static_cast<uint8_t>(c)];
  return out;
}

bool byte_level_to_bytes(std::string_view s, std::string& out) {
  bool all_mapped = true;
  for (size_t i = 0; i < s.size();) {
    const Utf8Seq q = utf8_next(s, i);
    const int b = q.kind == Utf8Kind::Valid ? byte_from_char(q.code) : -1;
    if (b >= 0) {
      out.push_back(static_cast<char>(b));
    } else {
      out.append(s.data() + i, q.length);
      all_mapped = false;
    }
    i += q.length;
  }
  return all_mapped;
}

}  // namespace dsv4::text
