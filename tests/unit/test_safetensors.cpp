#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include <map>
#include <string>
#include <vector>

#include "dsv4/engine.h"
#include "format/safetensors.h"
#include "tests/unit/ckpt_fixture.h"

using namespace dsv4;
using namespace dsv4::testing;

TEST(Safetensors, OpensTinyCheckpoints) {
  for (const char* name : {"tiny-a", "tiny-d"}) {
    TensorStore st = TensorStore::open_dir(tiny_ckpt(name));
    const json idx = read_json(tiny_ckpt(name) + "/model.safetensors.index.json");
    EXPECT_EQ(st.all().size(), idx["weight_map"].size()) << name;
    EXPECT_EQ(st.total_bytes(), idx["metadata"]["total_size"].get<uint64_t>()) << name;
    const TensorView* e = st.find("embed.weight");
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->dtype, DType::BF16);
    EXPECT_EQ(e->shape.size(), 2u);
    EXPECT_EQ(e->nbytes, size_t(e->numel()) * 2);
    EXPECT_EQ(e->file, kTinyShard);
    EXPECT_EQ(st.find("no.such.tensor"), nullptr);
  }
  // tiny-a values that pin the layout: tid2eid is I64 [1024, 2] at data offset 0.
  TensorStore st = TensorStore::open_dir(tiny_ckpt("tiny-a"));
  const TensorView* t = st.find("layers.0.ffn.gate.tid2eid");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, DType::I64);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{1024, 2}));
  const TensorView* s = st.find("layers.0.attn.wq_b.scale");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->dtype, DType::F8_E8M0);
  EXPECT_EQ(s->shape, (std::vector<int64_t>{4, 1}));
}

TEST(Safetensors, DTypeNames) {
  for (const char* n : {"BF16", "F32", "F8_E4M3", "F8_E8M0", "I8", "I32", "I64"}) {
    DType t;
    ASSERT_TRUE(dtype_from_name(n, &t)) << n;
    EXPECT_STREQ(dtype_name(t), n);
  }
  DType t;
  EXPECT_FALSE(dtype_from_name("F16", &t));
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  EXPECT_EQ(dtype_size(DType::F8_E8M0), 1u);
}

TEST(Safetensors, WriterRoundTripsAndShardsThroughIndex) {
  TempDir d;
  std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  std::vector<uint16_t> b = {0x3f80, 0xbf80, 0x4000};
  std::vector<uint8_t> c = {1, 2, 3, 4, 5};
  {
    SafetensorsWriter w(d.file("model-00001-of-00002.safetensors"),
                        {{"a", DType::F32, {2, 3}}, {"b", DType::BF16, {3}}}, {{"format", "pt"}});
    w.write(a.data(), 8);  // split writes of one tensor are fine
    w.write(reinterpret_cast<const uint8_t*>(a.data()) + 8, 16);
    w.write(b.data(), 6);
    w.finish();
    SafetensorsWriter w2(d.file("model-00002-of-00002.safetensors"), {{"c", DType::I8, {5}}, {"empty", DType::F32, {0, 4}}});
    w2.write(c.data(), 5);
    w2.finish();
  }
  write_json(d.file("model.safetensors.index.json"),
             {{"metadata", {{"total_size", 35}}},
              {"weight_map",
               {{"a", "model-00001-of-00002.safetensors"},
                {"b", "model-00001-of-00002.safetensors"},
                {"c", "model-00002-of-00002.safetensors"},
                {"empty", "model-00002-of-00002.safetensors"}}}});
  TensorStore st = TensorStore::open_dir(d.path());
  ASSERT_EQ(st.all().size(), 4u);
  const TensorView* ta = st.find("a");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(ta->data) % 8, 0u);  // header padded to 8
  std::vector<float> got(6);
  std::memcpy(got.data(), ta->data, 24);
  EXPECT_EQ(got, a);
  EXPECT_EQ(std::memcmp(st.find("b")->data, b.data(), 6), 0);
  EXPECT_EQ(std::memcmp(st.find("c")->data, c.data(), 5), 0);
  EXPECT_EQ(st.find("c")->file, "model-00002-of-00002.safetensors");
  EXPECT_EQ(st.find("empty")->nbytes, 0u);
  EXPECT_EQ(st.total_bytes(), 35u);
}

