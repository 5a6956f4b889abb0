// Compact attention KV entries (runtime/kv_codec.h KvEntryCodec: `nope` E4M3 codes, one E8M0
// scale per 64 of them, then `rope` BF16 values, little-endian) -> float32 rows, value =
// e4m3(code) x e8m0(scale) in float32 (the runtime's table decode, KvRows::read_rows). The
// gathered keys of every decode step at depth (up to index_topk compressed entries per CSA layer,
// all of an HCA layer's) and the window ring go through it.
//   scalar: per element through quant::e4m3_to_f32 / e8m0_to_f32, as the runtime does.
//   avx512: 16 codes per vector: the code's sign, e and m put into float32 fields with two shifts
//   and an add (2^(e - 7) (1 + m / 8) for e >= 1), the e = 0 codes (m x 2^-9) converted from
//   integers, NaN codes (never stored) as NaN, then the one multiply by the scale; the BF16 tail
//   widened by a shift. Bit-identical to the scalar twin.
#pragma once
#include <cstddef>
#include <cstdint>

namespace dsv4::cpu {

// Row r of out (stride ldo floats) <- entry ids[r] (ids == nullptr: entry first + r) of the
// entries at `entries`, entry i at entries + i * entry_bytes; nope % 64 == 0 for the AVX-512 twin.
#define DSV4_KV_DECODE_DECL                                                                      \
  void decode_kv_rows(const uint8_t* entries, size_t entry_bytes, const int32_t* ids,            \
                      int64_t first, int64_t n, int nope, int rope, float* out, int64_t ldo);
namespace scalar {
DSV4_KV_DECODE_DECL
}
namespace avx512 {  // AVX-512 F only: callable when detected_isa() >= Isa::Avx512
DSV4_KV_DECODE_DECL
}
#undef DSV4_KV_DECODE_DECL

}  // namespace dsv4::cpu
