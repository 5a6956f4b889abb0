// UTF-8 helpers for the tokenizer: classifying byte sequences (valid / invalid / truncated at the
// end of the buffer) and replacing invalid sequences by U+FFFD, one replacement per maximal
// subpart of an ill-formed sequence (the Unicode "best practice" rule), so that replacing in
// pieces and replacing all at once give the same text.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dsv4::text {

enum class Utf8Kind { Valid, Invalid, Truncated };

struct Utf8Seq {
  Utf8Kind kind;
  size_t length;   // bytes: of the character, of the maximal ill-formed subpart, or present so far
  char32_t code;   // the code point when kind == Valid
};

// Classifies the sequence that starts at s[pos] (pos < s.size()).
Utf8Seq utf8_next(std::string_view s, size_t pos);

// Appends `bytes` to `out` as valid UTF-8. When `final` is false, a trailing sequence that is
// truncated but could still become valid is not consumed. Returns the number of bytes consumed.
size_t append_valid_utf8(std::string& out, std::string_view bytes, bool final);

// Appends the UTF-8 encoding of a code point (< 0x110000, not a surrogate).
void append_utf8(std::string& out, char32_t cp);

bool is_valid_utf8(std::string_view s);

}  // namespace dsv4::text
