// Fast sparse attention with sink and lightning-indexer scoring (spec 4.7, 4.9) over the argument
// structs of the compute seam (model/backend.h). Float32 accumulation, order free; the results
// are rounded to BF16 where the reference rounds its outputs (attention output, indexer score).
//   sparse_attention: one KV vector per key shared by all heads (K = V); each gathered key is
//     loaded once per group of 4 heads. At the AVX-512 level a unit of 16 heads copies each block
//     of keys (and its queries) to BF16 once and takes the QK products on vdpbf16ps (exact
//     products of the BF16 inputs, float32 sums). The rounding points follow the reference's online
//     softmax: the list is consumed in blocks of 64 positions with a running maximum, the
//     probabilities are rounded to BF16 for the weighted sum (not for the denominator), and the
//     per-head sink logit joins the denominator last. With AMX, units of 32 heads convert each
//     block once and take both the QK and the PV products on tiles (16 heads x 16 keys / dims per
//     tile product). Allocation-free (bounded scratch, head_dim <= 1024).
//   indexer_scores: score[t][i] = bf16(sum_h bf16(relu(bf16(q[t][h] . k[i])) * w[t][h])) for
//     i < visible[t] (-inf beyond), computed as a broadcast of key elements against the query
//     transposed to [head_dim][heads] so 16 heads share one FMA.
// The scalar twins are plain loops with float32 accumulation; the AVX2 tier mirrors the AVX-512
// one with 8-lane vectors (4 heads x 2 keys score tiles, 16 heads per indexer tile). Work is
// split over the pool by (query row, head group) for attention and (query row, key chunk) for
// the indexer.
#pragma once
#include "core/thread_pool.h"
#include "kernels/cpu/dispatch.h"
#include "model/backend.h"

namespace dsv4::cpu {

void sparse_attention(const AttentionArgs& a, ThreadPool* pool);
void indexer_scores(const IndexerScoreArgs& a, ThreadPool* pool);

// Single-threaded entry points of one ISA level (tests compare them).
namespace scalar {
void sparse_attention_rows(const AttentionArgs& a, int64_t t, int h0, int hn);
void indexer_scores_rows(const IndexerScoreArgs& a, int64_t t, int64_t i0, int64_t i1);
}  // namespace scalar
namespace avx2 {  // head_dim % 8 == 0 for sparse_attention_rows
void sparse_attention_rows(const AttentionArgs& a, int64_t t, int h0, int hn);
void indexer_scores_rows(const IndexerScoreArgs& a, int64_t t, int64_t i0, int64_t i1);
}  // namespace avx2
namespace avx512 {  // head_dim % 16 == 0 and hn <= 16 for sparse_attention_rows
void sparse_attention_rows(const AttentionArgs& a, int64_t t, int h0, int hn);
// The same on AMX tiles, hn <= 64 (only when detected_isa() == Isa::Avx512Amx). k16, when given:
// every key of the table in BF16, row i (a.key(i)) at k16 + i * ld16 (ld16 >= head_dim rounded up
// to 32, zeros past head_dim), read instead of converting the float rows (the same values).
void sparse_attention_rows_amx(const AttentionArgs& a, int64_t t, int h0, int hn,
                               const uint16_t* k16 = nullptr, int64_t ld16 = 0);
void indexer_scores_rows(const IndexerScoreArgs& a, int64_t t, int64_t i0, int64_t i1);
}  // namespace avx512
namespace avx512fma {  // the same without BF16 (dispatch.h), detected_isa() >= Isa::Avx512
void sparse_attention_rows(const AttentionArgs& a, int64_t t, int h0, int hn);
void indexer_scores_rows(const IndexerScoreArgs& a, int64_t t, int64_t i0, int64_t i1);
}  // namespace avx512fma

}  // namespace dsv4::cpu
