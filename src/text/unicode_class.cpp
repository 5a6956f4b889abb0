#include "text/unicode_class.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <string>

#include "text/utf8.h"

namespace dsv4::text {

bool unicode_is_letter_or_number(char32_t c) {
  struct Pattern {
    pcre2_code* code = nullptr;
    Pattern() {
      static const char kPat[] = "^[\\p{L}\\p{N}]$";
      int err = 0;
      PCRE2_SIZE off = 0;
      code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPat), PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err,
                           &off, nullptr);
    }
    ~Pattern() { pcre2_code_free(code); }
  };
  static const Pattern pattern;
  std::string s;
  append_utf8(s, c);
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  const int rc = pcre2_match(pattern.code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, 0, md, nullptr);
  pcre2_match_data_free(md);
  return rc >= 0;
}

}  // namespace dsv4::text
