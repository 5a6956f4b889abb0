// The tokenizer behind dsv4::Tokenizer: added-token matching, pre-tokenisation and byte-level BPE
// assembled from a Hugging Face tokenizer.json, plus the id -> bytes tables for decoding.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/added_tokens.h"
#include "text/bpe.h"
#include "text/pretokenizer.h"

namespace dsv4::text {

class TokenizerImpl {
 public:
  // Builds from tokenizer.json text; `origin` (the file name) prefixes every error message.
  static std::unique_ptr<TokenizerImpl> from_json(std::string_view json, const std::string& origin);
  // Reads bos_token / eos_token from a tokenizer_config.json (the file must exist).
  void read_config(const std::string& path);

  void encode(std::string_view text, bool allow_special, std::vector<int32_t>& out) const;
  // Appends the raw bytes of the tokens; throws dsv4::Error for ids outside [0, vocab_size()).
  void append_bytes(const int32_t* ids, size_t n, std::string& out) const;

  int32_t vocab_size() const { return int32_t(piece_off_.size()) - 1; }
  bool has_token(int32_t id) const { return id >= 0 && id < vocab_size() && present_[id]; }
  std::string_view piece(int32_t id) const;          // raw bytes of a token
  const std::string& vocab_string(int32_t id) const;  // as written in the file
  std::optional<int32_t> token_id(std::string_view s) const;
  bool is_special(int32_t id) const { return id >= 0 && id < vocab_size() && special_[id]; }
  int32_t bos_id() const { return bos_; }
  int32_t eos_id() const { return eos_; }

 private:
  TokenizerImpl(BpeModel bpe, PreTokenizer pre) : bpe_(std::move(bpe)), pre_(std::move(pre)) {}
  void build_tables();
  void check_id(int32_t id) const;

  // Per-caller state, pooled so that concurrent encode() calls never share one. Each holds a
  // bounded cache of piece bytes -> ids.
  struct Scratch {
    PreTokenizer::ScratchPtr pre;
    BpeModel::Scratch bpe;
    std::vector<TextSegment> segments, segments_tmp;
    std::vector<ByteSpan> pieces;
    struct Hash {
      using is_transparent = void;
      size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    struct Entry {
      uint32_t offset, count;
    };
    std::unordered_map<std::string, Entry, Hash, std::equal_to<>> cache;
    std::vector<int32_t> cached_ids;
  };
  std::unique_ptr<Scratch> acquire() const;
  void release(std::unique_ptr<Scratch> s) const;
  void encode_plain(std::string_view text, std::vector<int32_t>& out, Scratch& s) const;

  BpeModel bpe_;
  PreTokenizer pre_;
  std::vector<AddedToken> added_;
  AddedTokenMatcher matcher_;
  std::unordered_map<std::string, int32_t> added_by_content_;
  std::vector<std::string> vocab_string_;  // id -> string in the file ("" when absent)
  std::string piece_bytes_;                // raw bytes of all tokens, concatenated
  std::vector<uint32_t> piece_off_;        // id -> offset in piece_bytes_ (size vocab_size + 1)
  std::vector<uint8_t> present_, special_;
  int32_t bos_ = -1, eos_ = -1;
  mutable std::mutex pool_mu_;
  mutable std::vector<std::unique_ptr<Scratch>> pool_;
};

}  // namespace dsv4::text
