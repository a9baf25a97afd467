// Runs the CUDA GEMM and GEMV kernels (native/cuda/gemm_kernel.cuh, gemv_kernel.cuh) on the CPU
// through native/test/cuda_emu.h (cp.async copies at issue time). This checks the kernels'
// index maps, edge handling and chunk order against canon::chunked_dot bit for bit on a machine
// without a GPU (not timing, not the asynchronous-copy waits, which only the device run checks).
//
//   g++ -std=c++20 -O2 -ffp-contract=off -Inative -Inative/test native/test/cuda_gemm_emu_test.cc -pthread
#include <algorithm>
#include <cstdio>

#define __shared__   // the kernels' `extern __shared__` buffers are defined below
#include "cuda_emu.h"

#include "canon/philox.h"
#include "canon/reduce.h"
#include "cuda/gemm_kernel.cuh"
#include "cuda/gemv_kernel.cuh"

namespace atoma::cuda::gemm_detail {
alignas(16) float smem[(TILE_BYTES + ACC_BYTES) / sizeof(float)];
}
namespace atoma::cuda::gemv_detail {
constexpr size_t kEmuSmem = std::max({SMEM_BYTES, fused_smem_bytes(4, 4), fused_smem_bytes(8, 2),
                                      fused_smem_bytes(2, 3)});
alignas(16) float smem[kEmuSmem / sizeof(float)];
}

using cuda_emu::launch;

using Vec = std::vector<float>;
static Vec seeded(size_t n, uint64_t seed, uint32_t stream) {
  Vec v(n);
  for (size_t i = 0; i < n; ++i) v[i] = atoma::canon::seeded_value(seed, stream, i);
  return v;
}
static bool same(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || atoma::canon::f32_bits(a) == atoma::canon::f32_bits(b);
}

static int g_fail = 0, g_cases = 0;

static void gemm_case(int64_t M, int64_t N, int64_t K, bool nk, bool smem_acc, bool bias_on, int pad) {
  using namespace atoma::cuda::gemm_detail;
  const int64_t lda = K + pad, ldb = (nk ? K : N) + pad, ldc = N + pad;
  Vec A = seeded(M * lda, M + K, 1), B = seeded((nk ? N : K) * ldb, N + K, 2), bias = seeded(N, 5, 3);
  Vec C(M * ldc, 0.0f), R(M * ldc, 0.0f);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      float v = atoma::canon::chunked_dot(A.data() + i * lda, 1, nk ? B.data() + j * ldb : B.data() + j,
                                          nk ? 1 : ldb, K);
      if (bias_on) v = v + bias[j];
      R[i * ldc + j] = v;
    }
  const float* bp = bias_on ? bias.data() : nullptr;
  dim3 grid{static_cast<unsigned>((N + BN - 1) / BN), static_cast<unsigned>((M + BM - 1) / BM), 1};
  launch(grid, THREADS, [&] {
    if (nk && smem_acc) gemm_kernel<true, 0>(M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc, bp);
    if (nk && !smem_acc) gemm_kernel<true, 1>(M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc, bp);
    if (!nk && smem_acc) gemm_kernel<false, 0>(M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc, bp);
    if (!nk && !smem_acc) gemm_kernel<false, 1>(M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc, bp);
  });
  size_t bad = 0;
  for (size_t i = 0; i < C.size(); ++i) bad += !same(C[i], R[i]);
  ++g_cases;
  if (bad) {
    ++g_fail;
    std::printf("GEMM MISMATCH M=%lld N=%lld K=%lld nk=%d smem=%d bias=%d pad=%d: %zu elements\n",
                (long long)M, (long long)N, (long long)K, nk, smem_acc, bias_on, pad, bad);
  }
}

