// Engine / Session implementation (include/dsv4/engine.h). Internal header: tests and the CLI's
// debugging commands use it to reach the per-block forward and the named-intermediate hook.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "dsv4/engine.h"
#include "model/backend.h"
#include "model/forward.h"
#include "model/weights.h"
#include "runtime/seq_state.h"

namespace dsv4 {

class EngineImpl final : public Engine {
 public:
  explicit EngineImpl(const EngineOptions& opts);
  // With an explicit backend (benches / long-context runs choosing the SIMD kernels).
  EngineImpl(const EngineOptions& opts, std::unique_ptr<Backend> backend);
  const ModelInfo& info() const override { return info_; }
  std::unique_ptr<Session> new_session(const SessionOptions& opts = {}) override;

  const ModelContext& context() const { return mc_; }
  const ModelWeights& weights() const { return *weights_; }
  bool has_mtp() const { return !weights_->mtp.empty(); }
  Numerics numerics() const { return opts_.numerics; }

 private:
  EngineOptions opts_;
  std::unique_ptr<ModelWeights> weights_;
  std::unique_ptr<Backend> backend_;
  ModelContext mc_;
  ModelInfo info_;
};

class SessionImpl final : public Session {
 public:
  SessionImpl(const EngineImpl& eng, const SessionOptions& opts);
  void prefill(std::span<const int32_t> tokens, std::span<float> logits,
               const ProgressFn& progress = {}) override;
  void decode(int32_t token, std::span<float> logits) override;
  int64_t position() const override { return static_cast<int64_t>(tokens_.size()); }
  const std::vector<int32_t>& tokens() const override { return tokens_; }
  void reset() override;
  uint64_t kv_bytes() const override { return state_.allocated_bytes(); }
  uint64_t checkpoint_bytes() const override;
  void rewind(int64_t pos) override;                                 // runtime/session_io.cpp
  int64_t reuse_prefix(std::span<const int32_t> prompt) override;    // runtime/session_io.cpp
  void save(const std::string& path) const override;                 // runtime/session_io.cpp
  void load(const std::string& path) override;                       // runtime/session_io.cpp

  void set_debug_hook(DebugHook hook) { hook_ = std::move(hook); }
  const SequenceState& state() const { return state_; }
  size_t n_checkpoints() const { return ckpts_.size(); }

 private:
  // One forward call over tokens at [position(), position()+n) with the given window layout.
  void run_chunk(std::span<const int32_t> toks, int64_t layout_width, std::span<float> logits);
  void run_mtp(int64_t first, int64_t count, const float* hidden);
  // Appends tokens chunk by chunk (prefill_chunk rows, split where the prompt layout ends and at
  // checkpoint positions); returns false when `progress` cancelled (after a whole chunk).
  bool advance(std::span<const int32_t> toks, std::span<float> logits, const ProgressFn& progress);
  // Light state (window rings, compressor states, entry counts, pending MTP row): session_io.cpp.
  std::vector<uint8_t> light_state() const;
  void restore_light_state(std::span<const uint8_t> bytes);
  void maybe_checkpoint();

  struct Checkpoint {
    int64_t pos = 0;
    std::vector<uint8_t> bytes;
  };

  const EngineImpl& eng_;
  SessionOptions opts_;
  SequenceState state_;
  ForwardScratch scratch_;
  std::vector<int32_t> tokens_;
  int64_t prompt_len_ = 0;           // length of the first prefill: rows before it use its layout
  int64_t prompt_width_ = 0;         // that layout's window width, min(prompt_len_, window)
  int64_t ckpt_interval_ = 0;        // current checkpoint spacing (doubles when thinning)
  std::vector<Checkpoint> ckpts_;    // ascending positions, all <= position()
  bool replaying_ = false;           // recomputing known tokens: no MTP callbacks
  std::vector<float> X_;             // [chunk][hc][dim] residual streams of the current chunk
  std::vector<float> mtp_in_;        // [chunk+1][hc][dim] main hidden rows awaiting their MTP step
  std::vector<float> mtp_logits_;
  std::vector<float> last_logits_;
  bool pending_hidden_ = false;      // mtp_in_ row 0 holds the hidden of position() - 1
  DebugHook hook_;
};

}  // namespace dsv4
