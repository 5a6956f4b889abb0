// `dsv4 bench` end to end on the tiny-a checkpoint: CSV header, one row per test and depth with
// positive timings, an SVG plot, and a clear error for a bad depth list.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/cpu/dispatch.h"

namespace {

std::string run(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *status = pclose(p);
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) v.push_back(item);
  return v;
}

// `dsv4 bench` on the tiny-a checkpoint (named with `model_flag`) with `args`, stderr sent where
// `redirect` says, `env` (VAR=value ...) set for it.
std::string bench(const std::string& args, const std::string& redirect, int* status,
                  const std::string& model_flag = "--model", const std::string& env = "") {
  return run(env + " " + DSV4_BIN + " bench " + model_flag + " " + DSV4_TEST_DATA + "/tiny-a/ckpt " + args + " " +
                 redirect,
             status);
}

TEST(CpuBenchCli, CsvRowsPerTestAndDepthAndSvg) {
  const std::string svg = ::testing::TempDir() + "dsv4_bench_plot.svg";
  int status = -1;
  const std::string out =
      bench("-p 8 -n 3 -d 0,16 --reps 2 --bw-mib 16 --threads 2 --csv --svg " + svg, "2>/dev/null", &status);
  ASSERT_EQ(status, 0) << out;
  const auto lines = split(out, '\n');
  ASSERT_EQ(lines.size(), 5u) << out;
  EXPECT_EQ(lines[0], "test,depth,threads,tokens,seconds,tok_per_s,weight_gb_per_s,bw_fraction,spread,probe_gb_per_s,isa");
  const char* want[4][3] = {{"pp8", "0", "8"}, {"tg3", "0", "3"}, {"pp8", "16", "8"}, {"tg3", "16", "3"}};
  for (int i = 0; i < 4; ++i) {
    const auto f = split(lines[i + 1], ',');
    ASSERT_GE(f.size(), 8u) << lines[i + 1];
    EXPECT_EQ(f[0], want[i][0]);
    EXPECT_EQ(f[1], want[i][1]);
    EXPECT_EQ(f[2], "2");
    EXPECT_EQ(f[3], want[i][2]);
    EXPECT_GT(std::stod(f[4]), 0.0);                                        // seconds
    EXPECT_NEAR(std::stod(f[5]), std::stod(f[3]) / std::stod(f[4]), 1e-3 * std::stod(f[5]) + 1e-3);
    EXPECT_GT(std::stod(f[6]), 0.0);                                        // weight GB/s
    EXPECT_GT(std::stod(f[7]), 0.0);                                        // fraction of probe
    ASSERT_GE(f.size(), 11u) << lines[i + 1];
    EXPECT_GT(std::stod(f[9]), 0.0);                                        // probe GB/s
    EXPECT_NEAR(std::stod(f[7]), std::stod(f[6]) / std::stod(f[9]), 2e-3 * std::stod(f[7]) + 1e-4);
    EXPECT_TRUE(f[10] == "scalar" || f[10] == "avx2" || f[10] == "avx512" || f[10] == "avx512-bf16" || f[10] == "avx512-amx")
        << f[10];
  }
  std::ifstream f(svg);
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_NE(ss.str().find("<svg"), std::string::npos);
  EXPECT_NE(ss.str().find("tg3 tok/s"), std::string::npos);
  // The y axis starts at a plain 0, and the labels' fixed-point format does not leak into the
  // coordinates printed after them (it once wrote x="64.00").
  EXPECT_NE(ss.str().find("text-anchor=\"end\">0</text>"), std::string::npos) << ss.str();
  EXPECT_EQ(ss.str().find(".00\""), std::string::npos) << ss.str();
  std::remove(svg.c_str());
}

