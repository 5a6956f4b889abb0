// The compute seam: every heavy operation of the forward pass goes through one Backend. Two
// implementations exist: the reference backend (scalar, bit-identical to the golden data, NOTES.md
// section 9) and the fast backend of Numerics::Fast, the SIMD/threaded kernels of src/kernels/cpu
// (kernels/cpu/cpu_backend.h: float32 accumulation, free to reorder, rounding where the reference
// rounds). The forward pass (forward.cpp) is written once against this interface.
//
// Conventions shared by every op:
//  * activations are row-major float arrays; "bf16 values" means every element is exactly
//    representable in bf16 (the reference rounds there);
//  * an op over a span of rows handles prefill (n rows) and decode (1 row) alike;
//  * rows of an input may be strided (ld >= width) so sub-blocks (e.g. one output group) need no
//    copy. Outputs are written row-major with their own ld.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>

#include "kernels/ref/mhc.h"
#include "model/weights.h"

namespace dsv4 {

struct ConstRows {
  const float* p = nullptr;
  int64_t n = 0;   // rows
  int64_t ld = 0;  // floats between consecutive rows
  const float* row(int64_t i) const { return p + i * ld; }
};

struct Rows {
  float* p = nullptr;
  int64_t n = 0;
  int64_t ld = 0;
  float* row(int64_t i) const { return p + i * ld; }
};

// Sparse attention with sink over explicit key lists (spec 4.9, NOTES.md section 9).
struct AttentionArgs {
  const float* q = nullptr;      // [n][n_heads][head_dim] bf16 values (after q norm + RoPE)
  int64_t n = 0;                 // query rows
  int n_heads = 0;
  int head_dim = 0;
  // Key table: index i < split is keys[i], index i >= split is keys2[i - split] (e.g. window
  // staging rows, then the compressed entries). Each row is key AND value, bf16 values.
  const float* keys = nullptr;   // [split][head_dim]
  int64_t split = 0;
  const float* keys2 = nullptr;  // [*][head_dim] (may be null when no index reaches it)
  // Optional: rows [0, split) of the key table again as BF16 bits (head_dim apart), which a
  // kernel that multiplies in BF16 may read instead of converting `keys` (the decode step's window
  // ring keeps both: runtime/kv_store.h).
  const uint16_t* keys_bf16 = nullptr;
  const float* key(int64_t i) const {
    return i < split ? keys + i * head_dim : keys2 + (i - split) * head_dim;
  }
  const int32_t* lists = nullptr;// [n][list_len] indices into keys, -1 = no key (neutral)
  int64_t list_len = 0;          // the reference consumes each list in blocks of 64 in list order
  const float* sink = nullptr;   // [n_heads] attention sink logits
  float scale = 0.0f;            // f32(head_dim ** -0.5)
  float* out = nullptr;          // [n][n_heads][head_dim], bf16 values (before the inverse RoPE)
};

// Lightning-indexer scores (spec 4.7): for query row t and entry i < visible[t]
//   score[t][i] = bf16( sum_h bf16( relu(bf16(q[t][h] . k[i])) * w[t][h] ) )
// entries i >= visible[t] are set to -inf.
struct IndexerScoreArgs {
  const float* q = nullptr;       // [n][n_heads][head_dim] bf16 values (after Hadamard + FP4 sim)
  const float* w = nullptr;       // [n][n_heads] bf16 head weights (already times the constant)
  int64_t n = 0;
  int n_heads = 0;
  int head_dim = 0;
  const float* keys = nullptr;    // [n_keys][head_dim] indexer keys, bf16 values
  int64_t n_keys = 0;
  const int64_t* visible = nullptr;  // [n] number of visible entries per row (<= n_keys)
  float* scores = nullptr;        // [n][n_keys]
};

// The light row ops of the forward pass, with the signatures (and the meaning) of their
// reference definitions: ref::rms_norm, ref::head_norm_bf16, ref::hc_pre_finish, ref::hc_post,
// ref::swiglu, ref::rope_apply, quant::fp4_sim and quant::fp8_sim. reference_row_ops() holds those; a backend may
// hold faster twins (the CPU backend's kernels/cpu/ref_rows.h).
struct RowOps {
  void (*rms_norm)(const float* x, const uint16_t* w, int64_t n, float eps, float* y);
  void (*head_norm_bf16)(float* q, int64_t n, float eps);
  void (*hc_pre_finish)(const float* x, int hc, int64_t dim, const float* dots, const float* scale,
                        const float* base, int iters, float norm_eps, float hc_eps,
                        ref::HcSplit split, float* a);
  void (*hc_post)(const float* x, const float* f, int hc, int64_t dim, const float* post,
                  const float* comb, int64_t d0, int64_t d1, float* y);
  void (*hc_head_finish)(const float* x, int hc, int64_t dim, const float* dots, const float* scale,
                         const float* base, float norm_eps, float hc_eps, float* a);
  void (*swiglu)(const float* g, const float* u, int64_t n, float limit, float weight, float* h);
  void (*rope_apply)(float* x, const float* cos, const float* sin, int npairs, bool inverse);
  void (*fp4_sim)(float* v, int64_t n, int block);
  void (*fp8_sim)(float* v, int64_t n, int block);
  void (*softmax_pool)(const float* const* values, const float* const* scores, int rows, int64_t c, float* z);
  void (*gate_scores)(float* s, int n, ScoreFunc f);
};
const RowOps& reference_row_ops();

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // y = bf16( W . act_quant(x) ): activations quantised to FP8 per 128-wide block (spec 6.2),
  // per-128 K-block exact partial sums x both scales, float32 accumulation in ascending block order.
  virtual void linear_fp8(const Fp8Mat& w, ConstRows x, Rows y) const = 0;
  // Same with FP4 weights (32-wide K blocks, activation scale per 128, weight scale per 32).
  virtual void linear_fp4(const Fp4Mat& w, ConstRows x, Rows y) const = 0;
  // Several independent FP4 products in one call (the routed experts of a MoE step): for each
  // group, output row i = linear_fp4(w, input row rows[i]) (rows == nullptr: row i of x), with
  // results identical to one linear_fp4 per group. The default gathers rows and loops; the CPU
  // backend streams all groups in one parallel region.
  struct Fp4Group {
    const Fp4Mat* w = nullptr;
    ConstRows x;
    const int32_t* rows = nullptr;
    int64_t count = 0;
    Rows y;  // count rows
  };
  virtual void linear_fp4_grouped(std::span<const Fp4Group> groups) const;
  // y = bf16( ideal float32 sum of W . x ), BF16 weights, no activation quantisation.
  virtual void linear_bf16(const Bf16Mat& w, ConstRows x, Rows y) const = 0;
  // y = bf16( ideal float32 sum of W . bf16(x) ) with W the FP8 matrix dequantised (exact in
  // BF16): the attention output projection wo_a, which the reference converts to BF16 at load.
  // Only called when keeps_wo_a_fp8(); other backends get the converted BF16 copy (linear_bf16).
  virtual bool keeps_wo_a_fp8() const { return false; }
  virtual void linear_fp8_bf16act(const Fp8Mat& w, ConstRows x, Rows y) const;
  // Several independent FP8 products in one call: linear_fp8 per group, or linear_fp8_bf16act
  // with `bf16act` (the wo_a groups), with results identical to one call per group. The default
  // loops; the CPU backend splits the decode rows of all groups over its threads at once.
  struct Fp8Group {
    const Fp8Mat* w = nullptr;
    ConstRows x;
    Rows y;
  };
  virtual void linear_fp8_grouped(std::span<const Fp8Group> groups, bool bf16act) const;
  // y = ideal float32 W . x (float32 output), BF16 weights used as float32: compressor, gate, head.
  virtual void linear_f32(const Bf16Mat& w, ConstRows x, Rows y) const = 0;
  // y = float32 F . x with float32 weights F [rows][cols] (hyper-connection mixes: ideal sum).
  virtual void linear_f32w(const float* f, int64_t rows, int64_t cols, ConstRows x, Rows y) const = 0;

