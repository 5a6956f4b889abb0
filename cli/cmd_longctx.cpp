// dsv4 longctx: the resumable long-context procedure (scripts/long_context.sh). Prefills a
// deterministic token stream of --context tokens in chunks, saving the session every --save-every
// chunks (a rerun with the same --session resumes from the last save), and at each --depths
// position times --decode single-token steps (the next tokens of the same stream, so the run's
// state is the same as a plain prefill). One JSON line per depth on stdout: depth, decode ms/token
// (median and mean), prefill tokens/s since the last depth, KV bytes allocated vs kv_budget,
// process RSS.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/prefill_progress.h"
#include "core/error.h"
#include "dsv4/engine.h"
#include "runtime/engine_impl.h"
#include "runtime/kv_budget.h"
#include "runtime/session_io.h"

namespace {

// Token i of the stream (xorshift of seed and position), in [2, vocab).
int32_t stream_token(uint64_t seed, int64_t i, int64_t vocab) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(i) * 0xBF58476D1CE4E5B9ull + 1;
  x ^= x >> 31, x *= 0x94D049BB133111EBull, x ^= x >> 29;
  return static_cast<int32_t>(2 + x % static_cast<uint64_t>(vocab - 2));
}

double cpu_ms() {  // process CPU time (the machine may be shared: wall time alone overstates)
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

uint64_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  uint64_t pages = 0, res = 0;
  f >> pages >> res;
  return res * 4096;
}

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> v;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    v.push_back(std::stoll(s.substr(i, j - i)));
    i = j + 1;
  }
  return v;
}

}  // namespace

