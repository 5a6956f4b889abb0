// dsv4 bench: end-to-end prefill and decode speed of a checkpoint.
//   For every depth d (tokens already in the context): prefill d tokens once (untimed, progress
//   on stderr); then per rep time a prefill of -p tokens ("pp<p>") and rewind to d, and time -n
//   single-token decodes ("tg<n>", from d + 1 at depth 0 so decode never starts at 0) and rewind.
//   -p and -n take comma-separated lists (one test per size, in the order given).
//   Rewind restores the exact state (light checkpoints every 1024 tokens + recompute), so every
//   rep sees the same context. Medians over --reps, spread = (max - min) / median.
//   --interleave: one session per depth, all filled first, then --reps rounds of one rep of every
//   test, so the depths are compared over the same minutes of a machine whose bandwidth drifts
//   (the default times depth after depth, holding one context).
//   Decode weight traffic = tok/s x active weight bytes per token, counted from the checkpoint's
//   tensors (routed experts scaled by experts-per-token / experts, one embedding row, no MTP
//   block; FP8/FP4 as stored), compared with a streaming-read probe: one long probe at the start
//   (the header line) and one short pass right before and one right after every timed repetition
//   (untimed), so each test is judged against the bandwidth the machine had while it ran: the
//   bandwidth of a shared machine drifts within seconds, and the mean of the two passes brackets
//   the run (probe_gb_per_s is the median of those means; bw_fraction = weight_gb_per_s /
//   probe_gb_per_s, so the CSV stays self-consistent). The engine reads every weight page at
//   load (private memory or populated mapping), so no test pays for page-cache misses or faults.
//   Prefill rows count every weight once per forward call (chunk of --chunk tokens).
//   --breakdown: after the table, each decode test's time per token and weight bytes per token
//   by kind of linear (FP8 / FP4 / BF16 / float32 weights, timed around each call while the
//   decode runs: cpu/linear.h, LinearTimer), their GB/s and fraction of that test's probe, and
//   the time outside the linears (attention, norms, routing, the hyper-connection mixes' glue);
//   then the same by shape within each kind (kind:NxK, xG for G weights per grouped call), the
//   largest traffic first, to find the matrix that reads below the machine's bandwidth; then the
//   time outside the linears by phase of the forward pass (core/phase_stats.h: attention, key
//   gather, hyper-connection mixes, router, ...), the longest first, and what no phase covers.
//   -o table | csv | json: the table, the CSV (fixed columns, read by other tools) or a JSON array
//   with each rep's seconds, the setup and the breakdown in every test's object.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/gen_common.h"
#include "core/bandwidth.h"
#include "core/error.h"
#include "core/phase_stats.h"
#include "core/thread_pool.h"
#include "dsv4/engine.h"
#include "format/config.h"
#include "format/safetensors.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/indexer_fp4.h"
#include "kernels/cpu/linear.h"
#include "runtime/engine_impl.h"

namespace {

struct WeightBytes {
  double per_token = 0;  // active bytes per decoded token
  double all = 0;        // every weight of the main model (one prefill chunk touches them all)
};

WeightBytes count_weight_bytes(const std::string& dir) {
  const dsv4::ModelConfig cfg = dsv4::load_config(dir + "/config.json");
  const auto store = dsv4::TensorStore::open_dir(dir);
  const double expert_frac =
      cfg.n_routed_experts > 0 ? double(cfg.n_activated_experts) / cfg.n_routed_experts : 1.0;
  WeightBytes wb;
  for (const auto& [name, t] : store.all()) {
    if (name.rfind("mtp.", 0) == 0) continue;
    const double b = static_cast<double>(t.nbytes);
    if (name.find(".ffn.experts.") != std::string::npos) {
      wb.per_token += b * expert_frac;
      wb.all += b;
    } else if (name == "embed.weight") {
      wb.per_token += b / std::max<int64_t>(1, cfg.vocab_size);
      wb.all += b / std::max<int64_t>(1, cfg.vocab_size);
    } else {
      wb.per_token += b;
      wb.all += b;
    }
  }
  return wb;
}

std::vector<int64_t> parse_list(const std::string& s, const char* opt) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || v < 0)
      dsv4::throw_error(opt, ": '", item, "' is not a non-negative integer");
    out.push_back(v);
  }
  if (out.empty()) dsv4::throw_error(opt, ": empty list");
  return out;
}

