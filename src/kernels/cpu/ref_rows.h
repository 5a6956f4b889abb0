// AVX-512 and AVX2 twins of the reference's light row ops (kernels/ref norm, mhc, moe, rope, the
// compressor's softmax_pool, quant::fp4_sim and fp8_sim), for the fast backend: each does the
// reference's operations per element, in the reference's precision (float32 products, float64
// sums and transcendentals, BF16 / E2M1 rounding on bits), with the elements spread over the
// vector lanes. Two things can differ from the reference, both in a last bit before a rounding
// that nearly always hides it:
//   * sums over a row (the RMS of rms_norm, head_norm_bf16, hc_pre_finish, hc_head_finish) add in
//     float64 over 8 lanes (AVX-512) or 4 (AVX2) where the reference adds one element after the
//     other;
//   * the exp of swiglu, softmax_pool and gate_scores and gate_scores' log1p are float64
//     polynomials (within ~1 float64 ulp) where the reference calls std::exp / std::log1p; both
//     are rounded once to float32.
// Everything else (hc_post, the weighted collapses of hc_pre_finish and hc_head_finish,
// rope_apply, fp4_sim, fp8_sim, softmax_pool's sums and the element-wise parts of the norms and
// swiglu) is bit-identical to the reference, NaN included.
// The fast backend picks the level's twins by active_isa().
#pragma once
#include <cstdint>

#include "format/config.h"
#include "kernels/ref/mhc.h"

namespace dsv4::cpu {

#define DSV4_REF_ROW_OPS_DECLS                                                                       \
  void rms_norm(const float* x, const uint16_t* w, int64_t n, float eps, float* y);                 \
  void head_norm_bf16(float* q, int64_t n, float eps);                                              \
  void hc_pre_finish(const float* x, int hc, int64_t dim, const float* dots, const float* scale,    \
                     const float* base, int iters, float norm_eps, float hc_eps, ref::HcSplit split, \
                     float* a);                                                                      \
  void hc_head_finish(const float* x, int hc, int64_t dim, const float* dots, const float* scale,   \
                      const float* base, float norm_eps, float hc_eps, float* a);                   \
  void hc_post(const float* x, const float* f, int hc, int64_t dim, const float* post,              \
               const float* comb, int64_t d0, int64_t d1, float* y);                                \
  void swiglu(const float* g, const float* u, int64_t n, float limit, float weight, float* h);      \
  void rope_apply(float* x, const float* cos, const float* sin, int npairs, bool inverse);          \
  /* y[i] = ref::exp32(x[i]) = f32(exp(f64(x[i]))) up to the last float64 bit, the exp of swiglu    \
     (for its test). */                                                                              \
  void exp32(const float* x, int64_t n, float* y);                                                  \
  /* ref::softmax_pool over 16 / 8 channels at a time (the exp as in exp32). */                    \
  void softmax_pool(const float* const* values, const float* const* scores, int rows, int64_t c,    \
                    float* z);                                                                      \
  /* ref::gate_scores: sqrt-softplus and sigmoid on the lanes (exp and log1p as float64            \
     polynomials, each within ~1 float64 ulp), softmax by the reference itself. */                  \
  void gate_scores(float* s, int n, ScoreFunc f);                                                   \
  /* quant::fp4_sim; blocks other than 32 wide go to the scalar one. */                             \
  void fp4_sim(float* v, int64_t n, int block);                                                     \
  /* quant::fp8_sim (E4M3); blocks not a multiple of 16 wide go to the scalar one. */               \
  void fp8_sim(float* v, int64_t n, int block);

namespace avx512_ref {  // only when detected_isa() >= Isa::Avx512
DSV4_REF_ROW_OPS_DECLS
}
// The same on AVX2 (ref_rows_avx2.cpp: 8 / 4 lanes, the row sums of the norms over 4 float64
// lanes), only when detected_isa() >= Isa::Avx2.
namespace avx2_ref {
DSV4_REF_ROW_OPS_DECLS
}
#undef DSV4_REF_ROW_OPS_DECLS

}  // namespace dsv4::cpu
