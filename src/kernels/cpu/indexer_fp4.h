// Lightning-indexer scores straight from compact FP4 keys (runtime/kv_codec.h IndexKeyCodec
// entries: head_dim/2 packed E2M1 bytes, element 2j in the low nibble, then one E8M0 scale per 32
// elements), so the long-context indexer scan reads 68 B per key instead of 256 B (BF16) or
// 512 B (float). Semantics of IndexerScoreArgs (model/backend.h) with float32 sums:
//   score[t][i] = bf16( sum_h bf16( relu(bf16(q[t][h] . k[i])) * w[t][h] ) ),  -inf for i >= visible[t].
// The scalar function is the reference twin kept forever; the AVX-512 and AVX2 versions decode
// each key once (nibble -> float through a permute, times the block scale) and score it against
// every query row and head of the call: per dimension one broadcast of the key's value times the
// row's queries transposed to [D][heads] (AVX-512 with many rows: keys decoded 16 at a time into
// a tile; AVX2: spans of up to 128 decoded keys that every row runs over in turn).
// With AMX the dot products are tile products (16 keys x 16 heads per 32 dimensions).
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/thread_pool.h"
#include "model/backend.h"

namespace dsv4::cpu {

void indexer_scores_fp4_scalar(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes);
void indexer_scores_fp4_avx2(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes);
// 8-bit integer dot products on AVX-VNNI (callable when cpu_has_avx_vnni(); indexer_int8.h), as
// avx512::indexer_scores_fp4_int8 below: what is not of the exact form goes to the AVX2 kernel;
// false, having written nothing, when no query row is of it.
bool indexer_scores_fp4_avxvnni(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes);
namespace avx512 {  // detected_isa() >= Isa::Avx512Bf16
void indexer_scores_fp4(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes);
// AMX tiles for the dot products (only when detected_isa() == Isa::Avx512Amx).
void indexer_scores_fp4_amx(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes);
// 8-bit integer dot products (vpdpbusd; callable when detected_isa() >= Isa::Avx512), exact for
// FP4-simulated queries and keys (indexer_int8.h). Keys, and query rows with a head, not of
// that form go to the kernels above; returns false, having written nothing, when no row is of it.
bool indexer_scores_fp4_int8(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes);
}  // namespace avx512
namespace avx512fma {  // detected_isa() >= Isa::Avx512
void indexer_scores_fp4(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes);
}  // namespace avx512fma
// The engine of the dot products that the dispatch below uses for FP4-simulated queries and keys
// at the active level: "amx", "vpdpbusd" (AVX-512 VNNI), "vpdpbusd-vex" (AVX-VNNI), "fma" or
// "scalar" (dsv4 bench prints it).
const char* indexer_engine_name();
// Best available (head_dim must be a multiple of 32 for the SIMD path; otherwise scalar).
void indexer_scores_fp4(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes);
// The same with the keys split over `pool` (every score depends on one query row and one key,
// so the split changes no result); serial when the work is small or pool is null.
void indexer_scores_fp4(const IndexerScoreArgs& a, const uint8_t* keys, size_t key_bytes,
                        ThreadPool* pool);

}  // namespace dsv4::cpu