TEST(Safetensors, WriterRejectsWrongByteCounts) {
  TempDir d;
  SafetensorsWriter w(d.file("x.safetensors"), {{"a", DType::F32, {2}}});
  float v[3] = {1, 2, 3};
  expect_error([&] { w.write(v, 12); }, {"x.safetensors", "more written"});
  w.write(v, 4);
  expect_error([&] { w.finish(); }, {"x.safetensors", "tensor a incomplete"});
}

TEST(Safetensors, SingleFileCheckpoint) {
  TempDir d;
  fs::copy_file(tiny_ckpt("tiny-a") + "/" + kTinyShard, d.file("model.safetensors"));
  TensorStore st = TensorStore::open_dir(d.path());
  EXPECT_NE(st.find("head.weight"), nullptr);
  EXPECT_EQ(st.find("head.weight")->file, "model.safetensors");
}

namespace {
// A patched copy of tiny-a; `patch` edits the shard's header/data before it is written back.
void patched(TempDir& d, const std::function<void(Shard&)>& patch) {
  copy_ckpt(tiny_ckpt("tiny-a"), d.path());
  Shard sh = read_shard(d.file(kTinyShard));
  patch(sh);
  write_shard(d.file(kTinyShard), sh);
}
auto opener = [](const TempDir& d) { return [&d] { TensorStore::open_dir(d.path()); }; };
}  // namespace

TEST(Safetensors, RejectsEmptyDirectory) {
  TempDir d;
  expect_error(opener(d), {d.path(), "model.safetensors.index.json"});
}

TEST(Safetensors, RejectsTruncatedShard) {
  TempDir d;
  copy_ckpt(tiny_ckpt("tiny-a"), d.path());
  fs::resize_file(d.file(kTinyShard), fs::file_size(d.file(kTinyShard)) - 1000);
  // The last tensor by offset is mtp.0.h_proj.weight.
  expect_error(opener(d), {kTinyShard, "tensor mtp.0.h_proj.weight", "exceed the file's data section", "truncated"});
}

TEST(Safetensors, RejectsHeaderLongerThanFile) {
  TempDir d;
  copy_ckpt(tiny_ckpt("tiny-a"), d.path());
  std::string s = read_file(d.file(kTinyShard));
  s[5] = 0x7f;  // header length ~ 2^47
  write_file(d.file(kTinyShard), s);
  expect_error(opener(d), {kTinyShard, "header length", "exceeds the file size"});
}

TEST(Safetensors, RejectsTinyFile) {
  TempDir d;
  copy_ckpt(tiny_ckpt("tiny-a"), d.path());
  write_file(d.file(kTinyShard), "abc");
  expect_error(opener(d), {kTinyShard, "too small"});
}

TEST(Safetensors, RejectsBadHeaderJson) {
  TempDir d;
  copy_ckpt(tiny_ckpt("tiny-a"), d.path());
  std::string s = read_file(d.file(kTinyShard));
  s[8] = '[';
  s[9] = '}';
  write_file(d.file(kTinyShard), s);
  expect_error(opener(d), {kTinyShard, "not valid JSON"});
}

TEST(Safetensors, RejectsUnknownDtype) {
  TempDir d;
  patched(d, [](Shard& sh) { sh.header["norm.weight"]["dtype"] = "F16"; });
  expect_error(opener(d), {kTinyShard, "tensor norm.weight", "unknown dtype \"F16\""});
}