// --breakdown: a table per decode test (on stderr with --csv, stdout staying the CSV), whose
// rows' weight bytes per token add up to the decode row's (weight GB/s x seconds / tokens) but
// for tiny-a's embedding row and norm vectors, and whose time shares add up to 100%; then the
// same split by shape (kind:NxK), whose rows add up to their kind's.
TEST(CpuBenchCli, BreakdownByKindOfLinear) {
  int status = -1;
  const std::string err_path = ::testing::TempDir() + "dsv4_bench_breakdown.txt";
  const std::string csv =
      bench("-p 4 -n 3 -d 0 --reps 2 --bw-mib 16 --threads 2 --breakdown --csv", "2>" + err_path, &status);
  ASSERT_EQ(status, 0) << csv;
  const auto rows = split(csv, '\n');
  ASSERT_EQ(rows.size(), 3u) << csv;  // header, pp4, tg3
  const auto tg = split(rows[2], ',');
  ASSERT_GE(tg.size(), 7u) << rows[2];
  ASSERT_EQ(tg[0], "tg3");
  const double row_mb = 1e3 * std::stod(tg[6]) * std::stod(tg[4]) / 3;  // MB per token
  std::ifstream f(err_path);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string err = ss.str();
  std::remove(err_path.c_str());
  const size_t at = err.find("decode breakdown, tg3 at depth 0");
  ASSERT_NE(at, std::string::npos) << err;
  EXPECT_EQ(err.find("decode breakdown, pp4"), std::string::npos) << err;
  double mb = 0, share = 0;
  int kinds = 0, shapes = 0;
  std::map<std::string, std::array<double, 2>> by_kind, by_shape;  // MB/token, calls/token
  for (const std::string& line : split(err.substr(at), '\n')) {
    std::stringstream ls(line);
    std::string what, pct;
    double ms = -1;
    ls >> what >> ms >> pct;
    const size_t colon = what.find(':');
    const std::string kind = what.substr(0, colon);
    const bool linear = kind == "fp8" || kind == "fp4" || kind == "bf16" || kind == "f32";
    if (linear) {
      double mb_tok = 0, gbs = 0, frac = 0, calls = 0;
      ls >> mb_tok >> gbs >> frac >> calls;
      // Tiny shapes (tiny-a's f32:4x1024, well under a microsecond) print 0.000 ms and 0.00 MB;
      // their GB/s shows that they were timed.
      EXPECT_GE(ms, colon == std::string::npos ? 0.0005 : 0.0) << line;
      EXPECT_GE(mb_tok, colon == std::string::npos ? 0.01 : 0.0) << line;
      EXPECT_GT(gbs, 0.0) << line;
      EXPECT_GT(calls, 0.0) << line;
      auto& sum = (colon == std::string::npos ? by_kind : by_shape)[kind];
      sum[0] += mb_tok;
      sum[1] += calls;
      if (colon != std::string::npos) {
        ++shapes;
        EXPECT_NE(what.find_first_of("0123456789x", colon), std::string::npos) << line;
        continue;
      }
      mb += mb_tok;
      ++kinds;
    }
    if (linear || what == "other") share += std::stod(pct);
  }
  EXPECT_EQ(kinds, 4) << err;  // tiny-a has all four kinds of weight
  EXPECT_GT(shapes, kinds) << err;
  ASSERT_EQ(by_shape.size(), by_kind.size()) << err;
  for (const auto& [kind, sum] : by_kind) {
    EXPECT_NEAR(by_shape[kind][0], sum[0], 0.01 * sum[0] + 0.02) << kind << "\n" << err;  // printed to 0.01 MB
    EXPECT_NEAR(by_shape[kind][1], sum[1], 0.1 * shapes) << kind << "\n" << err;         // printed to 0.1
  }
  EXPECT_NEAR(share, 100.0, 0.5) << err;
  EXPECT_NE(err.find("other, by phase of the forward pass", at), std::string::npos) << err;
  EXPECT_GT(mb, 0.9 * row_mb) << err << csv;
  EXPECT_LE(mb, 1.01 * row_mb) << err << csv;
}

// `dsv4 bench` on tiny-a with `args`: a non-zero exit whose output names `flag`.
void expect_refused(const std::string& args, const std::string& flag) {
  int status = 0;
  const std::string out = bench(args, "2>&1", &status);
  EXPECT_NE(status, 0) << args;
  EXPECT_NE(out.find(flag), std::string::npos) << out;
}

