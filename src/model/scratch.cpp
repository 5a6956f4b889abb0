#include "model/scratch.h"

#include <algorithm>

namespace dsv4 {

namespace {
template <typename T>
void reserve_counted(std::vector<T>& v, int64_t n, uint64_t& total) {
  v.reserve(static_cast<size_t>(std::max<int64_t>(n, 1)));
  total += v.capacity() * sizeof(T);
}
}  // namespace

void ForwardScratch::reserve(const ModelConfig& c, int64_t n, int64_t T) {
  reserved_bytes = 0;
  rope_class = -1;  // another model's tables may follow
  auto res = [&](auto& v, int64_t count) { reserve_counted(v, count, reserved_bytes); };
  const int64_t dim = c.dim, hc = c.hc_mult, flat = hc * dim, HD = int64_t{c.n_heads} * c.head_dim;
  const int64_t D = c.head_dim, W = c.window, I = c.moe_inter_dim, E = c.n_routed_experts;
  const int64_t K = c.n_activated_experts, GR = int64_t{c.o_groups} * c.o_lora_rank;
  const int64_t qw = int64_t{c.index_n_heads} * c.index_head_dim, topk = c.index_topk;
  int min_ratio = 0, max_r = 1;
  for (int r : c.compress_ratios)
    if (r > 0) {
      min_ratio = min_ratio == 0 ? r : std::min(min_ratio, r);
      max_r = std::max(max_r, r);
    }
  const int64_t max_comp = min_ratio > 0 ? T / min_ratio + 1 : 0;
  // compressed rows one chunk references: all entries of an HCA layer, at most n*topk of a CSA one
  int64_t referenced = 0;
  for (int r : c.compress_ratios)
    if (r == 4) referenced = std::max<int64_t>(referenced, std::min<int64_t>(T / 4 + 1, n * topk));
    else if (r > 0) referenced = std::max<int64_t>(referenced, T / r + 1);
  res(comp_rows, referenced * D);
  res(gather.slot, max_comp);
  res(gather.ids, referenced);
  const int64_t kb = std::min<int64_t>(kIndexerKeyBlock, T / 4 + 1);
  res(gather.key_block, kb * c.index_head_dim);
  res(gather.score_block, n * kb);
  res(gather.visible, n);
  res(gather.best, n * 2 * topk);
  res(gather.have, n);
  res(gather.bar, n);
  for (auto* v : {&a, &xin, &f}) res(*v, n * dim);
  res(hc_pre, n * hc);
  res(hc_post, n * hc);
  res(hc_comb, n * hc * hc);
  res(hc_dots, n * c.hc_mix());
  res(rope_cos, n * c.rope_head_dim / 2);
  res(rope_sin, n * c.rope_head_dim / 2);
  res(qlat, n * c.q_lora_rank);
  res(q, n * HD);
  res(kv, n * D);
  res(qi, n * qw);
  res(wts, n * c.index_n_heads);
  res(staging, (W + n) * D);
  res(o, n * HD);
  res(u, n * GR);
  res(sel, n * topk);
  res(topk_work, T / 4 + 1);
  // A key list: the window, then the CSA selection (top-k) or every entry of an HCA layer.
  int64_t list_comp = 0;
  for (int r : c.compress_ratios)
    if (r > 0) list_comp = std::max<int64_t>(list_comp, r == 4 ? topk : T / r + 1);
  res(lists, n * (W + list_comp));
  res(nsel, n);
  res(visible, n);
  const int64_t cc = 2 * std::max<int64_t>(D, c.index_head_dim);
  res(ca, n * cc);
  res(cg, n * cc);
  res(cz, cc);
  res(ccos, c.rope_head_dim / 2);
  res(csin, c.rope_head_dim / 2);
  res(cvals, 2 * max_r);
  res(cscores, 2 * max_r);
  res(gate, n * E);
  res(gw, n * K);
  res(gidx, n * K);
  res(acc, n * dim);
  const int64_t rb = moe_batch_rows(n, K);
  res(ye, rb * dim);
  for (auto* v : {&ge, &ue, &he}) res(*v, rb * I);
  res(rw, n * K);
  res(erows, n * K);
  res(eoff, E + 1);
  res(efill, E);
  res(egroups, 2 * E);
  res(fp8groups, std::max<int64_t>(2, c.o_groups));
  res(wo_a_groups, c.o_groups);
  res(head_dots, n * hc);
  res(head_y, n * dim);
  res(me, n * dim);
  res(mhn, n * flat);
  res(mep, n * dim);
  res(mhp, n * flat);
  res(mx, n * flat);
}

}  // namespace dsv4
