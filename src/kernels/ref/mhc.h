// Reference hyper-connection glue (spec 4.3, NOTES.md section 9). The mixing GEMV (fn . x) runs in
// the backend; these functions take its float32 result `dots` and finish the operation for one row.
#pragma once
#include <cstdint>

namespace dsv4::ref {

struct HcSplit {
  // Outputs of the Sinkhorn split for one row; sized by the caller (hc, hc, hc*hc).
  float* pre;
  float* post;
  float* comb;  // comb[j*hc + k]: source stream j -> destination stream k
};

// hc_pre: mixes = f32(dots * r) (r = rms_scale over the hc*dim streams), Sinkhorn split, then
// a[d] = bf16( ideal sum_j f32(pre[j] * X[j][d]) ).
void hc_pre_finish(const float* x /*[hc][dim]*/, int hc, int64_t dim, const float* dots,
                   const float* scale, const float* base, int iters, float norm_eps, float hc_eps,
                   HcSplit split, float* a /*[dim]*/);
// hc_post: y[k][d] = bf16( f32( f32(post[k]*f[d]) + f32(ideal sum_j f32(comb[j][k]*X[j][d])) ) )
// for the columns d in [d0, d1); y is [hc][d1 - d0] (column d at d - d0). Every column is
// independent, so the row can be computed in pieces.
void hc_post(const float* x /*[hc][dim]*/, const float* f /*[dim]*/, int hc, int64_t dim,
             const float* post, const float* comb, int64_t d0, int64_t d1, float* y);
// hc_head: pre[j] = f32( sigmoid32( f32( f32(mixes[j]*scale[0]) + base[j] ) ) + hc_eps ) (no FMA),
// a = bf16( ideal sum_j f32(pre[j] * X[j]) ).
void hc_head_finish(const float* x, int hc, int64_t dim, const float* dots, const float* scale,
                    const float* base, float norm_eps, float hc_eps, float* a);
// hc_head's weights pre[0, hc) from the mixing dots and the RMS factor r (shared with the
// backends' twins of hc_head_finish).
void hc_head_pre(const float* dots, float r, int hc, const float* scale, const float* base, float hc_eps,
                 float* pre);

}  // namespace dsv4::ref