TEST(CpuBenchCli, BadDepthListIsAClearError) { expect_refused("-d 0,x", "--depth"); }

// Negative test sizes are refused by name (they used to read as 0, "skip this test").
TEST(CpuBenchCli, NegativeTestSizesAreRefused) {
  expect_refused("-p -5 -n 3", "-p: '-5' is not a non-negative integer");
  expect_refused("-p 4 -n 2,-2", "-n: '-2' is not a non-negative integer");
  expect_refused("-p 0 -n 0,0", "nothing to run");
}

// -p and -n take lists, as llama-bench's do: per depth, one prefill test per prompt size and one
// decode test per generation size, in the order given (zeros and repeats dropped).
TEST(CpuBenchCli, TestSizeLists) {
  int status = -1;
  const std::string out = bench("-p 8,4,0,8 -n 3,2 -d 0,16 -r 1 -t 2 --bw-mib 16 --csv", "2>/dev/null", &status, "-m");
  ASSERT_EQ(status, 0) << out;
  const auto lines = split(out, '\n');
  ASSERT_EQ(lines.size(), 9u) << out;
  const char* want[8] = {"pp8,0,2,8,", "pp4,0,2,4,", "tg3,0,2,3,", "tg2,0,2,2,",
                         "pp8,16,2,8,", "pp4,16,2,4,", "tg3,16,2,3,", "tg2,16,2,2,"};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(lines[i + 1].rfind(want[i], 0), 0u) << lines[i + 1];
}

// --weights names where the weights lie in the header; a bad value is refused by name.
// Loading progress in a log is plain lines.
TEST(CpuBenchCli, WeightMemoryFlag) {
  for (const char* w : {"mmap", "private"}) {
    int status = -1;
    const std::string out =
        bench(std::string("-p 4 -n 0 --reps 1 --bw-mib 16 --threads 1 --weights ") + w, "2>&1", &status);
    ASSERT_EQ(status, 0) << out;
    EXPECT_NE(out.find(std::string("weights ") + w + ")"), std::string::npos) << out;
    // stderr is a pipe here: the loading progress comes as whole lines, not carriage returns.
    EXPECT_NE(out.find("bench: reading weights"), std::string::npos) << out;
    EXPECT_EQ(out.find('\r'), std::string::npos) << out;
  }
  expect_refused("--weights swap", "--weights");
}

// DSV4_GEMV_ORDER picks the decode GEMVs' order (the header names it); a bad value is refused by
// name before anything runs.
TEST(CpuBenchCli, GemvOrderOverride) {
  const std::string args = "-p 4 -n 2 --reps 1 --bw-mib 16 --threads 2";
  for (const char* order : {"rows", "tiles"}) {
    int status = -1;
    const std::string out = bench(args, "2>&1", &status, "--model", std::string("DSV4_GEMV_ORDER=") + order);
    ASSERT_EQ(status, 0) << out;
    EXPECT_NE(out.find(std::string("gemv order ") + order + ","), std::string::npos) << out;
  }
  int status = 0;
  const std::string out = bench(args, "2>&1", &status, "--model", "DSV4_GEMV_ORDER=cols");
  EXPECT_NE(status, 0) << out;
  EXPECT_NE(out.find("DSV4_GEMV_ORDER=cols: unknown order (expected rows or tiles)"), std::string::npos) << out;
}

