// The AVX-512 kernels of ../attention.cpp without BF16 instructions (namespace avx512fma, the
// Isa::Avx512 level): see dispatch.h, DSV4_AVX512_FMA_PASS.
#define DSV4_AVX512_FMA_PASS 1
#include "kernels/cpu/attention.cpp"