  // In place over rows x [rows][n] (n a power of two): x = bf16( f32( f32(H x) * f32(n^-0.5) ) ),
  // the scaled Walsh-Hadamard rotation of the indexer (queries per head and keys). The reference
  // backend uses the always-exact ref::hadamard, the CPU backend a SIMD butterfly.
  virtual void hadamard_rows(float* x, int64_t rows, int n) const = 0;

  virtual void sparse_attention(const AttentionArgs& a) const = 0;
  virtual void indexer_scores(const IndexerScoreArgs& a) const = 0;
  // The same scores over keys stored compactly (runtime/kv_codec.h IndexKeyCodec entries, entry i
  // at keys + i * key_bytes; a.keys is ignored). Returns false when the backend has no such kernel
  // (the caller then decodes the keys and uses indexer_scores).
  virtual bool indexer_scores_fp4(const IndexerScoreArgs& /*a*/, const uint8_t* /*keys*/,
                                  size_t /*key_bytes*/) const {
    return false;
  }
  // Compact attention KV entries (runtime/kv_codec.h KvEntryCodec: nope E4M3 codes, their E8M0
  // scales, rope BF16 values; entry i at entries + i * entry_bytes) decoded exactly into float
  // rows: out row r <- entry ids[r] (ids == nullptr: entry first + r), rows nope + rope floats
  // apart. Single-threaded (callers split rows). Returns false when the backend has no such
  // kernel (the caller then decodes them itself, with the same result).
  virtual bool decode_kv_rows(const uint8_t* /*entries*/, size_t /*entry_bytes*/, const int32_t* /*ids*/,
                              int64_t /*first*/, int64_t /*n*/, int /*nope*/, int /*rope*/,
                              float* /*out*/) const {
    return false;
  }

  // The row ops the forward pass calls between the heavy ops (inside for_units pieces).
  virtual const RowOps& row_ops() const { return reference_row_ops(); }

  // The forward pass's light per-unit work between the heavy ops (norms, RoPE, SwiGLU, the
  // hyper-connection mixes, FP4/FP8 simulation; a unit is a row, a head or a block of a row):
  // f(begin, end) is called on pieces that cover [0, n) once each. `unit_ns` is a rough cost of
  // one unit; the CPU backend splits the range over its threads when the whole is worth waking
  // them, the reference backend makes one call. Each unit's result must not depend on the split
  // (no shared accumulators), so results are identical either way. f must not throw (it may run
  // on a worker thread): validate inputs before the call.
  using UnitsFn = void (*)(void* ctx, int64_t begin, int64_t end);
  virtual void run_units(int64_t n, double /*unit_ns*/, UnitsFn fn, void* ctx) const {
    if (n > 0) fn(ctx, 0, n);
  }
  template <class F>
  void for_units(int64_t n, double unit_ns, F&& f) const {
    using Fn = std::remove_reference_t<F>;
    run_units(n, unit_ns, [](void* c, int64_t b, int64_t e) { (*static_cast<Fn*>(c))(b, e); },
              const_cast<void*>(static_cast<const void*>(&f)));
  }
};

std::unique_ptr<Backend> make_reference_backend();

}  // namespace dsv4
