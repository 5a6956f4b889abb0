// Shared helpers of the golden tests: the golden sets in tests/data (meta.json, cases) and one
// teacher-forced engine run of a case collecting logits, MTP logits, routing and indexer choices.
#pragma once
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/npy.h"
#include "runtime/engine_impl.h"

namespace dsv4::golden {

inline std::string data_dir(const std::string& set) { return std::string(DSV4_TEST_DATA) + "/" + set; }

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open " + path);
  return nlohmann::json::parse(f);
}

struct Case {
  std::string dir;  // absolute
  int64_t P = 0, D = 0;
  std::vector<int32_t> tokens;  // P + D + 1 tokens
};

inline std::vector<Case> cases(const std::string& set) {
  const auto meta = read_json(data_dir(set) + "/meta.json");
  std::vector<Case> out;
  for (const auto& c : meta["cases"]) {
    Case k;
    k.dir = data_dir(set) + "/" + c["dir"].get<std::string>();
    k.P = c["P"].get<int64_t>();
    k.D = c["D"].get<int64_t>();
    const auto cm = read_json(k.dir + "/meta.json");
    k.tokens = cm["tokens"].get<std::vector<int32_t>>();
    out.push_back(std::move(k));
  }
  return out;
}

inline std::unique_ptr<EngineImpl> load_engine(const std::string& set, Numerics num) {
  EngineOptions eo;
  eo.model_dir = data_dir(set) + "/ckpt";
  eo.numerics = num;
  return std::make_unique<EngineImpl>(eo);
}

// Everything one run of a case produces, in the golden layouts.
struct CaseRun {
  std::vector<float> logits;       // [1+D][V]
  std::vector<float> mtp;          // [1+D][V]: MTP at positions P-1 .. P-1+D
  std::map<std::string, std::vector<float>> per_block;  // "moe_idx.L" etc: [P+D][width]
  std::map<std::string, std::vector<float>> layer0;     // "prefill.attn_in", "step001.q", ...
};

// Prefill tokens[0:P] (in chunks of `chunk`, 0 = one call), decode tokens[P .. P+D-1], then one
// more token for the last MTP row (its main logits are not part of the golden layout).
inline CaseRun run_case(EngineImpl& eng, const Case& c, int64_t chunk = 0) {
  const int64_t V = eng.info().vocab_size;
  CaseRun r;
  r.logits.assign(static_cast<size_t>((1 + c.D) * V), 0.0f);
  r.mtp.assign(static_cast<size_t>((1 + c.D) * V), 0.0f);
  SessionOptions so;
  so.max_context = c.P + c.D + 2;
  so.prefill_chunk = chunk > 0 ? chunk : c.P;
  so.on_mtp_logits = [&](int64_t pos, std::span<const float> l) {
    const int64_t row = pos - (c.P - 1);
    if (row >= 0 && row <= c.D) std::copy(l.begin(), l.end(), r.mtp.begin() + row * V);
  };
  auto s = eng.new_session(so);
  auto* si = dynamic_cast<SessionImpl*>(s.get());
  int64_t step = 0;  // 0 = prefill, k = k-th decode step
  si->set_debug_hook([&](std::string_view name, int block, int64_t pos0, int64_t rows, int64_t width,
                         const float* data) {
    const std::string nm(name);
    if (block >= 0 && block < eng.info().n_layers &&
        (nm == "moe_idx" || nm == "moe_w" || nm == "indexer_sel")) {
      auto& v = r.per_block[nm + "." + std::to_string(block)];
      const int64_t total = c.P + c.D + 1;
      if (v.empty()) v.assign(static_cast<size_t>(total * width), -2.0f);
      for (int64_t i = 0; i < rows && pos0 + i < total; ++i)
        std::copy(data + i * width, data + (i + 1) * width, v.begin() + (pos0 + i) * width);
    }
    if (block == 0 || (block == -1 && nm == "embed")) {
      char tag[32];
      if (step == 0) std::snprintf(tag, sizeof tag, "prefill.");
      else std::snprintf(tag, sizeof tag, "step%03lld.", static_cast<long long>(step));
      r.layer0[tag + nm].assign(data, data + rows * width);
    }
  });
  const std::vector<int32_t>& t = c.tokens;
  s->prefill(std::span<const int32_t>(t.data(), static_cast<size_t>(c.P)),
             std::span<float>(r.logits.data(), static_cast<size_t>(V)));
  for (int64_t j = 1; j <= c.D; ++j) {
    step = j;
    s->decode(t[static_cast<size_t>(c.P + j - 1)], std::span<float>(r.logits.data() + j * V, static_cast<size_t>(V)));
  }
  step = c.D + 1;
  if (static_cast<int64_t>(t.size()) > c.P + c.D) s->decode(t[static_cast<size_t>(c.P + c.D)], {});
  return r;
}

// Index of the first differing float32 (bitwise), -1 when identical.
inline int64_t first_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], 4) != 0) return static_cast<int64_t>(i);
  return -1;
}

}  // namespace dsv4::golden