// variant: 0 split (partials + combine, as gemv.cu's "split"), 1 fused 4 warps x 4 stages
// ("fused"), 2 fused 8 warps x 2 stages ("fused8"), 3 fused 2 warps x 3 stages (odd stage count,
// rounds with an idle warp).
static void gemv_case(int64_t N, int64_t K, int mode, int variant) {
  using namespace atoma::cuda::gemv_detail;
  // mode 0: [N,K] vector loads; 1: [N,K] scalar loads with ldw = K + 1; 2: [K,N] (split only).
  const bool nk = mode != 2;
  if (!nk && variant != 0) return;
  const int64_t ld = nk ? K + (mode == 1) : N;
  Vec x = seeded(K, K, 4), W = seeded((nk ? N : K) * ld, N, 5), bias = seeded(N, 2, 6);
  const bool bias_on = (N + K) % 2;
  // Signed zeros and non-finite values in some rows: chunk sums of -0 products, Inf - Inf.
  if (nk && N > 3 && K > 3) {
    for (int64_t k = 0; k < K; ++k) W[1 * ld + k] = -0.0f;
    W[2 * ld + K / 2] = INFINITY;
    W[3 * ld + 0] = INFINITY;
    W[3 * ld + K - 1] = -INFINITY;
  }
  Vec R(N), y(N, 0.0f);
  for (int64_t j = 0; j < N; ++j) {
    float v = atoma::canon::chunked_dot(x.data(), 1, nk ? W.data() + j * ld : W.data() + j, nk ? 1 : ld, K);
    if (bias_on) v = v + bias[j];
    R[j] = v;
  }
  const int64_t n_chunks = (K + KC - 1) / KC;
  const float* bp = bias_on ? bias.data() : nullptr;
  if (variant == 0) {
    Vec partial(std::max<int64_t>(1, n_chunks * N));
    if (nk) {
      const int64_t warps = ((N + ROWS - 1) / ROWS) * n_chunks;
      const unsigned blocks = static_cast<unsigned>((warps + WARPS - 1) / WARPS);
      launch(dim3{blocks, 1, 1}, WARPS * 32, [&] {
        if (mode == 0) gemv_nk_partials<true>(N, K, x.data(), W.data(), ld, n_chunks, partial.data());
        else gemv_nk_partials<false>(N, K, x.data(), W.data(), ld, n_chunks, partial.data());
      });
    } else {
      launch(dim3{static_cast<unsigned>((N + 127) / 128), static_cast<unsigned>(n_chunks), 1}, 128,
             [&] { gemv_kn_partials(N, K, x.data(), W.data(), ld, n_chunks, partial.data()); });
    }
    launch(dim3{static_cast<unsigned>((N + 255) / 256), 1, 1}, 256,
           [&] { gemv_combine(N, n_chunks, partial.data(), bp, y.data()); });
  } else if (n_chunks == 0) {
    return;   // the host wrapper runs the combine kernel for K == 0 (checked with variant 0)
  } else {
    const int warps = variant == 1 ? 4 : variant == 2 ? 8 : 2;
    const unsigned blocks = static_cast<unsigned>((N + FROWS - 1) / FROWS);
    launch(dim3{blocks, 1, 1}, warps * 32, [&] {
      const float* Wp = W.data();
      if (variant == 1 && mode == 0) gemv_nk_fused<true, 4, 4>(N, K, x.data(), Wp, ld, bp, y.data());
      if (variant == 1 && mode == 1) gemv_nk_fused<false, 4, 4>(N, K, x.data(), Wp, ld, bp, y.data());
      if (variant == 2 && mode == 0) gemv_nk_fused<true, 8, 2>(N, K, x.data(), Wp, ld, bp, y.data());
      if (variant == 2 && mode == 1) gemv_nk_fused<false, 8, 2>(N, K, x.data(), Wp, ld, bp, y.data());
      if (variant == 3 && mode == 0) gemv_nk_fused<true, 2, 3>(N, K, x.data(), Wp, ld, bp, y.data());
      if (variant == 3 && mode == 1) gemv_nk_fused<false, 2, 3>(N, K, x.data(), Wp, ld, bp, y.data());
    });
  }
  size_t bad = 0;
  for (int64_t j = 0; j < N; ++j) bad += !same(y[j], R[j]);
  ++g_cases;
  if (bad) {
    ++g_fail;
    std::printf("GEMV MISMATCH N=%lld K=%lld mode=%d variant=%d: %zu elements\n", (long long)N, (long long)K,
                mode, variant, bad);
  }
}

int main() {
  const int64_t Ms[] = {1, 7, 129};
  const int64_t Ns[] = {3, 130};
  const int64_t Ks[] = {1, 255, 256, 257, 530};
  int i = 0;
  for (int64_t M : Ms)
    for (int64_t N : Ns)
      for (int64_t K : Ks)
        for (int nk = 0; nk < 2; ++nk)
          for (int sm = 0; sm < 2; ++sm) {
            ++i;
            gemm_case(M, N, K, nk, sm, i % 2, i % 3 == 0 ? 3 : 0);
          }
  gemm_case(5, 6, 0, false, true, true, 0);
  gemm_case(5, 6, 0, true, false, false, 0);
  std::printf("gemm: %d cases, %d mismatches\n", g_cases, g_fail);
  // K up to 9 chunks: several rounds for every fused shape (4, 8 and 2 warps), a partial last
  // chunk owned by different warps, a last round with idle warps.
  const int64_t shapes[][2] = {{1, 1}, {3, 255}, {33, 256}, {40, 257}, {70, 700}, {5, 0},
                               {37, 1025}, {31, 2100}, {65, 2303}};
  for (auto& s : shapes)
    for (int mode = 0; mode < 3; ++mode)
      for (int variant = 0; variant < 4; ++variant) gemv_case(s[0], s[1], mode, variant);
  std::printf("total: %d cases, %d mismatches\n%s\n", g_cases, g_fail, g_fail ? "FAIL" : "PASS");
  return g_fail ? 1 : 0;
}
