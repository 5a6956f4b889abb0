// End-to-end forward pass on the tiny golden checkpoint tiny-d (window 128, CSA + HCA layers, 16
// experts): prefill of 256 tokens and decode steps after it, for the reference (bit-exact scalar)
// and fast numerics. Counter tok/s = tokens processed per second.
// Example: build/dsv4_bench --benchmark_filter=Forward
#include <benchmark/benchmark.h>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/engine_impl.h"

namespace {

using namespace dsv4;

const std::string kSet = std::string(DSV4_BENCH_DATA) + "/tiny-d";

std::vector<int32_t> stream() {
  std::ifstream f(kSet + "/prefill_only/meta.json");
  return nlohmann::json::parse(f)["tokens"].get<std::vector<int32_t>>();
}

EngineImpl& engine(Numerics num) {
  auto opts = [](Numerics n) {
    EngineOptions o;
    o.model_dir = kSet + "/ckpt";
    o.numerics = n;
    return o;
  };
  static EngineImpl ref(opts(Numerics::Reference));
  static EngineImpl fast(opts(Numerics::Fast));
  return num == Numerics::Reference ? ref : fast;
}

void BM_ForwardPrefill256(benchmark::State& st, Numerics num) {
  EngineImpl& eng = engine(num);
  const auto toks = stream();
  SessionOptions so;
  so.max_context = 512;
  auto s = eng.new_session(so);
  std::vector<float> logits(static_cast<size_t>(eng.info().vocab_size));
  for (auto _ : st) {
    s->reset();
    s->prefill(std::span<const int32_t>(toks.data(), 256), logits);
  }
  st.counters["tok/s"] = benchmark::Counter(256.0 * st.iterations(), benchmark::Counter::kIsRate);
}

void BM_ForwardDecode(benchmark::State& st, Numerics num) {
  EngineImpl& eng = engine(num);
  const auto toks = stream();
  SessionOptions so;
  so.max_context = static_cast<int64_t>(toks.size());
  auto s = eng.new_session(so);
  std::vector<float> logits(static_cast<size_t>(eng.info().vocab_size));
  s->prefill(std::span<const int32_t>(toks.data(), 256), logits);
  size_t i = 256;
  for (auto _ : st) {
    if (i == toks.size()) {  // restart the timeline outside the measurement
      st.PauseTiming();
      s->reset();
      s->prefill(std::span<const int32_t>(toks.data(), 256), logits);
      i = 256;
      st.ResumeTiming();
    }
    s->decode(toks[i++], logits);
  }
  st.counters["tok/s"] = benchmark::Counter(static_cast<double>(st.iterations()), benchmark::Counter::kIsRate);
}

BENCHMARK_CAPTURE(BM_ForwardPrefill256, reference, Numerics::Reference)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ForwardPrefill256, fast, Numerics::Fast)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ForwardDecode, reference, Numerics::Reference)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ForwardDecode, fast, Numerics::Fast)->Unit(benchmark::kMillisecond);

}  // namespace
