// dsv4 public API: the byte-level BPE tokenizer of a checkpoint (Hugging Face `tokenizer.json`).
// Text in, token ids out, and back. The tokenizer never adds BOS/EOS by itself: the chat encoder
// writes the BOS string into the prompt text and it tokenises to its id like any added token.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dsv4 {

namespace text {
class TokenizerImpl;
}

// Immutable once loaded: every const member may be called from many threads at once (encode keeps
// per-caller scratch and a piece cache in a small internal pool).
class Tokenizer {
 public:
  // Loads `dir`/tokenizer.json (and `dir`/tokenizer_config.json when present, for the BOS/EOS
  // names). Throws dsv4::Error naming the file and the problem on any malformed input.
  static Tokenizer load(const std::string& dir);
  // Loads one tokenizer.json file (no tokenizer_config.json).
  static Tokenizer from_json_file(const std::string& path);
  // Parses tokenizer.json text; `origin` names it in error messages.
  static Tokenizer from_json_string(std::string_view json, const std::string& origin = "<string>");

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Encodes UTF-8 text. With allow_special, the contents of added tokens found in the text become
  // their ids (as Hugging Face does); without, the whole text goes through pre-tokenisation and BPE
  // (use this for untrusted user segments). Invalid UTF-8 is encoded byte by byte, never rejected.
  std::vector<int32_t> encode(std::string_view text, bool allow_special = true) const;

  // Concatenates the bytes of the tokens (added tokens verbatim, never skipped) and returns valid
  // UTF-8: invalid or truncated sequences become U+FFFD. Ids outside [0, vocab_size()) throw
  // dsv4::Error; ids inside that range that name no token contribute nothing.
  std::string decode(std::span<const int32_t> ids) const;
  // The same concatenation as raw bytes (may be invalid UTF-8 when the ids cut a character).
  std::string decode_bytes(std::span<const int32_t> ids) const;

  // The raw bytes one token stands for (added tokens: their content). Throws on unknown id.
  std::string token_to_piece(int32_t id) const;
  // The token's string as written in the vocabulary (byte-level characters, e.g. "Ġthe").
  std::string token_to_vocab_string(int32_t id) const;

  // One more than the largest id (vocabulary plus added tokens).
  int32_t vocab_size() const;
  // Id of an exact vocabulary or added-token string (e.g. "<｜User｜>", "Ġthe"), if any.
  std::optional<int32_t> token_id(std::string_view token) const;
  bool is_special(int32_t id) const;  // added token with "special": true

  // From tokenizer_config.json when present, else the ids of the default DeepSeek strings, else -1.
  int32_t bos_id() const;
  int32_t eos_id() const;

 private:
  explicit Tokenizer(std::unique_ptr<text::TokenizerImpl> impl);
  std::unique_ptr<text::TokenizerImpl> impl_;
};

// Incremental detokenizer for streaming: feed ids one by one, get back the text that is now
// complete. Keeps a pointer to the Tokenizer, which must outlive it; one per stream (not shared
// between threads). Never returns a partial UTF-8 sequence; bytes that can never become valid UTF-8 are
// replaced by U+FFFD. Concatenating every push() and the final flush() gives the same text for
// any way the ids arrive.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok);
  // Appends one token; returns the newly completed UTF-8 text (possibly empty).
  std::string push(int32_t id);
  // Returns whatever is held back (an incomplete sequence at the end becomes U+FFFD) and resets.
  std::string flush();
  // Bytes held back waiting for the rest of a character.
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tok_;
  std::string pending_;
};

}  // namespace dsv4
