// dsv4_decode_watch: the whole model's decode against the read probe over a long stretch of a
// machine whose bandwidth drifts (the 2-core build VMs move between ~25 and ~85 GB/s from minute
// to minute). Every round runs one probe pass (all its patterns), `--tokens` decode steps of the
// model with the linears' timer on (weight GB/s by kind), and one FP8 [4096 x 8192] GEMV pass
// over rotating copies of its own, 64-byte aligned and 28 bytes off (the flash-width shards'
// offset), a fixed serial computation (core_us: the core's own speed in that minute) and the
// cost of handing data between the pool's two threads (a cache line's round trip, an empty pool
// run, a 64 KiB read of what the other thread wrote, and a 64 KiB rewrite of what the other
// thread has just read, against a rewrite of the writer's own lines), so that each is judged
// against the probe of its own minute. It prints one line per round and, at the end, the medians
// of each fraction of the probe over the rounds whose probe fell in each 10 GB/s band, then the
// time outside the linears by phase of the forward pass (core/phase_stats.h) per band: what
// `dsv4 bench` cannot show when a fast minute comes and goes within one of its tests
// (docs/performance.md, "Aligned tensors", "Fast minutes are far cores").
//
// The decode runs at depths [0, --max-depth) (default 2048), starting over when it gets there.
//
//   build/dsv4_decode_watch --model /work/models/flash-width --rounds 2000 --threads 2 [--max-depth 128]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "core/bandwidth.h"
#include "core/error.h"
#include "core/mmap_file.h"
#include "core/phase_stats.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/linear.h"
#include "runtime/engine_impl.h"

namespace {

using namespace dsv4;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Options {
  std::string model;
  int rounds = 100, threads = 2, tokens = 16, max_depth = 2048;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw_error(a, " needs a value");
      return argv[++i];
    };
    auto positive = [&](const std::string& v) {
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n <= 0 || n > 1000000000)
        throw_error(a, " must be a positive integer, got '", v, "'");
      return static_cast<int>(n);
    };
    if (a == "--model") o.model = value();
    else if (a == "--rounds") o.rounds = positive(value());
    else if (a == "--threads") o.threads = positive(value());
    else if (a == "--tokens") o.tokens = positive(value());
    else if (a == "--max-depth") o.max_depth = positive(value());
    else throw_error("unknown argument '", a,
                     "' (expected --model DIR [--rounds N] [--threads T] [--tokens K] [--max-depth D])");
  }
  if (o.model.empty()) throw_error("--model DIR is required");
  if (o.tokens > o.max_depth) throw_error("--tokens ", o.tokens, " exceeds --max-depth ", o.max_depth);
  return o;
}

// Rotating copies of one FP8 [4096 x 8192] matrix (with its block scales) in huge-page memory,
// 64 bytes of slack each so that a view `off` bytes in stays inside.
class LoneGemv {
 public:
  explicit LoneGemv(int copies) : codes_(copies), scales_(copies) {
    for (int c = 0; c < copies; ++c) {
      codes_[c] = static_cast<uint8_t*>(map_huge(kCodes));
      scales_[c] = static_cast<uint8_t*>(map_huge(kScales));
      if (!codes_[c] || !scales_[c]) throw_error("decode_watch: cannot map the GEMV's weight copies");
      uint64_t s = 0x9E3779B97F4A7C15ull * (c + 1);
      for (size_t i = 0; i < kCodes; ++i) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        const uint8_t b = static_cast<uint8_t>(s >> 56);
        codes_[c][i] = (b & 0x7F) == 0x7F ? b ^ 1 : b;  // no NaN codes
      }
      std::memset(scales_[c], 120, kScales);
    }
    x_.assign(kK, 0.25f);
    y_.resize(kN);
  }
  ~LoneGemv() {
    for (size_t c = 0; c < codes_.size(); ++c) {
      unmap_huge(codes_[c], kCodes);
      unmap_huge(scales_[c], kScales);
    }
  }
  // GB/s of one pass over every copy, the views `off` bytes past the copies' aligned starts.
  double pass(int off, ThreadPool* pool) {
    const auto t0 = Clock::now();
    for (size_t c = 0; c < codes_.size(); ++c)
      cpu::linear_fp8({codes_[c] + off, scales_[c], kN, kK}, {x_.data(), 1, kK}, {y_.data(), kN}, pool);
    return double(codes_.size()) * kN * kK / seconds_since(t0) / 1e9;
  }

 private:
  static constexpr int64_t kN = 4096, kK = 8192;
  static constexpr size_t kCodes = size_t(kN * kK) + 64, kScales = size_t((kN / 128) * (kK / 128));
  std::vector<uint8_t*> codes_, scales_;
  std::vector<float> x_, y_;
};

