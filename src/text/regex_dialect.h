// tokenizer.json patterns are written for Oniguruma (what Hugging Face `tokenizers` compiles them
// with); we compile them with PCRE2. The two agree on almost all syntax, but a few escapes mean
// different things. translate_oniguruma() rewrites those into PCRE2 syntax with Oniguruma's
// meaning (Unicode mode):
//   \s  White_Space property          (PCRE2's \s also takes U+180E)  -> \p{White_Space}
//   \S  its complement                                                 -> \P{White_Space}
//   \h  hexadecimal digit             (PCRE2: horizontal space)        -> [0-9A-Fa-f]
//   \H  its complement                                                 -> [^0-9A-Fa-f]
//   \w  word character per UTS #18    (PCRE2: letters, numbers, '_')  -> Alphabetic, M, Nd, Pc, Join_Control
//   \W  its complement
// Everything else is copied unchanged. Complements (\H, \W) inside a bracket class have no PCRE2
// spelling and are rejected with dsv4::Error naming `where`.
#pragma once
#include <string>
#include <string_view>

namespace dsv4::text {

std::string translate_oniguruma(std::string_view pattern, const std::string& where);

}  // namespace dsv4::text
