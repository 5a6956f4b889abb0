#include <gtest/gtest.h>

#include <cstring>

#include "model/weights.h"
#include "tests/unit/ckpt_fixture.h"

using namespace dsv4;
using namespace dsv4::testing;

namespace {
const uint8_t* raw(const ModelWeights& w, const std::string& name) {
  const TensorView* v = w.store->find(name);
  return v ? v->data : nullptr;
}

// A tiny-a copy whose shard header and index are patched by `patch` (the data section is kept).
void patched(TempDir& d, const std::function<void(Shard&, json& index)>& patch) {
  copy_ckpt(tiny_ckpt("tiny-a"), d.path());
  Shard sh = read_shard(d.file(kTinyShard));
  json idx = read_json(d.file("model.safetensors.index.json"));
  patch(sh, idx);
  write_shard(d.file(kTinyShard), sh);
  write_json(d.file("model.safetensors.index.json"), idx);
}
void rename_tensor(Shard& sh, json& idx, const std::string& from, const std::string& to) {
  sh.header[to] = sh.header[from];
  sh.header.erase(from);
  idx["weight_map"][to] = idx["weight_map"][from];
  idx["weight_map"].erase(from);
}
auto loader(const TempDir& d) {
  return [&d] { load_weights(d.path()); };
}
}  // namespace

TEST(Weights, LoadsTinyA) {
  auto w = load_weights(tiny_ckpt("tiny-a"));
  const ModelConfig& c = w->config;
  ASSERT_EQ(w->layers.size(), 4u);
  ASSERT_EQ(w->mtp.size(), 1u);
  EXPECT_EQ(w->embed.w, reinterpret_cast<const uint16_t*>(raw(*w, "embed.weight")));
  EXPECT_EQ(w->embed.rows, 1024);
  EXPECT_EQ(w->embed.cols, 256);
  EXPECT_EQ(w->hc_head.mix, 4);
  EXPECT_NE(w->hc_head.scale, nullptr);
  // per-layer kinds from compress_ratios [0, 4, 16, 4] + MTP 0
  const int want_ratio[4] = {0, 4, 16, 4};
  for (int l = 0; l < 4; ++l) {
    const BlockWeights& b = w->layers[size_t(l)];
    EXPECT_EQ(b.layer_id, l);
    EXPECT_EQ(b.ratio, want_ratio[l]);
    EXPECT_EQ(b.hash_routed, l < 1);
    EXPECT_EQ(b.attn.compressor.has_value(), want_ratio[l] > 0);
    EXPECT_EQ(b.attn.indexer.has_value(), want_ratio[l] == 4);
    EXPECT_NE(b.attn.wo_a_fp8.w, nullptr);
    EXPECT_EQ(b.attn.wo_a_bf16.w, nullptr);
    EXPECT_EQ(b.attn.wo_a_fp8.rows, 256);
    EXPECT_EQ(b.attn.wo_a_fp8.cols, 256);
    EXPECT_EQ(b.hc_attn.mix, 24);
    EXPECT_EQ(b.ffn.experts.size(), 8u);
    EXPECT_EQ(b.ffn.bias == nullptr, l < 1);
    EXPECT_EQ(b.ffn.tid2eid.empty(), l >= 1);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.attn.attn_sink) % 4, 0u);
  }
  const auto& comp = *w->layers[1].attn.compressor;
  EXPECT_EQ(comp.coff, 2);
  EXPECT_EQ(comp.width, 128);
  EXPECT_EQ(comp.wkv.rows, 256);
  const auto& hca = *w->layers[2].attn.compressor;
  EXPECT_EQ(hca.ratio, 16);
  EXPECT_EQ(hca.coff, 1);
  EXPECT_EQ(w->layers[1].attn.indexer->compressor.width, c.index_head_dim);
  const Fp4Mat& e = w->layers[0].ffn.experts[5].w2;
  EXPECT_EQ(e.w, raw(*w, "layers.0.ffn.experts.5.w2.weight"));
  EXPECT_EQ(e.s, raw(*w, "layers.0.ffn.experts.5.w2.scale"));
  EXPECT_EQ(e.rows, 256);
  EXPECT_EQ(e.cols, 256);
  // tid2eid copied from I64 into int32, values identical to the file
  const TensorView* t = w->store->find("layers.0.ffn.gate.tid2eid");
  ASSERT_EQ(w->layers[0].ffn.tid2eid.size(), 2048u);
  for (size_t i = 0; i < 2048; ++i) {
    int64_t x;
    std::memcpy(&x, t->data + 8 * i, 8);
    ASSERT_EQ(w->layers[0].ffn.tid2eid[i], x);
  }
  const MtpWeights& m = w->mtp[0];
  EXPECT_EQ(m.block.layer_id, 4);
  EXPECT_FALSE(m.block.hash_routed);
  EXPECT_NE(m.block.ffn.bias, nullptr);
  EXPECT_EQ(m.e_proj.w, raw(*w, "mtp.0.e_proj.weight"));
  EXPECT_NE(m.hc_head.fn, nullptr);
  EXPECT_EQ(m.hc_head.mix, 4);
}

