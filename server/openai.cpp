#include "openai.h"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <random>

#include "core/error.h"

namespace dsv4::server {

json ApiError::to_json() const {
  json e;
  e["message"] = message;
  e["type"] = type;
  e["param"] = param.empty() ? json(nullptr) : json(param);
  e["code"] = code.empty() ? json(nullptr) : json(code);
  return json{{"error", e}};
}

void fail(int status, std::string message, std::string param, std::string code, std::string type) {
  throw ApiException{ApiError{status, std::move(message), std::move(type), std::move(param),
                              std::move(code)}};
}

json parse_body(std::string_view body) {
  if (body.empty()) fail(400, "The request body is empty; expected a JSON object.");
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error& e) {
    fail(400, std::string("The request body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) fail(400, "The request body must be a JSON object.");
  return j;
}

// ---- typed field access -------------------------------------------------------------------

namespace {

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "object";
    case json::value_t::array: return "array";
    case json::value_t::string: return "string";
    case json::value_t::boolean: return "boolean";
    case json::value_t::binary: return "binary";
    case json::value_t::discarded: return "discarded";
    default: return "number";
  }
}

[[noreturn]] void wrong_type(const std::string& param, const char* want, const json& got) {
  fail(400, "Invalid type for '" + param + "': expected " + want + ", but got " + type_name(got) + ".",
       param, "invalid_type");
}

[[noreturn]] void bad_value(const std::string& param, const std::string& why) {
  fail(400, "Invalid value for '" + param + "': " + why, param, "invalid_value");
}

// The field if present and not null.
const json* field(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<double> get_number(const json& obj, const char* key) {
  const json* v = field(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrong_type(key, "a number", *v);
  const double d = v->get<double>();
  if (!std::isfinite(d)) bad_value(key, "must be finite.");
  return d;
}

std::optional<int64_t> get_int(const json& obj, const char* key, const std::string& param = {}) {
  const json* v = field(obj, key);
  const std::string p = param.empty() ? key : param;
  if (!v) return std::nullopt;
  if (v->is_number_integer()) return v->get<int64_t>();
  if (v->is_number_float()) {  // 16.0 is accepted as 16, as Python clients send
    const double d = v->get<double>();
    if (d == std::floor(d) && std::fabs(d) < 9.0e18) return static_cast<int64_t>(d);
  }
  wrong_type(p, "an integer", *v);
}

std::optional<bool> get_bool(const json& obj, const char* key, const std::string& param = {}) {
  const json* v = field(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) wrong_type(param.empty() ? key : param, "a boolean", *v);
  return v->get<bool>();
}

std::optional<std::string> get_string(const json& obj, const char* key,
                                      const std::string& param = {}) {
  const json* v = field(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) wrong_type(param.empty() ? key : param, "a string", *v);
  return v->get<std::string>();
}

void check_range(const char* key, std::optional<double> v, double lo, double hi, bool lo_open = false) {
  if (!v) return;
  if ((lo_open ? *v <= lo : *v < lo) || *v > hi) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%g is out of range; expected a value in %s%g, %g].", *v,
                  lo_open ? "(" : "[", lo, hi);
    bad_value(key, buf);
  }
}

void parse_model(const json& body, const ServerLimits& limits, GenerationRequest& r) {
  r.model = get_string(body, "model").value_or(limits.model_name);
  if (r.model != limits.model_name)
    fail(404, "The model `" + r.model + "` does not exist; this server serves `" +
                  limits.model_name + "`.",
         "model", "model_not_found");
}

void parse_common(const json& body, const ServerLimits& limits, GenerationRequest& r) {
  parse_model(body, limits, r);
  SamplingParams& s = r.sampling;
  s = limits.defaults;
  if (auto t = get_number(body, "temperature")) {
    check_range("temperature", t, 0.0, 2.0);
    s.temperature = static_cast<float>(*t);
  }
  if (auto p = get_number(body, "top_p")) {
    check_range("top_p", p, 0.0, 1.0, true);
    s.top_p = static_cast<float>(*p);
  }
  if (auto k = get_int(body, "top_k")) {
    if (*k < -1) bad_value("top_k", "must be >= 0 (or -1 for no limit).");
    s.top_k = *k <= 0 ? 0 : static_cast<int>(std::min<int64_t>(*k, 1 << 30));
  }
  if (auto m = get_number(body, "min_p")) {
    if (*m < 0.0 || *m >= 1.0) bad_value("min_p", "must be in [0, 1).");
    s.min_p = static_cast<float>(*m);
  }
  if (auto v = get_number(body, "presence_penalty")) {
    check_range("presence_penalty", v, -2.0, 2.0);
    s.presence_penalty = static_cast<float>(*v);
  }
  if (auto v = get_number(body, "frequency_penalty")) {
    check_range("frequency_penalty", v, -2.0, 2.0);
    s.frequency_penalty = static_cast<float>(*v);
  }
  if (auto v = get_number(body, "repetition_penalty")) {
    if (*v <= 0.0) bad_value("repetition_penalty", "must be > 0.");
    s.repetition_penalty = static_cast<float>(*v);
  }
  if (auto seed = get_int(body, "seed")) s.seed = static_cast<uint64_t>(*seed);

  auto mt = get_int(body, "max_completion_tokens");
  const char* mt_name = "max_completion_tokens";
  if (!mt) {
    mt = get_int(body, "max_tokens");
    mt_name = "max_tokens";
  }
  if (mt) {
    if (*mt < 1) bad_value(mt_name, "must be at least 1.");
    r.max_tokens = *mt;
  }
  if (const json* st = field(body, "stop")) {
    if (st->is_string()) {
      r.stop.push_back(st->get<std::string>());
    } else if (st->is_array()) {
      if (st->size() > 16) bad_value("stop", "at most 16 stop sequences are supported.");
      for (size_t i = 0; i < st->size(); ++i) {
        if (!(*st)[i].is_string()) wrong_type("stop[" + std::to_string(i) + "]", "a string", (*st)[i]);
        r.stop.push_back((*st)[i].get<std::string>());
      }
    } else {
      wrong_type("stop", "a string or an array of strings", *st);
    }
    std::erase_if(r.stop, [](const std::string& x) { return x.empty(); });
  }
  if (auto n = get_int(body, "n"); n && *n != 1)
    bad_value("n", "only n = 1 is supported.");
  if (auto b = get_int(body, "best_of"); b && *b != 1)
    bad_value("best_of", "only best_of = 1 is supported.");
  r.stream = get_bool(body, "stream").value_or(false);
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) wrong_type("stream_options", "an object", *so);
    r.include_usage = get_bool(*so, "include_usage", "stream_options.include_usage").value_or(false);
  }
  if (const json* lp = field(body, "logprobs")) {
    if (!(lp->is_boolean() && !lp->get<bool>()))
      bad_value("logprobs", "log probabilities are not supported by this server.");
  }
  if (field(body, "top_logprobs")) bad_value("top_logprobs", "log probabilities are not supported.");
}

