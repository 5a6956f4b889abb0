// dsv4 tokenize: encode text with a model's tokenizer.json.
//   dsv4 tokenize --model DIR "text"            ids, then one line per token: id, vocab string, bytes
//   dsv4 tokenize --model DIR --file F --ids    only the ids of F's whole content, space-separated
//   dsv4 tokenize --model DIR --file F --lines  one line of ids per line of F (without its '\n')
//   dsv4 tokenize --model DIR --file F --jsonl  the same, each line of F being a JSON string
// No BOS/EOS is ever added. --no-special treats added-token strings as ordinary text.
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/error.h"
#include "dsv4/tokenizer.h"

namespace {

struct TokenizeArgs {
  std::string model, text, file;
  bool ids_only = false, lines = false, jsonl = false, no_special = false, check_roundtrip = false;
};

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) dsv4::throw_error(path, ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Printable rendering of raw bytes: ASCII as is, common controls escaped, other bytes as \xNN
// unless they form valid UTF-8 (printed as is).
std::string show_bytes(const std::string& b) {
  std::string out;
  for (unsigned char c : b) {
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c == '\\') out += "\\\\";
    else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out.push_back(char(c));
    }
  }
  return out;
}

void append_ids(std::string& out, const std::vector<int32_t>& ids) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out.push_back(' ');
    out += std::to_string(ids[i]);
  }
}

int run_tokenize(const TokenizeArgs& a) {
  if (a.file.empty() == a.text.empty()) dsv4::throw_error("tokenize: give either a text argument or --file");
  if ((a.lines || a.jsonl) && a.file.empty()) dsv4::throw_error("tokenize: --lines/--jsonl need --file");
  const dsv4::Tokenizer tok = dsv4::Tokenizer::load(a.model);
  const std::string input = a.file.empty() ? a.text : read_all(a.file);
  std::string out;
  if (a.lines || a.jsonl) {
    size_t bad = 0, line_no = 0;
    std::string record;
    for (size_t pos = 0; pos < input.size(); ++line_no) {
      size_t nl = input.find('\n', pos);
      if (nl == std::string::npos) nl = input.size();
      std::string_view line(input.data() + pos, nl - pos);
      if (a.jsonl) {
        try {
          record = nlohmann::json::parse(line).get<std::string>();
        } catch (const nlohmann::json::exception& e) {
          dsv4::throw_error(a.file, ": line ", line_no + 1, ": expected a JSON string: ", e.what());
        }
        line = record;
      }
      const auto ids = tok.encode(line, !a.no_special);
      append_ids(out, ids);
      out.push_back('\n');
      if (a.check_roundtrip && tok.decode_bytes(ids) != line) {
        if (bad < 10) std::fprintf(stderr, "tokenize: line %zu: decode(encode(line)) differs\n", line_no + 1);
        ++bad;
      }
      pos = nl + 1;
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    if (bad) {
      std::fprintf(stderr, "tokenize: %zu of %zu lines do not round-trip\n", bad, line_no);
      return 1;
    }
    return 0;
  }
  const auto ids = tok.encode(input, !a.no_special);
  append_ids(out, ids);
  out.push_back('\n');
  if (!a.ids_only) {
    for (const int32_t id : ids)
      out += std::to_string(id) + "\t" + tok.token_to_vocab_string(id) + "\t" + show_bytes(tok.token_to_piece(id)) + "\n";
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  if (a.check_roundtrip && tok.decode_bytes(ids) != input) {
    std::fprintf(stderr, "tokenize: decode(encode(text)) differs from the text\n");
    return 1;
  }
  return 0;
}

}  // namespace

DSV4_COMMAND(tokenize) {
  return {"tokenize", "Encode text with the model's tokenizer (no BOS/EOS added)", [](CLI::App& app) {
            auto a = std::make_shared<TokenizeArgs>();
            app.add_option("--model", a->model, "Directory holding tokenizer.json (+ tokenizer_config.json)")
                ->required();
            app.add_option("text", a->text, "Text to encode");
            app.add_option("--file", a->file, "Encode the content of this file instead");
            app.add_flag("--ids", a->ids_only, "Print only the ids, space-separated");
            app.add_flag("--lines", a->lines, "With --file: one line of ids per line of the file");
            app.add_flag("--jsonl", a->jsonl, "With --file: each line is a JSON string to encode; one line of ids each");
            app.add_flag("--no-special", a->no_special, "Do not match added tokens (treat them as text)");
            app.add_flag("--check-roundtrip", a->check_roundtrip, "Fail unless decoding gives back the input bytes");
            return std::function<int()>([a] { return run_tokenize(*a); });
          }};
}