// A fixed serial computation on the calling thread, its time in microseconds: a chain of 2^20
// dependent float64 multiply-adds, bound by the core's clock and not by memory. The rounds'
// medians by probe band show whether the minutes with fast memory have slower cores.
double core_us() {
  volatile double seed = 1.0;
  double x = seed;
  const auto t0 = Clock::now();
  for (int i = 0; i < (1 << 20); ++i) x = x * 0.9999999 + 1e-7;
  const double us = seconds_since(t0) * 1e6;
  seed = x;
  return us;
}

// The round trip of one cache line between the pool's threads 0 and 1 in nanoseconds (an atomic
// counter passed back and forth), and the time of an empty pool run in microseconds. A decode
// step hands its activations between the threads ~80 times a token; both show whether the two
// threads sit far apart (another core complex) in the minutes with fast memory.
struct Handoff {
  double trip_ns = 0, run_us = 0, read_us = 0, rewrite_us = 0, own_us = 0;
};
Handoff handoff(ThreadPool& pool) {
  Handoff h;
  if (pool.size() < 2) return h;
  struct Ctx {
    alignas(64) std::atomic<int> turn{0};
    double ns = 0;
  } c;
  constexpr int kTrips = 20000;
  pool.run(
      [](void* p, int t) {
        auto* c = static_cast<Ctx*>(p);
        if (t == 1) {
          for (int i = 0; i <= kTrips; ++i) {
            while (c->turn.load(std::memory_order_acquire) != 2 * i + 1) {
            }
            c->turn.store(2 * i + 2, std::memory_order_release);
          }
        } else if (t == 0) {
          Clock::time_point t0;
          for (int i = 0; i <= kTrips; ++i) {
            if (i == 1) t0 = Clock::now();  // the first trip waits for the worker to wake
            c->turn.store(2 * i + 1, std::memory_order_release);
            while (c->turn.load(std::memory_order_acquire) != 2 * i + 2) {
            }
          }
          c->ns = seconds_since(t0) * 1e9 / kTrips;
        }
      },
      &c);
  h.trip_ns = c.ns;
  constexpr int kRuns = 2000;
  const auto t0 = Clock::now();
  for (int i = 0; i < kRuns; ++i) pool.run([](void*, int) {}, nullptr);
  h.run_us = seconds_since(t0) * 1e6 / kRuns;
  // 64 KiB (the hyper-connection state of one decode row) written by thread 1, then read by
  // thread 0 (an integer sum, which the compiler vectorises): the time of that read, the median
  // of kReads.
  constexpr int kReads = 64;
  constexpr size_t kWords = 8192;
  static std::vector<uint64_t> buf(kWords);
  std::vector<double> us;
  for (int i = 0; i < kReads; ++i) {
    pool.run(
        [](void*, int t) {
          if (t == 1) std::fill(buf.begin(), buf.end(), uint64_t{1});
        },
        nullptr);
    const auto r0 = Clock::now();
    uint64_t s = 0;
    for (uint64_t v : buf) s += v;
    us.push_back(seconds_since(r0) * 1e6);
    if (s != kWords) throw_error("decode_watch: the remote read summed ", s);
  }
  std::nth_element(us.begin(), us.begin() + kReads / 2, us.end());
  h.read_us = us[kReads / 2];
  // Thread 1 then rewrites those 64 KiB, which thread 0 has just read (every line is also in
  // thread 0's cache and has to be taken back from there before the store: a hyper-connection
  // row after both threads read it in the mixing GEMV), then once more (its own lines): the
  // medians of kReads.
  struct Rewrite {
    double shared_us = 0, own_us = 0;
  } rw;
  std::vector<double> shared, own;
  for (int i = 0; i < kReads; ++i) {
    uint64_t s = 0;
    for (uint64_t v : buf) s += v;
    if (s != kWords) throw_error("decode_watch: the rewrite's read summed ", s);
    pool.run(
        [](void* p, int t) {
          if (t != 1) return;
          auto* r = static_cast<Rewrite*>(p);
          for (double* out : {&r->shared_us, &r->own_us}) {
            const auto w0 = Clock::now();
            std::fill(buf.begin(), buf.end(), uint64_t{1});
            *out = seconds_since(w0) * 1e6;
          }
        },
        &rw);
    shared.push_back(rw.shared_us);
    own.push_back(rw.own_us);
  }
  std::nth_element(shared.begin(), shared.begin() + kReads / 2, shared.end());
  std::nth_element(own.begin(), own.begin() + kReads / 2, own.end());
  h.rewrite_us = shared[kReads / 2];
  h.own_us = own[kReads / 2];
  return h;
}

