#include "runtime/engine_impl.h"

#include <algorithm>
#include <fstream>
#include <string>

#include "core/error.h"
#include "kernels/cpu/cpu_backend.h"
#include "runtime/session_io.h"

namespace dsv4 {

const char* weight_memory_name(WeightMemory m) {
  switch (m) {
    case WeightMemory::Auto: return "auto";
    case WeightMemory::Mapped: return "mmap";
    case WeightMemory::Private: return "private";
  }
  return "?";
}

namespace {

// MemAvailable of /proc/meminfo in bytes (0 when unknown: Auto then maps the files).
uint64_t available_memory_bytes() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (f >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

WeightMemory resolve_weight_memory(WeightMemory m, uint64_t file_bytes) {
  if (m != WeightMemory::Auto) return m;
  // The page cache of the checkpoint counts as available (it is released as it is read).
  return file_bytes * 10 <= available_memory_bytes() * 8 ? WeightMemory::Private : WeightMemory::Mapped;
}

}  // namespace

EngineImpl::EngineImpl(const EngineOptions& opts)
    : EngineImpl(opts, opts.numerics == Numerics::Reference ? make_reference_backend()
                                                            : cpu::make_cpu_backend(opts.threads)) {}

EngineImpl::EngineImpl(const EngineOptions& opts, std::unique_ptr<Backend> backend) : opts_(opts) {
  LoadOptions lo;
  lo.load_mtp = opts.load_mtp;
  WeightMemory where = WeightMemory::Mapped;
  lo.prepare = [&](TensorStore& store) {  // before binding: private copies are aligned anew
    where = resolve_weight_memory(opts.weight_memory, store.file_bytes());
    if (where == WeightMemory::Private) {
      store.read_private(opts.populate_progress);
    } else if (opts.populate_weights) {
      store.populate(opts.populate_progress);
    }
  };
  weights_ = load_weights(opts.model_dir, lo);
  info_.weight_memory = where;
  backend_ = std::move(backend);
  mc_.init(*weights_, *backend_);
  const ModelConfig& cfg = weights_->config;
  info_.vocab_size = cfg.vocab_size;
  info_.n_layers = cfg.n_layers;
  info_.n_mtp_layers = static_cast<int>(weights_->mtp.size());
  info_.max_context = cfg.max_position_embeddings;
  info_.bos_token_id = cfg.bos_token_id;
  info_.eos_token_id = cfg.eos_token_id;
}

std::unique_ptr<Engine> Engine::load(const EngineOptions& opts) {
  return std::make_unique<EngineImpl>(opts);
}

std::unique_ptr<Session> EngineImpl::new_session(const SessionOptions& opts) {
  return std::make_unique<SessionImpl>(*this, opts);
}

SessionImpl::SessionImpl(const EngineImpl& eng, const SessionOptions& opts) : eng_(eng), opts_(opts) {
  if (opts_.max_context <= 0) throw_error("session max_context must be positive, got ", opts_.max_context);
  if (opts_.prefill_chunk <= 0) throw_error("session prefill_chunk must be positive, got ", opts_.prefill_chunk);
  const ModelConfig& cfg = eng.weights().config;
  const int nblocks = cfg.n_layers + static_cast<int>(eng.weights().mtp.size());
  const KvLayout layout = opts_.kv_layout == KvCacheLayout::Bf16 ? KvLayout::Bf16 : KvLayout::Compact;
  check_kv_fits(cfg, opts_.max_context, layout, nblocks > cfg.n_layers, opts_.mem_limit);
  state_.init(cfg, nblocks, opts_.max_context, layout);
  ckpt_interval_ = opts_.checkpoint_interval;
  // Sized for decode (1 row) at full context; prefill chunks grow it once to their high-water mark.
  scratch_.reserve(cfg, 1, opts_.max_context);
  const int64_t flat = cfg.hc_mult * cfg.dim;
  const int64_t rows = std::min<int64_t>(opts_.prefill_chunk, opts_.max_context);
  X_.resize(static_cast<size_t>(rows * flat));
  if (opts_.on_mtp_logits && eng_.has_mtp()) {  // the MTP block's inputs and logits: only when it runs
    mtp_in_.resize(static_cast<size_t>((rows + 1) * flat));
    mtp_logits_.resize(static_cast<size_t>((rows + 1) * cfg.vocab_size));
  }
  last_logits_.resize(static_cast<size_t>(cfg.vocab_size));
  tokens_.reserve(static_cast<size_t>(opts_.max_context));
}

void SessionImpl::reset() {
  state_.reset();
  tokens_.clear();
  prompt_len_ = 0;
  prompt_width_ = 0;
  pending_hidden_ = false;
  ckpts_.clear();
  ckpt_interval_ = opts_.checkpoint_interval;
}

void SessionImpl::prefill(std::span<const int32_t> toks, std::span<float> logits,
                          const ProgressFn& progress) {
  const ModelConfig& cfg = eng_.weights().config;
  if (toks.empty()) throw_error("prefill: no tokens");
  if (!logits.empty() && static_cast<int64_t>(logits.size()) != cfg.vocab_size)
    throw_error("prefill: logits buffer has ", logits.size(), " floats, expected vocab size ", cfg.vocab_size);
  const int64_t total = static_cast<int64_t>(toks.size());
  if (position() + total > opts_.max_context)
    throw_error("prefill: ", position() + total, " tokens exceed the session's max_context ", opts_.max_context);
  // A prompt prefilled from position 0 lays out its window part like the reference's one-shot
  // prefill (width min(S, window)) in every chunk, so chunked == one-shot bit for bit. A
  // continuation behaves like the reference's token-by-token decode (width = window).
  if (position() == 0) {
    prompt_len_ = total;
    prompt_width_ = std::min<int64_t>(total, cfg.window);
  }
  advance(toks, logits, progress);
}

bool SessionImpl::advance(std::span<const int32_t> toks, std::span<float> logits,
                          const ProgressFn& progress) {
  const ModelConfig& cfg = eng_.weights().config;
  const int64_t total = static_cast<int64_t>(toks.size());
  for (int64_t done = 0; done < total;) {
    const int64_t p = position();
    int64_t n = std::min<int64_t>(opts_.prefill_chunk, total - done);
    int64_t width = cfg.window;
    if (p < prompt_len_) {  // rows of the first prompt keep its layout (also after a resume)
      n = std::min(n, prompt_len_ - p);
      width = prompt_width_;
    }
    if (ckpt_interval_ > 0) n = std::min(n, ckpt_interval_ - p % ckpt_interval_);
    const bool last = done + n == total;
    run_chunk(toks.subspan(static_cast<size_t>(done), static_cast<size_t>(n)), width,
              last ? logits : std::span<float>{});
    done += n;
    maybe_checkpoint();
    if (progress && !progress(done, total)) return done == total;
  }
  return true;
}
void SessionImpl::decode(int32_t token, std::span<float> logits) {
  const ModelConfig& cfg = eng_.weights().config;
  if (!logits.empty() && static_cast<int64_t>(logits.size()) != cfg.vocab_size)
    throw_error("decode: logits buffer has ", logits.size(), " floats, expected vocab size ", cfg.vocab_size);
  if (position() + 1 > opts_.max_context)
    throw_error("decode: position ", position(), " reaches the session's max_context ", opts_.max_context);
  const int32_t t[1] = {token};
  advance(std::span<const int32_t>(t, 1), logits, {});
}

void SessionImpl::run_chunk(std::span<const int32_t> toks, int64_t layout_width,
                            std::span<float> logits) {
  const ModelContext& mc = eng_.context();
  const ModelConfig& cfg = eng_.weights().config;
  const int64_t n = static_cast<int64_t>(toks.size());
  const int64_t pos0 = position();
  const int64_t flat = cfg.hc_mult * cfg.dim;
  if (static_cast<int64_t>(X_.size()) < n * flat) X_.resize(static_cast<size_t>(n * flat));
  const DebugHook* hook = hook_ ? &hook_ : nullptr;

  embed_rows(mc, toks.data(), n, X_.data());
  if (hook) (*hook)("embed", -1, pos0, n, flat, X_.data());
  const ChunkLayout layout{layout_width};
  for (int l = 0; l < cfg.n_layers; ++l)
    block_forward(mc, l, state_.blocks[static_cast<size_t>(l)], toks.data(), pos0, n, layout,
                  X_.data(), scratch_, hook);
  if (hook) (*hook)("hidden", -1, pos0, n, flat, X_.data());
  tokens_.insert(tokens_.end(), toks.begin(), toks.end());

  if (!logits.empty()) {
    head_logits(mc, eng_.weights().hc_head, eng_.weights().norm, X_.data() + (n - 1) * flat, 1,
                last_logits_.data(), scratch_);
    std::copy(last_logits_.begin(), last_logits_.end(), logits.begin());
  }

  // MTP (golden convention, NOTES.md section 5): position t consumes the main hidden streams at t
  // and the id of token t+1, so it runs one position behind the main model.
  if (opts_.on_mtp_logits && eng_.has_mtp()) {
    if (static_cast<int64_t>(mtp_in_.size()) < (n + 1) * flat)
      mtp_in_.resize(static_cast<size_t>((n + 1) * flat));
    const int64_t off = pending_hidden_ ? 1 : 0;
    std::copy(X_.data(), X_.data() + n * flat, mtp_in_.data() + off * flat);
    const int64_t count = n + off - 1;  // rows whose next token is now known
    const int64_t first = pos0 - off;
    if (count > 0) run_mtp(first, count, mtp_in_.data());
    std::copy(mtp_in_.data() + count * flat, mtp_in_.data() + (count + 1) * flat, mtp_in_.data());
    pending_hidden_ = true;
  }
}

void SessionImpl::run_mtp(int64_t first, int64_t count, const float* hidden) {
  const ModelContext& mc = eng_.context();
  const ModelConfig& cfg = eng_.weights().config;
  const int64_t flat = cfg.hc_mult * cfg.dim, V = cfg.vocab_size;
  const int id = cfg.n_layers;  // MTP block 0
  BlockState& st = state_.blocks[static_cast<size_t>(id)];
  const DebugHook* hook = hook_ ? &hook_ : nullptr;
  if (static_cast<int64_t>(mtp_logits_.size()) < count * V) mtp_logits_.resize(static_cast<size_t>(count * V));
  // Rows of the first prompt keep its one-shot layout (the golden MTP prefill covers positions
  // 0..P-1 in one call); later rows are decode steps. Split a span that straddles the boundary.
  for (int64_t done = 0; done < count;) {
    const int64_t t0 = first + done;
    int64_t len = count - done;
    int64_t width = cfg.window;
    if (t0 < prompt_len_) {
      len = std::min<int64_t>(len, prompt_len_ - t0);
      width = prompt_width_;
    }
    mtp_forward(mc, 0, st, hidden + done * flat, tokens_.data() + t0 + 1, t0, len, ChunkLayout{width},
                mtp_logits_.data() + done * V, scratch_, hook);
    for (int64_t i = 0; i < len && !replaying_; ++i)
      opts_.on_mtp_logits(t0 + i, std::span<const float>(mtp_logits_.data() + (done + i) * V,
                                                         static_cast<size_t>(V)));
    done += len;
  }
}

}  // namespace dsv4
