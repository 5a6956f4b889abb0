#include <gtest/gtest.h>

#include "format/config.h"
#include "tests/unit/ckpt_fixture.h"

using namespace dsv4;
using namespace dsv4::testing;

namespace {
json tiny_a_json() { return read_json(tiny_ckpt("tiny-a") + "/config.json"); }
std::string flash_path() { return std::string(DSV4_TEST_DATA) + "/spec/deepseek-v4-flash.config.json"; }

// parse_config(patched tiny-a) must fail with a message naming the field and the values.
void expect_bad(const std::function<void(json&)>& patch, std::initializer_list<std::string> needles) {
  json j = tiny_a_json();
  patch(j);
  expect_error([&] { parse_config(j, "cfg.json"); }, needles);
}
}  // namespace

TEST(Config, TinyA) {
  ModelConfig c = load_config(tiny_ckpt("tiny-a") + "/config.json");
  EXPECT_EQ(c.model_type, "deepseek_v4");
  EXPECT_EQ(c.vocab_size, 1024);
  EXPECT_EQ(c.dim, 256);
  EXPECT_EQ(c.n_layers, 4);
  EXPECT_EQ(c.n_mtp_layers, 1);
  EXPECT_EQ(c.n_heads, 4);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.rope_head_dim, 64);
  EXPECT_EQ(c.nope_dim(), 64);
  EXPECT_EQ(c.q_lora_rank, 128);
  EXPECT_EQ(c.o_lora_rank, 128);
  EXPECT_EQ(c.o_groups, 2);
  EXPECT_EQ(c.window, 8);
  EXPECT_EQ(c.compress_ratios, (std::vector<int>{0, 4, 16, 4, 0}));
  EXPECT_EQ(c.ratio(2), 16);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000);
  EXPECT_DOUBLE_EQ(c.compress_rope_theta, 160000);
  EXPECT_DOUBLE_EQ(c.rope_factor, 16);
  EXPECT_EQ(c.original_seq_len, 65536);
  EXPECT_DOUBLE_EQ(c.beta_fast, 32);
  EXPECT_DOUBLE_EQ(c.beta_slow, 1);
  EXPECT_EQ(c.max_position_embeddings, 4096);
  EXPECT_EQ(c.index_n_heads, 4);
  EXPECT_EQ(c.index_head_dim, 128);
  EXPECT_EQ(c.index_topk, 4);
  EXPECT_EQ(c.n_routed_experts, 8);
  EXPECT_EQ(c.n_shared_experts, 1);
  EXPECT_EQ(c.n_activated_experts, 2);
  EXPECT_EQ(c.moe_inter_dim, 256);
  EXPECT_EQ(c.score_func, ScoreFunc::SqrtSoftplus);
  EXPECT_DOUBLE_EQ(c.route_scale, 1.5);
  EXPECT_EQ(c.n_hash_layers, 1);
  EXPECT_DOUBLE_EQ(c.swiglu_limit, 10.0);
  EXPECT_EQ(c.hc_mult, 4);
  EXPECT_EQ(c.hc_mix(), 24);
  EXPECT_EQ(c.hc_sinkhorn_iters, 20);
  EXPECT_DOUBLE_EQ(c.hc_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.norm_eps, 1e-6);
  EXPECT_EQ(c.bos_token_id, 0);
  EXPECT_EQ(c.eos_token_id, 1);
}

TEST(Config, TinyDAndFlash) {
  ModelConfig d = load_config(tiny_ckpt("tiny-d") + "/config.json");
  EXPECT_EQ(d.window, 128);
  EXPECT_EQ(d.dim, 512);
  EXPECT_EQ(d.head_dim, 256);
  EXPECT_EQ(d.compress_ratios, (std::vector<int>{0, 4, 128, 4, 0}));
  EXPECT_EQ(d.n_activated_experts, 4);
  ModelConfig f = load_config(flash_path());
  EXPECT_EQ(f.n_layers, 43);
  EXPECT_EQ(f.compress_ratios.size(), 44u);
  EXPECT_EQ(f.vocab_size, 129280);
  EXPECT_EQ(f.n_routed_experts, 256);
  EXPECT_EQ(f.n_hash_layers, 3);
  EXPECT_EQ(f.max_position_embeddings, 1048576);
  EXPECT_EQ(f.index_topk, 512);
}

TEST(Config, OptionalFieldsDefault) {
  json j = tiny_a_json();
  j.erase("rope_scaling");
  j.erase("swiglu_limit");
  j.erase("quantization_config");
  j.erase("scoring_func");
  ModelConfig c = parse_config(j);
  EXPECT_EQ(c.original_seq_len, 0);  // no YaRN
  EXPECT_DOUBLE_EQ(c.rope_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.swiglu_limit, 0.0);
  EXPECT_EQ(c.score_func, ScoreFunc::SqrtSoftplus);
  j["scoring_func"] = "sigmoid";
  EXPECT_EQ(parse_config(j).score_func, ScoreFunc::Sigmoid);
  j["scoring_func"] = "softmax";
  EXPECT_EQ(parse_config(j).score_func, ScoreFunc::Softmax);
  j["some_future_key"] = {1, 2, 3};  // unknown keys are ignored (goldens carry ref_* keys)
  EXPECT_NO_THROW(parse_config(j));
  j["eos_token_id"] = {1, 7};
  EXPECT_EQ(parse_config(j).eos_token_id, 1);
}

TEST(Config, RejectsBadJsonFile) {
  TempDir d;
  write_file(d.file("config.json"), "{\"model_type\": \"deepseek_v4\",");
  expect_error([&] { load_config(d.file("config.json")); }, {d.file("config.json"), "not valid JSON"});
  expect_error([&] { load_config(d.file("missing.json")); }, {"missing.json", "cannot open"});
}

