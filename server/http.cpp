#include "http.h"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <httplib.h>

#include "core/error.h"

namespace dsv4::server {

std::string sse_event(std::string_view data) {
  std::string out;
  size_t start = 0;
  for (;;) {
    const size_t nl = data.find('\n', start);
    out += "data: ";
    out.append(data.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start));
    out += '\n';
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  out += '\n';
  return out;
}

std::string sse_json(const json& j) {
  return sse_event(j.dump(-1, ' ', false, json::error_handler_t::replace));
}

bool api_key_ok(const std::string& key, const std::string& authorization,
                const std::string& x_api_key) {
  if (key.empty()) return true;
  if (x_api_key == key) return true;
  static constexpr std::string_view kBearer = "Bearer ";
  return authorization.size() == kBearer.size() + key.size() &&
         authorization.compare(0, kBearer.size(), kBearer) == 0 &&
         authorization.compare(kBearer.size(), std::string::npos, key) == 0;
}

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPoll = std::chrono::milliseconds(100);
constexpr auto kKeepAlive = std::chrono::seconds(2);
const std::string kEosText = "<｜end▁of▁sentence｜>";

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) { send_json(res, e.status, e.to_json()); }

Usage usage_of(const GenerationStats& s) {
  Usage u;
  u.prompt_tokens = s.prompt_tokens;
  u.completion_tokens = s.generated_tokens;
  u.cached_tokens = s.cached_tokens;
  return u;
}

int64_t now_unix() { return static_cast<int64_t>(std::time(nullptr)); }

}  // namespace

struct HttpServer::Impl {
  Scheduler& sched;
  const Tokenizer& tok;
  ServerLimits limits;
  HttpOptions opts;
  httplib::Server svr;
  std::string index_html;
  int64_t started = now_unix();

  Impl(Scheduler& s, const Tokenizer& t, ServerLimits l, HttpOptions o)
      : sched(s), tok(t), limits(std::move(l)), opts(std::move(o)) {}

  // Runs `fn`, turning every failure into an OpenAI error response.
  template <typename Fn>
  void guarded(httplib::Response& res, Fn&& fn) {
    try {
      fn();
    } catch (const ApiException& e) {
      send_error(res, e.error);
    } catch (const json::exception& e) {
      send_error(res, ApiError{400, std::string("Invalid request: ") + e.what()});
    } catch (const std::exception& e) {
      send_error(res, ApiError{500, e.what(), "server_error"});
    }
  }

  std::shared_ptr<Job> submit(std::vector<int32_t> prompt, const GenerationRequest& r,
                              int64_t max_tokens) {
    auto job = sched.submit(std::move(prompt), generate_options(r, max_tokens, limits));
    if (!job)
      fail(503, "The server is overloaded (request queue full); retry later.", {}, "overloaded",
           "server_error");
    return job;
  }

  // Blocks until the job ends; returns its text and final event (Done or Error).
  static JobEvent collect(Job& job, std::string& text) {
    for (;;) {
      for (auto& e : job.wait(std::chrono::seconds(1))) {
        if (e.kind == JobEvent::Kind::Text) text += e.text;
        else return std::move(e);
      }
    }
  }