struct Round {
  double probe, model, kind[4], other_ms, tok_s, aligned, off28, core, trip_ns, run_us, read_us, rewrite_us, own_us;
  std::map<std::string, double> phase_us;  // per token
};

int run(const Options& o) {
  EngineOptions eo;
  eo.model_dir = o.model;
  eo.numerics = Numerics::Fast;
  eo.threads = o.threads;
  eo.load_mtp = false;
  eo.populate_weights = true;
  std::fprintf(stderr, "decode_watch: loading %s\n", o.model.c_str());
  EngineImpl engine(eo, cpu::make_cpu_backend(o.threads));
  ThreadPool pool(o.threads);
  const ReadProbe probe(&pool, size_t{1} << 30);
  LoneGemv lone(8);
  SessionOptions so;
  so.max_context = o.max_depth;
  auto session = engine.new_session(so);
  std::vector<float> logits(static_cast<size_t>(engine.info().vocab_size));
  const int64_t vocab = engine.info().vocab_size;
  std::vector<Round> rounds;
  int64_t pos = 0;
  std::printf("round  probe | model  fp8    fp4    bf16   f32  GB/s  other_ms  tok/s | gemv aligned  off28 GB/s | core us  trip ns  run us  read us  rewrite us  own us\n");
  for (int r = 0; r < o.rounds; ++r) {
    Round rd{};
    rd.probe = probe.run(1).gb_per_s;
    if (pos + o.tokens > o.max_depth) {  // decode at depths [0, max_depth)
      session->reset();
      pos = 0;
    }
    cpu::linear_stats_reset();
    cpu::linear_stats_enable(true);
    phase_stats_reset();
    phase_stats_enable(true);
    const auto t0 = Clock::now();
    for (int i = 0; i < o.tokens; ++i, ++pos)
      session->decode(static_cast<int32_t>(2 + (pos * 7919) % std::max<int64_t>(1, vocab - 2)), logits);
    const double dt = seconds_since(t0);
    cpu::linear_stats_enable(false);
    phase_stats_enable(false);
    for (const PhaseTotal& ph : phase_stats()) rd.phase_us[ph.name] = ph.seconds / o.tokens * 1e6;
    const auto kinds = cpu::linear_stats();
    double bytes = 0, linear_s = 0;
    for (int k = 0; k < cpu::kLinearKinds; ++k) {
      bytes += kinds[k].weight_bytes;
      linear_s += kinds[k].seconds;
      rd.kind[k] = kinds[k].seconds > 0 ? kinds[k].weight_bytes / kinds[k].seconds / 1e9 : 0;
    }
    rd.model = bytes / dt / 1e9;
    rd.other_ms = (dt - linear_s) / o.tokens * 1e3;
    rd.tok_s = o.tokens / dt;
    rd.aligned = lone.pass(0, &pool);
    rd.off28 = lone.pass(28, &pool);
    rd.core = core_us();
    const Handoff hf = handoff(pool);
    rd.trip_ns = hf.trip_ns;
    rd.run_us = hf.run_us;
    rd.read_us = hf.read_us;
    rd.rewrite_us = hf.rewrite_us;
    rd.own_us = hf.own_us;
    std::printf("%5d %6.1f | %5.1f %6.1f %6.1f %6.1f %6.1f %9.3f %6.1f | %12.1f %6.1f | %7.0f %8.0f %7.2f %8.2f %11.2f %7.2f\n", r,
                rd.probe, rd.model, rd.kind[0], rd.kind[1], rd.kind[2], rd.kind[3], rd.other_ms, rd.tok_s, rd.aligned,
                rd.off28, rd.core, rd.trip_ns, rd.run_us, rd.read_us, rd.rewrite_us, rd.own_us);
    std::fflush(stdout);
    rounds.push_back(rd);
  }
  // Medians of each fraction of the probe, by the probe's 10 GB/s band.
  std::map<int, std::vector<Round>> bands;
  for (const Round& rd : rounds) bands[static_cast<int>(rd.probe / 10) * 10].push_back(rd);
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  std::printf("\nmedian fraction of the probe, by the probe's band\n");
  std::printf("probe GB/s  rounds  model   fp8    fp4    bf16  | gemv aligned  off28 | other_ms  tok/s | core us  trip ns  run us  read us  rewrite us  own us\n");
  for (const auto& [band, rs] : bands) {
    auto frac = [&](auto get) {
      std::vector<double> v;
      for (const Round& rd : rs) v.push_back(get(rd) / rd.probe);
      return median(v);
    };
    auto plain = [&](auto get) {
      std::vector<double> v;
      for (const Round& rd : rs) v.push_back(get(rd));
      return median(v);
    };
    std::printf("%4d-%-4d %8zu  %5.2f  %5.2f  %5.2f  %5.2f  | %12.2f  %5.2f | %8.3f %6.1f | %7.0f %8.0f %7.2f %8.2f %11.2f %7.2f\n", band, band + 10,
                rs.size(),
                frac([](const Round& x) { return x.model; }), frac([](const Round& x) { return x.kind[0]; }),
                frac([](const Round& x) { return x.kind[1]; }), frac([](const Round& x) { return x.kind[2]; }),
                frac([](const Round& x) { return x.aligned; }), frac([](const Round& x) { return x.off28; }),
                plain([](const Round& x) { return x.other_ms; }), plain([](const Round& x) { return x.tok_s; }),
                plain([](const Round& x) { return x.core; }), plain([](const Round& x) { return x.trip_ns; }),
                plain([](const Round& x) { return x.run_us; }), plain([](const Round& x) { return x.read_us; }),
                plain([](const Round& x) { return x.rewrite_us; }), plain([](const Round& x) { return x.own_us; }));
  }
  // The time outside the linears by phase of the forward pass (us per token, medians by band).
  std::vector<std::string> names;
  for (const Round& rd : rounds)
    for (const auto& [name, us] : rd.phase_us)
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  std::printf("\noutside the linears, us per token by phase (medians), by the probe's band\n%-14s", "phase");
  for (const auto& [band, rs] : bands) std::printf("  %3d-%-3d", band, band + 10);
  std::printf("\n");
  auto row = [&](const char* name, auto get) {
    std::printf("%-14s", name);
    for (const auto& [band, rs] : bands) {
      std::vector<double> v;
      for (const Round& rd : rs) v.push_back(get(rd));
      std::printf("  %7.1f", median(v));
    }
    std::printf("\n");
  };
  for (const std::string& name : names)
    row(name.c_str(), [&](const Round& rd) {
      const auto it = rd.phase_us.find(name);
      return it == rd.phase_us.end() ? 0.0 : it->second;
    });
  row("(the rest)", [](const Round& rd) {
    double sum = 0;
    for (const auto& [name, us] : rd.phase_us) sum += us;
    return rd.other_ms * 1e3 - sum;
  });
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "decode_watch: %s\n", e.what());
    return 1;
  }
}
