#include "text/regex_dialect.h"

#include "core/error.h"

namespace dsv4::text {
namespace {

constexpr const char* kWordInClass = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}";
constexpr const char* kHexInClass = "0-9A-Fa-f";

}  // namespace

std::string translate_oniguruma(std::string_view p, const std::string& where) {
  std::string out;
  out.reserve(p.size() + 16);
  int class_depth = 0;  // inside [...] (Oniguruma allows nesting)
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[++i];
      const bool in_class = class_depth > 0;
      switch (e) {
        case 's': out += "\\p{White_Space}"; break;
        case 'S': out += "\\P{White_Space}"; break;
        case 'h': out += in_class ? std::string(kHexInClass) : std::string("[") + kHexInClass + "]"; break;
        case 'w': out += in_class ? std::string(kWordInClass) : std::string("[") + kWordInClass + "]"; break;
        case 'H':
        case 'W':
          if (in_class)
            throw_error(where, ": \\", e, " inside a character class is not supported (pattern \"", std::string(p), "\")");
          out += std::string("[^") + (e == 'H' ? kHexInClass : kWordInClass) + "]";
          break;
        default:
          out += c;
          out += e;  // any other escape (\p{..}, \x{..}, \\, \[, ...) is the same in both
      }
      continue;
    }
    if (c == '[') {
      if (class_depth > 0 && i + 1 < p.size() && p[i + 1] == ':') {
        // POSIX bracket [:name:] inside a class: copy through to its closing ":]".
        const size_t end = p.find(":]", i + 2);
        if (end != std::string_view::npos) {
          out.append(p.substr(i, end + 2 - i));
          i = end + 1;
          continue;
        }
      }
      ++class_depth;
      out += c;
      // A ']' right after '[' or '[^' is a literal member.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (c == ']' && class_depth > 0) --class_depth;
    out += c;
  }
  return out;
}

}  // namespace dsv4::text
