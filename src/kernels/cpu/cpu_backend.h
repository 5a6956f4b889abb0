// The SIMD/threaded implementation of the compute seam (model/backend.h) on the kernels of this
// directory: FP8/FP4/BF16 linears (linear.h), sparse attention and indexer scoring (attention.h),
// all on one persistent thread pool of `threads` workers (0 = all hardware threads).
// Numerics: float32 accumulation in any order; activation quantisation as the reference does it;
// outputs rounded to BF16 where the reference rounds them.
#pragma once
#include <memory>

#include "model/backend.h"

namespace dsv4::cpu {

std::unique_ptr<Backend> make_cpu_backend(int threads = 0);

}  // namespace dsv4::cpu
