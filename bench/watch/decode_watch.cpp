// dsv4_decode_watch: the whole model's decode against the read probe over a long stretch of a
// machine whose bandwidth drifts (the 2-core build VMs move between ~25 and ~85 GB/s from minute
// to minute). Every round runs one probe pass (all its patterns), `--tokens` decode steps of the
// model with the linears' timer on (weight GB/s by kind), and one FP8 [4096 x 8192] GEMV pass
// over rotating copies of its own, 64-byte aligned and 28 bytes off (the flash-width shards'
// offset), and a fixed serial computation (core_us: the core's own speed in that minute), so that
// each is judged against the probe of its own minute. It prints one line per
// round and, at the end, the medians of each fraction of the probe over the rounds whose probe
// fell in each 10 GB/s band: what `dsv4 bench` cannot show when a fast minute comes and goes
// within one of its tests (docs/performance.md, "Aligned tensors").
//
//   build/dsv4_decode_watch --model /work/models/flash-width --rounds 2000 --threads 2
#include <algorithm>
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
  int rounds = 100, threads = 2, tokens = 16;
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
    else throw_error("unknown argument '", a, "' (expected --model DIR [--rounds N] [--threads T] [--tokens K])");
  }
  if (o.model.empty()) throw_error("--model DIR is required");
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

struct Round {
  double probe, model, kind[4], other_ms, tok_s, aligned, off28, core;
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
  so.max_context = 4096;
  auto session = engine.new_session(so);
  std::vector<float> logits(static_cast<size_t>(engine.info().vocab_size));
  const int64_t vocab = engine.info().vocab_size;
  std::vector<Round> rounds;
  int64_t pos = 0;
  std::printf("round  probe | model  fp8    fp4    bf16   f32  GB/s  other_ms  tok/s | gemv aligned  off28 GB/s | core us\n");
  for (int r = 0; r < o.rounds; ++r) {
    Round rd{};
    rd.probe = probe.run(1).gb_per_s;
    if (pos + o.tokens > 2048) {  // stay near depth 0
      session->reset();
      pos = 0;
    }
    cpu::linear_stats_reset();
    cpu::linear_stats_enable(true);
    const auto t0 = Clock::now();
    for (int i = 0; i < o.tokens; ++i, ++pos)
      session->decode(static_cast<int32_t>(2 + (pos * 7919) % std::max<int64_t>(1, vocab - 2)), logits);
    const double dt = seconds_since(t0);
    cpu::linear_stats_enable(false);
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
    std::printf("%5d %6.1f | %5.1f %6.1f %6.1f %6.1f %6.1f %9.3f %6.1f | %12.1f %6.1f | %7.0f\n", r, rd.probe,
                rd.model, rd.kind[0], rd.kind[1], rd.kind[2], rd.kind[3], rd.other_ms, rd.tok_s, rd.aligned,
                rd.off28, rd.core);
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
  std::printf("probe GB/s  rounds  model   fp8    fp4    bf16  | gemv aligned  off28 | other_ms  tok/s | core us\n");
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
    std::printf("%4d-%-4d %8zu  %5.2f  %5.2f  %5.2f  %5.2f  | %12.2f  %5.2f | %8.3f %6.1f | %7.0f\n", band, band + 10,
                rs.size(),
                frac([](const Round& x) { return x.model; }), frac([](const Round& x) { return x.kind[0]; }),
                frac([](const Round& x) { return x.kind[1]; }), frac([](const Round& x) { return x.kind[2]; }),
                frac([](const Round& x) { return x.aligned; }), frac([](const Round& x) { return x.off28; }),
                plain([](const Round& x) { return x.other_ms; }), plain([](const Round& x) { return x.tok_s; }),
                plain([](const Round& x) { return x.core; }));
  }
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
