#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <set>

#include "model/synth.h"
#include "model/weights.h"
#include "quant/quant.h"
#include "tests/unit/ckpt_fixture.h"

using namespace dsv4;
using namespace dsv4::testing;

namespace {
std::string run(const std::string& cmd) {
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen((cmd + " 2>&1").c_str(), "r"), pclose);
  std::string out;
  char buf[512];
  while (p && fgets(buf, sizeof buf, p.get())) out += buf;
  return out;
}
uint64_t inventory_bytes(const json& cfg) {
  uint64_t n = 0;
  for (const auto& d : checkpoint_inventory(parse_config(cfg))) n += d.nbytes();
  return n;
}
}  // namespace

TEST(Synth, TinyIsDeterministicBySeedAndLoads) {
  TempDir a, b, c;
  const json cfg = synth_config("tiny");
  SynthOptions o;
  o.seed = 7;
  const SynthResult r = synth_checkpoint(cfg, a.path(), o);
  synth_checkpoint(cfg, b.path(), o);
  o.seed = 8;
  synth_checkpoint(cfg, c.path(), o);
  EXPECT_EQ(r.shards, 1);
  const std::string shard = "model-00001-of-00001.safetensors";
  for (const char* f : {"config.json", "model.safetensors.index.json", "generation_config.json"})
    EXPECT_EQ(read_file(a.file(f)), read_file(b.file(f))) << f;
  const std::string sa = read_file(a.file(shard));
  EXPECT_EQ(sa, read_file(b.file(shard)));
  EXPECT_NE(sa, read_file(c.file(shard)));
  EXPECT_EQ(sa.size(), read_file(c.file(shard)).size());

  auto w = load_weights(a.path());
  auto wc = load_weights(c.path());
  const ModelConfig& mc = w->config;
  // tiny has tiny-a's shapes: the same inventory, byte for byte in size
  const ModelConfig tiny_a = load_config(tiny_ckpt("tiny-a") + "/config.json");
  EXPECT_EQ(mc.compress_ratios, tiny_a.compress_ratios);
  EXPECT_EQ(r.bytes, TensorStore::open_dir(tiny_ckpt("tiny-a")).total_bytes());
  EXPECT_EQ(r.tensors, w->store->all().size());
  // every tensor differs between seeds (none is constant)
  for (const auto& [name, v] : w->store->all()) {
    const TensorView* u = wc->store->find(name);
    ASSERT_NE(u, nullptr);
    if (v.nbytes >= 16) {
      EXPECT_NE(std::memcmp(v.data, u->data, v.nbytes), 0) << name;
    }
  }
  EXPECT_EQ(read_json(a.file("generation_config.json"))["eos_token_id"], 1);
}

TEST(Synth, ValuesFollowTheQuantisationScheme) {
  TempDir a;
  SynthOptions o;
  o.seed = 1;
  synth_checkpoint(synth_config("tiny"), a.path(), o);
  auto w = load_weights(a.path());
  // FP8: per 128x128 block the scale is 2^ceil(log2(amax/448)), so the largest |code| lies in (224, 448]
  const Fp8Mat& m = w->layers[1].attn.wo_b;  // [256, 256], 2x2 blocks
  std::set<int> scales;
  for (int bi = 0; bi < 2; ++bi)
    for (int bj = 0; bj < 2; ++bj) {
      float amax = 0;
      for (int i = bi * 128; i < bi * 128 + 128; ++i)
        for (int j = bj * 128; j < bj * 128 + 128; ++j)
          amax = std::max(amax, std::fabs(quant::e4m3_to_f32(m.w[i * 256 + j])));
      EXPECT_GT(amax, 224.f);
      EXPECT_LE(amax, 448.f);
      scales.insert(m.s[bi * 2 + bj]);
    }
  EXPECT_GT(scales.size(), 1u);  // random per-block gains
  // FP4: per 32 block the largest |value| is 4 or 6 (amax/scale in (3, 6], rounded to E2M1)
  const Fp4Mat& e = w->layers[2].ffn.experts[3].w1;
  for (int64_t r = 0; r < e.rows; r += 37)
    for (int64_t b = 0; b < e.cols / 32; ++b) {
      float amax = 0;
      for (int k = 0; k < 32; ++k) {
        const uint8_t byte = e.w[r * e.cols / 2 + (b * 32 + k) / 2];
        amax = std::max(amax, std::fabs(quant::e2m1_to_f32(k % 2 ? byte >> 4 : byte & 0xF)));
      }
      EXPECT_GE(amax, 3.f);
    }
  // norms near 1
  double s = 0;
  for (int i = 0; i < 256; ++i) s += quant::bf16_to_f32(w->layers[0].attn_norm[i]);
  EXPECT_NEAR(s / 256, 1.0, 0.05);
  // tid2eid: distinct experts per row in [0, E) (validated by load_weights) and all experts used
  std::set<int> used(w->layers[0].ffn.tid2eid.begin(), w->layers[0].ffn.tid2eid.end());
  EXPECT_EQ(used.size(), 8u);
}