// OpenAI content: a string, or an array of {"type": "text", "text": ...} parts (joined).
std::string content_text(const json& c, const std::string& param) {
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) wrong_type(param, "a string or an array of content parts", c);
  std::string out;
  for (size_t i = 0; i < c.size(); ++i) {
    const std::string p = param + "[" + std::to_string(i) + "]";
    const json& part = c[i];
    if (!part.is_object()) wrong_type(p, "an object", part);
    const std::string type = get_string(part, "type", p + ".type").value_or("");
    if (type != "text")
      bad_value(p + ".type", "content part type '" + type + "' is not supported (text only).");
    const auto text = get_string(part, "text", p + ".text");
    if (!text) fail(400, "Missing required parameter: '" + p + ".text'.", p + ".text", "missing_required_parameter");
    out += *text;
  }
  return out;
}

json normalise_tool_calls(const json& calls, const std::string& param) {
  if (!calls.is_array()) wrong_type(param, "an array", calls);
  json out = json::array();
  for (size_t k = 0; k < calls.size(); ++k) {
    const std::string p = param + "[" + std::to_string(k) + "]";
    const json& c = calls[k];
    if (!c.is_object()) wrong_type(p, "an object", c);
    if (auto type = get_string(c, "type", p + ".type"); type && *type != "function")
      bad_value(p + ".type", "only 'function' tool calls are supported.");
    const json* fn = field(c, "function");
    if (!fn) fail(400, "Missing required parameter: '" + p + ".function'.", p + ".function", "missing_required_parameter");
    if (!fn->is_object()) wrong_type(p + ".function", "an object", *fn);
    const auto name = get_string(*fn, "name", p + ".function.name");
    if (!name || name->empty()) fail(400, "Missing required parameter: '" + p + ".function.name'.", p + ".function.name", "missing_required_parameter");
    std::string args = "{}";
    if (const json* a = field(*fn, "arguments")) {
      if (a->is_string()) args = a->get<std::string>();
      else if (a->is_object()) args = a->dump();
      else wrong_type(p + ".function.arguments", "a JSON string", *a);
    }
    json call;
    call["id"] = get_string(c, "id", p + ".id").value_or("");
    call["type"] = "function";
    call["function"] = json{{"name", *name}, {"arguments", args}};
    out.push_back(std::move(call));
  }
  return out;
}

