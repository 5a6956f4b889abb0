// Pre-tokenisation of a Hugging Face tokenizer.json: the `pre_tokenizer` (a Sequence of Split
// steps with PCRE2-compiled patterns, then ByteLevel) cuts text into pieces that BPE encodes
// independently. Each Split step is applied to every piece produced by the step before, with the
// piece as the whole regex subject (so lookaheads stop at the piece's end, as in HF).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace dsv4::text {

struct ByteSpan {
  uint32_t begin, end;  // [begin, end) byte offsets
};

class PreTokenizer {
 public:
  // Parses the "pre_tokenizer" value of tokenizer.json (`origin` names the file in errors).
  // Throws dsv4::Error on an unsupported step or a pattern PCRE2 rejects.
  static PreTokenizer from_json(const nlohmann::json& j, const std::string& origin);

  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  ~PreTokenizer();

  // Scratch state of one caller (PCRE2 match data and buffers); not shared between threads.
  class Scratch;
  struct ScratchDeleter {
    void operator()(Scratch* s) const;
  };
  using ScratchPtr = std::unique_ptr<Scratch, ScratchDeleter>;
  ScratchPtr make_scratch() const;

  // Replaces `out` with the pieces of `text`, in order, covering every byte of it.
  void split(std::string_view text, std::vector<ByteSpan>& out, Scratch& scratch) const;

  // True when a ByteLevel step is present (the tokenizer works on bytes).
  bool byte_level() const { return byte_level_; }

 private:
  struct Step;
  PreTokenizer();
  std::vector<std::unique_ptr<Step>> steps_;
  bool byte_level_ = false;
};

}  // namespace dsv4::text
