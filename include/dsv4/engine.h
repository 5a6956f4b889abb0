// dsv4 public API: an Engine owns the immutable weights of one checkpoint; a Session is one token
// timeline with its own KV state and scratch. Many sessions share one engine. No tensors cross
// this interface: tokens go in, float32 logits come out.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace dsv4 {

enum class Numerics {
  Reference,  // scalar oracle, bit-identical to DeepSeek's reference (golden tests)
  Fast,       // SIMD / threaded kernels, float32 accumulation (default)
};

// Where the weights lie once loaded. Either way they are the checkpoint's bytes as stored.
enum class WeightMemory {
  Auto,     // Private when the checkpoint fits in 80% of the memory available at load, else Mapped
  Mapped,   // the files mapped in place (page cache: shared between processes, read on first use)
  Private,  // the files read into private memory at load (page cache released as it is read);
            // decode streams weights up to ~1.4x faster from it on some machines
};
const char* weight_memory_name(WeightMemory m);  // "auto", "mmap", "private"

struct EngineOptions {
  std::string model_dir;
  Numerics numerics = Numerics::Fast;
  int threads = 0;        // 0 = all hardware threads
  bool load_mtp = true;   // bind the MTP block when the checkpoint has one
  WeightMemory weight_memory = WeightMemory::Auto;
  // Mapped only: read every weight page into memory at load (and map it), so the first tokens
  // take no page faults; otherwise pages come in on use.
  bool populate_weights = false;
  // Called while reading (Private) or populating: bytes done / total.
  std::function<void(uint64_t done, uint64_t total)> populate_progress;
};

struct ModelInfo {
  int64_t vocab_size = 0;
  int n_layers = 0;
  int n_mtp_layers = 0;
  int64_t max_context = 0;  // max_position_embeddings
  int bos_token_id = 0;
  int eos_token_id = 1;
  WeightMemory weight_memory = WeightMemory::Mapped;  // where the weights lie (never Auto)
};

// Progress of long work (prefill): done / total tokens. Return false to cancel (Ctrl-C).
using ProgressFn = std::function<bool(int64_t done, int64_t total)>;

// MTP prediction at `position` (golden convention, NOTES.md section 5: the MTP block consumes the
// main model's hidden streams at `position` and the id of token position+1), vocab floats.
using MtpLogitsFn = std::function<void(int64_t position, std::span<const float> logits)>;

// How the KV cache keeps its entries (spec 7.1). Both are lossless; results never depend on it.
enum class KvCacheLayout {
  Compact,  // E4M3 + E8M0 + BF16 RoPE dims per KV entry, packed E2M1 + E8M0 indexer keys
  Bf16,     // every cached value as BF16 (the reference layout, ~2x the bytes)
};

struct SessionOptions {
  int64_t max_context = 4096;  // tokens; KV memory is sized from it (allocated up front)
  KvCacheLayout kv_layout = KvCacheLayout::Compact;
  // When > 0, new_session throws (before allocating anything) if the KV cache for max_context
  // tokens needs more bytes than this.
  uint64_t mem_limit = 0;
  // Rewind checkpoints (window rings + compressor states: ~15 MB each for V4-Flash, a few KB for
  // tiny models) are kept at every multiple of checkpoint_interval tokens; when more
  // than max_checkpoints exist the interval doubles and every other one is dropped. 0 disables
  // them (rewind then recomputes from position 0).
  int64_t checkpoint_interval = 1024;
  int max_checkpoints = 32;
  int64_t prefill_chunk = 1024; // rows per forward call during prefill (bounded activation memory:
                                // ~0.65 MB a row at V4 widths); chunking never changes results: a
                                // prompt prefilled from position 0 keeps the one-shot reference key
                                // layout in every chunk. 1024 rather than 512: each routed expert
                                // gets ~24 rows instead of ~12 (prefill of long prompts ~25% faster)
  // When set (and the checkpoint has an MTP block), the MTP block runs one position behind the main
  // model and reports each position once its next token has been appended.
  MtpLogitsFn on_mtp_logits = {};
};

class Engine;

class Session {
 public:
  virtual ~Session() = default;
  // Appends tokens to the timeline; writes the logits after the last one into `logits`
  // (vocab floats; may be empty to skip the head). From position 0 this reproduces the reference
  // prefill of the whole span; at a later position it equals token-by-token decode.
  virtual void prefill(std::span<const int32_t> tokens, std::span<float> logits,
                       const ProgressFn& progress = {}) = 0;
  // One token; same as prefill of a single token.
  virtual void decode(int32_t token, std::span<float> logits) = 0;
  virtual int64_t position() const = 0;                     // tokens processed so far
  virtual const std::vector<int32_t>& tokens() const = 0;
  virtual void reset() = 0;                                 // back to an empty timeline

  // KV-cache bytes allocated for max_context tokens (the exact kv_budget figure).
  virtual uint64_t kv_bytes() const { return 0; }
  // Bytes currently held by rewind checkpoints (not part of kv_bytes()).
  virtual uint64_t checkpoint_bytes() const { return 0; }

  // Goes back to `pos` tokens (0 <= pos <= position()): the state becomes exactly the state after
  // the first `pos` tokens. Restores the nearest checkpoint at or before `pos` and recomputes the
  // tokens from there.
  virtual void rewind(int64_t pos);
  // Keeps the longest prefix of the timeline that `prompt` starts with, but at most
  // prompt.size() - 1 tokens (so the caller always has at least one token to prefill for logits);
  // returns the number of tokens kept. The caller then prefills prompt[kept:].
  virtual int64_t reuse_prefix(std::span<const int32_t> prompt);

  // (The default implementations of rewind / reuse_prefix / save / load throw "not supported";
  // engine sessions implement them.)
  // Saves the whole state (tokens, window rings, compressed and indexer rows, compressor states,
  // checkpoints) to a versioned, checksummed file in the compact encoding. load() replaces this
  // session's state with a saved one (same model, numerics and MTP binding; the file's position
  // must fit this session's max_context) and continues bit for bit. Both throw dsv4::Error
  // naming the file and the problem.
  virtual void save(const std::string& path) const;
  virtual void load(const std::string& path);
};

// Length of the longest common prefix of two token sequences.
int64_t common_prefix(std::span<const int32_t> a, std::span<const int32_t> b);

class Engine {
 public:
  virtual ~Engine() = default;
  static std::unique_ptr<Engine> load(const EngineOptions& opts);  // throws dsv4::Error
  virtual const ModelInfo& info() const = 0;
  virtual std::unique_ptr<Session> new_session(const SessionOptions& opts = {}) = 0;
};

}  // namespace dsv4