TEST(Safetensors, RejectsOffsetsOutOfRange) {
  TempDir d;
  size_t data_size = 0;
  patched(d, [&](Shard& sh) {
    data_size = sh.data.size();
    sh.header["norm.weight"]["data_offsets"] = {data_size, data_size + 512};
  });
  expect_error(opener(d), {kTinyShard, "tensor norm.weight", "exceed the file's data section of " + std::to_string(data_size)});
}

TEST(Safetensors, RejectsSizeNotMatchingShape) {
  TempDir d;
  patched(d, [](Shard& sh) { sh.header["norm.weight"]["shape"] = {255}; });
  expect_error(opener(d), {kTinyShard, "tensor norm.weight", "span 512 bytes", "needs 510"});
}

TEST(Safetensors, RejectsOverlaps) {
  TempDir d;
  patched(d, [](Shard& sh) {
    auto off = sh.header["hc_head_base"]["data_offsets"];  // [16384, 16400]
    sh.header["hc_head_scale"]["data_offsets"] = {off[0].get<uint64_t>() + 4, off[0].get<uint64_t>() + 8};
  });
  expect_error(opener(d), {kTinyShard, "overlap", "hc_head_scale", "hc_head_base"});
}

TEST(Safetensors, RejectsMalformedEntries) {
  {
    TempDir d;
    patched(d, [](Shard& sh) { sh.header["norm.weight"]["data_offsets"] = {10}; });
    expect_error(opener(d), {kTinyShard, "tensor norm.weight", "data_offsets"});
  }
  {
    TempDir d;
    patched(d, [](Shard& sh) { sh.header["norm.weight"]["shape"] = {-256}; });
    expect_error(opener(d), {kTinyShard, "tensor norm.weight", "negative"});
  }
  {
    TempDir d;
    patched(d, [](Shard& sh) { sh.header["norm.weight"].erase("dtype"); });
    expect_error(opener(d), {kTinyShard, "tensor norm.weight", "dtype"});
  }
}

TEST(Safetensors, RejectsMissingShard) {
  TempDir d;
  copy_ckpt(tiny_ckpt("tiny-a"), d.path());
  json idx = read_json(d.file("model.safetensors.index.json"));
  idx["weight_map"]["norm.weight"] = "model-00002-of-00002.safetensors";
  write_json(d.file("model.safetensors.index.json"), idx);
  expect_error(opener(d), {"model.safetensors.index.json", "model-00002-of-00002.safetensors", "norm.weight", "does not exist"});
}

TEST(Safetensors, RejectsIndexedTensorAbsentFromShard) {
  TempDir d;
  copy_ckpt(tiny_ckpt("tiny-a"), d.path());
  json idx = read_json(d.file("model.safetensors.index.json"));
  idx["weight_map"]["layers.9.attn.wq_a.weight"] = kTinyShard;
  write_json(d.file("model.safetensors.index.json"), idx);
  expect_error(opener(d), {kTinyShard, "tensor layers.9.attn.wq_a.weight", "header lacks it"});
}

TEST(Safetensors, RejectsBadIndexJson) {
  TempDir d;
  copy_ckpt(tiny_ckpt("tiny-a"), d.path());
  write_file(d.file("model.safetensors.index.json"), "{\"weight_map\": {");
  expect_error(opener(d), {"model.safetensors.index.json", "not valid JSON"});
  write_file(d.file("model.safetensors.index.json"), "{\"metadata\": {}}");
  expect_error(opener(d), {"model.safetensors.index.json", "weight_map"});
}