TEST(Synth, ShardingDoesNotChangeTensorBytes) {
  TempDir a, b;
  SynthOptions o;
  o.seed = 3;
  synth_checkpoint(synth_config("tiny"), a.path(), o);
  o.shards = 3;
  const SynthResult r = synth_checkpoint(synth_config("tiny"), b.path(), o);
  EXPECT_EQ(r.shards, 3);
  EXPECT_TRUE(fs::exists(b.file("model-00003-of-00003.safetensors")));
  auto wa = load_weights(a.path());
  auto wb = load_weights(b.path());
  std::set<std::string> files;
  for (const auto& [name, v] : wb->store->all()) {
    files.insert(v.file);
    const TensorView* u = wa->store->find(name);
    ASSERT_NE(u, nullptr) << name;
    ASSERT_EQ(u->nbytes, v.nbytes);
    EXPECT_EQ(std::memcmp(u->data, v.data, v.nbytes), 0) << name;
    if (v.dtype == DType::F32) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data) % 4, 0u) << name;
    }
  }
  EXPECT_EQ(files.size(), 3u);
  EXPECT_TRUE(wb->owned.empty());  // every view aligned, nothing copied
}

TEST(Synth, PresetsAreValidAndSized) {
  for (const auto& n : synth_preset_names()) EXPECT_NO_THROW(parse_config(synth_config(n))) << n;
  const json def = synth_config("default");
  const ModelConfig d = parse_config(def);
  EXPECT_EQ(d.vocab_size, 129280);
  EXPECT_EQ(d.window, 128);
  std::set<int> kinds(d.compress_ratios.begin(), d.compress_ratios.end());
  EXPECT_EQ(kinds, (std::set<int>{0, 4, 128}));
  EXPECT_EQ(d.n_mtp_layers, 1);
  EXPECT_LT(inventory_bytes(def), 300ull * 1000 * 1000);
  const ModelConfig f = parse_config(synth_config("flash-width"));
  const ModelConfig flash = load_config(std::string(DSV4_TEST_DATA) + "/spec/deepseek-v4-flash.config.json");
  EXPECT_EQ(f.dim, flash.dim);
  EXPECT_EQ(f.n_heads, flash.n_heads);
  EXPECT_EQ(f.o_groups * f.o_lora_rank, flash.o_groups * flash.o_lora_rank);
  EXPECT_EQ(f.n_routed_experts, flash.n_routed_experts);
  EXPECT_EQ(f.moe_inter_dim, flash.moe_inter_dim);
  EXPECT_EQ(f.compress_ratios, (std::vector<int>{4, 128, 4, 0}));
  EXPECT_EQ(f.vocab_size, 8192);
  const ModelConfig w = parse_config(synth_config("tiny-wide"));
  EXPECT_EQ(w.window, 128);
  EXPECT_EQ(w.compress_ratios, (std::vector<int>{0, 4, 128, 4, 0}));
  // overrides
  SynthOverrides ov;
  ov.layers = 7;
  ov.vocab = 512;
  ov.experts = 4;
  const ModelConfig t = parse_config(synth_config("tiny", ov));
  EXPECT_EQ(t.compress_ratios, (std::vector<int>{0, 4, 16, 4, 16, 4, 16, 0}));
  EXPECT_EQ(t.vocab_size, 512);
  EXPECT_EQ(t.n_routed_experts, 4);
  expect_error([] { synth_config("huge"); }, {"unknown preset", "huge", "tiny"});
  SynthOverrides bad;
  bad.experts = 1;  // top-2 of 1 expert: clamped top-k keeps it valid
  EXPECT_EQ(parse_config(synth_config("tiny", bad)).n_activated_experts, 1);
}

// Without --quiet, progress goes to stderr; into a pipe, as whole lines (no carriage returns, no
// redraw padding), the last one at 100%.
TEST(Synth, CliProgressInALogIsPlainLines) {
  TempDir d;
  const std::string out = run(std::string(DSV4_BIN) + " synth --preset tiny --seed 5 --out " + d.path());
  EXPECT_NE(out.find("GB (100%)"), std::string::npos) << out;
  EXPECT_EQ(out.find('\r'), std::string::npos) << out;
  EXPECT_EQ(out.find(" \n"), std::string::npos) << out;
  EXPECT_NE(out.find("synth: preset tiny seed 5"), std::string::npos) << out;
}

TEST(Synth, CliSynthAndInspect) {
  TempDir d;
  const std::string out = run(std::string(DSV4_BIN) + " synth --preset tiny --seed 5 --layers 3 --quiet --out " + d.path());
  EXPECT_NE(out.find("synth: preset tiny seed 5"), std::string::npos) << out;
  auto w = load_weights(d.path());
  EXPECT_EQ(w->layers.size(), 3u);
  const std::string ins = run(std::string(DSV4_BIN) + " inspect --model " + d.path());
  EXPECT_NE(ins.find("layer   0: ratio   0  SWA  hash-routed"), std::string::npos) << ins;
  EXPECT_NE(ins.find("layer   2: ratio  16  HCA"), std::string::npos) << ins;
  EXPECT_NE(ins.find("main layers: 1 SWA, 1 CSA, 1 HCA"), std::string::npos) << ins;
  EXPECT_NE(ins.find("parameters: total " + std::to_string(count_params(w->config).total)), std::string::npos) << ins;
  const std::string bad = run(std::string(DSV4_BIN) + " inspect --model " + d.path() + "/nope");
  EXPECT_NE(bad.find("error"), std::string::npos) << bad;
}
