// Canonical SGEMM on CUDA cores (DETERMINISM.md section 3). Each thread owns an 8x8 block of C
// and walks K in ascending order: a chunk partial p per output (fma from +0 over 256 k), added
// into acc at every chunk end. Tiling, blocks and loads are free; the per-element order is not.
// No tensor cores, no TF32, no split-K.
#include <cstdlib>
#include <cstring>

#include "common.cuh"
#include "gemm_kernel.cuh"
#include "gemv.cuh"

namespace atoma::cuda {
namespace {

using namespace gemm_detail;

int g_variant = -1;

template <bool B_NK, int VARIANT>
void launch(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
            int64_t ldb, float* C, int64_t ldc, const float* bias, cudaStream_t s) {
  auto kernel = gemm_kernel<B_NK, VARIANT>;
  const size_t smem = gemm_smem_bytes(VARIANT);
  // The attribute is per device; setting it on every call is cheap and stays correct when the
  // caller switches devices.
  detail::check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(smem)),
                "cudaFuncSetAttribute(gemm)");
  const int64_t max_rows = int64_t{65535} * BM;   // grid.y limit: larger M runs in slices
  for (int64_t r = 0; r < M; r += max_rows) {
    const int64_t rows = M - r < max_rows ? M - r : max_rows;
    dim3 grid(static_cast<unsigned>((N + BN - 1) / BN), static_cast<unsigned>((rows + BM - 1) / BM));
    kernel<<<grid, THREADS, smem, s>>>(rows, N, K, A + r * lda, lda, B, ldb, C + r * ldc, ldc, bias);
    detail::check_launch("gemm kernel launch");
  }
}

}  // namespace

void set_gemm_variant(int variant) {
  detail::require(variant >= 0 && variant <= 2, "gemm variant must be 0 (smem), 1 (regs) or 2 (smem1)");
  g_variant = variant;
}

int gemm_variant() {
  if (g_variant < 0) {
    const char* e = std::getenv("ATOMA_CUDA_GEMM");
    g_variant = 0;
    if (e && std::strcmp(e, "regs") == 0) g_variant = 1;
    if (e && std::strcmp(e, "smem1") == 0) g_variant = 2;
  }
  return g_variant;
}

void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
          int64_t ldb, bool b_is_nk, float* C, int64_t ldc, const float* bias, Stream stream) {
  detail::require(M >= 0 && N >= 0 && K >= 0, "gemm: negative size");
  detail::require(lda >= K || M <= 1, "gemm: lda < K");
  detail::require(b_is_nk ? (ldb >= K || N <= 1) : (ldb >= N || K <= 1), "gemm: ldb too small");
  detail::require(ldc >= N || M <= 1, "gemm: ldc < N");
  if (M == 0 || N == 0) return;
  if (M == 1) {
    if (b_is_nk) gemv(N, K, A, B, ldb, C, bias, stream);
    else detail::gemv_kn(N, K, A, B, ldb, C, bias, stream);
    return;
  }
  cudaStream_t s = stream;
  const int v = gemm_variant();
  if (b_is_nk) {
    if (v == 0) launch<true, 0>(M, N, K, A, lda, B, ldb, C, ldc, bias, s);
    else if (v == 1) launch<true, 1>(M, N, K, A, lda, B, ldb, C, ldc, bias, s);
    else launch<true, 2>(M, N, K, A, lda, B, ldb, C, ldc, bias, s);
  } else {
    if (v == 0) launch<false, 0>(M, N, K, A, lda, B, ldb, C, ldc, bias, s);
    else if (v == 1) launch<false, 1>(M, N, K, A, lda, B, ldb, C, ldc, bias, s);
    else launch<false, 2>(M, N, K, A, lda, B, ldb, C, ldc, bias, s);
  }
}

}  // namespace atoma::cuda