json normalise_messages(const json& body) {
  const json* msgs = field(body, "messages");
  if (!msgs) fail(400, "Missing required parameter: 'messages'.", "messages", "missing_required_parameter");
  if (!msgs->is_array()) wrong_type("messages", "an array", *msgs);
  if (msgs->empty()) bad_value("messages", "at least one message is required.");
  json out = json::array();
  for (size_t i = 0; i < msgs->size(); ++i) {
    const std::string p = "messages[" + std::to_string(i) + "]";
    const json& m = (*msgs)[i];
    if (!m.is_object()) wrong_type(p, "an object", m);
    const auto role = get_string(m, "role", p + ".role");
    if (!role) fail(400, "Missing required parameter: '" + p + ".role'.", p + ".role", "missing_required_parameter");
    json n;
    if (*role == "system" || *role == "developer" || *role == "user" || *role == "tool") {
      n["role"] = *role == "developer" ? "system" : *role;
      const json* c = field(m, "content");
      if (!c) fail(400, "Missing required parameter: '" + p + ".content'.", p + ".content", "missing_required_parameter");
      n["content"] = content_text(*c, p + ".content");
      if (*role == "tool")
        n["tool_call_id"] = get_string(m, "tool_call_id", p + ".tool_call_id").value_or("");
    } else if (*role == "assistant") {
      n["role"] = "assistant";
      const json* c = field(m, "content");
      n["content"] = c ? content_text(*c, p + ".content") : std::string();
      auto rc = get_string(m, "reasoning_content", p + ".reasoning_content");
      if (!rc) rc = get_string(m, "reasoning", p + ".reasoning");
      if (rc) n["reasoning_content"] = *rc;
      if (const json* tc = field(m, "tool_calls")) {
        json calls = normalise_tool_calls(*tc, p + ".tool_calls");
        if (!calls.empty()) n["tool_calls"] = std::move(calls);
      }
    } else {
      bad_value(p + ".role", "unknown role '" + *role +
                                 "'; expected one of system, developer, user, assistant, tool.");
    }
    out.push_back(std::move(n));
  }
  const std::string last = out.back()["role"].get<std::string>();
  if (last != "user" && last != "tool")
    bad_value("messages", "the last message must have role 'user' or 'tool', not '" + last + "'.");
  return out;
}

