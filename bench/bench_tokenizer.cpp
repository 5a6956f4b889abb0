// Tokenizer throughput (Google Benchmark).
//   DSV4_TOKENIZER_DIR=tests/js/tokenizer DSV4_TOKENIZER_CORPUS=build/tokenizer_vs_js/corpus.txt
//     build/dsv4_bench --benchmark_filter=Tokenizer
// DSV4_TOKENIZER_DIR: directory with tokenizer.json (default tests/js/tokenizer, as written by
// scripts/fetch_tokenizer.sh). DSV4_TOKENIZER_CORPUS: a UTF-8 text file (default
// build/tokenizer_vs_js/corpus.txt, written by tests/js/make_corpus.mjs or the ctest script).
// Reports bytes/s of input text; compare with `node tests/js/bench_reference.mjs DIR CORPUS`.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

#include "dsv4/tokenizer.h"

namespace {

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

struct Fixture {
  std::unique_ptr<dsv4::Tokenizer> tok;
  std::string corpus;
  std::vector<std::string_view> lines;
  std::string error;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture x;
    try {
      x.tok = std::make_unique<dsv4::Tokenizer>(dsv4::Tokenizer::load(env_or("DSV4_TOKENIZER_DIR", "tests/js/tokenizer")));
      const std::string path = env_or("DSV4_TOKENIZER_CORPUS", "build/tokenizer_vs_js/corpus.txt");
      std::ifstream in(path, std::ios::binary);
      if (!in) throw std::runtime_error(path + ": cannot open (set DSV4_TOKENIZER_CORPUS)");
      std::stringstream ss;
      ss << in.rdbuf();
      x.corpus = ss.str();
      for (size_t pos = 0; pos < x.corpus.size();) {
        size_t nl = x.corpus.find('\n', pos);
        nl = nl == std::string::npos ? x.corpus.size() : nl + 1;
        x.lines.emplace_back(x.corpus.data() + pos, nl - pos);
        pos = nl;
      }
    } catch (const std::exception& e) {
      x.error = e.what();
    }
    return x;
  }();
  return f;
}

// The whole corpus as one text.
void BM_TokenizerEncodeWhole(benchmark::State& state) {
  const Fixture& f = fixture();
  if (!f.error.empty()) return state.SkipWithError(f.error.c_str());
  size_t tokens = 0;
  for (auto _ : state) {
    const auto ids = f.tok->encode(f.corpus);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(f.corpus.size()));
  state.counters["tokens"] = double(tokens);
}
BENCHMARK(BM_TokenizerEncodeWhole)->Unit(benchmark::kMillisecond);

// One encode() call per line (newline included), as a server encodes many short texts.
void BM_TokenizerEncodeLines(benchmark::State& state) {
  const Fixture& f = fixture();
  if (!f.error.empty()) return state.SkipWithError(f.error.c_str());
  for (auto _ : state) {
    size_t n = 0;
    for (const std::string_view line : f.lines) n += f.tok->encode(line).size();
    benchmark::DoNotOptimize(n);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(f.corpus.size()));
}
BENCHMARK(BM_TokenizerEncodeLines)->Unit(benchmark::kMillisecond);

void BM_TokenizerDecode(benchmark::State& state) {
  const Fixture& f = fixture();
  if (!f.error.empty()) return state.SkipWithError(f.error.c_str());
  const auto ids = f.tok->encode(f.corpus);
  for (auto _ : state) {
    const std::string s = f.tok->decode(ids);
    benchmark::DoNotOptimize(s.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(f.corpus.size()));
}
BENCHMARK(BM_TokenizerDecode)->Unit(benchmark::kMillisecond);

}  // namespace