struct Row {
  std::string test;
  int64_t depth = 0;
  int threads = 0;
  int64_t tokens = 0;
  double seconds = 0;     // median
  double spread = 0;      // (max - min) / median of the time
  double tok_per_s = 0;
  double weight_gb_per_s = 0;
  double bw_fraction = 0;
  double probe = 0;       // median over reps of the mean probe pass before and after (GB/s)
  std::vector<double> samples;  // each rep's seconds, in order
  // --breakdown, decode tests: the linears' totals over all reps, the total timed seconds and
  // the tokens decoded in them.
  std::vector<dsv4::cpu::LinearShapeTotals> linears;
  std::vector<dsv4::PhaseTotal> phases;  // the time outside the linears by phase of the forward pass
  double total_seconds = 0;
  int64_t total_tokens = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

Row summarise(std::string test, int64_t depth, int threads, int64_t tokens,
              const std::vector<double>& secs, double bytes_per_run,
              const std::vector<double>& probes) {
  const double probe = median(probes);
  Row r;
  r.probe = probe;
  r.test = std::move(test);
  r.depth = depth;
  r.threads = threads;
  r.tokens = tokens;
  r.seconds = median(secs);
  r.samples = secs;
  const auto [lo, hi] = std::minmax_element(secs.begin(), secs.end());
  r.spread = r.seconds > 0 ? (*hi - *lo) / r.seconds : 0;
  r.tok_per_s = r.seconds > 0 ? tokens / r.seconds : 0;
  r.weight_gb_per_s = r.seconds > 0 ? bytes_per_run / r.seconds / 1e9 : 0;
  r.bw_fraction = probe > 0 ? r.weight_gb_per_s / probe : 0;
  return r;
}

// Adds the linears' totals of one rep (linear_stats_by_shape) to a test's.
void add_linears(std::vector<dsv4::cpu::LinearShapeTotals>& into,
                 const std::vector<dsv4::cpu::LinearShapeTotals>& rep) {
  for (const auto& s : rep) {
    auto it = std::find_if(into.begin(), into.end(), [&](const auto& t) { return t.shape.key() == s.shape.key(); });
    if (it == into.end())
      into.push_back(s);
    else
      it->totals += s.totals;
  }
}

// Adds the phases' totals of one rep (phase_stats) to a test's.
void add_phases(std::vector<dsv4::PhaseTotal>& into, const std::vector<dsv4::PhaseTotal>& rep) {
  for (const auto& p : rep) {
    auto it = std::find_if(into.begin(), into.end(), [&](const auto& q) { return q.name == p.name; });
    if (it == into.end()) {
      into.push_back(p);
    } else {
      it->calls += p.calls;
      it->seconds += p.seconds;
    }
  }
}

// One decode test's time and weight traffic per token by kind of linear, and by shape within a
// kind (--breakdown).
struct Share {
  std::string what;  // the kind ("fp8"), or kind:NxK[xG] for a shape ("fp8:32768x1024", "fp4:2048x4096x12")
  double ms_per_token, share, mb_per_token, gb_per_s, bw_fraction, calls_per_token;
};
struct Breakdown {
  std::vector<Share> linears;  // kinds with calls
  std::vector<Share> shapes;   // kind by kind, the largest traffic first
  double other_ms_per_token = 0, other_share = 0;
  std::vector<Share> phases;   // "other" by phase of the forward pass, the longest first, then the rest
};

std::string shape_name(const dsv4::cpu::LinearShape& s) {
  std::string out = std::string(dsv4::cpu::linear_kind_name(s.kind)) + ":" + std::to_string(s.n) + "x" +
                    std::to_string(s.k);
  if (s.groups > 1) out += "x" + std::to_string(s.groups);
  if (s.mixed) out += "+";  // the groups' shapes differ; n x k is the first one's
  return out;
}

Breakdown breakdown(const Row& r) {
  using dsv4::cpu::LinearKind;
  using dsv4::cpu::LinearTotals;
  const double tokens = double(std::max<int64_t>(1, r.total_tokens));
  auto share = [&](std::string what, const LinearTotals& t) {
    const double gbs = t.seconds > 0 ? t.weight_bytes / t.seconds / 1e9 : 0;
    return Share{std::move(what), 1e3 * t.seconds / tokens,
                 r.total_seconds > 0 ? 100 * t.seconds / r.total_seconds : 0.0, t.weight_bytes / tokens / 1e6,
                 gbs, r.probe > 0 ? gbs / r.probe : 0.0, double(t.calls) / tokens};
  };
  std::array<LinearTotals, dsv4::cpu::kLinearKinds> kinds{};
  Breakdown b;
  double in_linears = 0;
  for (const auto& s : r.linears) {
    kinds[static_cast<size_t>(s.shape.kind)] += s.totals;
    in_linears += s.totals.seconds;
    b.shapes.push_back(share(shape_name(s.shape), s.totals));
  }
  for (int k = 0; k < dsv4::cpu::kLinearKinds; ++k)
    if (kinds[static_cast<size_t>(k)].calls > 0)
      b.linears.push_back(share(dsv4::cpu::linear_kind_name(static_cast<LinearKind>(k)), kinds[static_cast<size_t>(k)]));
  const double other = std::max(0.0, r.total_seconds - in_linears);
  b.other_ms_per_token = 1e3 * other / tokens;
  b.other_share = r.total_seconds > 0 ? 100 * other / r.total_seconds : 0.0;
  double in_phases = 0;
  for (const auto& p : r.phases) {
    b.phases.push_back(Share{p.name, 1e3 * p.seconds / tokens,
                             r.total_seconds > 0 ? 100 * p.seconds / r.total_seconds : 0.0, 0, 0, 0,
                             double(p.calls) / tokens});
    in_phases += p.seconds;
  }
  std::stable_sort(b.phases.begin(), b.phases.end(),
                   [](const Share& x, const Share& y) { return x.ms_per_token > y.ms_per_token; });
  if (!r.phases.empty()) {
    const double rest = std::max(0.0, other - in_phases);
    b.phases.push_back(Share{"(the rest)", 1e3 * rest / tokens,
                             r.total_seconds > 0 ? 100 * rest / r.total_seconds : 0.0, 0, 0, 0, 0});
  }
  return b;
}

// The --breakdown tables of one decode test: by kind, then by shape.
void print_breakdown(std::FILE* f, const Row& r) {
  std::fprintf(f, "\ndecode breakdown, %s at depth %lld (probe %.2f GB/s): per token, by kind of linear\n",
               r.test.c_str(), static_cast<long long>(r.depth), r.probe);
  const Breakdown b = breakdown(r);
  auto table = [&](const char* head, const std::vector<Share>& rows, int width) {
    std::fprintf(f, "  %-*s %10s %7s %10s %9s %8s %9s\n", width, head, "ms/token", "share", "MB/token", "GB/s",
                 "bw_frac", "calls/tok");
    for (const Share& k : rows)
      std::fprintf(f, "  %-*s %10.3f %6.1f%% %10.2f %9.2f %8.3f %9.1f\n", width, k.what.c_str(), k.ms_per_token,
                   k.share, k.mb_per_token, k.gb_per_s, k.bw_fraction, k.calls_per_token);
  };
  table("kind", b.linears, 6);
  std::fprintf(f, "  %-6s %10.3f %6.1f%%\n", "other", b.other_ms_per_token, b.other_share);
  size_t width = 5;
  for (const Share& s : b.shapes) width = std::max(width, s.what.size());
  std::fprintf(f, "by shape (kind:n x k, x groups per call):\n");
  table("shape", b.shapes, static_cast<int>(width));
  if (b.phases.empty()) return;
  std::fprintf(f, "other, by phase of the forward pass (what runs between the linears):\n");
  std::fprintf(f, "  %-14s %10s %7s %9s\n", "phase", "ms/token", "share", "calls/tok");
  for (const Share& p : b.phases)
    std::fprintf(f, "  %-14s %10.3f %6.1f%% %9.1f\n", p.what.c_str(), p.ms_per_token, p.share, p.calls_per_token);
}

// -o json: one object per test with the CSV's columns, each rep's seconds, the run's setup and,
// for decode tests under --breakdown, the split by kind of linear and by shape.
nlohmann::ordered_json json_rows(const std::vector<Row>& rows, const nlohmann::ordered_json& setup) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const Row& r : rows) {
    nlohmann::ordered_json j = setup;
    j["test"] = r.test;
    j["depth"] = r.depth;
    j["threads"] = r.threads;
    j["tokens"] = r.tokens;
    j["seconds"] = r.seconds;
    j["tok_per_s"] = r.tok_per_s;
    j["weight_gb_per_s"] = r.weight_gb_per_s;
    j["bw_fraction"] = r.bw_fraction;
    j["spread"] = r.spread;
    j["probe_gb_per_s"] = r.probe;
    j["samples_s"] = r.samples;
    if (r.total_tokens > 0) {
      const Breakdown b = breakdown(r);
      nlohmann::ordered_json kinds = nlohmann::ordered_json::object();
      auto fields = [](const Share& k) {
        return nlohmann::ordered_json{{"ms_per_token", k.ms_per_token}, {"share_pct", k.share},
                                      {"mb_per_token", k.mb_per_token}, {"gb_per_s", k.gb_per_s},
                                      {"bw_fraction", k.bw_fraction}, {"calls_per_token", k.calls_per_token}};
      };
      for (const Share& k : b.linears) kinds[k.what] = fields(k);
      kinds["other"] = {{"ms_per_token", b.other_ms_per_token}, {"share_pct", b.other_share}};
      nlohmann::ordered_json shapes = nlohmann::ordered_json::object();
      for (const Share& k : b.shapes) shapes[k.what] = fields(k);
      kinds["shapes"] = shapes;
      nlohmann::ordered_json phases = nlohmann::ordered_json::object();
      for (const Share& p : b.phases)
        phases[p.what] = {{"ms_per_token", p.ms_per_token}, {"share_pct", p.share},
                          {"calls_per_token", p.calls_per_token}};
      kinds["phases"] = phases;
      j["breakdown"] = kinds;
    }
    out.push_back(std::move(j));
  }
  return out;
}

