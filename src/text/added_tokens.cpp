#include "text/added_tokens.h"

#include <algorithm>

#include "text/unicode_class.h"
#include "text/utf8.h"

namespace dsv4::text {
namespace {

// Unicode White_Space (the set Rust's char::is_whitespace uses).
bool is_unicode_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// Start of the character that ends at `end` (end > 0).
size_t char_start_before(std::string_view s, size_t end) {
  size_t i = end - 1;
  while (i > 0 && end - i < 4 && (uint8_t(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

// Word characters for single_word: Unicode letters and numbers, and '_'.
bool is_word_char(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  return unicode_is_letter_or_number(c);
}

}  // namespace

void AddedTokenMatcher::Pass::add(std::string_view s, int32_t token) {
  int32_t node = 0;
  for (char ch : s) {
    const auto b = uint8_t(ch);
    int32_t c = child(node, b);
    if (c < 0) {
      c = int32_t(nodes.size());
      nodes.emplace_back();
      auto& nx = nodes[node].next;
      nx.insert(std::upper_bound(nx.begin(), nx.end(), std::pair<uint8_t, int32_t>(b, -1)), {b, c});
    }
    node = c;
  }
  if (nodes[node].token < 0) nodes[node].token = token;  // duplicate contents: first one wins
  first[uint8_t(s[0])] = true;
}

int32_t AddedTokenMatcher::Pass::child(int32_t node, uint8_t b) const {
  for (const auto& [k, c] : nodes[node].next)
    if (k == b) return c;
  return -1;
}

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens) : tokens_(tokens) {
  for (size_t i = 0; i < tokens_.size(); ++i)
    if (!tokens_[i].content.empty()) passes_[tokens_[i].normalized ? 1 : 0].add(tokens_[i].content, int32_t(i));
}

void AddedTokenMatcher::split_pass(const Pass& p, std::string_view text, uint32_t begin, uint32_t end,
                                   std::vector<TextSegment>& out) const {
  uint32_t plain = begin;  // start of the ordinary stretch not yet emitted
  uint32_t pos = begin;
  while (pos < end) {
    if (!p.first[uint8_t(text[pos])]) {
      ++pos;
      continue;
    }
    int32_t node = 0, best = -1;
    uint32_t best_end = 0;
    for (uint32_t i = pos; i < end; ++i) {
      node = p.child(node, uint8_t(text[i]));
      if (node < 0) break;
      if (p.nodes[node].token >= 0) {
        best = p.nodes[node].token;
        best_end = i + 1;
      }
    }
    if (best < 0) {
      ++pos;
      continue;
    }
    const AddedToken& tok = tokens_[best];
    if (tok.single_word) {
      bool ok = true;
      if (pos > begin) {
        const size_t st = char_start_before(text, pos);
        const Utf8Seq q = utf8_next(text, st);
        ok = !(q.kind == Utf8Kind::Valid && is_word_char(q.code));
      }
      if (ok && best_end < end) {
        const Utf8Seq q = utf8_next(text.substr(0, end), best_end);
        ok = !(q.kind == Utf8Kind::Valid && is_word_char(q.code));
      }
      if (!ok) {
        ++pos;
        continue;
      }
    }
    uint32_t mb = pos, me = best_end;
    if (tok.lstrip) {
      while (mb > plain) {
        const size_t st = char_start_before(text, mb);
        const Utf8Seq q = utf8_next(text, st);
        if (q.kind != Utf8Kind::Valid || st + q.length != mb || !is_unicode_space(q.code)) break;
        mb = uint32_t(st);
      }
    }
    if (tok.rstrip) {
      while (me < end) {
        const Utf8Seq q = utf8_next(text.substr(0, end), me);
        if (q.kind != Utf8Kind::Valid || !is_unicode_space(q.code)) break;
        me += uint32_t(q.length);
      }
    }
    if (mb > plain) out.push_back({plain, mb, -1});
    out.push_back({mb, me, tok.id});
    plain = pos = me;
  }
  if (end > plain) out.push_back({plain, end, -1});
}

void AddedTokenMatcher::split(std::string_view text, std::vector<TextSegment>& out,
                              std::vector<TextSegment>& tmp) const {
  out.clear();
  if (text.empty()) return;
  split_pass(passes_[0], text, 0, uint32_t(text.size()), out);
  if (passes_[1].nodes.size() <= 1) return;
  tmp.swap(out);
  out.clear();
  for (const TextSegment& s : tmp) {
    if (s.id >= 0) out.push_back(s);
    else split_pass(passes_[1], text, s.begin, s.end, out);
  }
}

}  // namespace dsv4::text
