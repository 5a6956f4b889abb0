// Reading tokenizer.json and tokenizer_config.json into a TokenizerImpl, with a clear error for
// every malformed or unsupported part.
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/byte_level.h"
#include "text/tokenizer.h"

namespace dsv4::text {
namespace {

using nlohmann::json;

const json& require(const json& obj, const char* key, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end()) throw_error(where, ": missing \"", key, "\"");
  return *it;
}

bool flag(const json& obj, const char* key, bool def, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return def;
  if (!it->is_boolean()) throw_error(where, ": \"", key, "\" must be true or false");
  return it->get<bool>();
}

void check_normalizer(const json& root, const std::string& origin) {
  const auto it = root.find("normalizer");
  if (it == root.end() || it->is_null()) return;
  const json& n = *it;
  if (n.is_object() && n.value("type", "") == "Sequence" && n.contains("normalizers") &&
      n["normalizers"].is_array() && n["normalizers"].empty())
    return;
  throw_error(origin, ": normalizer ", n.dump().substr(0, 80),
              " is not supported (only none or an empty Sequence)");
}

void check_decoder(const json& root, const std::string& origin) {
  const auto it = root.find("decoder");
  if (it == root.end() || it->is_null()) return;
  if (it->is_object() && it->value("type", "") == "ByteLevel") return;
  throw_error(origin, ": decoder ", it->dump().substr(0, 80), " is not supported (only ByteLevel)");
}

std::vector<std::pair<std::string, std::string>> read_merges(const json& merges, const std::string& origin) {
  if (!merges.is_array()) throw_error(origin, ": model.merges must be an array");
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 == s.size() || s.find(' ', sp + 1) != std::string::npos)
        throw_error(origin, ": model.merges[", i, "] = \"", s, "\": expected \"left right\" with one space");
      out.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      out.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      throw_error(origin, ": model.merges[", i, "]: expected a \"left right\" string or a [left, right] pair, got ",
                  m.dump().substr(0, 60));
    }
  }
  return out;
}

std::unordered_map<std::string, int32_t> read_vocab(const json& vocab, const std::string& origin) {
  if (!vocab.is_object()) throw_error(origin, ": model.vocab must be an object {token: id}");
  std::unordered_map<std::string, int32_t> out;
  out.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > INT32_MAX)
      throw_error(origin, ": model.vocab[\"", it.key(), "\"]: id must be a non-negative integer, got ",
                  it.value().dump());
    out.emplace(it.key(), int32_t(it.value().get<int64_t>()));
  }
  return out;
}

std::vector<AddedToken> read_added(const json& root, const std::string& origin) {
  std::vector<AddedToken> out;
  const auto it = root.find("added_tokens");
  if (it == root.end() || it->is_null()) return out;
  if (!it->is_array()) throw_error(origin, ": added_tokens must be an array");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& t = (*it)[i];
    const std::string where = origin + ": added_tokens[" + std::to_string(i) + "]";
    if (!t.is_object()) throw_error(where, ": expected an object");
    const json& id = require(t, "id", where);
    const json& content = require(t, "content", where);
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
      throw_error(where, ": id must be a non-negative integer, got ", id.dump());
    if (!content.is_string() || content.get_ref<const std::string&>().empty())
      throw_error(where, ": content must be a non-empty string");
    AddedToken a;
    a.id = int32_t(id.get<int64_t>());
    a.content = content.get<std::string>();
    a.special = flag(t, "special", false, where);
    a.single_word = flag(t, "single_word", false, where);
    a.lstrip = flag(t, "lstrip", false, where);
    a.rstrip = flag(t, "rstrip", false, where);
    a.normalized = flag(t, "normalized", !a.special, where);
    out.push_back(std::move(a));
  }
  return out;
}

// Name of a special token in tokenizer_config.json: a string or an AddedToken object.
std::optional<std::string> config_token(const json& cfg, const char* key) {
  const auto it = cfg.find(key);
  if (it == cfg.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  return std::nullopt;
}

}  // namespace

