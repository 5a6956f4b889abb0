// The reference backend: every op is the scalar oracle of src/kernels/ref (bit-exact).
#include <algorithm>
#include <vector>

#include "core/error.h"
#include "kernels/ref/attention.h"
#include "kernels/ref/compressor.h"
#include "kernels/ref/hadamard.h"
#include "kernels/ref/indexer.h"
#include "kernels/ref/linear.h"
#include "kernels/ref/moe.h"
#include "kernels/ref/norm.h"
#include "kernels/ref/rope.h"
#include "model/backend.h"
#include "quant/quant.h"

namespace dsv4 {
namespace {

class ReferenceBackend final : public Backend {
 public:
  const char* name() const override { return "reference"; }
  void linear_fp8(const Fp8Mat& w, ConstRows x, Rows y) const override { ref::linear_fp8(w, x, y); }
  void linear_fp4(const Fp4Mat& w, ConstRows x, Rows y) const override { ref::linear_fp4(w, x, y); }
  void linear_bf16(const Bf16Mat& w, ConstRows x, Rows y) const override { ref::linear_bf16(w, x, y); }
  void linear_f32(const Bf16Mat& w, ConstRows x, Rows y) const override { ref::linear_f32(w, x, y); }
  void linear_f32w(const float* f, int64_t rows, int64_t cols, ConstRows x, Rows y) const override {
    ref::linear_f32w(f, rows, cols, x, y);
  }
  void hadamard_rows(float* x, int64_t rows, int n) const override {
    for (int64_t r = 0; r < rows; ++r) ref::hadamard(x + r * n, n);
  }
  void sparse_attention(const AttentionArgs& a) const override { ref::sparse_attention(a); }
  void indexer_scores(const IndexerScoreArgs& a) const override { ref::indexer_scores(a); }
};

}  // namespace

const RowOps& reference_row_ops() {
  static const RowOps ops{ref::rms_norm, ref::head_norm_bf16, ref::hc_pre_finish, ref::hc_post, ref::hc_head_finish,
                          ref::swiglu,   ref::rope_apply,     quant::fp4_sim, quant::fp8_sim,
                          ref::softmax_pool, ref::gate_scores};
  return ops;
}

std::unique_ptr<Backend> make_reference_backend() { return std::make_unique<ReferenceBackend>(); }

void Backend::linear_fp4_grouped(std::span<const Fp4Group> groups) const {
  std::vector<float> xg;
  for (const Fp4Group& g : groups) {
    if (g.count == 0) continue;
    if (g.rows == nullptr) {
      linear_fp4(*g.w, ConstRows{g.x.p, g.count, g.x.ld}, g.y);
      continue;
    }
    const int64_t cols = g.w->cols;
    xg.resize(static_cast<size_t>(g.count * cols));
    for (int64_t i = 0; i < g.count; ++i)
      std::copy(g.x.row(g.rows[i]), g.x.row(g.rows[i]) + cols, &xg[static_cast<size_t>(i * cols)]);
    linear_fp4(*g.w, ConstRows{xg.data(), g.count, cols}, g.y);
  }
}

void Backend::linear_fp8_grouped(std::span<const Fp8Group> groups, bool bf16act) const {
  for (const Fp8Group& g : groups) {
    if (bf16act) linear_fp8_bf16act(*g.w, g.x, g.y);
    else linear_fp8(*g.w, g.x, g.y);
  }
}

void Backend::linear_fp8_bf16act(const Fp8Mat&, ConstRows, Rows) const {
  throw_error(name(), ": linear_fp8_bf16act is not implemented by this backend");
}

}  // namespace dsv4
