// DeepSeek-V4 prompt rendering: an original C++ implementation of the behaviour described in
// chat-encoding.md section 2 (DeepSeek's encoding_dsv4.py encode_messages).
#include "text/chat_encoding.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string_view>

#include "core/error.h"
#include "text/chat_templates.h"
#include "text/pyjson.h"

namespace dsv4 {

ThinkingMode parse_thinking_mode(std::string_view s) {
  if (s == "chat") return ThinkingMode::Chat;
  if (s == "thinking") return ThinkingMode::Thinking;
  throw_error("thinking_mode: expected \"chat\" or \"thinking\", got \"", s, "\"");
}

ReasoningEffort parse_reasoning_effort(std::string_view s) {
  if (s.empty()) return ReasoningEffort::None;
  if (s == "high") return ReasoningEffort::High;
  if (s == "max") return ReasoningEffort::Max;
  throw_error("reasoning_effort: expected \"high\" or \"max\", got \"", s, "\"");
}

}  // namespace dsv4

namespace dsv4::text {

namespace {

// ---- small JSON helpers (Python dict.get / truthiness semantics) ----------------------------

const ordered_json* field(const ordered_json& m, const char* key) {
  auto it = m.find(key);
  if (it == m.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string str_or_empty(const ordered_json& m, const char* key) {
  const ordered_json* v = field(m, key);
  return v && v->is_string() ? v->get<std::string>() : std::string();
}

bool nonempty_array(const ordered_json& m, const char* key) {
  const ordered_json* v = field(m, key);
  return v && v->is_array() && !v->empty();
}

bool has_task(const ordered_json& m) {
  const ordered_json* v = field(m, "task");
  return v && !(v->is_string() && v->get_ref<const std::string&>().empty());
}

std::string role_of(const ordered_json& m) { return str_or_empty(m, "role"); }

// Python str.format with named fields; the templates contain no other braces.
std::string format_template(std::string_view tpl,
                            const std::vector<std::pair<std::string_view, std::string_view>>& vars) {
  std::string out;
  size_t i = 0;
  while (i < tpl.size()) {
    if (tpl[i] == '{') {
      const size_t close = tpl.find('}', i);
      if (close != std::string_view::npos) {
        const std::string_view name = tpl.substr(i + 1, close - i - 1);
        bool done = false;
        for (const auto& [k, v] : vars) {
          if (k == name) {
            out += v;
            done = true;
            break;
          }
        }
        if (done) {
          i = close + 1;
          continue;
        }
      }
    }
    out += tpl[i++];
  }
  return out;
}

// ---- validation ------------------------------------------------------------------------------

[[noreturn]] void bad_type(const std::string& where, const char* expected, const ordered_json& got) {
  throw_error(where, ": expected ", expected, ", got ", got.type_name());
}

void expect_string_or_null(const ordered_json& m, const char* key, const std::string& where) {
  auto it = m.find(key);
  if (it != m.end() && !it->is_null() && !it->is_string())
    bad_type(where + "." + key, "a string", *it);
}

void validate_tool_calls(const ordered_json& calls, const std::string& where) {
  if (!calls.is_array()) bad_type(where, "an array", calls);
  for (size_t k = 0; k < calls.size(); ++k) {
    const std::string w = where + "[" + std::to_string(k) + "]";
    const ordered_json& c = calls[k];
    if (!c.is_object()) bad_type(w, "an object", c);
    expect_string_or_null(c, "id", w);
    auto fn = c.find("function");
    if (fn == c.end() || fn->is_null()) throw_error(w, ".function: missing");
    if (!fn->is_object()) bad_type(w + ".function", "an object", *fn);
    auto name = fn->find("name");
    if (name == fn->end() || !name->is_string())
      throw_error(w, ".function.name: expected a string, got ",
                  name == fn->end() ? "nothing" : name->type_name());
    auto args = fn->find("arguments");
    if (args == fn->end()) throw_error(w, ".function.arguments: missing");
    // A JSON string (OpenAI format); an already-decoded object is accepted too.
    if (!args->is_string() && !args->is_object())
      bad_type(w + ".function.arguments", "a JSON string", *args);
    expect_string_or_null(*fn, "id", w + ".function");
  }
}

void validate_tools(const ordered_json& tools, const std::string& where) {
  if (!tools.is_array()) bad_type(where, "an array", tools);
  for (size_t k = 0; k < tools.size(); ++k) {
    const std::string w = where + "[" + std::to_string(k) + "]";
    if (!tools[k].is_object()) bad_type(w, "an object", tools[k]);
    auto fn = tools[k].find("function");
    if (fn == tools[k].end() || !fn->is_object())
      throw_error(w, ".function: expected an object, got ",
                  fn == tools[k].end() ? "nothing" : fn->type_name());
  }
}

void validate_tool_content(const ordered_json& content, const std::string& where) {
  if (content.is_null() || content.is_string()) return;
  if (!content.is_array()) bad_type(where, "a string or an array of content blocks", content);
  for (size_t k = 0; k < content.size(); ++k) {
    const std::string w = where + "[" + std::to_string(k) + "]";
    const ordered_json& b = content[k];
    if (!b.is_object()) bad_type(w, "an object", b);
    auto type = b.find("type");
    if (type == b.end() || !type->is_string())
      throw_error(w, ".type: expected a string, got ", type == b.end() ? "nothing" : type->type_name());
    if (*type == "text") expect_string_or_null(b, "text", w);
  }
}

}  // namespace

std::vector<ChatTurn> validate_messages(const ordered_json& messages, const char* what) {
  std::vector<ChatTurn> turns;
  if (messages.is_null()) return turns;
  if (!messages.is_array()) bad_type(what, "an array of messages", messages);
  static const char* kRoles[] = {"system", "user", "assistant", "tool", "latest_reminder", "developer"};
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string where = std::string(what) + "[" + std::to_string(i) + "]";
    const ordered_json& m = messages[i];
    if (!m.is_object()) bad_type(where, "an object", m);
    auto role = m.find("role");
    if (role == m.end()) throw_error(where, ".role: missing");
    if (!role->is_string()) bad_type(where + ".role", "a string", *role);
    const std::string& r = role->get_ref<const std::string&>();
    if (std::none_of(std::begin(kRoles), std::end(kRoles), [&](const char* k) { return r == k; }))
      throw_error(where, ".role: unknown role \"", r,
                  "\" (expected system, user, assistant, tool, latest_reminder or developer)");
    if (r == "tool") {
      if (auto c = m.find("content"); c != m.end()) validate_tool_content(*c, where + ".content");
      expect_string_or_null(m, "tool_call_id", where);
    } else {
      expect_string_or_null(m, "content", where);
    }
    expect_string_or_null(m, "reasoning_content", where);
    expect_string_or_null(m, "task", where);
    if (auto v = m.find("tool_calls"); v != m.end() && !v->is_null())
      validate_tool_calls(*v, where + ".tool_calls");
    if (auto v = m.find("tools"); v != m.end() && !v->is_null()) validate_tools(*v, where + ".tools");
    if (auto v = m.find("wo_eos"); v != m.end() && !v->is_null() && !v->is_boolean())
      bad_type(where + ".wo_eos", "a boolean", *v);
    turns.push_back({m, where});
  }
  return turns;
}

// ---- pipeline stages (2.3 - 2.5) -------------------------------------------------------------

std::vector<ChatTurn> merge_tool_messages(const std::vector<ChatTurn>& turns) {
  std::vector<ChatTurn> out;
  auto last_is_user_with_blocks = [&](bool require_no_task) {
    if (out.empty()) return false;
    const ordered_json& l = out.back().msg;
    if (role_of(l) != "user" || !l.contains("content_blocks")) return false;
    return !(require_no_task && has_task(l));
  };
  for (const ChatTurn& t : turns) {
    const ordered_json& m = t.msg;
    const std::string role = role_of(m);
    if (role == "tool") {
      ordered_json block = ordered_json::object();
      block["type"] = "tool_result";
      block["tool_use_id"] = str_or_empty(m, "tool_call_id");
      const ordered_json* c = field(m, "content");
      const bool truthy = c && !((c->is_string() || c->is_array()) && c->empty());
      block["content"] = truthy ? *c : ordered_json("");
      if (last_is_user_with_blocks(false)) {
        out.back().msg["content_blocks"].push_back(std::move(block));
      } else {
        ordered_json u = ordered_json::object();
        u["role"] = "user";
        u["content_blocks"] = ordered_json::array({std::move(block)});
        out.push_back({std::move(u), t.origin});
      }
    } else if (role == "user") {
      ordered_json block = ordered_json::object();
      block["type"] = "text";
      block["text"] = str_or_empty(m, "content");
      if (last_is_user_with_blocks(true)) {
        out.back().msg["content_blocks"].push_back(std::move(block));
      } else {
        ordered_json u = ordered_json::object();
        u["role"] = "user";
        u["content"] = m.contains("content") ? m["content"] : ordered_json(nullptr);
        u["content_blocks"] = ordered_json::array({std::move(block)});
        for (const char* k : {"task", "wo_eos", "mask"})
          if (m.contains(k)) u[k] = m[k];
        out.push_back({std::move(u), t.origin});
      }
    } else {
      out.push_back(t);
    }
  }
  return out;
}

void sort_tool_results(std::vector<ChatTurn>& turns) {
  std::map<std::string, size_t> order;
  for (ChatTurn& t : turns) {
    ordered_json& m = t.msg;
    const std::string role = role_of(m);
    if (role == "assistant" && nonempty_array(m, "tool_calls")) {
      order.clear();
      const ordered_json& calls = m["tool_calls"];
      for (size_t k = 0; k < calls.size(); ++k) {
        std::string id = str_or_empty(calls[k], "id");
        if (id.empty() && calls[k].contains("function")) id = str_or_empty(calls[k]["function"], "id");
        if (!id.empty()) order[id] = k;
      }
    } else if (role == "user" && !order.empty() && m.contains("content_blocks")) {
      ordered_json& blocks = m["content_blocks"];
      std::vector<size_t> slots;
      std::vector<ordered_json> results;
      for (size_t k = 0; k < blocks.size(); ++k) {
        if (str_or_empty(blocks[k], "type") == "tool_result") {
          slots.push_back(k);
          results.push_back(blocks[k]);
        }
      }
      if (results.size() <= 1) continue;
      auto rank = [&](const ordered_json& b) {
        auto it = order.find(str_or_empty(b, "tool_use_id"));
        return it == order.end() ? size_t{0} : it->second;
      };
      std::stable_sort(results.begin(), results.end(),
                       [&](const ordered_json& a, const ordered_json& b) { return rank(a) < rank(b); });
      for (size_t k = 0; k < slots.size(); ++k) blocks[slots[k]] = std::move(results[k]);
    }
  }
}

namespace {

long last_user_index(const std::vector<ChatTurn>& turns) {
  long last = -1;
  for (size_t i = 0; i < turns.size(); ++i) {
    const std::string r = role_of(turns[i].msg);
    if (r == "user" || r == "developer") last = static_cast<long>(i);
  }
  return last;
}

}  // namespace

std::vector<ChatTurn> drop_thinking_messages(const std::vector<ChatTurn>& turns) {
  const long last = last_user_index(turns);
  std::vector<ChatTurn> out;
  for (size_t i = 0; i < turns.size(); ++i) {
    const std::string r = role_of(turns[i].msg);
    if (r == "user" || r == "system" || r == "tool" || r == "latest_reminder" ||
        r == "direct_search_results" || static_cast<long>(i) >= last) {
      out.push_back(turns[i]);
    } else if (r == "assistant") {
      ChatTurn t = turns[i];
      t.msg.erase("reasoning_content");
      out.push_back(std::move(t));
    }
    // any other role before the last user turn (developer) is removed
  }
  return out;
}

// ---- rendering (2.6, 2.7) ---------------------------------------------------------------------

namespace {

void append_parameter(std::string& out, std::string_view key, bool is_string, std::string_view value) {
  out += '<';
  out += kDsml;
  out += "parameter name=\"";
  out += key;
  out += is_string ? "\" string=\"true\">" : "\" string=\"false\">";
  out += value;
  out += kParamClose;
  out += '>';
}

std::string render_parameters(const ordered_json& arguments) {
  std::string out;
  bool first = true;
  auto sep = [&] {
    if (!first) out += '\n';
    first = false;
  };
  if (arguments.is_object()) {  // already decoded (accepted as an extension)
    for (auto it = arguments.begin(); it != arguments.end(); ++it) {
      sep();
      if (it.value().is_string())
        append_parameter(out, it.key(), true, it.value().get_ref<const std::string&>());
      else
        append_parameter(out, it.key(), false, py_dumps(it.value()));
    }
    return out;
  }
  const std::string& raw = arguments.get_ref<const std::string&>();
  std::optional<PyJson> parsed = py_loads(raw);
  if (!parsed || parsed->type != PyJson::Type::Object) {
    append_parameter(out, "arguments", true, raw);
    return out;
  }
  for (size_t k = 0; k < parsed->keys.size(); ++k) {
    sep();
    const PyJson& v = parsed->items[k];
    if (v.type == PyJson::Type::String)
      append_parameter(out, parsed->keys[k], true, v.text);
    else
      append_parameter(out, parsed->keys[k], false, py_dumps(v));
  }
  return out;
}

}  // namespace

std::string render_tool_calls(const ordered_json& tool_calls, const std::string& origin) {
  validate_tool_calls(tool_calls, origin + ".tool_calls");
  std::string out = std::string(kToolCallsOpen) + "\n";
  for (size_t k = 0; k < tool_calls.size(); ++k) {
    const ordered_json& fn = tool_calls[k]["function"];
    if (k) out += '\n';
    out += kInvokeOpen;
    out += " name=\"";
    out += fn["name"].get_ref<const std::string&>();
    out += "\">\n";
    out += render_parameters(fn["arguments"]);
    out += '\n';
    out += kInvokeClose;
    out += '>';
  }
  out += '\n';
  out += kToolCallsEnd;
  return out;
}

std::string render_tools(const ordered_json& tools, const std::string& origin) {
  validate_tools(tools, origin + ".tools");
  std::string schemas;
  for (size_t k = 0; k < tools.size(); ++k) {
    if (k) schemas += '\n';
    py_dump_to(schemas, tools[k]["function"]);
  }
  return format_template(kToolsTemplate, {{"dsml_token", kDsml},
                                          {"thinking_start_token", kThinkOpen},
                                          {"thinking_end_token", kThinkClose},
                                          {"tool_schemas", schemas}});
}

namespace {

// Tools and response-format sections shared by system and developer messages.
void append_system_suffixes(std::string& s, const ChatTurn& t) {
  if (nonempty_array(t.msg, "tools")) {
    s += "\n\n";
    s += render_tools(t.msg["tools"], t.origin);
  }
  if (const ordered_json* rf = field(t.msg, "response_format")) {
    s += "\n\n";
    s += format_template(kResponseFormatTemplate, {{"schema", py_dumps(*rf)}});
  }
}

std::string block_text(const ordered_json& b) {
  const std::string type = str_or_empty(b, "type");
  if (type == "text") return str_or_empty(b, "text");
  return "[Unsupported " + type + "]";
}

void append_user_blocks(std::string& s, const ordered_json& blocks) {
  for (size_t k = 0; k < blocks.size(); ++k) {
    if (k) s += "\n\n";
    const ordered_json& b = blocks[k];
    if (str_or_empty(b, "type") != "tool_result") {
      s += block_text(b);
      continue;
    }
    s += kToolResultOpen;
    const ordered_json& c = b["content"];
    if (c.is_array()) {
      for (size_t j = 0; j < c.size(); ++j) {
        if (j) s += "\n\n";
        s += block_text(c[j]);
      }
    } else if (c.is_string()) {
      s += c.get_ref<const std::string&>();
    }
    s += kToolResultClose;
  }
}

struct RenderContext {
  const std::vector<ChatTurn>& turns;
  bool thinking;
  bool drop;
  ReasoningEffort effort;
  long last;  // index of the last user/developer turn, -1 if none
};

std::string_view task_token(const std::string& task, const std::string& origin) {
  static const std::pair<const char*, std::string_view> kTasks[] = {
      {"action", "<｜action｜>"}, {"query", "<｜query｜>"},   {"authority", "<｜authority｜>"},
      {"domain", "<｜domain｜>"}, {"title", "<｜title｜>"}, {"read_url", "<｜read_url｜>"}};
  for (const auto& [name, tok] : kTasks)
    if (task == name) return tok;
  throw_error(origin, ".task: unknown task \"", task,
              "\" (expected action, query, authority, domain, title or read_url)");
}

std::string render_turn(size_t i, const RenderContext& ctx) {
  const ChatTurn& t = ctx.turns[i];
  const ordered_json& m = t.msg;
  const std::string role = role_of(m);
  const long li = static_cast<long>(i);
  std::string s;
  if (i == 0 && ctx.thinking && ctx.effort == ReasoningEffort::Max) s += kReasoningEffortMaxPrefix;

  if (role == "system") {
    s += str_or_empty(m, "content");
    append_system_suffixes(s, t);
  } else if (role == "developer") {
    const std::string content = str_or_empty(m, "content");
    if (content.empty()) throw_error(t.origin, ".content: a developer message needs non-empty content");
    s += kUserTag;
    s += content;
    append_system_suffixes(s, t);
  } else if (role == "user") {
    s += kUserTag;
    if (m.contains("content_blocks"))
      append_user_blocks(s, m["content_blocks"]);
    else
      s += str_or_empty(m, "content");
  } else if (role == "latest_reminder") {
    s += kReminderTag;
    s += str_or_empty(m, "content");
  } else if (role == "assistant") {
    std::string calls;
    if (nonempty_array(m, "tool_calls")) calls = "\n\n" + render_tool_calls(m["tool_calls"], t.origin);
    const bool prev_task = i >= 1 && field(ctx.turns[i - 1].msg, "task") != nullptr;
    if (ctx.thinking && !prev_task && (!ctx.drop || li > ctx.last)) {
      s += str_or_empty(m, "reasoning_content");
      s += kThinkClose;
    }
    s += str_or_empty(m, "content");
    s += calls;
    const ordered_json* wo = field(m, "wo_eos");
    if (!(wo && wo->get<bool>())) s += kEos;
  } else {
    throw_error(t.origin, ".role: \"", role, "\" cannot be rendered");
  }

  // (c) no transition unless this is the last turn or an assistant / reminder turn follows
  if (i + 1 < ctx.turns.size()) {
    const std::string next = role_of(ctx.turns[i + 1].msg);
    if (next != "assistant" && next != "latest_reminder") return s;
  }
  // (d) transition
  if (has_task(m)) {
    const std::string name = str_or_empty(m, "task");
    const std::string_view tok = task_token(name, t.origin);
    if (name == "action") {
      s += kAssistantTag;
      s += ctx.thinking ? kThinkOpen : kThinkClose;
    }
    s += tok;
  } else if (role == "user" || role == "developer") {
    s += kAssistantTag;
    s += (ctx.thinking && (!ctx.drop || li >= ctx.last)) ? kThinkOpen : kThinkClose;
  }
  return s;
}

}  // namespace

}  // namespace dsv4::text

namespace dsv4 {

std::string encode_messages(const ordered_json& messages, const EncodeOptions& opts) {
  using namespace dsv4::text;
  if (messages.is_null()) throw_error("messages: expected an array of messages, got null");
  std::vector<ChatTurn> msgs = merge_tool_messages(validate_messages(messages, "messages"));
  std::vector<ChatTurn> ctx = validate_messages(opts.context, "context");
  const bool has_context = !ctx.empty();
  {
    std::vector<ChatTurn> joined = ctx;
    joined.insert(joined.end(), msgs.begin(), msgs.end());
    sort_tool_results(joined);
    msgs.assign(joined.begin() + static_cast<long>(ctx.size()), joined.end());
  }
  if (has_context) {
    ctx = merge_tool_messages(ctx);
    sort_tool_results(ctx);
  }
  std::vector<ChatTurn> full = ctx;
  full.insert(full.end(), msgs.begin(), msgs.end());

  std::string out;
  if (opts.add_default_bos_token && !has_context) out += kBos;
  const bool thinking = opts.thinking_mode == ThinkingMode::Thinking;
  const bool any_tools = std::any_of(full.begin(), full.end(),
                                     [](const ChatTurn& t) { return nonempty_array(t.msg, "tools"); });
  const bool drop = opts.drop_thinking && !any_tools;
  size_t first = ctx.size();
  size_t count = msgs.size();
  if (thinking && drop) {
    full = drop_thinking_messages(full);
    const size_t kept_ctx = drop_thinking_messages(ctx).size();
    count = full.size() > kept_ctx ? full.size() - kept_ctx : 0;
    first = full.size() - count;
  }
  const RenderContext rc{full, thinking, drop, opts.reasoning_effort, last_user_index(full)};
  for (size_t i = first; i < first + count; ++i) out += render_turn(i, rc);
  return out;
}

}  // namespace dsv4