json normalise_tools(const json& tools) {
  if (!tools.is_array()) wrong_type("tools", "an array", tools);
  json out = json::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string p = "tools[" + std::to_string(i) + "]";
    const json& t = tools[i];
    if (!t.is_object()) wrong_type(p, "an object", t);
    const auto type = get_string(t, "type", p + ".type").value_or("function");
    if (type != "function") bad_value(p + ".type", "only 'function' tools are supported.");
    const json* fn = field(t, "function");
    if (!fn) fail(400, "Missing required parameter: '" + p + ".function'.", p + ".function", "missing_required_parameter");
    if (!fn->is_object()) wrong_type(p + ".function", "an object", *fn);
    const auto name = get_string(*fn, "name", p + ".function.name");
    if (!name || name->empty()) fail(400, "Missing required parameter: '" + p + ".function.name'.", p + ".function.name", "missing_required_parameter");
    get_string(*fn, "description", p + ".function.description");
    if (const json* params = field(*fn, "parameters"); params && !params->is_object())
      wrong_type(p + ".function.parameters", "an object", *params);
    out.push_back(json{{"type", "function"}, {"function", *fn}});
  }
  return out;
}

// Adds `key` = `value` to the first system message, creating one at the front if needed.
void attach_to_system(json& messages, const char* key, json value) {
  for (auto& m : messages) {
    if (m["role"] == "system") {
      m[key] = std::move(value);
      return;
    }
  }
  json sys;
  sys["role"] = "system";
  sys["content"] = "";
  sys[key] = std::move(value);
  messages.insert(messages.begin(), std::move(sys));
}

void parse_thinking(const json& body, ChatRequest& r) {
  if (auto effort = get_string(body, "reasoning_effort")) {
    if (*effort == "none" || *effort == "minimal") {
      r.mode = ThinkingMode::Chat;
    } else if (*effort == "low" || *effort == "medium" || *effort == "high") {
      r.mode = ThinkingMode::Thinking;
      r.effort = ReasoningEffort::High;
    } else if (*effort == "max" || *effort == "xhigh") {
      r.mode = ThinkingMode::Thinking;
      r.effort = ReasoningEffort::Max;
    } else {
      bad_value("reasoning_effort", "'" + *effort + "' is not one of none, minimal, low, medium, high, max.");
    }
  }
  if (const json* kw = field(body, "chat_template_kwargs")) {
    if (!kw->is_object()) wrong_type("chat_template_kwargs", "an object", *kw);
    auto t = get_bool(*kw, "thinking", "chat_template_kwargs.thinking");
    if (!t) t = get_bool(*kw, "enable_thinking", "chat_template_kwargs.enable_thinking");
    if (t) r.mode = *t ? ThinkingMode::Thinking : ThinkingMode::Chat;
  }
  if (const json* th = field(body, "thinking")) {  // DeepSeek API style {"type": "enabled"}
    if (!th->is_object()) wrong_type("thinking", "an object", *th);
    const auto type = get_string(*th, "type", "thinking.type").value_or("enabled");
    if (type == "enabled") r.mode = ThinkingMode::Thinking;
    else if (type == "disabled") r.mode = ThinkingMode::Chat;
    else bad_value("thinking.type", "expected 'enabled' or 'disabled'.");
  }
  if (r.mode == ThinkingMode::Chat) r.effort = ReasoningEffort::None;
}

}  // namespace

