#include "text/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "dsv4/tokenizer.h"
#include "text/utf8.h"

namespace dsv4::text {
namespace {
constexpr size_t kCacheEntries = 1 << 16;   // per scratch; cleared when full
constexpr size_t kCacheMaxPiece = 64;       // longer pieces are rare and not worth keeping
}  // namespace

std::unique_ptr<TokenizerImpl::Scratch> TokenizerImpl::acquire() const {
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (!pool_.empty()) {
      auto s = std::move(pool_.back());
      pool_.pop_back();
      return s;
    }
  }
  auto s = std::make_unique<Scratch>();
  s->pre = pre_.make_scratch();
  return s;
}

void TokenizerImpl::release(std::unique_ptr<Scratch> s) const {
  std::lock_guard<std::mutex> lock(pool_mu_);
  pool_.push_back(std::move(s));
}

void TokenizerImpl::encode_plain(std::string_view text, std::vector<int32_t>& out, Scratch& s) const {
  pre_.split(text, s.pieces, *s.pre);
  for (const ByteSpan sp : s.pieces) {
    const std::string_view piece = text.substr(sp.begin, sp.end - sp.begin);
    if (piece.size() < 2 || piece.size() > kCacheMaxPiece) {
      bpe_.encode_piece(piece, out, s.bpe);
      continue;
    }
    const auto it = s.cache.find(piece);
    if (it != s.cache.end()) {
      out.insert(out.end(), s.cached_ids.begin() + it->second.offset,
                 s.cached_ids.begin() + it->second.offset + it->second.count);
      continue;
    }
    const size_t before = out.size();
    bpe_.encode_piece(piece, out, s.bpe);
    if (s.cache.size() >= kCacheEntries) {
      s.cache.clear();
      s.cached_ids.clear();
    }
    s.cache.emplace(std::string(piece), Scratch::Entry{uint32_t(s.cached_ids.size()), uint32_t(out.size() - before)});
    s.cached_ids.insert(s.cached_ids.end(), out.begin() + before, out.end());
  }
}

void TokenizerImpl::encode(std::string_view text, bool allow_special, std::vector<int32_t>& out) const {
  if (text.size() > UINT32_MAX) throw_error("tokenizer: text of ", text.size(), " bytes is too long (max 4 GiB)");
  std::unique_ptr<Scratch> s = acquire();
  try {
    if (allow_special) {
      matcher_.split(text, s->segments, s->segments_tmp);
      for (const TextSegment& seg : s->segments) {
        if (seg.id >= 0) out.push_back(seg.id);
        else encode_plain(text.substr(seg.begin, seg.end - seg.begin), out, *s);
      }
    } else {
      encode_plain(text, out, *s);
    }
  } catch (...) {
    release(std::move(s));
    throw;
  }
  release(std::move(s));
}

void TokenizerImpl::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    throw_error("tokenizer: token id ", id, " is out of range [0, ", vocab_size(), ")");
}

std::string_view TokenizerImpl::piece(int32_t id) const {
  check_id(id);
  return std::string_view(piece_bytes_).substr(piece_off_[id], piece_off_[id + 1] - piece_off_[id]);
}

void TokenizerImpl::append_bytes(const int32_t* ids, size_t n, std::string& out) const {
  for (size_t i = 0; i < n; ++i) out += piece(ids[i]);
}

const std::string& TokenizerImpl::vocab_string(int32_t id) const {
  check_id(id);
  return vocab_string_[id];
}

std::optional<int32_t> TokenizerImpl::token_id(std::string_view s) const {
  if (const auto it = added_by_content_.find(std::string(s)); it != added_by_content_.end()) return it->second;
  if (const auto it = bpe_.vocab().find(std::string(s)); it != bpe_.vocab().end()) return it->second;
  return std::nullopt;
}

}  // namespace dsv4::text

// ---- public API ------------------------------------------------------------------------------
namespace dsv4 {

namespace {
std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw_error(path, ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<text::TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path json = fs::path(dir) / "tokenizer.json";
  if (!fs::exists(json)) throw_error(json.string(), ": not found (expected the model's tokenizer.json)");
  Tokenizer t = from_json_file(json.string());
  const fs::path cfg = fs::path(dir) / "tokenizer_config.json";
  if (fs::exists(cfg)) t.impl_->read_config(cfg.string());
  return t;
}

Tokenizer Tokenizer::from_json_file(const std::string& path) { return from_json_string(read_file(path), path); }

Tokenizer Tokenizer::from_json_string(std::string_view json, const std::string& origin) {
  return Tokenizer(text::TokenizerImpl::from_json(json, origin));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool allow_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  impl_->encode(text, allow_special, out);
  return out;
}

std::string Tokenizer::decode_bytes(std::span<const int32_t> ids) const {
  std::string out;
  impl_->append_bytes(ids.data(), ids.size(), out);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  const std::string raw = decode_bytes(ids);
  std::string out;
  out.reserve(raw.size());
  text::append_valid_utf8(out, raw, true);
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id) const { return std::string(impl_->piece(id)); }
std::string Tokenizer::token_to_vocab_string(int32_t id) const { return impl_->vocab_string(id); }
int32_t Tokenizer::vocab_size() const { return impl_->vocab_size(); }
std::optional<int32_t> Tokenizer::token_id(std::string_view token) const { return impl_->token_id(token); }
bool Tokenizer::is_special(int32_t id) const { return impl_->is_special(id); }
int32_t Tokenizer::bos_id() const { return impl_->bos_id(); }
int32_t Tokenizer::eos_id() const { return impl_->eos_id(); }

StreamDecoder::StreamDecoder(const Tokenizer& tok) : tok_(&tok) {}

std::string StreamDecoder::push(int32_t id) {
  pending_ += tok_->token_to_piece(id);
  std::string out;
  const size_t used = text::append_valid_utf8(out, pending_, false);
  pending_.erase(0, used);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  text::append_valid_utf8(out, pending_, true);
  pending_.clear();
  return out;
}

}  // namespace dsv4