TEST(Weights, LoadsTinyD) {
  auto w = load_weights(tiny_ckpt("tiny-d"));
  ASSERT_EQ(w->layers.size(), 4u);
  EXPECT_EQ(w->layers[2].attn.compressor->ratio, 128);
  EXPECT_EQ(w->layers[2].attn.compressor->ape, reinterpret_cast<const float*>(raw(*w, "layers.2.attn.compressor.ape")));
  EXPECT_EQ(w->layers[1].attn.wq_b.rows, 4 * 256);
  EXPECT_EQ(w->layers[1].attn.wq_b.scale_cols(), 2);
  EXPECT_EQ(w->layers[3].ffn.experts.size(), 16u);
}

TEST(Weights, SkipsMtpWhenAsked) {
  LoadOptions o;
  o.load_mtp = false;
  auto w = load_weights(tiny_ckpt("tiny-a"), o);
  EXPECT_TRUE(w->mtp.empty());
}

TEST(Weights, AcceptsModelPrefixI32Tid2eidBf16WoaAndMtpAliases) {
  TempDir d;
  patched(d, [](Shard& sh, json& idx) {
    rename_tensor(sh, idx, "norm.weight", "model.norm.weight");
    // tid2eid as I32: reinterpret the first half of its I64 bytes region as [1024, 2] int32 values.
    auto& t = sh.header["layers.0.ffn.gate.tid2eid"];
    const uint64_t b = t["data_offsets"][0];
    std::vector<int32_t> v(2048);
    for (size_t i = 0; i < 2048; ++i) {
      int64_t x;
      std::memcpy(&x, sh.data.data() + b + 8 * i, 8);
      v[i] = static_cast<int32_t>(x);
    }
    std::memcpy(sh.data.data() + b, v.data(), 8192);
    t["dtype"] = "I32";
    t["data_offsets"] = {b, b + 8192};
    // wo_a of layer 0 as an already dequantised BF16 [256, 256] without scale, appended at the end
    sh.header.erase("layers.0.attn.wo_a.scale");
    idx["weight_map"].erase("layers.0.attn.wo_a.scale");
    const uint64_t end = sh.data.size();
    sh.data.append(131072, '\0');
    sh.header["layers.0.attn.wo_a.weight"] = {{"dtype", "BF16"}, {"shape", {256, 256}}, {"data_offsets", {end, end + 131072}}};
    // an MTP alias of the embedding, which is ignored
    const uint64_t e2 = sh.data.size();
    sh.data.append(16, '\0');
    sh.header["mtp.0.emb.tok_embeddings.weight"] = {{"dtype", "BF16"}, {"shape", {8}}, {"data_offsets", {e2, e2 + 16}}};
    idx["weight_map"]["mtp.0.emb.tok_embeddings.weight"] = kTinyShard;
  });
  auto w = load_weights(d.path());
  EXPECT_NE(w->norm, nullptr);
  EXPECT_EQ(w->layers[0].attn.wo_a_fp8.w, nullptr);
  ASSERT_NE(w->layers[0].attn.wo_a_bf16.w, nullptr);
  EXPECT_EQ(w->layers[0].attn.wo_a_bf16.rows, 256);
  auto ref = load_weights(tiny_ckpt("tiny-a"));
  EXPECT_EQ(w->layers[0].ffn.tid2eid, ref->layers[0].ffn.tid2eid);
}

