// Random checkpoints in the release layout (see synth.h for the value scheme).
#include "model/synth.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <numbers>
#include <unordered_map>

#include "core/error.h"
#include "format/config.h"
#include "format/safetensors.h"
#include "model/weights.h"
#include "quant/quant.h"

namespace dsv4 {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- presets ------------------------------------------------------------------------------

namespace {

struct Preset {
  const char* name;
  int64_t vocab, dim;
  int layers, mtp, heads, head_dim, rope_dim, q_lora, o_groups, o_lora, window;
  int lead_swa;   // ratios: `lead_swa` SWA layers, then alternating CSA (4) / HCA
  int hca_ratio;
  int index_heads, index_dim, index_topk;
  int experts, topk, inter, hash_layers;
  int64_t max_pos;
};

// tiny: tiny-a's shapes; tiny-wide: tiny-d's (window 128, HCA 128, several K blocks, 16 experts);
// flash-width: real V4-Flash widths with 3 layers + MTP and a small vocabulary; default: small
// V4-architecture dims with the full 129,280-token vocabulary (the built-in default model).
constexpr Preset kPresets[] = {
    {"tiny", 1024, 256, 4, 1, 4, 128, 64, 128, 2, 128, 8, 1, 16, 4, 128, 4, 8, 2, 256, 1, 4096},
    {"tiny-wide", 1024, 512, 4, 1, 4, 256, 64, 256, 2, 256, 128, 1, 128, 4, 128, 8, 16, 4, 256, 1, 4096},
    {"flash-width", 8192, 4096, 3, 1, 64, 512, 64, 1024, 8, 1024, 128, 0, 128, 64, 128, 512, 256, 6, 2048, 1, 1048576},
    {"default", 129280, 256, 6, 1, 8, 128, 64, 256, 4, 128, 128, 2, 128, 8, 128, 64, 16, 4, 256, 3, 65536},
    // longctx: the smallest V4 model with Flash-shaped KV entries (head_dim 512, 583 B compact), one
    // CSA and one HCA layer, 2 index heads, window 128; for the million-token runs (scripts/long_context.sh)
    {"longctx", 1024, 256, 2, 0, 2, 512, 64, 128, 2, 128, 128, 0, 128, 2, 128, 64, 4, 2, 128, 0, 2097152},
};

const Preset& find_preset(const std::string& name) {
  for (const auto& p : kPresets)
    if (name == p.name) return p;
  std::string all;
  for (const auto& p : kPresets) all += (all.empty() ? "" : ", ") + std::string(p.name);
  throw_error("synth: unknown preset \"", name, "\" (known: ", all, ")");
}

}  // namespace

std::vector<std::string> synth_preset_names() {
  std::vector<std::string> r;
  for (const auto& p : kPresets) r.push_back(p.name);
  return r;
}

json synth_config(const std::string& preset, const SynthOverrides& o) {
  const Preset& p = find_preset(preset);
  const int layers = o.layers.value_or(p.layers);
  const int mtp = o.mtp_layers.value_or(p.mtp);
  if (layers < 1) throw_error("synth: --layers must be >= 1, got ", layers);
  if (mtp < 0) throw_error("synth: --mtp-layers must be >= 0, got ", mtp);
  std::vector<int> ratios;
  for (int i = 0; i < layers; ++i) ratios.push_back(i < p.lead_swa ? 0 : ((i - p.lead_swa) % 2 == 0 ? 4 : p.hca_ratio));
  for (int k = 0; k < mtp; ++k) ratios.push_back(0);
  const int experts = o.experts.value_or(p.experts);
  json j = {
      {"architectures", {"DeepseekV4ForCausalLM"}},
      {"model_type", "deepseek_v4"},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"bos_token_id", 0},
      {"eos_token_id", 1},
      {"hc_eps", 1e-6},
      {"hc_mult", 4},
      {"hc_sinkhorn_iters", 20},
      {"head_dim", p.head_dim},
      {"hidden_act", "silu"},
      {"hidden_size", p.dim},
      {"index_head_dim", p.index_dim},
      {"index_n_heads", p.index_heads},
      {"index_topk", p.index_topk},
      {"initializer_range", 0.02},
      {"max_position_embeddings", p.max_pos},
      {"moe_intermediate_size", p.inter},
      {"n_routed_experts", experts},
      {"n_shared_experts", 1},
      {"norm_topk_prob", true},
      {"num_attention_heads", p.heads},
      {"num_experts_per_tok", std::min(p.topk, experts)},
      {"num_hidden_layers", layers},
      {"num_hash_layers", std::min(o.hash_layers.value_or(p.hash_layers), layers)},
      {"num_key_value_heads", 1},
      {"num_nextn_predict_layers", mtp},
      {"o_groups", p.o_groups},
      {"o_lora_rank", p.o_lora},
      {"q_lora_rank", p.q_lora},
      {"qk_rope_head_dim", p.rope_dim},
      {"quantization_config",
       {{"activation_scheme", "dynamic"}, {"fmt", "e4m3"}, {"quant_method", "fp8"}, {"scale_fmt", "ue8m0"},
        {"weight_block_size", {128, 128}}}},
      {"rms_norm_eps", 1e-6},
      {"rope_scaling",
       {{"beta_fast", 32}, {"beta_slow", 1}, {"factor", 16}, {"original_max_position_embeddings", 65536}, {"type", "yarn"}}},
      {"rope_theta", 10000},
      {"routed_scaling_factor", 1.5},
      {"scoring_func", "sqrtsoftplus"},
      {"sliding_window", p.window},
      {"swiglu_limit", 10.0},
      {"tie_word_embeddings", false},
      {"topk_method", "noaux_tc"},
      {"torch_dtype", "bfloat16"},
      {"use_cache", true},
      {"vocab_size", o.vocab.value_or(static_cast<int>(p.vocab))},
      {"compress_rope_theta", 160000},
      {"compress_ratios", ratios},
      {"expert_dtype", "fp4"},
      {"synth_preset", p.name},
  };
  parse_config(j, std::string("synth preset ") + p.name);  // throws on an invalid override
  return j;
}