TEST(Config, RejectsInconsistentFields) {
  expect_bad([](json& j) { j["compress_ratios"] = {0, 4, 16, 4}; },
             {"cfg.json", "compress_ratios", "expected 5 entries", "got 4"});
  expect_bad([](json& j) { j["compress_ratios"][2] = 2; }, {"compress_ratios", "entry 2", "got 2"});
  expect_bad([](json& j) { j["compress_ratios"][2] = -4; }, {"compress_ratios", "entry 2"});
  expect_bad([](json& j) { j["compress_ratios"][1] = "4"; }, {"compress_ratios", "entry 1"});
  expect_bad([](json& j) { j["head_dim"] = 64; }, {"field head_dim", "qk_rope_head_dim", "got 64"});
  expect_bad([](json& j) { j["head_dim"] = 160; }, {"field head_dim", "multiple of 64"});
  expect_bad([](json& j) { j["qk_rope_head_dim"] = 63; }, {"field qk_rope_head_dim", "even", "63"});
  expect_bad([](json& j) { j["o_groups"] = 3; }, {"field o_groups", "divisor", "got 3"});
  expect_bad([](json& j) { j["hidden_size"] = 192; }, {"field hidden_size", "multiple of 128", "192"});
  expect_bad([](json& j) { j["q_lora_rank"] = 96; }, {"field q_lora_rank", "multiple of 128", "96"});
  expect_bad([](json& j) { j["o_lora_rank"] = 96; }, {"field o_lora_rank", "o_groups * o_lora_rank", "192"});
  expect_bad([](json& j) { j["moe_intermediate_size"] = 200; }, {"field moe_intermediate_size", "multiple of 128", "200"});
  expect_bad([](json& j) { j["index_head_dim"] = 96; }, {"field index_head_dim", "power of two", "96"});
  expect_bad([](json& j) { j["index_head_dim"] = 32; }, {"field index_head_dim", "qk_rope_head_dim"});
  expect_bad([](json& j) { j["num_experts_per_tok"] = 9; }, {"field num_experts_per_tok", "n_routed_experts (8)", "got 9"});
  expect_bad([](json& j) { j["num_hash_layers"] = 5; }, {"field num_hash_layers", "[0, 4]", "got 5"});
  expect_bad([](json& j) { j["scoring_func"] = "relu"; }, {"field scoring_func", "sqrtsoftplus", "relu"});
  expect_bad([](json& j) { j["n_shared_experts"] = 2; }, {"field n_shared_experts", "expected 1", "got 2"});
  expect_bad([](json& j) { j["model_type"] = "deepseek_v3"; }, {"field model_type", "deepseek_v4", "deepseek_v3"});
  expect_bad([](json& j) { j["quantization_config"]["fmt"] = "e5m2"; }, {"quantization_config.fmt", "e4m3", "e5m2"});
  expect_bad([](json& j) { j["quantization_config"]["weight_block_size"] = {64, 64}; },
             {"quantization_config.weight_block_size", "[128, 128]"});
  expect_bad([](json& j) { j["quantization_config"]["scale_fmt"] = "fp32"; }, {"quantization_config.scale_fmt", "ue8m0"});
  expect_bad([](json& j) { j["rope_scaling"].erase("factor"); }, {"field rope_scaling.factor", "missing"});
  expect_bad([](json& j) { j["rope_scaling"]["type"] = "linear"; }, {"rope_scaling.type", "yarn", "linear"});
  expect_bad([](json& j) { j["swiglu_limit"] = -1.0; }, {"field swiglu_limit", ">= 0"});
  expect_bad([](json& j) { j["vocab_size"] = "1024"; }, {"field vocab_size", "integer", "\"1024\""});
  expect_bad([](json& j) { j.erase("hidden_size"); }, {"field hidden_size", "missing"});
  expect_bad([](json& j) { j["num_attention_heads"] = 0; }, {"field num_attention_heads", "got 0"});
  expect_bad([](json& j) { j["sliding_window"] = 0; }, {"field sliding_window", "got 0"});
  expect_bad([](json& j) { j["num_key_value_heads"] = 8; }, {"field num_key_value_heads", "expected 1"});
  expect_bad([](json& j) { j["expert_dtype"] = "fp8"; }, {"field expert_dtype", "fp4"});
  expect_bad([](json& j) { j["tie_word_embeddings"] = true; }, {"field tie_word_embeddings"});
  expect_bad([](json& j) { j["eos_token_id"] = 5000; }, {"field eos_token_id", "got 5000"});
  expect_bad([](json& j) { j["rms_norm_eps"] = 0; }, {"field rms_norm_eps", "positive"});
  expect_bad([](json& j) { j["max_position_embeddings"] = -1; }, {"field max_position_embeddings"});
}

TEST(Config, RejectsLaterVariants) {
  expect_bad([](json& j) { j["dspark_num_stages"] = 3; }, {"field dspark_num_stages", "DSpark", "not supported"});
  expect_bad([](json& j) { j["engram_vocab_size"] = 3; }, {"field engram_vocab_size", "V4.1", "not supported"});
  expect_bad([](json& j) { j["compress_ratios"] = {0, 4, 2, 1, 0}; }, {"compress_ratios", "entry 2", "V4.1"});
}

TEST(Config, RejectsNonObject) {
  expect_error([] { parse_config(json::array({1, 2}), "cfg.json"); }, {"cfg.json", "not a JSON object"});
}