std::string svg_plot(const std::vector<Row>& rows) {
  std::map<std::string, std::vector<const Row*>> series;
  std::vector<int64_t> depths;
  double ymax = 0;
  for (const Row& r : rows) {
    series[r.test].push_back(&r);
    if (std::find(depths.begin(), depths.end(), r.depth) == depths.end()) depths.push_back(r.depth);
    ymax = std::max(ymax, r.tok_per_s);
  }
  std::sort(depths.begin(), depths.end());
  if (ymax <= 0) ymax = 1;
  const double W = 640, H = 400, L = 70, R = 140, T = 30, B = 50;
  auto x_of = [&](int64_t d) {
    const size_t i = std::find(depths.begin(), depths.end(), d) - depths.begin();
    return depths.size() == 1 ? L + (W - L - R) / 2
                              : L + (W - L - R) * double(i) / double(depths.size() - 1);
  };
  auto y_of = [&](double v) { return T + (H - T - B) * (1.0 - v / (ymax * 1.1)); };
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << W / 2 << "\" y=\"18\" text-anchor=\"middle\">dsv4 bench: tokens/s vs depth</text>\n"
    << "<line x1=\"" << L << "\" y1=\"" << H - B << "\" x2=\"" << W - R << "\" y2=\"" << H - B
    << "\" stroke=\"black\"/>\n<line x1=\"" << L << "\" y1=\"" << T << "\" x2=\"" << L << "\" y2=\""
    << H - B << "\" stroke=\"black\"/>\n";
  for (int i = 0; i <= 4; ++i) {
    const double v = ymax * 1.1 * i / 4;
    // The label in its own stream: std::fixed on `s` would print the coordinates after it with
    // decimals too.
    std::ostringstream label;
    label << std::fixed;
    label.precision(v == 0 || v >= 10 ? 0 : 2);
    label << v;
    s << "<text x=\"" << L - 6 << "\" y=\"" << y_of(v) + 4 << "\" text-anchor=\"end\">" << label.str()
      << "</text>\n";
  }
  for (int64_t d : depths)
    s << "<text x=\"" << x_of(d) << "\" y=\"" << H - B + 18 << "\" text-anchor=\"middle\">" << d
      << "</text>\n";
  s << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 12 << "\" text-anchor=\"middle\">depth (tokens in context)</text>\n";
  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"};
  int ci = 0;
  for (const auto& [name, pts] : series) {
    const char* c = colors[ci % 5];
    s << "<polyline fill=\"none\" stroke=\"" << c << "\" stroke-width=\"2\" points=\"";
    for (const Row* r : pts) s << x_of(r->depth) << "," << y_of(r->tok_per_s) << " ";
    s << "\"/>\n";
    for (const Row* r : pts)
      s << "<circle cx=\"" << x_of(r->depth) << "\" cy=\"" << y_of(r->tok_per_s) << "\" r=\"3\" fill=\"" << c << "\"/>\n";
    s << "<text x=\"" << W - R + 10 << "\" y=\"" << T + 16 + 18 * ci << "\" fill=\"" << c << "\">"
      << name << " tok/s</text>\n";
    ++ci;
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace

DSV4_COMMAND(bench) {
  struct Opts {
    std::string model, depths = "0", numerics = "fast", backend = "cpu", svg, weights = "auto", output = "table";
    std::string prompts = "512", gens = "64";
    int64_t chunk = dsv4::SessionOptions{}.prefill_chunk, bw_mib = 1024;
    int threads = 0, reps = 3;
    bool csv = false, breakdown = false, interleave = false;
  };
  auto o = std::make_shared<Opts>();
  return {"bench", "Prefill / decode speed at several context depths (tok/s, weight GB/s)",
          [o](CLI::App& a) {
            a.add_option("-m,--model", o->model, "checkpoint directory")->required();
            a.add_option("-p,--prompt", o->prompts,
                         "prompt tokens per prefill test, comma-separated for several (0: none)");
            a.add_option("-n,--gen", o->gens,
                         "decoded tokens per generation test, comma-separated for several (0: none)");
            a.add_option("-d,--depth", o->depths, "comma-separated context depths");
            a.add_option("-t,--threads", o->threads, "threads (0: all hardware threads)");
            a.add_option("-r,--reps", o->reps, "repetitions per test (median reported)");
            a.add_option("--chunk", o->chunk, "prefill chunk (rows per forward call; default: the engine's)");
            a.add_option("--numerics", o->numerics, "fast | reference")
                ->check(CLI::IsMember({"reference", "fast"}));
            a.add_option("--backend", o->backend,
                         "fast numerics on: cpu (SIMD kernels, kernels/cpu) | engine (Engine::load's choice)")
                ->check(CLI::IsMember({"cpu", "engine"}));
            a.add_option("--bw-mib", o->bw_mib, "bandwidth probe buffer (MiB)");
            dsv4::cli::add_weight_memory_flag(a, o->weights);
            a.add_option("-o,--output", o->output,
                         "table (default), csv (header + one row per test) or json (an array of one "
                         "object per test: the CSV's columns, each rep's seconds, the setup and, with "
                         "--breakdown, the split by kind of linear); the model line goes to stderr "
                         "for csv and json")
                ->check(CLI::IsMember({"table", "csv", "json"}));
            a.add_flag("--csv", o->csv, "the same as -o csv");
            a.add_flag("--breakdown", o->breakdown,
                       "after the table: each decode test's time and weight GB/s by kind of linear "
                       "(FP8 / FP4 / BF16 / F32) and the time outside them, then by shape (kind:NxK) "
                       "(stderr with --csv)");
            a.add_option("--svg", o->svg, "write a tok/s vs depth plot to FILE");
            a.add_flag("--interleave", o->interleave,
                       "one session per depth, all filled first, then rounds of one rep of every test: "
                       "every depth is timed over the same minutes of a machine whose bandwidth drifts "
                       "(holds every depth's context at once)");
            return std::function<int()>([o] {
              using namespace dsv4;
              using clock = std::chrono::steady_clock;
              if (o->reps < 1) throw_error("--reps must be >= 1, got ", o->reps);
              if (o->csv) {
                if (o->output == "json") throw_error("--csv and -o json: choose one output");
                o->output = "csv";
              }
              const bool table = o->output == "table";
              if (o->threads < 0) throw_error("--threads must be >= 0, got ", o->threads);
              if (o->chunk < 1) throw_error("--chunk must be >= 1, got ", o->chunk);
              if (o->bw_mib < 16) throw_error("--bw-mib must be >= 16, got ", o->bw_mib);
              // Test sizes in the order given, without zeros (0: no such test) and repeats.
              auto sizes = [](const std::string& list, const char* flag) {
                std::vector<int64_t> out;
                for (int64_t v : parse_list(list, flag))
                  if (v > 0 && std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
                return out;
              };
              const std::vector<int64_t> prompts = sizes(o->prompts, "-p"), gens = sizes(o->gens, "-n");
              if (prompts.empty() && gens.empty()) throw_error("-p and -n are both 0: nothing to run");
              const int64_t longest = std::max(prompts.empty() ? 0 : *std::max_element(prompts.begin(), prompts.end()),
                                               gens.empty() ? 0 : *std::max_element(gens.begin(), gens.end()));
              const std::vector<int64_t> depths = parse_list(o->depths, "--depth");
              const WeightBytes wb = count_weight_bytes(o->model);

              EngineOptions eo;
              eo.model_dir = o->model;
              eo.numerics = o->numerics == "reference" ? Numerics::Reference : Numerics::Fast;
              eo.threads = o->threads;
              eo.load_mtp = false;
              // Every weight byte in memory before anything is timed (no page faults in the first
              // tests; mapped files are populated), with progress on stderr.
              eo.weight_memory = dsv4::cli::parse_weight_memory(o->weights);
              eo.populate_weights = true;
              eo.populate_progress = dsv4::cli::weight_progress("bench: ");
              const auto t_load = clock::now();
              std::unique_ptr<Engine> engine =
                  eo.numerics == Numerics::Fast && o->backend == "cpu"
                      ? std::make_unique<EngineImpl>(eo, cpu::make_cpu_backend(o->threads))
                      : Engine::load(eo);
              const double load_s = std::chrono::duration<double>(clock::now() - t_load).count();
              const int64_t V = engine->info().vocab_size;
              ThreadPool probe_pool(o->threads);
              const int threads = probe_pool.size();
              const ReadProbe probe(&probe_pool, size_t(o->bw_mib) << 20);
              const BandwidthResult bw = probe.run(5);
              auto probe_pass = [&] { return probe.run(1).gb_per_s; };
              std::FILE* info = table ? stdout : stderr;
              std::fprintf(info,
                           "model %s (%s numerics, %s backend, isa %s, gemm %s, gemv %s, gemv order %s, indexer %s, weights %s): loaded in %.2f s; %d "
                           "threads; read bandwidth %.2f GB/s (best of 5 passes of %zu patterns, median %.2f, fastest: %s); active "
                           "weights %.3f GB/token, all weights %.3f GB\n",
                           o->model.c_str(), o->numerics.c_str(),
                           eo.numerics == Numerics::Fast ? o->backend.c_str() : "reference",
                           cpu::isa_name(cpu::active_isa()),
                           cpu::active_isa() == cpu::Isa::Avx512Amx ? "amx"
                           : cpu::active_isa() == cpu::Isa::Avx512Bf16
                               ? cpu::gemm_unit_name(cpu::gemm_unit())
                           : cpu::active_isa() != cpu::Isa::Scalar ? "fma"
                                                                   : "scalar",
                           cpu::fp8_gemv_multiply_name(), cpu::gemv_order_name(cpu::gemv_order()),
                           cpu::indexer_engine_name(), weight_memory_name(engine->info().weight_memory), load_s,
                           threads, bw.gb_per_s, probe_patterns().size(), bw.median_gb_per_s, bw.pattern,
                           wb.per_token / 1e9, wb.all / 1e9);

              // Deterministic token stream (ids 2.. avoid BOS/EOS-like specials at 0/1).
              const int64_t maxd = *std::max_element(depths.begin(), depths.end());
              const int64_t need = maxd + longest + 2;
              if (const int64_t trained = engine->info().max_context; trained > 0 && need - 1 > trained)
                std::fprintf(stderr,
                             "bench: warning: depth %lld + %lld tokens goes past the model's context of %lld "
                             "(max_position_embeddings); those positions are computed all the same\n",
                             static_cast<long long>(maxd), static_cast<long long>(longest),
                             static_cast<long long>(trained));
              std::vector<int32_t> toks(static_cast<size_t>(need));
              uint64_t s = 0x243F6A8885A308D3ull;
              for (auto& t : toks) {
                s = s * 6364136223846793005ull + 1442695040888963407ull;
                t = static_cast<int32_t>(2 + (s >> 33) % static_cast<uint64_t>(std::max<int64_t>(1, V - 2)));
              }
              SessionOptions so;
              so.max_context = need + 1;
              so.prefill_chunk = o->chunk;
              std::vector<float> logits(static_cast<size_t>(V));
              // The context a depth's tests start from: d tokens (at depth 0, none for the prefill
              // tests and 1 for decode, which never starts at position 0).
              auto prefill_to = [&](Session& session, int64_t depth) {
                session.reset();
                if (depth == 0) return;
                const auto t0 = clock::now();
                // Redrawn in place on a terminal; in a log, one line when done.
                const bool tty = dsv4::cli::is_tty(stderr);
                session.prefill(std::span<const int32_t>(toks.data(), depth), {},
                                [&](int64_t done, int64_t total) {
                                  if (tty)
                                    std::fprintf(stderr, "\rbench: filling the context %lld / %lld tokens",
                                                 static_cast<long long>(done), static_cast<long long>(total));
                                  return true;
                                });
                const double s = std::chrono::duration<double>(clock::now() - t0).count();
                if (tty) std::fprintf(stderr, " (%.1f s)\n", s);
                else std::fprintf(stderr, "bench: filled the context with %lld tokens in %.1f s\n",
                                  static_cast<long long>(depth), s);
              };

              // Every test (a prefill or decode size at a depth) with its samples, in the order of
              // the output rows: per depth, the prefill tests, then the decode tests.
              struct Test {
                int64_t depth = 0, start = 0, size = 0;
                bool decode = false;
                std::vector<double> secs, probes;
                std::vector<cpu::LinearShapeTotals> linears;
                std::vector<PhaseTotal> phases;
              };
              std::vector<Test> tests;
              for (int64_t d : depths) {
                const int64_t start = std::max<int64_t>(d, 1);
                for (const int64_t np : prompts) tests.push_back({d, start, np, false, {}, {}, {}, {}});
                for (const int64_t ng : gens) tests.push_back({d, start, ng, true, {}, {}, {}, {}});
              }
              // One rep of a test, timed between two untimed probe passes.
              auto run_rep = [&](Session& session, Test& t) {
                if (!t.decode) {
                  session.rewind(t.depth);
                  const double before = probe_pass();
                  const auto t0 = clock::now();
                  session.prefill(std::span<const int32_t>(toks.data() + t.depth, t.size), logits);
                  t.secs.push_back(std::chrono::duration<double>(clock::now() - t0).count());
                  t.probes.push_back(0.5 * (before + probe_pass()));
                  return;
                }
                if (session.position() >= t.start) {
                  session.rewind(t.start);
                } else {
                  session.prefill(std::span<const int32_t>(toks.data() + session.position(),
                                                           t.start - session.position()), {});
                }
                const double before = probe_pass();
                cpu::linear_stats_reset();
                cpu::linear_stats_enable(o->breakdown);  // the timed decodes only
                phase_stats_reset();
                phase_stats_enable(o->breakdown);
                const auto t0 = clock::now();
                for (int64_t i = 0; i < t.size; ++i) session.decode(toks[t.start + i], logits);
                t.secs.push_back(std::chrono::duration<double>(clock::now() - t0).count());
                cpu::linear_stats_enable(false);
                phase_stats_enable(false);
                t.probes.push_back(0.5 * (before + probe_pass()));
                add_linears(t.linears, cpu::linear_stats_by_shape());
                if (o->breakdown) add_phases(t.phases, phase_stats());
              };
              auto fill_for = [&](Session& session, int64_t d) {
                prefill_to(session, d == 0 && !prompts.empty() ? 0 : std::max<int64_t>(d, 1));
              };
              if (!o->interleave) {
                // One session, depth after depth: each test's reps back to back.
                auto session = engine->new_session(so);
                for (size_t i = 0; i < tests.size(); ++i) {
                  if (i == 0 || tests[i].depth != tests[i - 1].depth) fill_for(*session, tests[i].depth);
                  for (int r = 0; r < o->reps; ++r) run_rep(*session, tests[i]);
                }
              } else {
                // One session per depth, all filled first; then rounds of one rep of every test, so
                // each depth's reps are spread over the same minutes of a drifting machine.
                std::vector<std::unique_ptr<Session>> sessions;
                for (int64_t d : depths) {
                  sessions.push_back(engine->new_session(so));
                  fill_for(*sessions.back(), d);
                }
                for (int r = 0; r < o->reps; ++r)
                  for (Test& t : tests)
                    run_rep(*sessions[std::find(depths.begin(), depths.end(), t.depth) - depths.begin()], t);
              }

              std::vector<Row> rows;
              for (const Test& t : tests) {
                if (!t.decode) {
                  const double chunks = double((t.size + o->chunk - 1) / o->chunk);
                  rows.push_back(summarise("pp" + std::to_string(t.size), t.depth, threads, t.size, t.secs,
                                           chunks * wb.all, t.probes));
                  continue;
                }
                rows.push_back(summarise("tg" + std::to_string(t.size), t.depth, threads, t.size, t.secs,
                                         double(t.size) * wb.per_token, t.probes));
                if (o->breakdown) {
                  rows.back().linears = t.linears;
                  rows.back().phases = t.phases;
                  for (double x : t.secs) rows.back().total_seconds += x;
                  rows.back().total_tokens = t.size * o->reps;
                }
              }

              if (o->output == "json") {
                const nlohmann::ordered_json setup = {
                    {"model", o->model}, {"numerics", o->numerics}, {"isa", cpu::isa_name(cpu::active_isa())},
                    {"weights", weight_memory_name(engine->info().weight_memory)}, {"reps", o->reps},
                    {"chunk", o->chunk}, {"interleave", o->interleave}, {"active_weight_gb_per_token", wb.per_token / 1e9},
                    {"probe_start_gb_per_s", bw.gb_per_s}, {"probe_start_pattern", bw.pattern}};
                std::printf("%s\n", json_rows(rows, setup).dump(2).c_str());
              } else if (o->output == "csv") {
                std::printf("test,depth,threads,tokens,seconds,tok_per_s,weight_gb_per_s,bw_fraction,spread,probe_gb_per_s,isa\n");
                for (const Row& r : rows)
                  std::printf("%s,%lld,%d,%lld,%.6f,%.4f,%.4f,%.4f,%.4f,%.4f,%s\n", r.test.c_str(),
                              static_cast<long long>(r.depth), r.threads,
                              static_cast<long long>(r.tokens), r.seconds, r.tok_per_s,
                              r.weight_gb_per_s, r.bw_fraction, r.spread, r.probe,
                              cpu::isa_name(cpu::active_isa()));
              } else {
                std::printf("%-8s %8s %7s %7s %10s %10s %9s %8s %7s %8s\n", "test", "depth", "threads",
                            "tokens", "seconds", "tok/s", "weightGB/s", "bw_frac", "spread", "probeGB/s");
                for (const Row& r : rows)
                  std::printf("%-8s %8lld %7d %7lld %10.4f %10.2f %9.3f %8.3f %6.1f%% %8.2f\n",
                              r.test.c_str(), static_cast<long long>(r.depth), r.threads,
                              static_cast<long long>(r.tokens), r.seconds, r.tok_per_s,
                              r.weight_gb_per_s, r.bw_fraction, 100 * r.spread, r.probe);
              }
              if (o->breakdown && o->output != "json")
                for (const Row& r : rows)
                  if (r.total_tokens > 0) print_breakdown(table ? stdout : stderr, r);
              if (!o->svg.empty()) {
                std::ofstream f(o->svg);
                if (!f) throw_error("--svg: cannot write ", o->svg);
                f << svg_plot(rows);
              }
              return 0;
            });
          }};
}
