#include "text/pyjson.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>

#include "core/error.h"

namespace dsv4::text {

// ---- rendering ------------------------------------------------------------------------------

void py_append_string_body(std::string& out, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += ch;
        }
    }
  }
}

void py_append_string(std::string& out, std::string_view s) {
  out += '"';
  py_append_string_body(out, s);
  out += '"';
}

std::string py_float_repr(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  // Shortest round-trip digits in scientific form, e.g. "-1.2345e-07" or "5e+00".
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  bool neg = false;
  if (!sci.empty() && sci[0] == '-') {
    neg = true;
    sci.remove_prefix(1);
  }
  const size_t epos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, epos))
    if (c != '.') digits += c;
  int exp10 = 0;
  {
    std::string_view e = sci.substr(epos + 1);
    bool eneg = false;
    if (!e.empty() && (e[0] == '+' || e[0] == '-')) {
      eneg = e[0] == '-';
      e.remove_prefix(1);
    }
    std::from_chars(e.data(), e.data() + e.size(), exp10);
    if (eneg) exp10 = -exp10;
  }
  std::string out = neg ? "-" : "";
  const int n = static_cast<int>(digits.size());
  if (exp10 < -4 || exp10 >= 16) {
    out += digits[0];
    if (n > 1) {
      out += '.';
      out.append(digits, 1, std::string::npos);
    }
    char ebuf[16];
    std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    out += ebuf;
  } else if (exp10 >= 0) {
    const int int_digits = exp10 + 1;
    if (n <= int_digits) {
      out += digits;
      out.append(static_cast<size_t>(int_digits - n), '0');
      out += ".0";
    } else {
      out.append(digits, 0, static_cast<size_t>(int_digits));
      out += '.';
      out.append(digits, static_cast<size_t>(int_digits), std::string::npos);
    }
  } else {
    out += "0.";
    out.append(static_cast<size_t>(-exp10 - 1), '0');
    out += digits;
  }
  return out;
}

void py_dump_to(std::string& out, const nlohmann::ordered_json& v) {
  using V = nlohmann::ordered_json::value_t;
  switch (v.type()) {
    case V::null: out += "null"; return;
    case V::boolean: out += v.get<bool>() ? "true" : "false"; return;
    case V::number_integer: out += std::to_string(v.get<int64_t>()); return;
    case V::number_unsigned: out += std::to_string(v.get<uint64_t>()); return;
    case V::number_float: out += py_float_repr(v.get<double>()); return;
    case V::string: py_append_string(out, v.get_ref<const std::string&>()); return;
    case V::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v) {
        if (!first) out += ", ";
        first = false;
        py_dump_to(out, e);
      }
      out += ']';
      return;
    }
    case V::object: {
      out += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += ", ";
        first = false;
        py_append_string(out, it.key());
        out += ": ";
        py_dump_to(out, it.value());
      }
      out += '}';
      return;
    }
    default: throw_error("JSON value of type ", v.type_name(), " cannot be serialised");
  }
}

std::string py_dumps(const nlohmann::ordered_json& v) {
  std::string out;
  py_dump_to(out, v);
  return out;
}

void py_dump_to(std::string& out, const PyJson& v) {
  switch (v.type) {
    case PyJson::Type::Null: out += "null"; return;
    case PyJson::Type::Bool: out += v.boolean ? "true" : "false"; return;
    case PyJson::Type::Int: out += v.text; return;
    case PyJson::Type::Float: out += py_float_repr(v.number); return;
    case PyJson::Type::String: py_append_string(out, v.text); return;
    case PyJson::Type::Array:
      out += '[';
      for (size_t i = 0; i < v.items.size(); ++i) {
        if (i) out += ", ";
        py_dump_to(out, v.items[i]);
      }
      out += ']';
      return;
    case PyJson::Type::Object:
      out += '{';
      for (size_t i = 0; i < v.items.size(); ++i) {
        if (i) out += ", ";
        py_append_string(out, v.keys[i]);
        out += ": ";
        py_dump_to(out, v.items[i]);
      }
      out += '}';
      return;
  }
}

std::string py_dumps(const PyJson& v) {
  std::string out;
  py_dump_to(out, v);
  return out;
}

// ---- parsing (json.loads) -------------------------------------------------------------------

namespace {

constexpr int kMaxDepth = 500;

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Loader {
 public:
  explicit Loader(std::string_view s) : s_(s) {}

  bool document(PyJson& out) {
    skip_ws();
    if (!value(out, 0)) return false;
    skip_ws();
    return p_ == s_.size();  // "Extra data" otherwise
  }

 private:
  std::string_view s_;
  size_t p_ = 0;

  bool at_end() const { return p_ >= s_.size(); }
  char peek() const { return s_[p_]; }
  void skip_ws() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++p_;
  }
  bool literal(std::string_view w) {
    if (s_.substr(p_, w.size()) != w) return false;
    p_ += w.size();
    return true;
  }

  bool value(PyJson& out, int depth) {
    if (at_end()) return false;
    const char c = peek();
    if (c == '"') {
      out.type = PyJson::Type::String;
      return string(out.text);
    }
    if (c == '{') return object(out, depth + 1);
    if (c == '[') return array(out, depth + 1);
    if (literal("null")) { out.type = PyJson::Type::Null; return true; }
    if (literal("true")) { out.type = PyJson::Type::Bool; out.boolean = true; return true; }
    if (literal("false")) { out.type = PyJson::Type::Bool; out.boolean = false; return true; }
    if (literal("NaN")) { out.type = PyJson::Type::Float; out.number = NAN; return true; }
    if (literal("Infinity")) { out.type = PyJson::Type::Float; out.number = INFINITY; return true; }
    if (literal("-Infinity")) { out.type = PyJson::Type::Float; out.number = -INFINITY; return true; }
    return number(out);
  }

