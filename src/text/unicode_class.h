// Unicode general-category queries answered by PCRE2's tables (so they agree with the
// pre-tokenizer's \p{..} classes).
#pragma once

namespace dsv4::text {

// True for general categories L* and N*.
bool unicode_is_letter_or_number(char32_t c);

}  // namespace dsv4::text
