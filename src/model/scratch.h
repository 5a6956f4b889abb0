// Activation scratch of the forward pass, owned by a session. `reserve` sizes every buffer once
// (rows = the largest chunk, max_context bounds the compressed-entry counts), so steady-state decode
// performs no allocation; the ops only resize within the reserved capacity.
#pragma once
#include <cstdint>
#include <vector>

#include "format/config.h"
#include "runtime/kv_gather.h"

namespace dsv4 {

struct ForwardScratch {
  // block level: sub-layer inputs/outputs and the hyper-connection split per row
  std::vector<float> a, xin, f, hc_pre, hc_post, hc_comb, hc_dots, hc_tmp;
  // attention
  std::vector<float> rope_cos, rope_sin, qlat, q, kv, qi, wts, scores, staging, o, u;
  std::vector<int32_t> sel, lists, topk_work;
  std::vector<int64_t> nsel, visible;
  std::vector<float> comp_rows;  // compressed entries referenced by the chunk's key lists
  KvGatherScratch gather;
  // compressor
  std::vector<float> ca, cg, cz, ccos, csin;
  std::vector<const float*> cvals, cscores;
  // MoE
  std::vector<float> gate, gw, acc, xe, ge, ue, he, ye, rw;
  std::vector<int32_t> gidx;
  std::vector<int64_t> erows;
  // head and MTP
  std::vector<float> head_dots, head_y, me, mhn, mep, mhp, mx;

  void reserve(const ModelConfig& cfg, int64_t rows, int64_t max_context);
};

}  // namespace dsv4