TEST(Weights, CopiesMisalignedF32IntoOwnedStorage) {
  TempDir d;
  std::vector<uint8_t> sink_bytes;
  patched(d, [&](Shard& sh, json&) {
    auto& t = sh.header["layers.0.attn.attn_sink"];  // F32 [4]
    const uint64_t b = t["data_offsets"][0];
    sink_bytes.assign(sh.data.begin() + long(b), sh.data.begin() + long(b) + 16);
    const uint64_t e = sh.data.size() + 1;  // odd offset
    sh.data.push_back('\0');
    sh.data.append(reinterpret_cast<const char*>(sink_bytes.data()), 16);
    t["data_offsets"] = {e, e + 16};
  });
  auto w = load_weights(d.path());
  const float* s = w->layers[0].attn.attn_sink;
  EXPECT_EQ(reinterpret_cast<uintptr_t>(s) % 4, 0u);
  EXPECT_NE(reinterpret_cast<const uint8_t*>(s), w->store->find("layers.0.attn.attn_sink")->data);
  EXPECT_EQ(std::memcmp(s, sink_bytes.data(), 16), 0);
  EXPECT_FALSE(w->owned.empty());
}

TEST(Weights, RejectsMissingTensor) {
  TempDir d;
  patched(d, [](Shard& sh, json& idx) {
    sh.header.erase("layers.2.attn.compressor.ape");
    idx["weight_map"].erase("layers.2.attn.compressor.ape");
  });
  expect_error(loader(d), {"tensor layers.2.attn.compressor.ape", "missing"});
}

TEST(Weights, RejectsMissingScale) {
  TempDir d;
  patched(d, [](Shard& sh, json& idx) {
    sh.header.erase("layers.1.attn.wq_b.scale");
    idx["weight_map"].erase("layers.1.attn.wq_b.scale");
  });
  expect_error(loader(d), {"tensor layers.1.attn.wq_b.scale", "missing"});
}

TEST(Weights, RejectsWrongDtype) {
  TempDir d;
  patched(d, [](Shard& sh, json&) {
    // BF16 [256] (512 bytes) relabelled F32 [128]: consistent sizes, wrong dtype
    sh.header["layers.0.attn_norm.weight"]["dtype"] = "F32";
    sh.header["layers.0.attn_norm.weight"]["shape"] = {128};
  });
  expect_error(loader(d), {kTinyShard, "tensor layers.0.attn_norm.weight", "expected dtype BF16", "got F32"});
}

TEST(Weights, RejectsWrongShape) {
  TempDir d;
  patched(d, [](Shard& sh, json&) { sh.header["layers.3.ffn_norm.weight"]["shape"] = {16, 16}; });
  expect_error(loader(d), {kTinyShard, "tensor layers.3.ffn_norm.weight", "expected shape [256]", "got [16, 16]"});
}

TEST(Weights, RejectsWrongScaleShape) {
  TempDir d;
  patched(d, [](Shard& sh, json&) { sh.header["layers.0.attn.wq_b.scale"]["shape"] = {1, 4}; });
  expect_error(loader(d), {"tensor layers.0.attn.wq_b.scale", "expected shape [4, 1]", "got [1, 4]"});
}

TEST(Weights, RejectsUnexpectedTensor) {
  TempDir d;
  patched(d, [](Shard& sh, json& idx) { rename_tensor(sh, idx, "layers.0.ffn.experts.7.w1.weight", "layers.0.ffn.experts.8.w1.weight"); });
  // experts.7.w1.weight is now missing: that is reported first
  expect_error(loader(d), {"layers.0.ffn.experts.7.w1.weight", "missing"});
  TempDir d2;
  patched(d2, [](Shard& sh, json& idx) {
    const uint64_t e = sh.data.size();
    sh.data.append(4, '\0');
    sh.header["layers.0.extra"] = {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {e, e + 4}}};
    idx["weight_map"]["layers.0.extra"] = kTinyShard;
  });
  expect_error(loader(d2), {kTinyShard, "tensor layers.0.extra", "unexpected"});
}

