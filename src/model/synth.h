// Random DeepSeek-V4 checkpoints in the official release layout (config.json,
// model.safetensors.index.json + shards, generation_config.json), deterministic by seed. Used for
// tests, benchmarks at real widths and the built-in default model.
//
// Values (golden NOTES.md section 7 describes the same scheme for the golden tiny checkpoints):
// FP8 linears are Gaussian with std 1/sqrt(in) times a random gain 2^U(-1,1) per 128x128 block,
// quantised with E8M0 scales 2^ceil(log2(amax/448)); FP4 experts likewise per 1x32 block with
// 2^ceil(log2(amax/6)); for very large expert sets (> 2^30 expert parameters) the FP4 codes are
// uniform random nibbles with per-32 scales ~ gain/sqrt(in * 8.5625) (8.5625 = mean square of
// the E2M1 values), which keeps the same std at a fraction of the cost. Norm weights ~ N(1, 0.1),
// hc_* small, gate weights with std 6/sqrt(dim) (clearly separated expert scores), tid2eid rows of
// distinct experts. Every tensor is generated from (seed, tensor name) only, in fixed-size
// chunks with their own streams, so the bytes do not depend on thread count or shard layout.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dsv4 {

struct SynthOverrides {
  std::optional<int> layers;       // num_hidden_layers (ratios follow the preset's pattern)
  std::optional<int> vocab;        // vocab_size
  std::optional<int> experts;      // n_routed_experts
  std::optional<int> mtp_layers;   // num_nextn_predict_layers (MTP blocks are SWA)
  std::optional<int> hash_layers;  // num_hash_layers (clamped to the layer count)
};

// Preset names: "tiny", "tiny-wide", "flash-width", "default", "longctx".
std::vector<std::string> synth_preset_names();

// The config.json of a preset with overrides applied. Throws Error for an unknown preset; the
// result always passes parse_config (checked).
nlohmann::json synth_config(const std::string& preset, const SynthOverrides& o = {});

struct SynthOptions {
  uint64_t seed = 0;
  int shards = 0;                              // 0: as many as max_shard_bytes requires
  uint64_t max_shard_bytes = 4ull << 30;       // used when shards == 0
  // Called with the bytes written so far and the total, at most every 500 ms and once at the end
  // (the CLI prints it); empty: no progress.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct SynthResult {
  uint64_t bytes = 0;  // tensor bytes written (index metadata.total_size)
  size_t tensors = 0;
  int shards = 0;
};

// Writes the checkpoint for `config` into `out_dir` (created if needed; existing checkpoint files
// there are overwritten).
SynthResult synth_checkpoint(const nlohmann::json& config, const std::string& out_dir, const SynthOptions& o);

}  // namespace dsv4
