// Decode product y = W x (+ bias), W stored [N, K] (section 3 order). The product is one
// 256-long fma chain per (output, chunk), so the parallelism is across outputs and chunks: each
// warp owns one chunk of 32 consecutive outputs and streams their W rows through shared memory
// (coalesced loads, cp.async, two stages), lane r running the chain of output r. The chunk
// partials then go through a small kernel that adds them per output in ascending chunk order.
#include "common.cuh"
#include "gemv.cuh"
#include "gemv_kernel.cuh"

namespace atoma::cuda {
namespace {

using namespace gemv_detail;

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

void combine(int64_t N, int64_t n_chunks, const float* partial, const float* bias, float* y,
             cudaStream_t s) {
  gemv_combine<<<detail::grid_1d(N, 256), 256, 0, s>>>(N, n_chunks, partial, bias, y);
  detail::check_launch("gemv combine launch");
}

}  // namespace

namespace detail {

void gemv_kn(int64_t N, int64_t K, const float* x, const float* B, int64_t ldb, float* y,
             const float* bias, cudaStream_t s) {
  if (N == 0) return;
  const int64_t n_chunks = (K + KC - 1) / KC;
  if (n_chunks == 0) {
    combine(N, 0, nullptr, bias, y, s);
    return;
  }
  require(n_chunks <= 65535, "gemv: K too large");
  Scratch partial(static_cast<size_t>(n_chunks * N) * sizeof(float), s);
  dim3 grid(grid_1d(N, 128), static_cast<unsigned>(n_chunks));
  gemv_kn_partials<<<grid, 128, 0, s>>>(N, K, x, B, ldb, n_chunks, partial.as<float>());
  check_launch("gemv kernel launch");
  combine(N, n_chunks, partial.as<float>(), bias, y, s);
}

}  // namespace detail

void gemv(int64_t N, int64_t K, const float* x, const float* W, int64_t ldw, float* y,
          const float* bias, Stream stream) {
  detail::require(N >= 0 && K >= 0, "gemv: negative size");
  detail::require(ldw >= K || N <= 1, "gemv: ldw < K");
  if (N == 0) return;
  cudaStream_t s = stream;
  const int64_t n_chunks = (K + KC - 1) / KC;
  if (n_chunks == 0) {
    combine(N, 0, nullptr, bias, y, s);
    return;
  }
  detail::Scratch partial(static_cast<size_t>(n_chunks * N) * sizeof(float), s);
  const int64_t warps = ((N + ROWS - 1) / ROWS) * n_chunks;
  const int64_t blocks = (warps + WARPS - 1) / WARPS;
  detail::require(blocks <= 0x7FFFFFFF, "gemv: too large");
  const bool vec = aligned16(W) && ldw % 4 == 0;
  auto kernel = vec ? gemv_nk_partials<true> : gemv_nk_partials<false>;
  detail::check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(SMEM_BYTES)),
                "cudaFuncSetAttribute(gemv)");
  kernel<<<static_cast<unsigned>(blocks), WARPS * 32, SMEM_BYTES, s>>>(N, K, x, W, ldw, n_chunks,
                                                                      partial.as<float>());
  detail::check_launch("gemv kernel launch");
  combine(N, n_chunks, partial.as<float>(), bias, y, s);
}

}  // namespace atoma::cuda