// ---- random values --------------------------------------------------------------------------

namespace {

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t s = a ^ (b * 0xD1B54A32D192ED03ull);
  return splitmix(s);
}
uint64_t name_hash(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() { return splitmix(s_); }
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  float normal() {
    if (have_) {
      have_ = false;
      return spare_;
    }
    const double u1 = 1.0 - uniform(), u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1)), t = 2.0 * std::numbers::pi * u2;
    spare_ = float(r * std::sin(t));
    have_ = true;
    return float(r * std::cos(t));
  }
  float gain() { return float(std::exp2(2.0 * uniform() - 1.0)); }  // 2^U(-1,1)

 private:
  uint64_t s_;
  float spare_ = 0;
  bool have_ = false;
};

constexpr int64_t kChunk = 1 << 16;  // elements per independent random stream
// Tensors smaller than this are generated on one thread (thread start-up costs more than it gains
// on a loaded machine); the values do not depend on the thread count either way.
constexpr int64_t kParallelMin = 1 << 22;

int64_t numel(const TensorDecl& d) {
  int64_t n = 1;
  for (int64_t x : d.shape) n *= x;
  return n;
}
bool ends_with(const std::string& s, const char* suf) {
  const size_t n = std::strlen(suf);
  return s.size() >= n && s.compare(s.size() - n, n, suf) == 0;
}

// float values -> bytes of dtype (BF16 or F32)
void store(const std::vector<float>& v, DType dt, std::vector<uint8_t>& out) {
  if (dt == DType::F32) {
    out.resize(v.size() * 4);
    std::memcpy(out.data(), v.data(), out.size());
    return;
  }
  out.resize(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t b = quant::f32_to_bf16(v[i]);
    std::memcpy(out.data() + 2 * i, &b, 2);
  }
}

// mean + std * N(0,1), chunked streams
std::vector<float> gaussian(int64_t n, uint64_t seed, float mean, float std) {
  std::vector<float> v(static_cast<size_t>(n));
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    Rng r(mix(seed, uint64_t(c)));
    for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) v[size_t(i)] = mean + std * r.normal();
  }
  return v;
}

int e8m0_exponent(float amax, float fmax) {
  return quant::ceil_log2_bits(std::max(amax, 1e-30f) * (1.0f / fmax));
}
uint8_t e8m0_byte(int k) { return static_cast<uint8_t>(std::clamp(k + 127, 0, 254)); }

