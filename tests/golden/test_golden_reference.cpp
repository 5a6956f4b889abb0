// Reference numerics vs the golden data: every case of tiny-a and tiny-d must match BIT FOR BIT
// (logits, MTP logits, expert routing and weights, indexer selections; prefill_only lengths; the
// layer-0 intermediates where recorded).
#include <gtest/gtest.h>

#include <cctype>
#include <cstring>

#include "tests/golden/golden_run.h"

namespace dsv4::golden {
namespace {

class GoldenReference : public ::testing::TestWithParam<std::string> {
 public:
  static EngineImpl& engine(const std::string& set) {
    static std::map<std::string, std::unique_ptr<EngineImpl>> engines;
    auto& e = engines[set];
    if (!e) e = load_engine(set, Numerics::Reference);
    return *e;
  }
};

void expect_bits(const std::vector<float>& got, const std::vector<float>& want, int64_t width,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  const int64_t d = first_diff(got, want);
  EXPECT_EQ(d, -1) << what << ": first difference at row " << d / width << " col " << d % width
                   << ": got " << got[static_cast<size_t>(d < 0 ? 0 : d)] << " want "
                   << want[static_cast<size_t>(d < 0 ? 0 : d)];
}

// One golden case ("tiny-a/P017_D032"): logits, MTP logits, routing and indexer choices.
class GoldenReferenceCase : public ::testing::TestWithParam<std::string> {};

// Every case listed in the two sets' meta.json (read at test registration).
std::vector<std::string> all_cases() {
  std::vector<std::string> out;
  for (const char* set : {"tiny-a", "tiny-d"}) {
    const auto meta = read_json(data_dir(set) + "/meta.json");
    for (const auto& c : meta["cases"]) out.push_back(std::string(set) + "/" + c["dir"].get<std::string>());
  }
  return out;
}

TEST_P(GoldenReferenceCase, BitExact) {
  const std::string param = GetParam();
  const std::string set = param.substr(0, param.find('/'));
  EngineImpl& eng = GoldenReference::engine(set);
  const int64_t V = eng.info().vocab_size;
  const int L = eng.info().n_layers;
  int found = 0;
  for (const Case& c : cases(set)) {
    if (c.dir != data_dir(set) + param.substr(param.find('/'))) continue;
    ++found;
    SCOPED_TRACE(c.dir);
    const CaseRun r = run_case(eng, c);
    expect_bits(r.logits, read_npy(c.dir + "/logits.npy").as_f32(), V, "logits");
    expect_bits(r.mtp, read_npy(c.dir + "/mtp_logits.npy").as_f32(), V, "mtp_logits");
    // routing [n_layers][P+D][top_k], sorted by expert id; indexer [n_csa][P+D][topk] ascending
    const NpyArray mi = read_npy(c.dir + "/moe_idx.npy"), mw = read_npy(c.dir + "/moe_w.npy");
    const int64_t T = mi.shape[1], K = mi.shape[2];
    std::vector<float> gi, gw;
    for (int l = 0; l < L; ++l) {
      const auto& a = r.per_block.at("moe_idx." + std::to_string(l));
      const auto& b = r.per_block.at("moe_w." + std::to_string(l));
      gi.insert(gi.end(), a.begin(), a.begin() + T * K);
      gw.insert(gw.end(), b.begin(), b.begin() + T * K);
    }
    expect_bits(gi, mi.as_f32(), K, "moe_idx");
    expect_bits(gw, mw.as_f32(), K, "moe_w");
    const NpyArray is = read_npy(c.dir + "/indexer_sel.npy");
    std::vector<float> sel;
    for (int l = 0; l < L; ++l) {
      auto it = r.per_block.find("indexer_sel." + std::to_string(l));
      if (it != r.per_block.end()) sel.insert(sel.end(), it->second.begin(), it->second.begin() + T * is.shape[2]);
    }
    expect_bits(sel, is.as_f32(), is.shape[2], "indexer_sel");
  }
  EXPECT_EQ(found, 1) << param;
}

INSTANTIATE_TEST_SUITE_P(Cases, GoldenReferenceCase, ::testing::ValuesIn(all_cases()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

TEST_P(GoldenReference, PrefillOnlyBitExact) {
  const std::string set = GetParam();
  EngineImpl& eng = engine(set);
  const int64_t V = eng.info().vocab_size;
  const auto meta = read_json(data_dir(set) + "/prefill_only/meta.json");
  const auto lengths = meta["lengths"].get<std::vector<int64_t>>();
  const auto toks = meta["tokens"].get<std::vector<int32_t>>();
  const std::vector<float> want = read_npy(data_dir(set) + "/prefill_only/logits.npy").as_f32();
  ASSERT_EQ(want.size(), lengths.size() * static_cast<size_t>(V));
  SessionOptions so;
  so.max_context = lengths.back() + 1;
  auto s = eng.new_session(so);
  std::vector<float> got(static_cast<size_t>(V));
  for (size_t i = 0; i < lengths.size(); ++i) {
    s->reset();
    s->prefill(std::span<const int32_t>(toks.data(), static_cast<size_t>(lengths[i])), got);
    std::vector<float> w(want.begin() + static_cast<int64_t>(i) * V, want.begin() + static_cast<int64_t>(i + 1) * V);
    expect_bits(got, w, V, "prefill_only length " + std::to_string(lengths[i]));
  }
}

// Layer-0 intermediates of the cases that record them (prefill and the first decode steps).
TEST_P(GoldenReference, Layer0IntermediatesBitExact) {
  const std::string set = GetParam();
  EngineImpl& eng = engine(set);
  int checked = 0;
  for (const Case& c : cases(set)) {
    const std::string dir = c.dir + "/layer0";
    if (!std::ifstream(dir + "/prefill.L0.attn_in.npy")) continue;
    SCOPED_TRACE(c.dir);
    const CaseRun r = run_case(eng, c);
    for (const char* phase : {"prefill", "step001", "step002"}) {
      for (const char* name : {"attn_in", "q", "kv", "attn_o", "attn_out", "h_after_attn", "ffn_in",
                               "ffn_out", "h_after_ffn", "hc_attn_post", "hc_attn_comb",
                               "moe_indices", "moe_weights"}) {
        const std::string file = dir + "/" + phase + ".L0." + name + ".npy";
        if (!std::ifstream(file)) continue;
        const std::string key = std::string(phase) + "." + name;
        ASSERT_TRUE(r.layer0.count(key)) << key;
        const NpyArray g = read_npy(file);
        expect_bits(r.layer0.at(key), g.as_f32(), g.shape.back(), key);
        ++checked;
      }
      const std::string ef = dir + "/" + phase + ".embed.npy";
      if (std::ifstream(ef)) {
        // the engine reports the hc copies of the embedding; the golden stores one row per token
        const NpyArray g = read_npy(ef);
        const auto& e = r.layer0.at(std::string(phase) + ".embed");
        const int64_t dim = g.shape.back(), hc = static_cast<int64_t>(e.size()) / g.numel();
        std::vector<float> first;
        for (int64_t t = 0; t < g.shape[0]; ++t)
          first.insert(first.end(), e.begin() + t * hc * dim, e.begin() + t * hc * dim + dim);
        expect_bits(first, g.as_f32(), dim, std::string(phase) + ".embed");
      }
    }
  }
  EXPECT_GT(checked, 0) << "no layer0 intermediates found for " << set;
}

INSTANTIATE_TEST_SUITE_P(Sets, GoldenReference, ::testing::Values("tiny-a", "tiny-d"),
                         [](const auto& info) { return info.param == "tiny-a" ? std::string("tinyA") : std::string("tinyD"); });

}  // namespace
}  // namespace dsv4::golden