  // Streams a job's events as SSE: `on_text` / `on_done` turn events into SSE payload strings.
  template <typename OnText, typename OnDone>
  void stream(httplib::Response& res, std::shared_ptr<Job> job, OnText on_text, OnDone on_done) {
    struct State {
      std::shared_ptr<Job> job;
      bool done = false;
      Clock::time_point last_write = Clock::now();
    };
    auto st = std::make_shared<State>();
    st->job = std::move(job);
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [st, on_text, on_done](size_t, httplib::DataSink& sink) mutable {
          if (st->done) {
            sink.done();
            return true;
          }
          std::string out;
          for (auto& e : st->job->wait(kPoll)) {
            if (e.kind == JobEvent::Kind::Text) {
              out += on_text(e.text);
            } else if (e.kind == JobEvent::Kind::Done) {
              out += on_done(e);
              out += kSseDone;
              st->done = true;
            } else {
              out += sse_json(ApiError{500, e.error, "server_error"}.to_json());
              out += kSseDone;
              st->done = true;
            }
          }
          const auto now = Clock::now();
          if (out.empty() && now - st->last_write > kKeepAlive) out = kSseKeepAlive;
          if (!out.empty()) {
            if (!sink.write(out.data(), out.size())) {
              st->job->cancel();  // the client went away
              return false;
            }
            st->last_write = now;
          }
          if (st->done) sink.done();
          return true;
        },
        [st](bool success) {
          if (!success || !st->done) st->job->cancel();
        });
  }

  void chat_completions(const httplib::Request& req, httplib::Response& res) {
    ChatRequest cr = parse_chat_request(parse_body(req.body), limits);
    const std::string prompt = render_chat_prompt(cr);
    std::vector<int32_t> tokens = tok.encode(prompt, true);
    const int64_t max_tokens = check_context(static_cast<int64_t>(tokens.size()), cr.max_tokens, limits);
    auto job = submit(std::move(tokens), cr, max_tokens);
    const std::string id = new_request_id("chatcmpl");
    const int64_t created = now_unix();
    if (!cr.stream) {
      std::string text;
      JobEvent end = collect(*job, text);
      if (end.kind == JobEvent::Kind::Error) fail(500, end.error, {}, {}, "server_error");
      const ParsedMessage msg = parse_completion(text + kEosText, cr.mode);
      send_json(res, 200, chat_completion_response(id, cr.model, created, msg, end.finish,
                                                   usage_of(end.stats)));
      return;
    }
    auto builder = std::make_shared<ChatStreamBuilder>(id, cr.model, created, cr.mode, cr.include_usage);
    stream(
        res, std::move(job),
        [builder](const std::string& text) {
          std::string out;
          for (const auto& c : builder->push(text)) out += sse_json(c);
          return out;
        },
        [builder](const JobEvent& e) {
          std::string out;
          for (const auto& c : builder->finish(e.finish, usage_of(e.stats))) out += sse_json(c);
          return out;
        });
  }

  void completions(const httplib::Request& req, httplib::Response& res) {
    CompletionRequest cr = parse_completion_request(parse_body(req.body), limits);
    std::vector<int32_t> tokens = cr.prompt_is_tokens ? cr.prompt_tokens : tok.encode(cr.prompt, true);
    const int64_t max_tokens = check_context(static_cast<int64_t>(tokens.size()), cr.max_tokens, limits);
    auto job = submit(std::move(tokens), cr, max_tokens);
    const std::string id = new_request_id("cmpl");
    const int64_t created = now_unix();
    if (!cr.stream) {
      std::string text;
      JobEvent end = collect(*job, text);
      if (end.kind == JobEvent::Kind::Error) fail(500, end.error, {}, {}, "server_error");
      send_json(res, 200, text_completion_response(id, cr.model, created, text, end.finish,
                                                   usage_of(end.stats)));
      return;
    }
    const std::string model = cr.model;
    const bool include_usage = cr.include_usage;
    stream(
        res, std::move(job),
        [id, model, created](const std::string& text) {
          return sse_json(text_completion_chunk(id, model, created, text, nullptr));
        },
        [id, model, created, include_usage](const JobEvent& e) {
          std::string out = sse_json(
              text_completion_chunk(id, model, created, "", finish_reason_string(e.finish, false)));
          if (include_usage)
            out += sse_json(usage_chunk("text_completion", id, model, created, usage_of(e.stats)));
          return out;
        });
  }

  void tokenize(const httplib::Request& req, httplib::Response& res) {
    const json body = parse_body(req.body);
    const json* text = nullptr;
    for (const char* key : {"content", "text", "prompt"})
      if (body.contains(key)) text = &body[key];
    if (!text) fail(400, "Missing required parameter: 'content'.", "content", "missing_required_parameter");
    if (!text->is_string()) fail(400, "Invalid type for 'content': expected a string.", "content", "invalid_type");
    bool special = true;
    if (body.contains("special")) {
      if (!body["special"].is_boolean()) fail(400, "Invalid type for 'special': expected a boolean.", "special", "invalid_type");
      special = body["special"].get<bool>();
    }
    bool pieces = body.contains("with_pieces") && body["with_pieces"].is_boolean() &&
                  body["with_pieces"].get<bool>();
    const auto ids = tok.encode(text->get<std::string>(), special);
    json out = json::array();
    for (int32_t id : ids) {
      if (pieces) out.push_back(json{{"id", id}, {"piece", tok.decode(std::span<const int32_t>(&id, 1))}});
      else out.push_back(id);
    }
    send_json(res, 200, json{{"tokens", out}});
  }

  void detokenize(const httplib::Request& req, httplib::Response& res) {
    const json body = parse_body(req.body);
    if (!body.contains("tokens")) fail(400, "Missing required parameter: 'tokens'.", "tokens", "missing_required_parameter");
    const json& t = body["tokens"];
    if (!t.is_array()) fail(400, "Invalid type for 'tokens': expected an array of token ids.", "tokens", "invalid_type");
    std::vector<int32_t> ids;
    for (size_t i = 0; i < t.size(); ++i) {
      if (!t[i].is_number_integer())
        fail(400, "Invalid type for 'tokens[" + std::to_string(i) + "]': expected an integer.", "tokens", "invalid_type");
      const int64_t id = t[i].get<int64_t>();
      if (id < 0 || id >= tok.vocab_size())
        fail(400, "Invalid value for 'tokens[" + std::to_string(i) + "]': " + std::to_string(id) +
                      " is outside the vocabulary [0, " + std::to_string(tok.vocab_size()) + ").",
             "tokens", "invalid_value");
      ids.push_back(static_cast<int32_t>(id));
    }
    send_json(res, 200, json{{"content", tok.decode(ids)}});
  }

  void routes() {
    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      res.set_header("Access-Control-Allow-Origin", "*");
      if (req.method == "OPTIONS") {
        res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Api-Key");
        res.status = 204;
        return httplib::Server::HandlerResponse::Handled;
      }
      const bool open = req.path == "/" || req.path == "/index.html" || req.path == "/health";
      if (!open && !api_key_ok(opts.api_key, req.get_header_value("Authorization"),
                               req.get_header_value("X-Api-Key"))) {
        send_error(res, ApiError{401, "Incorrect or missing API key (send 'Authorization: Bearer <key>').",
                                 "invalid_request_error", {}, "invalid_api_key"});
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    svr.Post("/v1/chat/completions", [this](const httplib::Request& q, httplib::Response& r) {
      guarded(r, [&] { chat_completions(q, r); });
    });
    svr.Post("/v1/completions", [this](const httplib::Request& q, httplib::Response& r) {
      guarded(r, [&] { completions(q, r); });
    });
    svr.Post("/tokenize", [this](const httplib::Request& q, httplib::Response& r) {
      guarded(r, [&] { tokenize(q, r); });
    });
    svr.Post("/detokenize", [this](const httplib::Request& q, httplib::Response& r) {
      guarded(r, [&] { detokenize(q, r); });
    });
    svr.Get("/v1/models", [this](const httplib::Request&, httplib::Response& r) {
      send_json(r, 200, models_response(limits.model_name, started));
    });
    svr.Get(R"(/v1/models/(.+))", [this](const httplib::Request& q, httplib::Response& r) {
      const std::string name = q.matches[1];
      if (name != limits.model_name)
        return send_error(r, ApiError{404, "The model `" + name + "` does not exist.",
                                      "invalid_request_error", "model", "model_not_found"});
      send_json(r, 200, models_response(limits.model_name, started)["data"][0]);
    });
    svr.Get("/health", [this](const httplib::Request&, httplib::Response& r) {
      const SchedulerStats s = sched.stats();
      send_json(r, 200, json{{"status", "ok"}, {"model", limits.model_name},
                             {"active", s.active}, {"queued", s.queued},
                             {"completed", s.completed}, {"slots", sched.options().parallel}});
    });
    auto page = [this](const httplib::Request&, httplib::Response& r) {
      if (index_html.empty())
        return send_error(r, ApiError{404, "The web page is not installed (" +
                                               (std::filesystem::path(opts.web_dir) / "index.html").string() +
                                               " was not found); use --web-dir.",
                                      "invalid_request_error", {}, "not_found"});
      r.set_content(index_html, "text/html; charset=utf-8");
    };
    svr.Get("/", page);
    svr.Get("/index.html", page);
    svr.set_error_handler([](const httplib::Request& q, httplib::Response& r) {
      if (!r.body.empty()) return;
      if (r.status == 404)
        send_error(r, ApiError{404, "Unknown endpoint: " + q.method + " " + q.path, "invalid_request_error",
                               {}, "unknown_url"});
      else
        send_error(r, ApiError{r.status, "HTTP error " + std::to_string(r.status), "invalid_request_error"});
    });
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& r, std::exception_ptr ep) {
      std::string what = "internal error";
      try {
        if (ep) std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send_error(r, ApiError{500, what, "server_error"});
    });
  }
};

