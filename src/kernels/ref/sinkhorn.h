// Hyper-connection split (kernel.py hc_split_sinkhorn), NOTES.md section 9 "Sinkhorn split".
#pragma once

namespace dsv4::ref {
// mixes: (2+hc)*hc values; scale[3]; base[(2+hc)*hc]. Outputs pre[hc], post[hc], comb[hc*hc]
// (comb[j*hc + k], j = source stream, k = destination stream).
void hc_split_sinkhorn(const float* mixes, const float* scale, const float* base, int hc, int iters,
                       float eps, float* pre, float* post, float* comb);
}  // namespace dsv4::ref
