// Internal: the M == 1 product with B stored [K, N], used by gemm().
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace atoma::cuda::detail {

void gemv_kn(int64_t N, int64_t K, const float* x, const float* B, int64_t ldb, float* y,
             const float* bias, cudaStream_t s);

}  // namespace atoma::cuda::detail