// FP8 E4M3 [rows, cols] + E8M0 [ceil(rows/128), ceil(cols/128)]; one stream per 128-row band.
void gen_fp8(const TensorDecl& w, uint64_t seed, std::vector<uint8_t>& codes, std::vector<uint8_t>& scales) {
  const int64_t rows = w.shape[0], cols = w.shape[1], sr = (rows + 127) / 128, sc = (cols + 127) / 128;
  codes.resize(size_t(rows * cols));
  scales.resize(size_t(sr * sc));
  const float sd = float(1.0 / std::sqrt(double(cols)));
#pragma omp parallel for schedule(dynamic) if (rows * cols >= kParallelMin)
  for (int64_t band = 0; band < sr; ++band) {
    Rng r(mix(seed, uint64_t(band)));
    const int64_t r0 = band * 128, r1 = std::min(rows, r0 + 128);
    std::vector<float> gain(static_cast<size_t>(sc)), amax(static_cast<size_t>(sc), 0.f),
        x(static_cast<size_t>((r1 - r0) * cols));
    for (auto& g : gain) g = r.gain() * sd;
    for (int64_t i = r0; i < r1; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        const float v = r.normal() * gain[size_t(j / 128)];
        x[size_t((i - r0) * cols + j)] = v;
        amax[size_t(j / 128)] = std::max(amax[size_t(j / 128)], std::fabs(v));
      }
    for (int64_t b = 0; b < sc; ++b) {
      const int k = e8m0_exponent(amax[size_t(b)], 448.f);
      scales[size_t(band * sc + b)] = e8m0_byte(k);
      amax[size_t(b)] = std::ldexp(1.0f, -k);  // reuse as the inverse scale
    }
    for (int64_t i = r0; i < r1; ++i)
      for (int64_t j = 0; j < cols; ++j)
        codes[size_t(i * cols + j)] = quant::f32_to_e4m3(x[size_t((i - r0) * cols + j)] * amax[size_t(j / 128)]);
  }
}

// Packed FP4 [rows, cols/2] + E8M0 [rows, cols/32] for logical [rows, cols]; one stream per row.
void gen_fp4(int64_t rows, int64_t cols, uint64_t seed, bool uniform_codes, std::vector<uint8_t>& packed,
             std::vector<uint8_t>& scales) {
  packed.resize(size_t(rows * cols / 2));
  scales.resize(size_t(rows * cols / 32));
  const double sd = 1.0 / std::sqrt(double(cols));
  const double log2_uniform_scale = std::log2(sd / std::sqrt(8.5625));
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t i = 0; i < rows; ++i) {
    Rng r(mix(seed, uint64_t(i)));
    uint8_t* prow = packed.data() + i * cols / 2;
    uint8_t* srow = scales.data() + i * cols / 32;
    if (uniform_codes) {
      for (int64_t b = 0; b < cols / 32; ++b)
        srow[b] = e8m0_byte(int(std::floor(log2_uniform_scale + 2.0 * r.uniform() - 1.0 + 0.5)));
      for (int64_t j = 0; j < cols / 2; j += 8) {
        const uint64_t u = r.next();
        std::memcpy(prow + j, &u, size_t(std::min<int64_t>(8, cols / 2 - j)));
      }
      continue;
    }
    float x[32];
    for (int64_t b = 0; b < cols / 32; ++b) {
      const float g = float(sd) * r.gain();
      float amax = 0;
      for (float& v : x) {
        v = r.normal() * g;
        amax = std::max(amax, std::fabs(v));
      }
      const int k = e8m0_exponent(amax, 6.f);
      srow[b] = e8m0_byte(k);
      const float inv = std::ldexp(1.0f, -k);
      for (int t = 0; t < 32; t += 2) {
        const uint8_t lo = quant::f32_to_e2m1(x[t] * inv), hi = quant::f32_to_e2m1(x[t + 1] * inv);
        prow[b * 16 + t / 2] = static_cast<uint8_t>((lo & 0x0F) | (hi << 4));  // low nibble = even k
      }
    }
  }
}

