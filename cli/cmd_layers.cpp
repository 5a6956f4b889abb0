// dsv4 layers: teacher-forced per-block outputs (golden NOTES.md section 4).
//   --teacher hidden.bf16.npy: uint16 bf16 bits [n_layers+1, n, hc, dim], the input of every block
//   at every position. Block i runs on input i (positions [0, P) as one prefill, then one decode
//   step per position, with its own caches); writes float32 [n_layers, n, hc, dim].
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/token_args.h"
#include "core/error.h"
#include "format/npy.h"
#include "runtime/teacher_forced.h"

DSV4_COMMAND(layers) {
  struct Opts {
    std::string model, tokens, teacher, numerics = "fast", out;
    int64_t prompt_len = 0;
  };
  auto o = std::make_shared<Opts>();
  return {"layers", "Teacher-forced per-block outputs for golden comparison (.npy)",
          [o](CLI::App& a) {
            a.add_option("--model", o->model, "checkpoint directory")->required();
            a.add_option("--tokens", o->tokens, "comma-separated token ids")->required();
            a.add_option("--prompt-len", o->prompt_len, "positions run as one prefill")->required();
            a.add_option("--teacher", o->teacher, "block inputs, uint16 bf16 [n_layers+1, n, hc, dim]")->required();
            a.add_option("--numerics", o->numerics, "reference | fast")->check(CLI::IsMember({"reference", "fast"}));
            a.add_option("--out", o->out, "output .npy file")->required();
            return std::function<int()>([o] {
              using namespace dsv4;
              const std::vector<int32_t> toks = cli::parse_token_list(o->tokens);
              EngineOptions eo;
              eo.model_dir = o->model;
              eo.numerics = o->numerics == "reference" ? Numerics::Reference : Numerics::Fast;
              eo.load_mtp = false;
              EngineImpl eng(eo);
              const ModelConfig& cfg = eng.weights().config;
              const NpyArray t = read_npy(o->teacher);
              const int64_t n = static_cast<int64_t>(toks.size());
              const std::vector<int64_t> want = {cfg.n_layers + 1, n, cfg.hc_mult, cfg.dim};
              if (t.shape != want)
                throw_error(o->teacher, ": shape mismatch, expected [", want[0], ", ", want[1], ", ", want[2],
                            ", ", want[3], "] (n_layers+1, tokens, hc, dim)");
              if (t.dtype != "<u2" && t.dtype != "<f4")
                throw_error(o->teacher, ": dtype ", t.dtype, ", expected uint16 bf16 bits or float32");
              for (int32_t id : toks)
                if (id >= cfg.vocab_size) throw_error("--tokens: id ", id, " out of range [0, ", cfg.vocab_size, ")");
              const std::vector<float> outv = teacher_forced_blocks(eng, toks, o->prompt_len, t.as_f32());
              write_npy_f32(o->out, {cfg.n_layers, n, cfg.hc_mult, cfg.dim}, outv.data());
              return 0;
            });
          }};
}
