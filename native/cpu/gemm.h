// Canonical matrix product (DETERMINISM.md section 3) on the CPU.
#pragma once
#include <cstdint>

namespace atoma {

// C[i*ldc + j] = sum_k A[i*lda + k] * B(k, j)  (+ bias[j] when bias != nullptr)
//   B(k, j) = B[k*ldb + j]  when !b_is_nk  (B stored [K, N], activations)
//   B(k, j) = B[j*ldb + k]  when  b_is_nk  (B stored [N, K], weights: C = A x W^T)
// K is summed in chunks of 256 (fma from +0.0 inside a chunk, chunk sums added in order).
// Any M, N, K >= 0 (K = 0 gives +0.0, then + bias). C must not alias A or B.
// Runs on the thread pool with the active ISA; the bytes never depend on either.
void gemm(int64_t M, int64_t N, int64_t K,
          const float* A, int64_t lda,
          const float* B, int64_t ldb, bool b_is_nk,
          float* C, int64_t ldc,
          const float* bias);

}  // namespace atoma
