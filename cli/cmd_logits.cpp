// dsv4 logits: teacher-forced logits of a token stream (golden layout).
//   prefill tokens[0:P] (in chunks of N with --chunk), then decode each remaining token;
//   writes float32 [1+n-P, vocab]: row 0 = logits at position P-1, row j = after decoding token
//   P+j-1. With --mtp also FILE.mtp.npy [n-P, vocab]: row j = MTP logits at position P-1+j (its
//   next token, P+j, must be in the stream).
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/prefill_progress.h"
#include "cli/token_args.h"
#include "core/error.h"
#include "dsv4/engine.h"
#include "format/npy.h"
#include "runtime/session_io.h"

DSV4_COMMAND(logits) {
  struct Opts {
    std::string model, tokens, numerics = "fast", out, kv_layout = "compact", mem_limit, save, load;
    int64_t prompt_len = 0, chunk = 0;
    bool mtp = false;
  };
  auto o = std::make_shared<Opts>();
  return {"logits", "Teacher-forced logits of a token stream (.npy, golden layout)",
          [o](CLI::App& a) {
            a.add_option("--model", o->model, "checkpoint directory")->required();
            a.add_option("--tokens", o->tokens, "comma-separated token ids")->required();
            a.add_option("--prompt-len", o->prompt_len, "tokens to prefill (P >= 1)")->required();
            a.add_option("--numerics", o->numerics, "reference | fast")->check(CLI::IsMember({"reference", "fast"}));
            a.add_option("--chunk", o->chunk, "prefill chunk size (default: one call)");
            a.add_flag("--mtp", o->mtp, "also write FILE.mtp.npy with the MTP logits");
            a.add_option("--kv-layout", o->kv_layout, "KV cache storage: compact | bf16 (results are identical)")
                ->check(CLI::IsMember({"compact", "bf16"}));
            a.add_option("--mem-limit", o->mem_limit, "refuse a KV cache larger than this (e.g. 8G, 512M)");
            a.add_option("--save-session", o->save, "save the session after the prefill to FILE");
            a.add_option("--load-session", o->load,
                         "restore a session saved after prefilling the first --prompt-len tokens instead of "
                         "prefilling them (its tokens must match)");
            a.add_option("--out", o->out, "output .npy file")->required();
            return std::function<int()>([o] {
              using namespace dsv4;
              const std::vector<int32_t> toks = cli::parse_token_list(o->tokens);
              const int64_t n = static_cast<int64_t>(toks.size());
              if (o->prompt_len < 1 || o->prompt_len > n)
                throw_error("--prompt-len ", o->prompt_len, " must be in [1, ", n, "] (number of tokens)");
              if (o->chunk < 0) throw_error("--chunk must be positive, got ", o->chunk);
              EngineOptions eo;
              eo.model_dir = o->model;
              eo.numerics = o->numerics == "reference" ? Numerics::Reference : Numerics::Fast;
              eo.load_mtp = o->mtp;
              auto engine = Engine::load(eo);
              const int64_t V = engine->info().vocab_size;
              if (o->mtp && engine->info().n_mtp_layers == 0)
                throw_error(o->model, ": --mtp requested but the checkpoint has no MTP block");
              for (int32_t t : toks)
                if (t < 0 || t >= V) throw_error("--tokens: id ", t, " out of range [0, ", V, ")");
              SessionOptions so;
              so.max_context = n + 1;
              so.prefill_chunk = o->chunk > 0 ? o->chunk : o->prompt_len;
              so.kv_layout = o->kv_layout == "bf16" ? KvCacheLayout::Bf16 : KvCacheLayout::Compact;
              if (!o->mem_limit.empty()) so.mem_limit = parse_byte_size(o->mem_limit);
              if (!o->load.empty() && o->mtp) throw_error("--load-session cannot be combined with --mtp");
              std::vector<float> mtp;
              int64_t mtp_rows = 0, mtp_first = o->prompt_len - 1;
              if (o->mtp) {
                mtp.assign(static_cast<size_t>((n - o->prompt_len) * V), 0.0f);
                so.on_mtp_logits = [&](int64_t pos, std::span<const float> l) {
                  if (pos < mtp_first) return;
                  std::copy(l.begin(), l.end(), mtp.begin() + (pos - mtp_first) * V);
                  ++mtp_rows;
                };
              }
              auto s = engine->new_session(so);
              const int64_t rows = 1 + n - o->prompt_len;
              std::vector<float> out(static_cast<size_t>(rows * V));
              const std::span<const int32_t> prompt(toks.data(), static_cast<size_t>(o->prompt_len));
              if (!o->load.empty()) {
                // the saved session covers prompt[0:P-1]; prefilling the last prompt token gives row 0
                s->load(o->load);
                if (s->position() != o->prompt_len - 1 ||
                    common_prefix(s->tokens(), prompt) != s->position())
                  throw_error(o->load, ": session holds ", s->position(),
                              " tokens that are not the first --prompt-len - 1 = ", o->prompt_len - 1,
                              " tokens of --tokens");
                s->prefill(prompt.last(1), std::span<float>(out.data(), static_cast<size_t>(V)));
              } else {
                cli::PrefillProgress progress;
                if (!o->save.empty()) {  // save at P-1 so that a load + one-token prefill reproduces row 0
                  if (o->prompt_len < 2) throw_error("--save-session needs --prompt-len >= 2");
                  s->prefill(prompt.first(prompt.size() - 1), {}, progress.fn(0, o->prompt_len));
                  if (progress.cancelled()) throw_error("interrupted");
                  s->save(o->save);
                  s->prefill(prompt.last(1), std::span<float>(out.data(), static_cast<size_t>(V)));
                } else {
                  s->prefill(prompt, std::span<float>(out.data(), static_cast<size_t>(V)), progress.fn());
                  if (progress.cancelled())
                    throw_error("interrupted after ", s->position(), " of ", o->prompt_len, " prompt tokens");
                }
              }
              for (int64_t j = 1; j < rows; ++j)
                s->decode(toks[static_cast<size_t>(o->prompt_len + j - 1)],
                          std::span<float>(out.data() + j * V, static_cast<size_t>(V)));
              write_npy_f32(o->out, {rows, V}, out.data());
              if (o->mtp) {
                std::string mp = o->out;
                if (mp.size() > 4 && mp.substr(mp.size() - 4) == ".npy") mp = mp.substr(0, mp.size() - 4);
                write_npy_f32(mp + ".mtp.npy", {n - o->prompt_len, V}, mtp.data());
              }
              return 0;
            });
          }};
}
