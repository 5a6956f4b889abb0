// dsv4 synth --preset NAME --seed N --out DIR [--layers N --vocab N --experts N ...]: writes a random
// checkpoint in the official release layout (see src/model/synth.h).
#include <chrono>
#include <cstdio>
#include <string>

#include "cli/command.h"
#include "cli/gen_common.h"
#include "model/synth.h"

DSV4_COMMAND(synth) {
  struct Opts {
    std::string preset, out;
    uint64_t seed = 0;
    int layers = -1, vocab = -1, experts = -1, mtp = -1, hash = -1, shards = 0;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  std::string names;
  for (const auto& n : dsv4::synth_preset_names()) names += (names.empty() ? "" : ", ") + n;
  return {"synth", "Write a random DeepSeek-V4 checkpoint (release layout) from a preset, deterministic by seed",
          [o, names](CLI::App& a) {
            a.add_option("--preset", o->preset, "preset: " + names)->required();
            a.add_option("--seed", o->seed, "random seed (same seed -> identical files)");
            a.add_option("--out", o->out, "output directory")->required();
            a.add_option("--layers", o->layers, "override num_hidden_layers");
            a.add_option("--vocab", o->vocab, "override vocab_size");
            a.add_option("--experts", o->experts, "override n_routed_experts");
            a.add_option("--mtp-layers", o->mtp, "override num_nextn_predict_layers");
            a.add_option("--hash-layers", o->hash, "override num_hash_layers");
            a.add_option("--shards", o->shards, "number of safetensors shards (default: one per 4 GiB)");
            a.add_flag("--quiet", o->quiet, "no progress output");
            return std::function<int()>([o] {
              dsv4::SynthOverrides ov;
              if (o->layers >= 0) ov.layers = o->layers;
              if (o->vocab >= 0) ov.vocab = o->vocab;
              if (o->experts >= 0) ov.experts = o->experts;
              if (o->mtp >= 0) ov.mtp_layers = o->mtp;
              if (o->hash >= 0) ov.hash_layers = o->hash;
              const auto cfg = dsv4::synth_config(o->preset, ov);
              dsv4::SynthOptions so;
              so.seed = o->seed;
              so.shards = o->shards;
              const auto t0 = std::chrono::steady_clock::now();
              if (!o->quiet)
                so.progress = dsv4::cli::progress_lines([t0](uint64_t done, uint64_t total) {
                  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                  char buf[128];
                  std::snprintf(buf, sizeof buf, "synth: %.2f / %.2f GB (%3.0f%%) %.0f s  ", done / 1e9, total / 1e9,
                                total ? 100.0 * double(done) / double(total) : 100.0, s);
                  return std::string(buf);
                });
              const auto r = dsv4::synth_checkpoint(cfg, o->out, so);
              const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
              std::printf("synth: preset %s seed %llu -> %s: %zu tensors, %llu bytes in %d shard(s), %.1f s\n",
                          o->preset.c_str(), static_cast<unsigned long long>(o->seed), o->out.c_str(), r.tensors,
                          static_cast<unsigned long long>(r.bytes), r.shards, s);
              return 0;
            });
          }};
}
