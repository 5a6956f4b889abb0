// The HTTP front end: routes (OpenAI API, tokenizer endpoints, health, the web page), API-key
// check, SSE framing. Handlers parse and validate on the HTTP threads, submit a Job to the
// Scheduler and relay its events; they never touch the engine.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "dsv4/tokenizer.h"
#include "openai.h"
#include "scheduler.h"

namespace dsv4::server {

// One Server-Sent Event carrying `data` (each line of it as its own "data:" field).
std::string sse_event(std::string_view data);
std::string sse_json(const json& j);           // sse_event(j.dump())
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";
inline constexpr std::string_view kSseKeepAlive = ": keep-alive\n\n";  // an SSE comment

// Does the Authorization header (`Bearer KEY`) or `x-api-key` match? Always true if key is empty.
bool api_key_ok(const std::string& key, const std::string& authorization,
                const std::string& x_api_key);

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                 // 0: any free port (see HttpServer::port())
  std::string api_key;             // empty: no authentication
  std::string web_dir;             // holds index.html, served at "/"
  int threads = 0;                 // HTTP worker threads; 0: enough for 4x --parallel + 16
};

class HttpServer {
 public:
  HttpServer(Scheduler& sched, const Tokenizer& tok, ServerLimits limits, HttpOptions opts);
  ~HttpServer();
  // Binds the socket (throws dsv4::Error naming host:port on failure); returns the bound port.
  int bind();
  // Serves until stop() (blocking).
  void listen();
  void stop();
  int port() const { return port_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace dsv4::server