TEST(Weights, RejectsConfigCheckpointMismatch) {
  TempDir d;
  copy_ckpt(tiny_ckpt("tiny-a"), d.path());
  json c = read_json(d.file("config.json"));
  c["compress_ratios"][2] = 0;  // the checkpoint has a compressor there
  write_json(d.file("config.json"), c);
  expect_error(loader(d), {"tensor layers.2.attn.compressor", "unexpected"});
  c["compress_ratios"][2] = 16;
  c["n_routed_experts"] = 4;
  write_json(d.file("config.json"), c);
  expect_error(loader(d), {"tensor layers.0.ffn.gate.weight", "expected shape [4, 256]", "got [8, 256]"});
}

TEST(Weights, RejectsBadConfigJson) {
  TempDir d;
  copy_ckpt(tiny_ckpt("tiny-a"), d.path());
  write_file(d.file("config.json"), "{ not json");
  expect_error(loader(d), {"config.json", "not valid JSON"});
}

TEST(Weights, RejectsBadTid2eid) {
  {
    TempDir d;
    patched(d, [](Shard& sh, json&) {
      const uint64_t b = sh.header["layers.0.ffn.gate.tid2eid"]["data_offsets"][0];
      int64_t bad = 8;  // E = 8
      std::memcpy(sh.data.data() + b + 8 * 7, &bad, 8);
    });
    expect_error(loader(d), {"tensor layers.0.ffn.gate.tid2eid", "row 3", "expert id 8", "[0, 8)"});
  }
  {
    TempDir d;
    patched(d, [](Shard& sh, json&) {
      const uint64_t b = sh.header["layers.0.ffn.gate.tid2eid"]["data_offsets"][0];
      int64_t x;
      std::memcpy(&x, sh.data.data() + b + 8 * 10, 8);
      std::memcpy(sh.data.data() + b + 8 * 11, &x, 8);  // row 5: both entries equal
    });
    expect_error(loader(d), {"tensor layers.0.ffn.gate.tid2eid", "row 5", "twice"});
  }
}

TEST(Weights, InventoryMatchesTinyCheckpointsExactly) {
  for (const char* name : {"tiny-a", "tiny-d"}) {
    const ModelConfig c = load_config(tiny_ckpt(name) + "/config.json");
    const TensorStore st = TensorStore::open_dir(tiny_ckpt(name));
    const auto inv = checkpoint_inventory(c);
    EXPECT_EQ(inv.size(), st.all().size()) << name;
    for (const TensorDecl& d : inv) {
      const TensorView* v = st.find(d.name);
      ASSERT_NE(v, nullptr) << d.name;
      EXPECT_EQ(v->dtype, d.dtype) << d.name;
      EXPECT_EQ(v->shape, d.shape) << d.name;
    }
  }
}

TEST(Weights, FlashInventoryAndParameterCountsSpec73) {
  const ModelConfig c = load_config(std::string(DSV4_TEST_DATA) + "/spec/deepseek-v4-flash.config.json");
  const auto inv = checkpoint_inventory(c);
  EXPECT_EQ(inv.size(), 69187u);  // spec 3.2 tensor-count check
  uint64_t bytes = 0;
  for (const auto& d : inv) bytes += d.nbytes();
  EXPECT_EQ(bytes, 159609485896ull);  // metadata.total_size of the release (TENSORS.md)
  const ParamCounts p = count_params(c);
  EXPECT_NEAR(p.main / 1e9, 284.3, 0.05);
  EXPECT_NEAR(p.routed_experts / 1e9, 277.0, 0.05);
  EXPECT_NEAR(p.mtp / 1e9, 6.6, 0.05);
  EXPECT_NEAR(p.active / 1e9, 13.27, 0.01);
  EXPECT_EQ(p.total, p.main + p.mtp);
}