std::unique_ptr<TokenizerImpl> TokenizerImpl::from_json(std::string_view text, const std::string& origin) {
  json root;
  try {
    root = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    throw_error(origin, ": not valid JSON: ", e.what());
  }
  if (!root.is_object()) throw_error(origin, ": expected a JSON object at the top level");
  try {
    const json& model = require(root, "model", origin);
    if (!model.is_object()) throw_error(origin, ": \"model\" must be an object");
    if (model.contains("type") && model["type"] != "BPE")
      throw_error(origin, ": model.type ", model["type"].dump(), " is not supported (only BPE)");
    const auto nonempty = [&](const char* k) {
      const auto it = model.find(k);
      return it != model.end() && !it->is_null() && !(it->is_string() && it->get_ref<const std::string&>().empty());
    };
    if (model.contains("dropout") && model["dropout"].is_number() && model["dropout"].get<double>() > 0)
      throw_error(origin, ": model.dropout is not supported");
    if (nonempty("continuing_subword_prefix") || nonempty("end_of_word_suffix"))
      throw_error(origin, ": model.continuing_subword_prefix / end_of_word_suffix are not supported");
    if (flag(model, "byte_fallback", false, origin + ": model"))
      throw_error(origin, ": model.byte_fallback is not supported (byte-level BPE needs none)");
    check_normalizer(root, origin);
    check_decoder(root, origin);
    auto vocab = read_vocab(require(model, "vocab", origin + ": model"), origin);
    const auto merges = read_merges(require(model, "merges", origin + ": model"), origin);
    const bool ignore_merges = flag(model, "ignore_merges", false, origin + ": model");
    const auto pre_it = root.find("pre_tokenizer");
    PreTokenizer pre = PreTokenizer::from_json(pre_it == root.end() ? json() : *pre_it, origin);
    if (!pre.byte_level())
      throw_error(origin, ": pre_tokenizer has no ByteLevel step (only byte-level BPE tokenizers are supported)");
    std::unique_ptr<TokenizerImpl> t(
        new TokenizerImpl(BpeModel(std::move(vocab), merges, ignore_merges, origin), std::move(pre)));
    t->added_ = read_added(root, origin);
    t->build_tables();
    return t;
  } catch (const json::exception& e) {  // wrong JSON types deep inside
    throw_error(origin, ": unexpected structure: ", e.what());
  }
}

void TokenizerImpl::build_tables() {
  int32_t n = 0;
  for (const auto& [s, id] : bpe_.vocab()) n = std::max(n, id + 1);
  for (const AddedToken& a : added_) n = std::max(n, a.id + 1);
  vocab_string_.assign(size_t(n), std::string());
  present_.assign(size_t(n), 0);
  special_.assign(size_t(n), 0);
  std::vector<const AddedToken*> added_at(size_t(n), nullptr);
  for (const AddedToken& a : added_) {
    added_at[a.id] = &a;
    added_by_content_.emplace(a.content, a.id);
  }
  for (const auto& [s, id] : bpe_.vocab()) {
    vocab_string_[id] = s;
    present_[id] = 1;
  }
  piece_off_.assign(size_t(n) + 1, 0);
  for (int32_t id = 0; id < n; ++id) {
    piece_off_[id] = uint32_t(piece_bytes_.size());
    if (const AddedToken* a = added_at[id]) {
      vocab_string_[id] = a->content;
      present_[id] = 1;
      special_[id] = a->special;
      piece_bytes_ += a->content;
    } else if (present_[id]) {
      byte_level_to_bytes(vocab_string_[id], piece_bytes_);
    }
  }
  piece_off_[n] = uint32_t(piece_bytes_.size());
  matcher_ = AddedTokenMatcher(added_);
  // Defaults when no tokenizer_config.json names them: DeepSeek's strings.
  if (auto b = token_id("<\xEF\xBD\x9C" "begin\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>")) bos_ = *b;
  if (auto e = token_id("<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>")) eos_ = *e;
}

void TokenizerImpl::read_config(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw_error(path, ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  json cfg;
  try {
    cfg = json::parse(ss.str());
  } catch (const json::exception& e) {
    throw_error(path, ": not valid JSON: ", e.what());
  }
  if (!cfg.is_object()) throw_error(path, ": expected a JSON object at the top level");
  for (auto [key, slot] : {std::pair<const char*, int32_t*>{"bos_token", &bos_}, {"eos_token", &eos_}}) {
    if (const auto name = config_token(cfg, key)) {
      const auto id = token_id(*name);
      if (!id) throw_error(path, ": ", key, " \"", *name, "\" is not a token of tokenizer.json");
      *slot = *id;
    }
  }
}

}  // namespace dsv4::text