// The header names the indexer's engine: at the AVX2 level AVX-VNNI's integer products where the
// CPU has them and DSV4_AVX_VNNI does not turn them off, FMA otherwise; a bad value is refused by
// name before anything runs.
TEST(CpuBenchCli, IndexerEngineOverride) {
  if (static_cast<int>(dsv4::cpu::detected_isa()) < static_cast<int>(dsv4::cpu::Isa::Avx2)) GTEST_SKIP() << "no AVX2 on this CPU";
  const std::string args = "-p 4 -n 2 --reps 1 --bw-mib 16 --threads 1";
  for (const char* vnni : {"0", "1"}) {
    int status = -1;
    const std::string out = bench(args, "2>&1", &status, "--model", std::string("DSV4_ISA=avx2 DSV4_AVX_VNNI=") + vnni);
    ASSERT_EQ(status, 0) << out;
    const bool on = vnni[0] == '1' && dsv4::cpu::cpu_has_avx_vnni();
    EXPECT_NE(out.find(std::string("indexer ") + (on ? "vpdpbusd-vex" : "fma") + ","), std::string::npos) << out;
  }
  int status = 0;
  const std::string out = bench(args, "2>&1", &status, "--model", "DSV4_AVX_VNNI=yes");
  EXPECT_NE(status, 0) << out;
  EXPECT_NE(out.find("DSV4_AVX_VNNI=yes: expected 0 or 1"), std::string::npos) << out;
}

// -o json (and the llama-bench style -m / -t / -r): one object per test whose numbers agree with
// each other (tok/s from tokens and seconds, seconds the median of the reps' samples, the
// fraction from weight GB/s and the probe) and, with --breakdown, the decode test's split by
// kind of linear with shares adding up to 100%. stdout is the JSON alone. `extra` flags are added.
// The parsed output goes to *parsed.
void check_json_output(const std::string& extra, nlohmann::json* parsed) {
  int status = -1;
  const std::string out = bench("-p 4 -n 3 -d 0,8 -r 3 -t 2 --bw-mib 16 --breakdown -o json " + extra,
                                "2>/dev/null", &status, "-m");
  ASSERT_EQ(status, 0) << out;
  const nlohmann::json& j = *parsed = nlohmann::json::parse(out);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 4u) << out;
  const char* want[4] = {"pp4", "tg3", "pp4", "tg3"};
  for (size_t i = 0; i < 4; ++i) {
    const nlohmann::json& r = j[i];
    EXPECT_EQ(r.at("test"), want[i]);
    EXPECT_EQ(r.at("depth"), i < 2 ? 0 : 8);
    EXPECT_EQ(r.at("threads"), 2);
    EXPECT_EQ(r.at("reps"), 3);
    const double secs = r.at("seconds");
    ASSERT_GT(secs, 0.0);
    EXPECT_NEAR(r.at("tok_per_s").get<double>(), r.at("tokens").get<double>() / secs, 1e-9 * r.at("tok_per_s").get<double>());
    std::vector<double> samples = r.at("samples_s");
    ASSERT_EQ(samples.size(), 3u);
    std::sort(samples.begin(), samples.end());
    EXPECT_DOUBLE_EQ(samples[1], secs);
    EXPECT_NEAR(r.at("bw_fraction").get<double>(),
                r.at("weight_gb_per_s").get<double>() / r.at("probe_gb_per_s").get<double>(), 1e-9);
    EXPECT_FALSE(r.at("isa").get<std::string>().empty());
    if (i % 2 == 0) {
      EXPECT_FALSE(r.contains("breakdown")) << r.dump();
      continue;
    }
    const nlohmann::json& b = r.at("breakdown");
    double share = 0;
    for (const char* kind : {"fp8", "fp4", "bf16", "f32", "other"}) {
      ASSERT_TRUE(b.contains(kind)) << b.dump();
      EXPECT_GE(b.at(kind).at("ms_per_token").get<double>(), 0.0);
      share += b.at(kind).at("share_pct").get<double>();
    }
    EXPECT_NEAR(share, 100.0, 0.01);
    EXPECT_GT(b.at("fp8").at("mb_per_token").get<double>(), 0.0);
    // The shapes' traffic and calls add up to their kind's.
    std::map<std::string, std::array<double, 2>> sums;
    for (const auto& [name, v] : b.at("shapes").items()) {
      auto& sum = sums[name.substr(0, name.find(':'))];
      sum[0] += v.at("mb_per_token").get<double>();
      sum[1] += v.at("calls_per_token").get<double>();
    }
    for (const char* kind : {"fp8", "fp4", "bf16", "f32"}) {
      EXPECT_NEAR(sums[kind][0], b.at(kind).at("mb_per_token").get<double>(), 1e-9) << kind;
      EXPECT_NEAR(sums[kind][1], b.at(kind).at("calls_per_token").get<double>(), 1e-9) << kind;
    }
    // The phases split "other": disjoint stretches outside the linears, so with "(the rest)" they
    // add up to it; every decode step runs the attention, the mixes and the router once per layer.
    const nlohmann::json& ph = b.at("phases");
    double in_phases = 0;
    for (const auto& [name, v] : ph.items()) {
      EXPECT_GE(v.at("ms_per_token").get<double>(), 0.0) << name;
      if (name != "(the rest)") in_phases += v.at("share_pct").get<double>();
    }
    const double other = b.at("other").at("share_pct").get<double>();
    EXPECT_LE(in_phases, other + 1e-6) << ph.dump();
    ASSERT_TRUE(ph.contains("(the rest)")) << ph.dump();
    EXPECT_NEAR(in_phases + ph.at("(the rest)").at("share_pct").get<double>(), other, 1e-6) << ph.dump();
    for (const char* name : {"attention", "hc_pre", "hc_post", "router", "rms_norm"}) {
      ASSERT_TRUE(ph.contains(name)) << name << " " << ph.dump();
      EXPECT_GE(ph.at(name).at("calls_per_token").get<double>(), 1.0) << name;
    }
  }
}