ChatRequest parse_chat_request(const json& body, const ServerLimits& limits) {
  ChatRequest r;
  parse_common(body, limits, r);
  r.messages = normalise_messages(body);
  parse_thinking(body, r);

  json tools = json::array();
  if (const json* t = field(body, "tools")) tools = normalise_tools(*t);
  std::string choice = "auto";
  if (const json* tc = field(body, "tool_choice")) {
    if (tc->is_string()) {
      choice = tc->get<std::string>();
      if (choice != "none" && choice != "auto" && choice != "required")
        bad_value("tool_choice", "expected 'none', 'auto', 'required' or a function object.");
      if (choice == "required" && tools.empty())
        bad_value("tool_choice", "'required' needs a non-empty 'tools' list.");
    } else if (tc->is_object()) {
      const json* fn = field(*tc, "function");
      const auto name = fn && fn->is_object() ? get_string(*fn, "name", "tool_choice.function.name")
                                              : std::nullopt;
      if (!name) fail(400, "Missing required parameter: 'tool_choice.function.name'.", "tool_choice.function.name", "missing_required_parameter");
      bool found = false;
      for (const auto& t : tools) found = found || t["function"]["name"] == *name;
      if (!found) bad_value("tool_choice", "function '" + *name + "' is not in 'tools'.");
      choice = "function";
    } else {
      wrong_type("tool_choice", "a string or an object", *tc);
    }
  }
  // "none" keeps the tools out of the prompt so the model cannot call them; "required" and a
  // named function are accepted but not enforced (no constrained decoding).
  if (!tools.empty() && choice != "none") {
    attach_to_system(r.messages, "tools", tools);
    r.has_tools = true;
  }
  if (const json* rf = field(body, "response_format")) {
    if (!rf->is_object()) wrong_type("response_format", "an object", *rf);
    const auto type = get_string(*rf, "type", "response_format.type").value_or("text");
    if (type == "json_schema") {
      const json* js = field(*rf, "json_schema");
      if (!js || !js->is_object()) fail(400, "Missing required parameter: 'response_format.json_schema'.", "response_format.json_schema", "missing_required_parameter");
      const json* schema = field(*js, "schema");
      attach_to_system(r.messages, "response_format", schema ? *schema : json::object());
    } else if (type == "json_object") {
      attach_to_system(r.messages, "response_format", json{{"type", "json_object"}});
    } else if (type != "text") {
      bad_value("response_format.type", "expected 'text', 'json_object' or 'json_schema'.");
    }
  }
  return r;
}

CompletionRequest parse_completion_request(const json& body, const ServerLimits& limits) {
  CompletionRequest r;
  parse_common(body, limits, r);
  const json* p = field(body, "prompt");
  if (!p) fail(400, "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter");
  const json* one = p;
  if (p->is_array() && !p->empty() && (p->front().is_string() || p->front().is_array())) {
    if (p->size() != 1) bad_value("prompt", "only one prompt per request is supported.");
    one = &p->front();
  }
  if (one->is_string()) {
    r.prompt = one->get<std::string>();
  } else if (one->is_array()) {
    r.prompt_is_tokens = true;
    for (size_t i = 0; i < one->size(); ++i) {
      const json& t = (*one)[i];
      if (!t.is_number_integer()) wrong_type("prompt[" + std::to_string(i) + "]", "a token id", t);
      const int64_t id = t.get<int64_t>();
      if (id < 0 || id >= limits.vocab_size)
        bad_value("prompt", "token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                std::to_string(limits.vocab_size) + ").");
      r.prompt_tokens.push_back(static_cast<int32_t>(id));
    }
  } else {
    wrong_type("prompt", "a string, an array of token ids, or an array with one of them", *one);
  }
  if (auto echo = get_bool(body, "echo"); echo && *echo) bad_value("echo", "echo is not supported.");
  if (field(body, "suffix")) bad_value("suffix", "suffix (fill-in-the-middle) is not supported.");
  if (!r.max_tokens) r.max_tokens = 16;  // the OpenAI default for this endpoint
  return r;
}

std::string render_chat_prompt(const ChatRequest& req) {
  EncodeOptions o;
  o.thinking_mode = req.mode;
  o.reasoning_effort = req.effort;
  try {
    return encode_messages(req.messages, o);
  } catch (const Error& e) {
    fail(400, std::string("The messages cannot be rendered: ") + e.what(), "messages");
  }
}

int64_t check_context(int64_t prompt_tokens, std::optional<int64_t> max_tokens,
                      const ServerLimits& limits) {
  const int64_t ctx = limits.max_context;
  if (prompt_tokens < 1) bad_value("prompt", "the prompt is empty.");
  const int64_t want = prompt_tokens + max_tokens.value_or(1);
  if (prompt_tokens >= ctx || want > ctx) {
    std::string msg = "This model's maximum context length is " + std::to_string(ctx) +
                      " tokens. However, you requested " + std::to_string(want) + " tokens (" +
                      std::to_string(prompt_tokens) + " in the prompt, " +
                      std::to_string(max_tokens.value_or(1)) +
                      " for the completion). Please reduce the prompt or max_tokens.";
    fail(400, msg, max_tokens ? "max_tokens" : "messages", "context_length_exceeded");
  }
  return max_tokens.value_or(-1);
}