// tid2eid [vocab, K] I64: K distinct experts per row (partial Fisher-Yates).
void gen_tid2eid(const TensorDecl& d, int experts, uint64_t seed, std::vector<uint8_t>& out) {
  const int64_t rows = d.shape[0], k = d.shape[1];
  out.resize(size_t(rows * k * 8));
  const int64_t chunks = (rows + 4095) / 4096;
#pragma omp parallel for schedule(static) if (rows * k >= kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    Rng r(mix(seed, uint64_t(c)));
    std::vector<int64_t> perm(static_cast<size_t>(experts));
    for (int64_t row = c * 4096; row < std::min(rows, (c + 1) * 4096); ++row) {
      for (int e = 0; e < experts; ++e) perm[size_t(e)] = e;
      for (int64_t a = 0; a < k; ++a) {
        const int64_t b = a + int64_t(r.next() % uint64_t(experts - a));
        std::swap(perm[size_t(a)], perm[size_t(b)]);
      }
      std::memcpy(out.data() + row * k * 8, perm.data(), size_t(k) * 8);
    }
  }
}

// Bytes of one non-quantised tensor, chosen by its role in the inventory.
void gen_plain(const TensorDecl& d, const ModelConfig& c, uint64_t seed, std::vector<uint8_t>& out) {
  const std::string& n = d.name;
  const int64_t cnt = numel(d);
  const float inv_sqrt_in = d.shape.size() == 2 ? float(1.0 / std::sqrt(double(d.shape[1]))) : 1.f;
  if (n.find("tid2eid") != std::string::npos) return gen_tid2eid(d, c.n_routed_experts, seed, out);
  float mean = 0, sd = inv_sqrt_in;
  if (n == "embed.weight") sd = 1.f;
  else if (ends_with(n, "norm.weight")) mean = 1.f, sd = 0.1f;
  else if (n.find("hc_") != std::string::npos && ends_with(n, "_fn")) sd = 0.03f;
  else if (n.find("hc_") != std::string::npos && ends_with(n, "_base")) sd = 0.5f;
  else if (n.find("hc_") != std::string::npos && ends_with(n, "_scale")) mean = 0.75f, sd = 0.05f;
  else if (ends_with(n, "attn_sink")) mean = -0.5f, sd = 1.f;
  else if (ends_with(n, ".ape")) sd = 0.5f;
  else if (ends_with(n, ".ffn.gate.weight")) sd = 6.f * inv_sqrt_in;
  else if (ends_with(n, ".ffn.gate.bias")) sd = 0.3f;
  store(gaussian(cnt, seed, mean, sd), d.dtype, out);
}

// ---- layout -------------------------------------------------------------------------------

struct ShardPlan {
  std::string file;
  std::vector<TensorDecl> tensors;  // write order
  uint64_t bytes = 0;
};

std::vector<ShardPlan> plan_shards(const std::vector<TensorDecl>& inv, const SynthOptions& o) {
  uint64_t total = 0;
  for (const auto& d : inv) total += d.nbytes();
  int n = o.shards;
  if (n <= 0) n = int(std::max<uint64_t>(1, (total + o.max_shard_bytes - 1) / std::max<uint64_t>(1, o.max_shard_bytes)));
  n = int(std::min<size_t>(size_t(n), inv.size()));
  std::vector<ShardPlan> shards(static_cast<size_t>(n));
  // Contiguous runs of the inventory, split at byte targets; a scale stays with its weight.
  uint64_t acc = 0;
  size_t s = 0;
  for (const auto& d : inv) {
    const bool is_scale = d.dtype == DType::F8_E8M0;
    if (!is_scale && s + 1 < shards.size() && acc >= total * (s + 1) / uint64_t(n) && !shards[s].tensors.empty()) ++s;
    shards[s].tensors.push_back(d);
    shards[s].bytes += d.nbytes();
    acc += d.nbytes();
  }
  char buf[64];
  for (size_t i = 0; i < shards.size(); ++i) {
    std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    shards[i].file = buf;
    // Decreasing element size keeps every F32/I64/BF16 view aligned (the data section starts 8-aligned).
    std::stable_sort(shards[i].tensors.begin(), shards[i].tensors.end(),
                     [](const TensorDecl& a, const TensorDecl& b) { return dtype_size(a.dtype) > dtype_size(b.dtype); });
  }
  return shards;
}

// Rate-limits SynthOptions::progress: every 500 ms and once at the end.
class Progress {
 public:
  Progress(const std::function<void(uint64_t, uint64_t)>& fn, uint64_t total) : fn_(fn), total_(total) {}
  void add(uint64_t n) {
    done_ += n;
    if (!fn_) return;
    const auto now = std::chrono::steady_clock::now();
    if (done_ < total_ && now - last_ < std::chrono::milliseconds(500)) return;
    last_ = now;
    fn_(done_, total_);
  }

