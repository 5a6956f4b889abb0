// The byte-level alphabet of GPT-2 style BPE (spec 8.4): every byte 0..255 is written as one
// printable Unicode character, so that vocabularies and merges can be stored as text. Bytes
// 33..126, 161..172 and 174..255 stand for themselves; the other 68 bytes map, in increasing
// order, to U+0100, U+0101, ... (space -> U+0120 'Ġ', newline -> U+010A 'Ċ').
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace dsv4::text {

// Code point standing for byte b.
char32_t byte_to_char(uint8_t b);
// Byte a code point stands for, or -1 when it is not part of the alphabet.
int byte_from_char(char32_t cp);

// Maps raw bytes to their byte-level string (UTF-8 of the mapped characters).
std::string bytes_to_byte_level(std::string_view bytes);
// Maps a byte-level string back to raw bytes. Characters outside the alphabet (and invalid UTF-8)
// are copied through unchanged; returns false when that happened.
bool byte_level_to_bytes(std::string_view s, std::string& out);

}  // namespace dsv4::text