TEST(CpuBenchCli, JsonOutput) {
  nlohmann::json j;
  check_json_output("", &j);
}

// --interleave (one session per depth, rounds of one rep of every test) gives the same tests in
// the same order, and each decode test the same weight traffic per token, kind by kind.
TEST(CpuBenchCli, InterleavedDepthsKeepTheTestsAndTheirTraffic) {
  nlohmann::json seq, mixed;
  ASSERT_NO_FATAL_FAILURE(check_json_output("", &seq));
  ASSERT_NO_FATAL_FAILURE(check_json_output("--interleave", &mixed));
  EXPECT_EQ(seq[0].at("interleave"), false);
  EXPECT_EQ(mixed[0].at("interleave"), true);
  for (size_t i : {1u, 3u})
    for (const char* kind : {"fp8", "fp4", "bf16", "f32"}) {
      SCOPED_TRACE(std::string(kind) + " test " + std::to_string(i));
      const nlohmann::json &a = seq[i].at("breakdown").at(kind), &b = mixed[i].at("breakdown").at(kind);
      EXPECT_DOUBLE_EQ(a.at("calls_per_token").get<double>(), b.at("calls_per_token").get<double>());
      EXPECT_DOUBLE_EQ(a.at("mb_per_token").get<double>(), b.at("mb_per_token").get<double>());
    }
}

// --csv is -o csv; asking for both CSV and JSON is refused.
TEST(CpuBenchCli, CsvAndJsonTogetherAreRefused) { expect_refused("--csv -o json", "choose one output"); }

// Depths past the model's max_position_embeddings (tiny-a: 4096) run, with a warning naming it.
TEST(CpuBenchCli, DepthPastTheModelContextWarns) {
  int status = -1;
  const std::string out = bench("-p 2 -n 2 -d 4095 -r 1 -t 2 --bw-mib 16 --csv", "2>&1", &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("past the model's context of 4096"), std::string::npos) << out;
  EXPECT_NE(out.find("tg2,4095,"), std::string::npos) << out;
  const std::string inside = bench("-p 2 -n 2 -d 16 -r 1 -t 2 --bw-mib 16 --csv", "2>&1", &status);
  ASSERT_EQ(status, 0) << inside;
  EXPECT_EQ(inside.find("warning"), std::string::npos) << inside;
  // stderr is a pipe: the context fill is reported in one line, without carriage returns.
  EXPECT_NE(inside.find("bench: filled the context with 16 tokens in "), std::string::npos) << inside;
  EXPECT_EQ(inside.find('\r'), std::string::npos) << inside;
}

}  // namespace
