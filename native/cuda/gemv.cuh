// Internal: the M == 1 product with B stored [K, N], used by gemm(), and the GEMV variant
// selection (gemv.cu lists the variants) for benchmarks.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace atoma::cuda {

// Variants of gemv() with W [N, K] (identical bytes, different speed): 0 = auto (default),
// 1 = split, 2 = fused, 3 = fused8. ATOMA_CUDA_GEMV=<name> picks the default.
void set_gemv_variant(int variant);
int gemv_variant();
int gemv_variant_count();
const char* gemv_variant_name(int variant);

}  // namespace atoma::cuda

namespace atoma::cuda::detail {

void gemv_kn(int64_t N, int64_t K, const float* x, const float* B, int64_t ldb, float* y,
             const float* bias, cudaStream_t s);

}  // namespace atoma::cuda::detail