GenerateOptions generate_options(const GenerationRequest& req, int64_t max_tokens,
                                 const ServerLimits& limits) {
  GenerateOptions o;
  o.min_reuse = limits.min_reuse;
  o.sampling = req.sampling;
  o.max_tokens = max_tokens;
  o.stop = req.stop;
  return o;
}

// ---- responses ------------------------------------------------------------------------------

json Usage::to_json() const {
  json u;
  u["prompt_tokens"] = prompt_tokens;
  u["completion_tokens"] = completion_tokens;
  u["total_tokens"] = prompt_tokens + completion_tokens;
  u["prompt_tokens_details"] = json{{"cached_tokens", cached_tokens}};
  return u;
}

std::string finish_reason_string(FinishReason r, bool has_tool_calls) {
  if (has_tool_calls && (r == FinishReason::Eos || r == FinishReason::Stop)) return "tool_calls";
  switch (r) {
    case FinishReason::Length:
    case FinishReason::Context: return "length";
    default: return "stop";
  }
}

std::string tool_call_id(const std::string& request_id, int index) {
  std::string tail = request_id;
  if (auto dash = tail.find('-'); dash != std::string::npos) tail = tail.substr(dash + 1);
  return "call_" + tail + "_" + std::to_string(index);
}

static json tool_calls_json(const std::string& id, const std::vector<ToolCall>& calls) {
  json out = json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    json c;
    c["id"] = tool_call_id(id, static_cast<int>(i));
    c["type"] = "function";
    c["function"] = json{{"name", calls[i].name}, {"arguments", calls[i].arguments}};
    out.push_back(std::move(c));
  }
  return out;
}

json chat_completion_response(const std::string& id, const std::string& model, int64_t created,
                              const ParsedMessage& msg, FinishReason finish, const Usage& usage) {
  json m;
  m["role"] = "assistant";
  const bool calls = !msg.tool_calls.empty();
  m["content"] = calls && msg.content.empty() ? json(nullptr) : json(msg.content);
  if (!msg.reasoning_content.empty()) m["reasoning_content"] = msg.reasoning_content;
  if (calls) m["tool_calls"] = tool_calls_json(id, msg.tool_calls);
  json choice;
  choice["index"] = 0;
  choice["message"] = std::move(m);
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_reason_string(finish, calls);
  json r;
  r["id"] = id;
  r["object"] = "chat.completion";
  r["created"] = created;
  r["model"] = model;
  r["choices"] = json::array({choice});
  r["usage"] = usage.to_json();
  return r;
}

ChatStreamBuilder::ChatStreamBuilder(std::string id, std::string model, int64_t created,
                                     ThinkingMode mode, bool include_usage)
    : id_(std::move(id)), model_(std::move(model)), created_(created),
      include_usage_(include_usage), parser_(mode) {}

json ChatStreamBuilder::chunk(json delta, const json& finish_reason) const {
  json choice;
  choice["index"] = 0;
  choice["delta"] = std::move(delta);
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_reason;
  json c;
  c["id"] = id_;
  c["object"] = "chat.completion.chunk";
  c["created"] = created_;
  c["model"] = model_;
  c["choices"] = json::array({choice});
  if (include_usage_) c["usage"] = nullptr;
  return c;
}