  static bool is_digit(char c) { return c >= '0' && c <= '9'; }

  // -?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?  (a partial fraction/exponent is left as trailing data)
  bool number(PyJson& out) {
    const size_t start = p_;
    size_t q = p_;
    if (q < s_.size() && s_[q] == '-') ++q;
    if (q >= s_.size() || !is_digit(s_[q])) return false;
    if (s_[q] == '0') {
      ++q;
    } else {
      while (q < s_.size() && is_digit(s_[q])) ++q;
    }
    const size_t int_end = q;
    bool is_float = false;
    if (q + 1 < s_.size() && s_[q] == '.' && is_digit(s_[q + 1])) {
      q += 2;
      while (q < s_.size() && is_digit(s_[q])) ++q;
      is_float = true;
    }
    if (q < s_.size() && (s_[q] == 'e' || s_[q] == 'E')) {
      size_t r = q + 1;
      if (r < s_.size() && (s_[r] == '+' || s_[r] == '-')) ++r;
      if (r < s_.size() && is_digit(s_[r])) {
        while (r < s_.size() && is_digit(s_[r])) ++r;
        q = r;
        is_float = true;
      }
    }
    p_ = q;
    const std::string_view num = s_.substr(start, q - start);
    if (!is_float) {
      out.type = PyJson::Type::Int;
      out.text = (num == "-0") ? "0" : std::string(num);
      return true;
    }
    out.type = PyJson::Type::Float;
    double d = 0.0;
    auto res = std::from_chars(num.data(), num.data() + num.size(), d);
    if (res.ec == std::errc::result_out_of_range) {
      // Python's float() gives +-inf on overflow and +-0.0 on underflow; decide by magnitude.
      const bool neg = num[0] == '-';
      std::string_view mant = num.substr(neg ? 1 : 0, int_end - start - (neg ? 1 : 0));
      const size_t epos = num.find_first_of("eE");
      long long e = 0;
      if (epos != std::string_view::npos) {
        std::string_view es = num.substr(epos + 1);
        bool eneg = false;
        if (!es.empty() && (es[0] == '+' || es[0] == '-')) {
          eneg = es[0] == '-';
          es.remove_prefix(1);
        }
        for (char c : es) e = std::min<long long>(e * 10 + (c - '0'), 1000000000LL);
        if (eneg) e = -e;
      }
      // Decimal exponent of the leading significant digit.
      long long lead = 0;
      if (!(mant.size() == 1 && mant[0] == '0')) {
        lead = static_cast<long long>(mant.size()) - 1;
      } else {
        const std::string_view frac = num.substr(int_end + 1);
        size_t zeros = 0;
        while (zeros < frac.size() && frac[zeros] == '0') ++zeros;
        lead = -static_cast<long long>(zeros) - 1;
      }
      const bool big = lead + e > 0;
      d = big ? INFINITY : 0.0;
      if (neg) d = -d;
    }
    out.number = d;
    return true;
  }

  bool hex4(uint32_t& v) {
    if (p_ + 4 > s_.size()) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[p_ + static_cast<size_t>(i)];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
      else return false;
    }
    p_ += 4;
    return true;
  }

  bool string(std::string& out) {
    ++p_;  // opening quote
    out.clear();
    while (true) {
      if (at_end()) return false;
      const char c = s_[p_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;  // strict: no raw control chars
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_end()) return false;
      const char e = s_[p_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF && s_.substr(p_, 2) == "\\u") {
            const size_t save = p_;
            p_ += 2;
            uint32_t lo = 0;
            if (hex4(lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              p_ = save;  // the second escape is parsed on its own
            }
          }
          if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;  // lone surrogate
          append_utf8(out, cp);
          break;
        }
        default: return false;
      }
    }
  }

  bool array(PyJson& out, int depth) {
    if (depth > kMaxDepth) return false;
    ++p_;
    out.type = PyJson::Type::Array;
    skip_ws();
    if (!at_end() && peek() == ']') {
      ++p_;
      return true;
    }
    while (true) {
      PyJson item;
      skip_ws();
      if (!value(item, depth)) return false;
      out.items.push_back(std::move(item));
      skip_ws();
      if (at_end()) return false;
      const char c = s_[p_++];
      if (c == ']') return true;
      if (c != ',') return false;
    }
  }

  bool object(PyJson& out, int depth) {
    if (depth > kMaxDepth) return false;
    ++p_;
    out.type = PyJson::Type::Object;
    skip_ws();
    if (!at_end() && peek() == '}') {
      ++p_;
      return true;
    }
    while (true) {
      skip_ws();
      if (at_end() || peek() != '"') return false;
      std::string key;
      if (!string(key)) return false;
      skip_ws();
      if (at_end() || peek() != ':') return false;
      ++p_;
      skip_ws();
      PyJson item;
      if (!value(item, depth)) return false;
      size_t k = 0;
      while (k < out.keys.size() && out.keys[k] != key) ++k;
      if (k < out.keys.size()) {
        out.items[k] = std::move(item);  // dict assignment: keeps the first position
      } else {
        out.keys.push_back(std::move(key));
        out.items.push_back(std::move(item));
      }
      skip_ws();
      if (at_end()) return false;
      const char c = s_[p_++];
      if (c == '}') return true;
      if (c != ',') return false;
    }
  }
};

}  // namespace

std::optional<PyJson> py_loads(std::string_view text) {
  PyJson v;
  Loader loader(text);
  if (!loader.document(v)) return std::nullopt;
  return v;
}

}  // namespace dsv4::text
