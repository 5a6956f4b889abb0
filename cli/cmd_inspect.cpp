// dsv4 inspect --model DIR: validates a checkpoint (load_weights) and summarises it: config, layer
// kinds, parameter counts, bytes by dtype, KV-cache bytes per token.
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "cli/command.h"
#include "model/weights.h"
#include "runtime/kv_budget.h"

namespace {

const char* kind_name(int ratio) { return ratio == 0 ? "SWA" : ratio == 4 ? "CSA" : "HCA"; }
const char* score_name(dsv4::ScoreFunc f) {
  switch (f) {
    case dsv4::ScoreFunc::SqrtSoftplus: return "sqrtsoftplus";
    case dsv4::ScoreFunc::Sigmoid: return "sigmoid";
    case dsv4::ScoreFunc::Softmax: return "softmax";
  }
  return "?";
}
std::string human(double v, const char* unit) {
  const char* pre[] = {"", "K", "M", "G", "T"};
  int i = 0;
  while (std::fabs(v) >= 1000 && i < 4) v /= 1000, ++i;
  char b[64];
  std::snprintf(b, sizeof b, i ? "%.2f %s%s" : "%.0f %s%s", v, pre[i], unit);
  return b;
}

int run_inspect(const std::string& dir) {
  dsv4::LoadOptions lo;
  auto w = dsv4::load_weights(dir, lo);
  const dsv4::ModelConfig& c = w->config;
  std::printf("model: %s\n", dir.c_str());
  std::printf("config: vocab %lld, dim %lld, %d layers + %d MTP, hc %d (sinkhorn %d)\n", (long long)c.vocab_size,
              (long long)c.dim, c.n_layers, c.n_mtp_layers, c.hc_mult, c.hc_sinkhorn_iters);
  std::printf("  attention: %d heads x %d (rope %d), q_lora %lld, o_groups %d x %lld, window %d\n", c.n_heads,
              c.head_dim, c.rope_head_dim, (long long)c.q_lora_rank, c.o_groups, (long long)c.o_lora_rank, c.window);
  std::printf("  indexer: %d heads x %d, top-k %d\n", c.index_n_heads, c.index_head_dim, c.index_topk);
  std::printf("  moe: %d routed experts (top-%d) + %d shared, inter %lld, %s, route scale %g, %d hash layers, swiglu limit %g\n",
              c.n_routed_experts, c.n_activated_experts, c.n_shared_experts, (long long)c.moe_inter_dim,
              score_name(c.score_func), c.route_scale, c.n_hash_layers, c.swiglu_limit);
  std::printf("  rope: theta %g, compressed theta %g, ", c.rope_theta, c.compress_rope_theta);
  if (c.original_seq_len > 0)
    std::printf("yarn factor %g over %lld (beta %g/%g)", c.rope_factor, (long long)c.original_seq_len, c.beta_fast, c.beta_slow);
  else
    std::printf("no yarn");
  std::printf(", max positions %lld\n", (long long)c.max_position_embeddings);

  std::printf("layers:\n");
  std::map<std::string, int> kinds;
  for (const auto& b : w->layers) {
    std::printf("  layer %3d: ratio %3d  %s%s\n", b.layer_id, b.ratio, kind_name(b.ratio), b.hash_routed ? "  hash-routed" : "");
    ++kinds[kind_name(b.ratio)];
  }
  for (size_t k = 0; k < w->mtp.size(); ++k)
    std::printf("  mtp %zu (layer %d): ratio %d  %s\n", k, w->mtp[k].block.layer_id, w->mtp[k].block.ratio,
                kind_name(w->mtp[k].block.ratio));
  std::printf("  main layers: %d SWA, %d CSA, %d HCA\n", kinds["SWA"], kinds["CSA"], kinds["HCA"]);

  const dsv4::ParamCounts p = dsv4::count_params(c);
  std::printf("parameters: total %lld (%s; main %s, MTP %s), routed experts %s, active per token %s\n",
              (long long)p.total, human(double(p.total), "").c_str(), human(double(p.main), "").c_str(),
              human(double(p.mtp), "").c_str(), human(double(p.routed_experts), "").c_str(),
              human(double(p.active), "").c_str());

  std::map<std::string, uint64_t> by_dtype;
  std::set<std::string> files;
  uint64_t total = 0;
  for (const auto& [name, v] : w->store->all()) {
    by_dtype[dsv4::dtype_name(v.dtype)] += v.nbytes;
    files.insert(v.file);
    total += v.nbytes;
  }
  std::printf("tensors: %zu in %zu file(s), %llu bytes (%s)\n", w->store->all().size(), files.size(),
              (unsigned long long)total, human(double(total), "B").c_str());
  for (const auto& [dt, n] : by_dtype)
    std::printf("  %-8s %15llu bytes (%s)\n", dt.c_str(), (unsigned long long)n, human(double(n), "B").c_str());

  std::printf("kv cache per sequence:\n");
  for (dsv4::KvLayout l : {dsv4::KvLayout::Compact, dsv4::KvLayout::Bf16}) {
    const auto b = dsv4::kv_budget(c, c.max_position_embeddings, l);
    std::printf("  %-7s %lld B/token (entry %llu B, indexer key %llu B), fixed %llu B, at %lld tokens %llu B (%s)\n",
                dsv4::kv_layout_name(l), (long long)std::llround(b.bytes_per_token), (unsigned long long)b.kv_entry,
                (unsigned long long)b.index_key, (unsigned long long)(b.window + b.states), (long long)b.context,
                (unsigned long long)b.total, human(double(b.total), "B").c_str());
    for (int64_t ctx : {int64_t{131072}, int64_t{1048576}}) {
      const auto t = dsv4::kv_budget(c, ctx, l);
      std::printf("  %-7s at %lld tokens: %llu B (%s)\n", dsv4::kv_layout_name(l), (long long)ctx,
                  (unsigned long long)t.total, human(double(t.total), "B").c_str());
    }
  }
  return 0;
}

}  // namespace

DSV4_COMMAND(inspect) {
  auto dir = std::make_shared<std::string>();
  return {"inspect", "Validate a checkpoint and summarise its config, layers, parameters, bytes and KV size",
          [dir](CLI::App& a) {
            a.add_option("--model", *dir, "checkpoint directory (config.json + safetensors)")->required();
            return std::function<int()>([dir] { return run_inspect(*dir); });
          }};
}
