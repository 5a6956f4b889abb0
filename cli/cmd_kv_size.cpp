// dsv4 kv-size --config config.json [--context N]: exact per-sequence KV-cache bytes per layout.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "format/config.h"
#include "runtime/kv_budget.h"

DSV4_COMMAND(kv_size) {
  struct Opts {
    std::string config;
    int64_t context = -1;
    bool per_layer = false;
  };
  auto o = std::make_shared<Opts>();
  return {"kv-size", "Print the KV-cache bytes per token and for a context length, per layout",
          [o](CLI::App& a) {
            a.add_option("--config", o->config, "config.json of the model (or its checkpoint directory)")->required();
            a.add_option("--context", o->context, "context length in tokens (default: max_position_embeddings)");
            a.add_flag("--per-layer", o->per_layer, "also print the components and one line per layer");
            return std::function<int()>([o] {
              const bool dir = std::filesystem::is_directory(o->config);
              const dsv4::ModelConfig c = dsv4::load_config(dir ? o->config + "/config.json" : o->config);
              const int64_t ctx = o->context >= 0 ? o->context : c.max_position_embeddings;
              for (dsv4::KvLayout l : {dsv4::KvLayout::Compact, dsv4::KvLayout::Bf16}) {
                const dsv4::KvBudget b = dsv4::kv_budget(c, ctx, l);
                std::printf("layout=%s bytes_per_token=%lld total_bytes=%llu\n", dsv4::kv_layout_name(l),
                            static_cast<long long>(std::llround(b.bytes_per_token)),
                            static_cast<unsigned long long>(b.total));
                if (o->per_layer) {
                  std::printf("  context=%lld window=%llu compressed=%llu indexer=%llu states=%llu (%.3f GiB)\n",
                              static_cast<long long>(ctx), static_cast<unsigned long long>(b.window),
                              static_cast<unsigned long long>(b.compressed), static_cast<unsigned long long>(b.indexer),
                              static_cast<unsigned long long>(b.states), double(b.total) / double(1ull << 30));
                  for (const auto& x : b.layers)
                    std::printf("  layer=%d ratio=%d window=%llu compressed=%llu indexer=%llu states=%llu total=%llu\n",
                                x.layer_id, x.ratio, static_cast<unsigned long long>(x.window),
                                static_cast<unsigned long long>(x.compressed), static_cast<unsigned long long>(x.indexer),
                                static_cast<unsigned long long>(x.compressor_state + x.indexer_state),
                                static_cast<unsigned long long>(x.total()));
                }
              }
              return 0;
            });
          }};
}
