// The tiled SGEMM kernel of gemm.cu (see there). In a header so that a host emulation test
// (native/test/cuda_gemm_emu_test.cc) runs this exact code on the CPU.
#pragma once
#include <cstdint>

#include "../canon/reduce.h"
#include "async_copy.cuh"

namespace atoma::cuda::gemm_detail {

constexpr int BM = 128, BN = 128, BK = 16;   // BK divides the 256-element chunk
constexpr int THREADS = 256;
constexpr int TM = 8, TN = 8;
constexpr int PAD = 4;                       // keeps float4 rows aligned, halves store conflicts
constexpr int LDS = BM + PAD;                // row length of a [BK][BM] tile in shared memory
constexpr int TILES_PER_CHUNK = atoma::canon::kChunk / BK;
constexpr int STAGE_FLOATS = 2 * BK * LDS;   // A tile + B tile
constexpr size_t TILE_BYTES = 2 * STAGE_FLOATS * sizeof(float);          // two stages
constexpr size_t ACC_BYTES = TM * TN * THREADS * sizeof(float);          // smem variant only
static_assert(atoma::canon::kChunk % BK == 0, "K tiles must not straddle a chunk");

// Loads the [BM x BK] tile of A (or of B stored [N, K]) at (r0, k0) transposed into
// s[k][r]: 16 lanes read 64 contiguous bytes of one row.
__device__ __forceinline__ void load_rows_k(float* s, const float* G, int64_t ld, int64_t rows,
                                            int64_t K, int64_t r0, int64_t k0) {
  const int t = threadIdx.x;
  const int kk = t % BK;
  const int rr = t / BK;                       // 0..15, plus 16 per step
  const bool k_ok = k0 + kk < K;
  const float* g = G + (r0 + rr) * ld + (k0 + kk);
#pragma unroll
  for (int i = 0; i < BM / (THREADS / BK); ++i) {
    const int r = rr + i * (THREADS / BK);
    const bool ok = k_ok && (r0 + r < rows);
    detail::cp_async4(&s[kk * LDS + r], ok ? g : G, ok ? 4u : 0u);
    g += (THREADS / BK) * ld;
  }
}

// Loads the [BK x BN] tile of B stored [K, N] at (k0, c0) into s[k][c]: a warp reads 128
// contiguous bytes of one row of B.
__device__ __forceinline__ void load_k_cols(float* s, const float* G, int64_t ld, int64_t cols,
                                            int64_t K, int64_t k0, int64_t c0) {
  const int t = threadIdx.x;
  const int cc = t % BN;
  const int kk = t / BN;                       // 0..1, plus 2 per step
  const bool c_ok = c0 + cc < cols;
  const float* g = G + (k0 + kk) * ld + (c0 + cc);
#pragma unroll
  for (int i = 0; i < BK / (THREADS / BN); ++i) {
    const int k = kk + i * (THREADS / BN);
    const bool ok = c_ok && (k0 + k < K);
    detail::cp_async4(&s[k * LDS + cc], ok ? g : G, ok ? 4u : 0u);
    g += (THREADS / BN) * ld;
  }
}

// Variants (identical bytes): 0 = chunk sums (acc) in shared memory, two blocks per SM (<= 128
// registers); 1 = acc in registers, one block per SM; 2 = acc in shared memory, one block per SM
// (registers free for deeper prefetching of the fragments).
constexpr bool acc_in_smem(int variant) { return variant != 1; }
constexpr size_t gemm_smem_bytes(int variant) { return TILE_BYTES + (acc_in_smem(variant) ? ACC_BYTES : 0); }

template <bool B_NK, int VARIANT>
__global__ void __launch_bounds__(THREADS, VARIANT == 0 ? 2 : 1)
gemm_kernel(int64_t M, int64_t N, int64_t K, const float* __restrict__ A, int64_t lda,
            const float* __restrict__ B, int64_t ldb, float* __restrict__ C, int64_t ldc,
            const float* __restrict__ bias) {
  constexpr bool ACC_SMEM = acc_in_smem(VARIANT);
  extern __shared__ __align__(16) float smem[];
  float* acc_s = smem + 2 * STAGE_FLOATS;

  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * BM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * BN;
  const int t = threadIdx.x;
  const int ty = t / 16, tx = t % 16;

  float p[TM][TN];
  float acc[ACC_SMEM ? 1 : TM][ACC_SMEM ? 1 : TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) p[i][j] = 0.0f;
  if constexpr (ACC_SMEM) {
#pragma unroll
    for (int e = 0; e < TM * TN; ++e) acc_s[e * THREADS + t] = 0.0f;
  } else {
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;
  }

  auto load_stage = [&](int stage, int64_t k0) {
    float* As = smem + stage * STAGE_FLOATS;
    float* Bs = As + BK * LDS;
    load_rows_k(As, A, lda, M, K, m0, k0);
    if constexpr (B_NK) load_rows_k(Bs, B, ldb, N, K, n0, k0);
    else load_k_cols(Bs, B, ldb, N, K, k0, n0);
    detail::cp_async_commit();
  };

  const int64_t ntiles = (K + BK - 1) / BK;
  if (ntiles > 0) load_stage(0, 0);
  for (int64_t tile = 0; tile < ntiles; ++tile) {
    detail::cp_async_wait<0>();
    // After this barrier tile `tile` is visible to all and every thread is done reading the
    // other stage, so the next tile may be copied into it while this one is computed.
    __syncthreads();
    if (tile + 1 < ntiles) load_stage(static_cast<int>((tile + 1) & 1), (tile + 1) * BK);

    const float* As = smem + (tile & 1) * STAGE_FLOATS;
    const float* Bs = As + BK * LDS;
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      float a[TM], b[TN];
      const float4 a0 = *reinterpret_cast<const float4*>(&As[k * LDS + ty * 4]);
      const float4 a1 = *reinterpret_cast<const float4*>(&As[k * LDS + 64 + ty * 4]);
      const float4 b0 = *reinterpret_cast<const float4*>(&Bs[k * LDS + tx * 4]);
      const float4 b1 = *reinterpret_cast<const float4*>(&Bs[k * LDS + 64 + tx * 4]);
      a[0] = a0.x; a[1] = a0.y; a[2] = a0.z; a[3] = a0.w;
      a[4] = a1.x; a[5] = a1.y; a[6] = a1.z; a[7] = a1.w;
      b[0] = b0.x; b[1] = b0.y; b[2] = b0.z; b[3] = b0.w;
      b[4] = b1.x; b[5] = b1.y; b[6] = b1.z; b[7] = b1.w;
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) p[i][j] = __fmaf_rn(a[i], b[j], p[i][j]);
    }

    if ((tile + 1) % TILES_PER_CHUNK == 0 || tile + 1 == ntiles) {
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) {
          if constexpr (ACC_SMEM) {
            float& s = acc_s[(i * TN + j) * THREADS + t];
            s = s + p[i][j];
          } else {
            acc[i][j] = acc[i][j] + p[i][j];
          }
          p[i][j] = 0.0f;
        }
    }
  }

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int64_t row = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + (i - 4));
    if (row >= M) continue;
    float* c_row = C + row * ldc;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int64_t col = n0 + (j < 4 ? tx * 4 + j : 64 + tx * 4 + (j - 4));
      if (col >= N) continue;
      float v;
      if constexpr (ACC_SMEM) v = acc_s[(i * TN + j) * THREADS + t];
      else v = acc[i][j];
      if (bias) v = v + bias[col];
      c_row[col] = v;
    }
  }
}

}  // namespace atoma::cuda::gemm_detail