 private:
  const std::function<void(uint64_t, uint64_t)>& fn_;
  uint64_t total_, done_ = 0;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace

SynthResult synth_checkpoint(const json& config, const std::string& out_dir, const SynthOptions& o) {
  const ModelConfig c = parse_config(config, "synth config");
  const std::vector<TensorDecl> inv = checkpoint_inventory(c, true);
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (!fs::is_directory(out_dir)) throw_error(out_dir, ": cannot create output directory: ", ec.message());

  const std::vector<ShardPlan> shards = plan_shards(inv, o);
  SynthResult res;
  res.tensors = inv.size();
  res.shards = int(shards.size());
  for (const auto& s : shards) res.bytes += s.bytes;
  // FP4 experts as random codes when Gaussian quantisation of all of them would be slow.
  const bool uniform_fp4 = 3.0 * double(c.dim) * double(c.moe_inter_dim) * double(c.n_routed_experts) *
                               double(c.n_layers + c.n_mtp_layers) > double(1u << 30);
  Progress prog(o.progress, res.bytes);
  std::unordered_map<std::string, const TensorDecl*> by_name;
  for (const auto& d : inv) by_name.emplace(d.name, &d);

  json weight_map = json::object();
  for (const ShardPlan& sp : shards) {
    SafetensorsWriter w((fs::path(out_dir) / sp.file).string(), sp.tensors,
                        {{"format", "pt"}, {"generator", "dsv4 synth"}, {"seed", std::to_string(o.seed)}});
    std::map<std::string, std::vector<uint8_t>> pending;  // the other half of a weight/scale pair
    std::vector<uint8_t> a, b;
    for (const TensorDecl& d : sp.tensors) {
      weight_map[d.name] = sp.file;
      auto it = pending.find(d.name);
      if (it != pending.end()) {
        w.write(it->second.data(), it->second.size());
        prog.add(it->second.size());
        pending.erase(it);
        continue;
      }
      const bool quantised = d.dtype == DType::F8_E4M3 || d.dtype == DType::I8 || d.dtype == DType::F8_E8M0;
      if (!quantised) {
        gen_plain(d, c, mix(o.seed, name_hash(d.name)), a);
        w.write(a.data(), a.size());
        prog.add(a.size());
        continue;
      }
      // A weight or a scale: generate the pair from the weight's name, keep the other half.
      const std::string base = d.name.substr(0, d.name.rfind('.'));
      const std::string wn = base + ".weight", sn = base + ".scale";
      const auto found = by_name.find(wn);
      if (found == by_name.end()) throw_error("synth: no weight for scale tensor ", d.name);
      const TensorDecl* wd = found->second;
      const uint64_t seed = mix(o.seed, name_hash(wn));
      if (wd->dtype == DType::F8_E4M3) gen_fp8(*wd, seed, a, b);
      else gen_fp4(wd->shape[0], wd->shape[1] * 2, seed, uniform_fp4, a, b);
      const bool is_weight = d.name == wn;
      std::vector<uint8_t>& mine = is_weight ? a : b;
      w.write(mine.data(), mine.size());
      prog.add(mine.size());
      pending[is_weight ? sn : wn] = std::move(is_weight ? b : a);
    }
    if (!pending.empty()) throw_error("synth: tensor ", pending.begin()->first, " was generated but not placed in shard ", sp.file);
    w.finish();
  }

  auto write_json = [&](const char* name, const json& j) {
    const std::string p = (fs::path(out_dir) / name).string();
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f << j.dump(2) << "\n";
    if (!f) throw_error(p, ": write error");
  };
  json cfg = config;
  cfg["synth_seed"] = o.seed;
  write_json("config.json", cfg);
  write_json("model.safetensors.index.json", {{"metadata", {{"total_size", res.bytes}}}, {"weight_map", weight_map}});
  write_json("generation_config.json", {{"bos_token_id", c.bos_token_id},
                                        {"eos_token_id", c.eos_token_id},
                                        {"do_sample", true},
                                        {"temperature", 1.0},
                                        {"top_p", 1.0}});
  return res;
}

}  // namespace dsv4
