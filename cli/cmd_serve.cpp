// dsv4 serve: the OpenAI-compatible HTTP server (server/): load, start the scheduler, listen.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "cli/command.h"
#include "cli/gen_common.h"
#include "core/error.h"
#include "http.h"
#include "runtime/sampler.h"
#include "scheduler.h"

#ifndef DSV4_WEB_DIR
#define DSV4_WEB_DIR "web"
#endif

namespace dsv4::cli {
namespace {

struct ServeFlags {
  ModelFlags model;
  std::string host = "127.0.0.1";
  int port = 8000;
  int parallel = 4;
  std::string api_key;
  std::string alias;
  std::string web_dir = DSV4_WEB_DIR;
  int http_threads = 0;
  int64_t prefill_chunk = 0;
  int64_t min_reuse = 256;
};

std::atomic<bool> g_stop{false};
extern "C" void dsv4_serve_on_signal(int) { g_stop.store(true); }

int serve(const ServeFlags& f) {
  std::signal(SIGPIPE, SIG_IGN);  // a client that disconnects must not kill the server
  Loaded m = load_model(f.model, true);

  server::ServerLimits limits;
  limits.model_name = f.alias.empty()
                          ? std::filesystem::path(f.model.model_dir).lexically_normal().filename().string()
                          : f.alias;
  if (limits.model_name.empty())
    limits.model_name = std::filesystem::path(f.model.model_dir).lexically_normal().parent_path().filename().string();
  limits.max_context = f.model.ctx;
  limits.defaults = sampling_defaults(f.model.model_dir);
  limits.vocab_size = m.tok->vocab_size();
  limits.min_reuse = f.min_reuse;

  server::SchedulerOptions so;
  so.parallel = f.parallel;
  so.max_context = f.model.ctx;
  const SessionOptions session = session_options(f.model);
  so.mem_limit = session.mem_limit;
  so.forward_rows = session.prefill_chunk;
  so.prefill_chunk = f.prefill_chunk;
  server::Scheduler sched(*m.engine, *m.tok, so);

  server::HttpOptions ho;
  ho.host = f.host;
  ho.port = f.port;
  ho.api_key = f.api_key;
  ho.web_dir = f.web_dir;
  ho.threads = f.http_threads;
  server::HttpServer http(sched, *m.tok, limits, ho);
  const int port = http.bind();

  struct sigaction sa {};
  sa.sa_handler = dsv4_serve_on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::thread watcher([&http] {
    while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    http.stop();
  });

  std::fprintf(stderr, "dsv4 serve: listening on http://%s:%d (model %s, %d slots, ctx %lld%s)\n",
               f.host.c_str(), port, limits.model_name.c_str(), f.parallel,
               static_cast<long long>(f.model.ctx), f.api_key.empty() ? "" : ", API key required");
  std::fflush(stderr);
  http.listen();
  g_stop.store(true);
  watcher.join();
  std::fprintf(stderr, "dsv4 serve: stopped\n");
  return 0;
}

}  // namespace
}  // namespace dsv4::cli

DSV4_COMMAND(serve) {
  auto flags = std::make_shared<dsv4::cli::ServeFlags>();
  return {"serve", "OpenAI-compatible HTTP server (chat/completions, completions, models, web chat at /)",
          [flags](CLI::App& a) {
            dsv4::cli::add_model_flags(a, flags->model);
            a.add_option("--host", flags->host, "Address to listen on");
            a.add_option("--port", flags->port, "TCP port (0 = any free port, printed at start)")
                ->check(CLI::Range(0, 65535));
            a.add_option("--np,--parallel", flags->parallel, "Requests generating at the same time (sessions)")
                ->check(CLI::Range(1, 1024));
            a.add_option("--api-key", flags->api_key, "Require 'Authorization: Bearer KEY' on API routes");
            a.add_option("--alias", flags->alias, "Model name reported and accepted (default: the directory name)");
            a.add_option("--web-dir", flags->web_dir, "Directory of the web chat page (index.html)");
            a.add_option("--http-threads", flags->http_threads, "HTTP worker threads (0 = 4 x parallel + 16)");
            a.add_option("--prefill-chunk", flags->prefill_chunk,
                         "Prompt tokens per scheduler step (0 = whole prompt, exact one-shot prefill; "
                         "N > 0 lets other requests decode in between); --chunk sets the rows of each "
                         "forward call inside a step")
                ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
            a.add_option("--prefix-reuse-min", flags->min_reuse,
                         "Reuse a session's KV state when it shares at least N leading tokens with a new "
                         "prompt (multi-turn); 0 = never (every prompt gets a fresh, exact prefill)")
                ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
            return std::function<int()>([flags] { return dsv4::cli::serve(*flags); });
          }};
}
