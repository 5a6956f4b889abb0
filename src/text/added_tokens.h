// Added tokens (spec 8.5): strings such as "<｜User｜>" that are found in the raw text before
// pre-tokenisation and become one id each. As in Hugging Face `tokenizers`, tokens with
// normalized=false are matched first over the whole text, then tokens with normalized=true in the
// stretches left between (the normaliser is empty, so both passes see the raw text). Within a pass
// the leftmost match wins, and the longest one among those starting there. `lstrip`/`rstrip`
// extend a match over Unicode whitespace on its left/right; `single_word` drops a match that has a
// word character right before or after it.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace dsv4::text {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false, lstrip = false, rstrip = false, normalized = false, special = false;
};

struct TextSegment {
  uint32_t begin, end;  // byte range in the text
  int32_t id;           // the added token's id, or -1 for ordinary text
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(const std::vector<AddedToken>& tokens);

  // Replaces `out` with the segments of `text` (ordinary stretches and added tokens, in order).
  // `tmp` is working space (kept by the caller to avoid allocations).
  void split(std::string_view text, std::vector<TextSegment>& out, std::vector<TextSegment>& tmp) const;

 private:
  // A byte trie over the contents of one pass.
  struct Pass {
    struct Node {
      int32_t token = -1;  // index into tokens_ when a content ends here
      std::vector<std::pair<uint8_t, int32_t>> next;  // sorted by byte
    };
    std::vector<Node> nodes{Node{}};
    std::array<bool, 256> first{};  // bytes a content can start with
    void add(std::string_view s, int32_t token);
    int32_t child(int32_t node, uint8_t b) const;
  };
  void split_pass(const Pass& p, std::string_view text, uint32_t begin, uint32_t end,
                  std::vector<TextSegment>& out) const;
  std::vector<AddedToken> tokens_;
  Pass passes_[2];  // [0]: normalized=false, [1]: normalized=true
};

}  // namespace dsv4::text
