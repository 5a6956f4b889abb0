#include "text/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/regex_dialect.h"
#include "text/utf8.h"

namespace dsv4::text {

namespace {

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Behavior parse_behavior(const std::string& s, const std::string& where) {
  if (s == "Isolated") return Behavior::Isolated;
  if (s == "Removed") return Behavior::Removed;
  if (s == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (s == "MergedWithNext") return Behavior::MergedWithNext;
  if (s == "Contiguous") return Behavior::Contiguous;
  throw_error(where, ": unknown Split behavior \"", s, "\"");
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

struct PreTokenizer::Step {
  pcre2_code* code = nullptr;
  Behavior behavior = Behavior::Isolated;
  bool invert = false;
  ~Step() { pcre2_code_free(code); }
};

class PreTokenizer::Scratch {
 public:
  std::vector<pcre2_match_data*> match;  // one per step
  std::vector<ByteSpan> next;
  struct Part {
    ByteSpan span;
    bool matched;
  };
  std::vector<Part> parts;
  // A JIT stack that can grow to 8 MiB, so that long inputs never hit PCRE2's 32 KiB default.
  pcre2_jit_stack* jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  Scratch() { pcre2_jit_stack_assign(context, nullptr, jit_stack); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() {
    for (auto* m : match) pcre2_match_data_free(m);
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
  }
};

PreTokenizer::PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;
PreTokenizer::~PreTokenizer() = default;

PreTokenizer PreTokenizer::from_json(const nlohmann::json& j, const std::string& origin) {
  PreTokenizer pt;
  if (j.is_null()) return pt;
  std::vector<std::pair<const nlohmann::json*, std::string>> todo;
  const std::string root = origin + ": pre_tokenizer";
  if (j.is_object() && j.value("type", "") == "Sequence") {
    const auto it = j.find("pretokenizers");
    if (it == j.end() || !it->is_array()) throw_error(root, ": Sequence without a \"pretokenizers\" array");
    for (size_t i = 0; i < it->size(); ++i) todo.push_back({&(*it)[i], root + ".pretokenizers[" + std::to_string(i) + "]"});
  } else {
    todo.push_back({&j, root});
  }
  for (const auto& [step, where] : todo) {
    if (!step->is_object() || !step->contains("type") || !(*step)["type"].is_string())
      throw_error(where, ": expected an object with a \"type\"");
    const std::string type = (*step)["type"];
    if (type == "ByteLevel") {
      if (step->value("add_prefix_space", false))
        throw_error(where, ": ByteLevel add_prefix_space=true is not supported");
      if (step->value("use_regex", true))
        throw_error(where, ": ByteLevel use_regex=true is not supported (expected the splits as explicit Split steps)");
      pt.byte_level_ = true;
      continue;
    }
    if (type != "Split") throw_error(where, ": pre-tokenizer type \"", type, "\" is not supported");
    if (pt.byte_level_) throw_error(where, ": Split after ByteLevel is not supported");
    auto s = std::make_unique<Step>();
    const auto pat = step->find("pattern");
    if (pat == step->end() || !pat->is_object()) throw_error(where, ": Split without a \"pattern\" object");
    std::string pattern, original;
    uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF;
    if (pat->contains("Regex") && (*pat)["Regex"].is_string()) {
      original = (*pat)["Regex"].get<std::string>();
      pattern = translate_oniguruma(original, where);
    } else if (pat->contains("String") && (*pat)["String"].is_string()) {
      original = pattern = (*pat)["String"];
      options = (options & ~PCRE2_UCP) | PCRE2_LITERAL;  // UCP is meaningless (and refused) for literals
    } else {
      throw_error(where, ": pattern must hold a \"Regex\" or \"String\" string");
    }
    s->behavior = parse_behavior(step->value("behavior", std::string("Isolated")), where);
    s->invert = step->value("invert", false);
    pcre2_compile_context* cctx = pcre2_compile_context_create(nullptr);
    if (!(options & PCRE2_LITERAL)) pcre2_set_compile_extra_options(cctx, PCRE2_EXTRA_ALT_BSUX);  // \uHHHH
    int err = 0;
    PCRE2_SIZE err_off = 0;
    s->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &err,
                            &err_off, cctx);
    pcre2_compile_context_free(cctx);
    if (!s->code)
      throw_error(where, ": bad regex at offset ", err_off, ": ", pcre2_message(err), " (pattern \"", original, "\")");
    pcre2_jit_compile(s->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is absent
    pt.steps_.push_back(std::move(s));
  }
  return pt;
}

void PreTokenizer::ScratchDeleter::operator()(Scratch* s) const { delete s; }

PreTokenizer::ScratchPtr PreTokenizer::make_scratch() const {
  ScratchPtr s(new Scratch);
  for (const auto& step : steps_) s->match.push_back(pcre2_match_data_create_from_pattern(step->code, nullptr));
  return s;
}

void PreTokenizer::split(std::string_view text, std::vector<ByteSpan>& out, Scratch& scratch) const {
  out.clear();
  if (text.empty()) return;
  out.push_back({0, static_cast<uint32_t>(text.size())});
  auto& parts = scratch.parts;
  for (size_t si = 0; si < steps_.size(); ++si) {
    const Step& step = *steps_[si];
    pcre2_match_data* md = scratch.match[si];
    auto& next = scratch.next;
    next.clear();
    for (const ByteSpan piece : out) {
      // 1. Cut the piece into alternating unmatched/matched parts.
      parts.clear();
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + piece.begin);
      const size_t len = piece.end - piece.begin;
      size_t offset = 0, last = 0;
      while (offset <= len) {
        const int rc = pcre2_match(step.code, subject, len, offset, 0, md, scratch.context);
        if (rc < 0) {
          if (rc == PCRE2_ERROR_NOMATCH) break;
          throw_error("pre-tokenizer: regex match failed: ", pcre2_message(rc));
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        if (ov[1] == ov[0]) {  // empty match: no piece; step over one character
          if (ov[0] >= len) break;
          const Utf8Seq q = utf8_next(std::string_view(text.data() + piece.begin, len), ov[0]);
          offset = ov[0] + q.length;
          continue;
        }
        if (ov[0] > last) parts.push_back({{piece.begin + uint32_t(last), piece.begin + uint32_t(ov[0])}, false});
        parts.push_back({{piece.begin + uint32_t(ov[0]), piece.begin + uint32_t(ov[1])}, true});
        last = offset = ov[1];
      }
      if (last < len) parts.push_back({{piece.begin + uint32_t(last), piece.end}, false});
      // 2. Combine them according to the behaviour.
      bool pending_next = false;  // MergedWithNext: a matched part waits for the part after it
      ByteSpan carry{};
      for (size_t k = 0; k < parts.size(); ++k) {
        const bool m = parts[k].matched != step.invert;
        const ByteSpan sp = parts[k].span;
        switch (step.behavior) {
          case Behavior::Isolated:
            next.push_back(sp);
            break;
          case Behavior::Removed:
            if (!m) next.push_back(sp);
            break;
          case Behavior::MergedWithPrevious:  // a match joins an unmatched part before it
            if (m && k > 0 && parts[k - 1].matched == step.invert) next.back().end = sp.end;
            else next.push_back(sp);
            break;
          case Behavior::Contiguous:
            if (m && k > 0 && parts[k - 1].matched != step.invert) next.back().end = sp.end;
            else next.push_back(sp);
            break;
          case Behavior::MergedWithNext:  // a match joins an unmatched part after it
            if (pending_next) {
              if (m) {
                next.push_back(carry);
                carry = sp;
              } else {
                carry.end = sp.end;
                next.push_back(carry);
                pending_next = false;
              }
            } else if (m) {
              carry = sp;
              pending_next = true;
            } else {
              next.push_back(sp);
            }
            break;
        }
      }
      if (pending_next) next.push_back(carry);
    }
    out.swap(next);
  }
}

}  // namespace dsv4::text