HttpServer::HttpServer(Scheduler& sched, const Tokenizer& tok, ServerLimits limits, HttpOptions opts)
    : impl_(std::make_unique<Impl>(sched, tok, std::move(limits), std::move(opts))) {
  Impl& m = *impl_;
  const auto index = std::filesystem::path(m.opts.web_dir) / "index.html";
  if (std::ifstream in(index); in) {
    std::ostringstream ss;
    ss << in.rdbuf();
    m.index_html = ss.str();
  }
  const int threads = m.opts.threads > 0 ? m.opts.threads : 4 * sched.options().parallel + 16;
  m.svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  m.svr.set_read_timeout(60);
  m.svr.set_write_timeout(30);
  m.svr.set_payload_max_length(64u << 20);
  m.routes();
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  Impl& m = *impl_;
  if (m.opts.port == 0) {
    port_ = m.svr.bind_to_any_port(m.opts.host);
    if (port_ <= 0) throw_error("serve: cannot bind ", m.opts.host, " (any port)");
  } else {
    if (!m.svr.bind_to_port(m.opts.host, m.opts.port))
      throw_error("serve: cannot bind ", m.opts.host, ":", m.opts.port,
                  " (address in use, or not a local address?)");
    port_ = m.opts.port;
  }
  return port_;
}

void HttpServer::listen() { impl_->svr.listen_after_bind(); }

void HttpServer::stop() { impl_->svr.stop(); }

}  // namespace dsv4::server
