#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/indexer_fp4.h"
#include "kernels/cpu/kv_decode.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/formats.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/ref_rows.h"
#include "kernels/cpu/rowwise.h"

namespace dsv4::cpu {
namespace {

// Output rows the kernels round to BF16 as each thread finishes its columns.
cpu::OutRows bf16_out(const dsv4::Rows& y) { return {y.p, y.ld, true}; }

void check_out(const char* op, int64_t xrows, const dsv4::Rows& y) {
  if (y.n != xrows) throw_error(op, ": output has ", y.n, " rows, input ", xrows);
}

class CpuBackend final : public Backend {
 public:
  // The DSV4_GEMM / DSV4_GEMV_ORDER / DSV4_AVX_VNNI overrides are read here, on the calling
  // thread, so a bad value is a clear error before any kernel runs (the kernels first read them on
  // the pool's workers).
  explicit CpuBackend(int threads) : pool_(threads) {
    (void)gemm_unit();
    (void)gemv_order();
    (void)avx_vnni();
  }
  const char* name() const override { return "cpu-simd"; }

  void linear_fp8(const Fp8Mat& w, ConstRows x, dsv4::Rows y) const override {
    check_out("linear_fp8", x.n, y);
    cpu::linear_fp8({w.w, w.s, w.rows, w.cols}, {x.p, x.n, x.ld}, bf16_out(y), pool());
  }
  void linear_fp4(const Fp4Mat& w, ConstRows x, dsv4::Rows y) const override {
    check_out("linear_fp4", x.n, y);
    cpu::linear_fp4({w.w, w.s, w.rows, w.cols}, {x.p, x.n, x.ld}, bf16_out(y), pool());
  }
  void linear_fp4_grouped(std::span<const Backend::Fp4Group> groups) const override {
    thread_local std::vector<cpu::Fp4Group> g;  // no allocation once warmed up
    g.clear();
    for (const Backend::Fp4Group& a : groups) {
      if (a.count == 0) continue;
      check_out("linear_fp4_grouped", a.count, a.y);
      g.push_back({{a.w->w, a.w->s, a.w->rows, a.w->cols}, a.x.p, a.x.ld, a.rows, a.count,
                   bf16_out(a.y)});
    }
    cpu::linear_fp4_grouped(g, pool());
  }
  // The row ops: the AVX-512 or AVX2 twins of the reference's (ref_rows.h) where the level has them.
  const RowOps& row_ops() const override {
#define DSV4_ROW_OPS(ns) \
  RowOps { ns::rms_norm, ns::head_norm_bf16, ns::hc_pre_finish, ns::hc_post, ns::hc_head_finish, ns::swiglu, ns::rope_apply, ns::fp4_sim, ns::fp8_sim, \
           ns::softmax_pool, ns::gate_scores }
    static const RowOps simd = DSV4_ROW_OPS(avx512_ref), simd2 = DSV4_ROW_OPS(avx2_ref);
#undef DSV4_ROW_OPS
    return isa_at_least(Isa::Avx512) ? simd : isa_at_least(Isa::Avx2) ? simd2 : reference_row_ops();
  }
  // wo_a stays FP8 in memory (half the bytes of the BF16 copy per decoded token).
  bool keeps_wo_a_fp8() const override { return true; }
  void linear_fp8_bf16act(const Fp8Mat& w, ConstRows x, dsv4::Rows y) const override {
    check_out("linear_fp8_bf16act", x.n, y);
    cpu::linear_fp8({w.w, w.s, w.rows, w.cols}, {x.p, x.n, x.ld}, bf16_out(y), pool(), false);
  }
  void linear_fp8_grouped(std::span<const Backend::Fp8Group> groups, bool bf16act) const override {
    thread_local std::vector<cpu::Fp8Group> g;  // no allocation once warmed up
    g.clear();
    for (const Backend::Fp8Group& a : groups) {
      check_out("linear_fp8_grouped", a.x.n, a.y);
      g.push_back({{a.w->w, a.w->s, a.w->rows, a.w->cols}, {a.x.p, a.x.n, a.x.ld}, bf16_out(a.y)});
    }
    cpu::linear_fp8_grouped(g, pool(), !bf16act);
  }
  void linear_bf16(const Bf16Mat& w, ConstRows x, dsv4::Rows y) const override {
    check_out("linear_bf16", x.n, y);
    cpu::linear_bf16({w.w, w.rows, w.cols}, {x.p, x.n, x.ld}, bf16_out(y), pool(),
                     Bf16Act::RoundToBf16);
  }
  void linear_f32(const Bf16Mat& w, ConstRows x, dsv4::Rows y) const override {
    check_out("linear_f32", x.n, y);
    cpu::linear_bf16({w.w, w.rows, w.cols}, {x.p, x.n, x.ld}, {y.p, y.ld}, pool(), Bf16Act::Float32);
  }
  void linear_f32w(const float* f, int64_t rows, int64_t cols, ConstRows x,
                   dsv4::Rows y) const override {
    check_out("linear_f32w", x.n, y);
    cpu::linear_f32({f, rows, cols}, {x.p, x.n, x.ld}, {y.p, y.ld}, pool());
  }
  void sparse_attention(const AttentionArgs& a) const override { cpu::sparse_attention(a, pool()); }
  void indexer_scores(const IndexerScoreArgs& a) const override { cpu::indexer_scores(a, pool()); }
  // SIMD butterfly (rowwise.h), then BF16 like the reference's output.
  void hadamard_rows(float* x, int64_t rows, int n) const override {
    cpu::hadamard(x, n, rows, n);
    round_to_bf16(x, rows * n);
  }
  bool decode_kv_rows(const uint8_t* entries, size_t entry_bytes, const int32_t* ids, int64_t first,
                      int64_t n, int nope, int rope, float* out) const override {
    if (!isa_at_least(Isa::Avx512) || nope % 64 != 0) return false;
    avx512::decode_kv_rows(entries, entry_bytes, ids, first, n, nope, rope, out, int64_t{nope} + rope);
    return true;
  }
  bool indexer_scores_fp4(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes) const override {
    cpu::indexer_scores_fp4(a, keys, key_bytes, pool());  // compact keys scanned in place (indexer_fp4.h)
    return true;
  }
  void run_units(int64_t n, double unit_ns, UnitsFn fn, void* ctx) const override {
    // Waking a spinning worker costs about a microsecond; below ~8 us of work one thread wins.
    constexpr double kMinParallelNs = 8000.0;
    if (n >= 2 && pool_.size() > 1 && static_cast<double>(n) * unit_ns >= kMinParallelNs) {
      pool_.parallel_for(n, 1, [&](int64_t b, int64_t e, int) { fn(ctx, b, e); }, Schedule::Stealing);
    } else if (n > 0) {
      fn(ctx, 0, n);
    }
  }

 private:
  ThreadPool* pool() const { return &pool_; }
  mutable ThreadPool pool_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) { return std::make_unique<CpuBackend>(threads); }

}  // namespace dsv4::cpu