// read_private: every view keeps its bytes and now starts on a 64-byte boundary in private
// memory, outside the file mapping; progress ends at the file size; a second call changes nothing.
TEST(Safetensors, ReadPrivateAlignsEveryViewAndKeepsItsBytes) {
  TensorStore st = TensorStore::open_dir(tiny_ckpt("tiny-a"));
  EXPECT_FALSE(st.is_private());
  std::map<std::string, std::pair<const uint8_t*, std::vector<uint8_t>>> before;
  int misaligned = 0;
  for (const auto& [name, v] : st.all()) {
    before[name] = {v.data, std::vector<uint8_t>(v.data, v.data + v.nbytes)};
    misaligned += reinterpret_cast<uintptr_t>(v.data) % TensorStore::kPrivateAlign != 0;
  }
  EXPECT_GT(misaligned, 0);  // the checkpoint's offsets are not all aligned: the test can fail
  uint64_t last = 0, total = 0;
  int calls = 0;
  st.read_private([&](uint64_t done, uint64_t all) {
    EXPECT_GE(done, last);
    last = done;
    total = all;
    ++calls;
  });
  EXPECT_TRUE(st.is_private());
  EXPECT_GT(calls, 0);
  EXPECT_EQ(last, st.file_bytes());
  EXPECT_EQ(total, st.file_bytes());
  std::vector<std::pair<const uint8_t*, const uint8_t*>> spans;
  for (const auto& [name, v] : st.all()) {
    const auto& [ptr, bytes] = before.at(name);
    EXPECT_NE(v.data, ptr) << name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data) % TensorStore::kPrivateAlign, 0u) << name;
    ASSERT_EQ(0, std::memcmp(v.data, bytes.data(), bytes.size())) << name;
    spans.push_back({v.data, v.data + v.nbytes});
  }
  std::sort(spans.begin(), spans.end());  // no two views share a byte
  for (size_t i = 1; i < spans.size(); ++i) EXPECT_LE(spans[i - 1].second, spans[i].first);
  const uint8_t* embed = st.find("embed.weight")->data;
  st.read_private();  // already private: nothing happens
  EXPECT_EQ(st.find("embed.weight")->data, embed);
}

// A shard that changes under read_private is reported by name, and the views stay as they were.
TEST(Safetensors, ReadPrivateReportsAShardThatShrank) {
  TempDir d;
  copy_ckpt(tiny_ckpt("tiny-a"), d.path());
  TensorStore st = TensorStore::open_dir(d.path());
  const uint8_t* embed = st.find("embed.weight")->data;
  std::string shard;
  for (const auto& e : std::filesystem::directory_iterator(d.path()))
    if (e.path().extension() == ".safetensors") shard = e.path().string();
  ASSERT_FALSE(shard.empty());
  std::filesystem::resize_file(shard, 64);
  try {
    st.read_private();
    ADD_FAILURE() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(std::filesystem::path(shard).filename().string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("shrank"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(st.is_private());
  EXPECT_EQ(st.find("embed.weight")->data, embed);
}

// The engine computes the same logits whichever memory holds the weights.
TEST(Safetensors, EngineLogitsIndependentOfWeightMemory) {
  std::vector<std::vector<float>> runs;
  for (WeightMemory wm : {WeightMemory::Mapped, WeightMemory::Private, WeightMemory::Auto}) {
    EngineOptions eo;
    eo.model_dir = tiny_ckpt("tiny-a");
    eo.threads = 1;
    eo.weight_memory = wm;
    auto eng = Engine::load(eo);
    EXPECT_NE(eng->info().weight_memory, WeightMemory::Auto);
    if (wm != WeightMemory::Auto) {
      EXPECT_EQ(eng->info().weight_memory, wm);
    }
    auto s = eng->new_session();
    std::vector<float> logits(static_cast<size_t>(eng->info().vocab_size));
    const std::vector<int32_t> prompt = {5, 17, 99, 3, 250, 8};
    s->prefill(prompt, logits);
    s->decode(42, logits);
    runs.push_back(logits);
  }
  for (size_t i = 1; i < runs.size(); ++i)
    ASSERT_EQ(0, std::memcmp(runs[0].data(), runs[i].data(), runs[0].size() * sizeof(float))) << i;
  EXPECT_STREQ(weight_memory_name(WeightMemory::Private), "private");
  EXPECT_STREQ(weight_memory_name(WeightMemory::Mapped), "mmap");
}