void ChatStreamBuilder::append(std::vector<json>& out, const std::vector<Delta>& deltas) {
  if (!sent_role_) {
    out.push_back(chunk(json{{"role", "assistant"}, {"content", ""}}));
    sent_role_ = true;
  }
  for (size_t i = 0; i < deltas.size(); ++i) {
    const Delta& d = deltas[i];
    if (d.kind == Delta::Kind::Reasoning || d.kind == Delta::Kind::Content) {
      std::string text = d.text;  // coalesce a run of the same kind into one chunk
      while (i + 1 < deltas.size() && deltas[i + 1].kind == d.kind) text += deltas[++i].text;
      if (text.empty()) continue;
      const char* key = d.kind == Delta::Kind::Reasoning ? "reasoning_content" : "content";
      out.push_back(chunk(json{{key, text}}));
    } else if (d.kind == Delta::Kind::ToolCallStart) {
      json call;
      call["index"] = d.tool_index;
      call["id"] = tool_call_id(id_, d.tool_index);
      call["type"] = "function";
      call["function"] = json{{"name", d.text}, {"arguments", ""}};
      out.push_back(chunk(json{{"tool_calls", json::array({call})}}));
      tool_calls_ = std::max(tool_calls_, d.tool_index + 1);
    } else {
      std::string text = d.text;
      while (i + 1 < deltas.size() && deltas[i + 1].kind == d.kind &&
             deltas[i + 1].tool_index == d.tool_index)
        text += deltas[++i].text;
      if (text.empty()) continue;
      json call;
      call["index"] = d.tool_index;
      call["function"] = json{{"arguments", text}};
      out.push_back(chunk(json{{"tool_calls", json::array({call})}}));
    }
  }
}

std::vector<json> ChatStreamBuilder::push(std::string_view text) {
  std::vector<json> out;
  append(out, parser_.push(text));
  return out;
}

std::vector<json> ChatStreamBuilder::finish(FinishReason finish, const Usage& usage) {
  std::vector<json> out;
  // The reference appends one EOS to every completion before parsing (spec 10).
  std::vector<Delta> deltas;
  if (!parser_.saw_eos()) deltas = parser_.push("<｜end▁of▁sentence｜>");
  for (auto& d : parser_.finish()) deltas.push_back(std::move(d));
  append(out, deltas);
  const bool calls = tool_calls_ > 0 || !parser_.message().tool_calls.empty();
  out.push_back(chunk(json::object(), finish_reason_string(finish, calls)));
  if (include_usage_) out.push_back(usage_chunk("chat.completion.chunk", id_, model_, created_, usage));
  return out;
}

json text_completion_response(const std::string& id, const std::string& model, int64_t created,
                              const std::string& text, FinishReason finish, const Usage& usage) {
  json choice;
  choice["text"] = text;
  choice["index"] = 0;
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_reason_string(finish, false);
  json r;
  r["id"] = id;
  r["object"] = "text_completion";
  r["created"] = created;
  r["model"] = model;
  r["choices"] = json::array({choice});
  r["usage"] = usage.to_json();
  return r;
}

json text_completion_chunk(const std::string& id, const std::string& model, int64_t created,
                           const std::string& text, const json& finish_reason) {
  json choice;
  choice["text"] = text;
  choice["index"] = 0;
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_reason;
  json r;
  r["id"] = id;
  r["object"] = "text_completion";
  r["created"] = created;
  r["model"] = model;
  r["choices"] = json::array({choice});
  return r;
}

json usage_chunk(const std::string& object, const std::string& id, const std::string& model,
                 int64_t created, const Usage& usage) {
  json r;
  r["id"] = id;
  r["object"] = object;
  r["created"] = created;
  r["model"] = model;
  r["choices"] = json::array();
  r["usage"] = usage.to_json();
  return r;
}

json models_response(const std::string& model, int64_t created) {
  json m;
  m["id"] = model;
  m["object"] = "model";
  m["created"] = created;
  m["owned_by"] = "dsv4";
  return json{{"object", "list"}, {"data", json::array({m})}};
}

std::string new_request_id(const char* prefix) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = [] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }();
  uint64_t x = salt + 0x9e3779b97f4a7c15ull * (++counter);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  x ^= x >> 31;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s-%016llx", prefix, static_cast<unsigned long long>(x));
  return buf;
}

}  // namespace dsv4::server