DSV4_COMMAND(longctx) {
  struct Opts {
    std::string model, session, depths = "4096,65536,262144,1048576", numerics = "fast", mem_limit, kv_layout = "compact";
    int64_t context = 1048576, chunk = 2048, save_every = 16, decode = 16;
    uint64_t seed = 1;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  return {"longctx", "Resumable long-context run: chunked prefill with periodic session saves, decode timing at depths",
          [o](CLI::App& a) {
            a.add_option("--model", o->model, "checkpoint directory")->required();
            a.add_option("--context", o->context, "tokens to prefill in total");
            a.add_option("--depths", o->depths, "comma-separated positions at which to time decode");
            a.add_option("--decode", o->decode, "decode steps timed at each depth");
            a.add_option("--chunk", o->chunk, "prefill chunk (tokens per forward call)");
            a.add_option("--session", o->session, "session file: saved every --save-every chunks, resumed from if present");
            a.add_option("--save-every", o->save_every, "chunks between session saves");
            a.add_option("--seed", o->seed, "token stream seed");
            a.add_option("--numerics", o->numerics, "reference | fast")->check(CLI::IsMember({"reference", "fast"}));
            a.add_option("--kv-layout", o->kv_layout, "compact | bf16")->check(CLI::IsMember({"compact", "bf16"}));
            a.add_option("--mem-limit", o->mem_limit, "refuse a KV cache larger than this (e.g. 8G)");
            a.add_option("--threads", o->threads, "threads (0 = all)");
            return std::function<int()>([o] {
              using namespace dsv4;
              EngineOptions eo;
              eo.model_dir = o->model;
              eo.numerics = o->numerics == "reference" ? Numerics::Reference : Numerics::Fast;
              eo.load_mtp = false;
              eo.threads = o->threads;
              auto engine = std::make_unique<EngineImpl>(eo);  // fast numerics = the SIMD CPU backend
              const EngineImpl* ei = engine.get();
              const ModelConfig& cfg = ei->weights().config;
              const int64_t V = engine->info().vocab_size;
              std::vector<int64_t> depths = parse_list(o->depths);
              std::sort(depths.begin(), depths.end());
              if (o->chunk <= 0 || o->context <= 0 || o->decode < 0) throw_error("--chunk, --context must be positive");
              SessionOptions so;
              so.max_context = o->context + o->decode;  // the last depth may sit at --context
              so.prefill_chunk = o->chunk;
              so.kv_layout = o->kv_layout == "bf16" ? KvCacheLayout::Bf16 : KvCacheLayout::Compact;
              so.checkpoint_interval = 0;  // resumption goes through the session file
              if (!o->mem_limit.empty()) so.mem_limit = parse_byte_size(o->mem_limit);
              const KvLayout kl = so.kv_layout == KvCacheLayout::Bf16 ? KvLayout::Bf16 : KvLayout::Compact;
              const KvBudget budget = kv_budget(cfg, so.max_context, kl, false);
              auto s = engine->new_session(so);
              std::fprintf(stderr, "longctx: KV cache for %lld tokens: %llu bytes allocated, kv_budget %llu (%.1f B/token)\n",
                           static_cast<long long>(so.max_context), static_cast<unsigned long long>(s->kv_bytes()),
                           static_cast<unsigned long long>(budget.total), budget.bytes_per_token);
              if (!o->session.empty() && std::filesystem::exists(o->session)) {
                s->load(o->session);
                for (int64_t i = 0; i < s->position(); i += 997)
                  if (s->tokens()[static_cast<size_t>(i)] != stream_token(o->seed, i, V))
                    throw_error(o->session, ": saved tokens are not this --seed's stream");
                std::fprintf(stderr, "longctx: resumed %s at position %lld\n", o->session.c_str(),
                             static_cast<long long>(s->position()));
              }
              cli::PrefillProgress progress;
              std::vector<int32_t> buf;
              std::vector<float> logits(static_cast<size_t>(V));
              int64_t chunks_since_save = 0;
              auto t_prefill = std::chrono::steady_clock::now();
              int64_t prefilled_since = 0;
              auto save = [&] {
                if (o->session.empty()) return;
                const auto t0 = std::chrono::steady_clock::now();
                s->save(o->session);
                std::fprintf(stderr, "\nlongctx: saved %s at %lld (%.1f s)\n", o->session.c_str(),
                             static_cast<long long>(s->position()),
                             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
              };
              for (int64_t d : depths) {
                if (d > o->context) break;
                if (d < s->position()) continue;  // measured in an earlier (resumed) run
                while (s->position() < d) {
                  const int64_t p = s->position(), n = std::min(o->chunk, d - p);
                  buf.resize(static_cast<size_t>(n));
                  for (int64_t i = 0; i < n; ++i) buf[static_cast<size_t>(i)] = stream_token(o->seed, p + i, V);
                  s->prefill(buf, {}, progress.fn(p, o->context));
                  prefilled_since += s->position() - p;
                  if (progress.cancelled()) {
                    save();
                    std::fprintf(stderr, "longctx: interrupted at %lld\n", static_cast<long long>(s->position()));
                    return 130;
                  }
                  if (++chunks_since_save >= o->save_every) save(), chunks_since_save = 0;
                }
                const double pf_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_prefill).count();
                std::vector<double> ms, cpu;
                for (int64_t j = 0; j < o->decode; ++j) {
                  const auto t0 = std::chrono::steady_clock::now();
                  const double c0 = cpu_ms();
                  s->decode(stream_token(o->seed, s->position(), V), logits);
                  cpu.push_back(cpu_ms() - c0);
                  ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
                }
                std::sort(cpu.begin(), cpu.end());
                std::vector<double> sorted = ms;
                std::sort(sorted.begin(), sorted.end());
                double mean = 0;
                for (double x : ms) mean += x;
                nlohmann::json r;
                r["depth"] = d;
                r["decode_steps"] = o->decode;
                r["decode_ms_median"] = sorted.empty() ? 0.0 : sorted[sorted.size() / 2];
                r["decode_ms_mean"] = ms.empty() ? 0.0 : mean / static_cast<double>(ms.size());
                r["decode_cpu_ms_median"] = cpu.empty() ? 0.0 : cpu[cpu.size() / 2];
                r["prefill_tokens"] = prefilled_since;
                r["prefill_tok_per_s"] = pf_s > 0 ? static_cast<double>(prefilled_since) / pf_s : 0.0;
                r["kv_bytes_allocated"] = s->kv_bytes();
                r["kv_budget_total"] = budget.total;
                r["kv_budget_at_depth"] = kv_budget(cfg, d, kl, false).total;
                r["kv_bytes_per_token"] = budget.bytes_per_token;
                r["rss_bytes"] = rss_bytes();
                r["numerics"] = o->numerics;
                r["kv_layout"] = o->kv_layout;
                std::printf("%s\n", r.dump().c_str());
                std::fflush(stdout);
                save();
                chunks_since_save = 0;
                t_prefill = std::chrono::steady_clock::now();
                prefilled_since = 0;
              }
              return 0;
            });
          }};
}
