// Activation scratch of the forward pass, owned by a session. `reserve` sizes every buffer once
// (rows = the largest chunk, max_context bounds the compressed-entry counts), so steady-state decode
// performs no allocation; the ops only resize within the reserved capacity.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "format/config.h"
#include "model/backend.h"
#include "runtime/kv_gather.h"

namespace dsv4 {

struct ForwardScratch {
  // block level: sub-layer inputs/outputs and the hyper-connection split per row
  std::vector<float> a, xin, f, hc_pre, hc_post, hc_comb, hc_dots;
  // attention
  std::vector<float> rope_cos, rope_sin, qlat, q, kv, qi, wts, staging, o, u;
  // What rope_cos / rope_sin hold: the tables of rope class rope_class (ModelContext) for the
  // positions [rope_pos0, rope_pos0 + rope_rows); the layers of a chunk that share a class reuse
  // them. rope_class < 0: nothing yet.
  int rope_class = -1;
  int64_t rope_pos0 = 0, rope_rows = 0;
  std::vector<int32_t> sel, lists, topk_work;
  std::vector<int64_t> nsel, visible;
  std::vector<float> comp_rows;  // compressed entries referenced by the chunk's key lists
  KvGatherScratch gather;
  // compressor
  std::vector<float> ca, cg, cz, ccos, csin;
  std::vector<const float*> cvals, cscores;
  // MoE: routed rows grouped by expert (ascending id), processed in batches of at most
  // moe_batch_rows(n) rows; eoff[e] = first row of expert e (erows), efill its fill cursor
  std::vector<float> gate, gw, acc, ge, ue, he, ye, rw;
  std::vector<int32_t> gidx, erows;
  std::vector<int64_t> eoff, efill;
  std::vector<Backend::Fp4Group> egroups;
  std::vector<Backend::Fp8Group> fp8groups;  // wo_a's groups, the shared expert's w1 and w3
  std::vector<Fp8Mat> wo_a_groups;
  // head and MTP
  std::vector<float> head_dots, head_y, me, mhn, mep, mhp, mx;

  void reserve(const ModelConfig& cfg, int64_t rows, int64_t max_context);
  uint64_t reserved_bytes = 0;  // capacity the last reserve() set aside, all buffers together
};

// Rows of one routed-expert batch for a chunk of n tokens with k experts each: all n * k when
// small, else about 1024 (bounded activation memory), never fewer than n (one expert's rows).
inline int64_t moe_batch_rows(int64_t n, int64_t k) {
  return std::min(n * k, std::max<int64_t>(n, 1024));
}

}  // namespace dsv4
