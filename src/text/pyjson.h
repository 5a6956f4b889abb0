// Python-exact JSON: rendering as `json.dumps(value, ensure_ascii=False)` does (separators ", " and
// ": ", insertion order, Python escapes, float repr) and parsing as `json.loads` does (NaN /
// Infinity literals, integers of any size kept exactly, duplicate keys: last value at the first
// key's position). The DeepSeek-V4 chat encoder and completion parser use both.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace dsv4::text {

// Appends `s` (UTF-8) as a JSON string literal with quotes, Python ensure_ascii=False escaping:
// \" \\ \n \r \t \b \f, other bytes < 0x20 as \u00xx, everything else raw.
void py_append_string(std::string& out, std::string_view s);
// Appends the escaped body only (no quotes); escaping is per byte, so pieces compose.
void py_append_string_body(std::string& out, std::string_view s);

// Python repr(float): shortest round-trip digits, fixed notation for 1e-4 <= |x| < 1e16
// (always with a fractional part: 1.0, 100.0), otherwise d.ddde+XX (1e-07, 1e+16);
// NaN, Infinity, -Infinity as json.dumps writes them.
std::string py_float_repr(double x);

// json.dumps(v, ensure_ascii=False) of an nlohmann value (binary / discarded values throw
// dsv4::Error).
std::string py_dumps(const nlohmann::ordered_json& v);
void py_dump_to(std::string& out, const nlohmann::ordered_json& v);

// A value as Python's json.loads returns it. Integers keep their decimal text (exact, any size).
struct PyJson {
  enum class Type { Null, Bool, Int, Float, String, Array, Object };
  Type type = Type::Null;
  bool boolean = false;
  double number = 0.0;             // Float
  std::string text;                // Int: canonical decimal digits; String: UTF-8 value
  std::vector<PyJson> items;       // Array elements / Object values
  std::vector<std::string> keys;   // Object keys (parallel to items)
};

// json.loads(text); nullopt where Python raises (syntax error, trailing data, control character
// in a string, nesting deeper than 500). Lone UTF-16 surrogates in \u escapes become U+FFFD.
std::optional<PyJson> py_loads(std::string_view text);

// json.dumps(v, ensure_ascii=False).
std::string py_dumps(const PyJson& v);
void py_dump_to(std::string& out, const PyJson& v);

}  // namespace dsv4::text
