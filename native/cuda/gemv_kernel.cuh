// The GEMV kernels of gemv.cu (see there). In a header so that a host emulation test
// (native/test/cuda_gemm_emu_test.cc) runs this exact code on the CPU.
#pragma once
#include <cstdint>

#include "../canon/reduce.h"
#include "async_copy.cuh"

namespace atoma::cuda::gemv_detail {

constexpr int KC = atoma::canon::kChunk;
constexpr int WARPS = 4;             // independent warps per block
constexpr int ROWS = 32;             // outputs per warp, one per lane
constexpr int SK = 32;               // k per stage
constexpr int STAGES = 2;
constexpr int LDW = SK + 4;          // row pitch: 16-byte aligned and conflict-free for LDS.128
constexpr int WARP_FLOATS = STAGES * ROWS * LDW + KC;
constexpr size_t SMEM_BYTES = WARPS * WARP_FLOATS * sizeof(float);

// VEC: W rows may be read 16 bytes at a time (W 16-byte aligned, ldw % 4 == 0).
template <bool VEC>
__global__ void __launch_bounds__(WARPS * 32)
gemv_nk_partials(int64_t N, int64_t K, const float* __restrict__ x, const float* __restrict__ W,
                 int64_t ldw, int64_t n_chunks, float* __restrict__ partial) {
  extern __shared__ __align__(16) float smem[];
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const int64_t gw = static_cast<int64_t>(blockIdx.x) * WARPS + warp;
  const int64_t n_groups = (N + ROWS - 1) / ROWS;
  if (gw >= n_groups * n_chunks) return;   // whole warps only: nothing below syncs the block
  const int64_t c = gw % n_chunks;
  const int64_t j0 = (gw / n_chunks) * ROWS;
  const int64_t kc0 = c * KC;

  float* ws = smem + warp * WARP_FLOATS;
  float* xs = ws + STAGES * ROWS * LDW;

  // x for this chunk, zero beyond K.
#pragma unroll
  for (int i = 0; i < KC / 32; ++i) {
    const int k = lane + 32 * i;
    const bool ok = kc0 + k < K;
    detail::cp_async4(&xs[k], ok ? x + kc0 + k : x, ok ? 4u : 0u);
  }

  auto load_stage = [&](int stage, int s) {
    float* dst = ws + stage * ROWS * LDW;
    const int64_t k0 = kc0 + s * SK;
    if constexpr (VEC) {
      // A lane copies 16 bytes; 8 lanes cover one row's 128 bytes, 4 rows per instruction.
      const int q = lane % 8;
#pragma unroll
      for (int i = 0; i < ROWS / 4; ++i) {
        const int r = lane / 8 + 4 * i;
        const int64_t k = k0 + 4 * q;
        int64_t avail = (j0 + r < N) ? K - k : 0;
        avail = avail < 0 ? 0 : (avail > 4 ? 4 : avail);
        const float* src = avail > 0 ? W + (j0 + r) * ldw + k : W;
        detail::cp_async16(&dst[r * LDW + 4 * q], src, static_cast<uint32_t>(avail * 4));
      }
    } else {
#pragma unroll 8
      for (int r = 0; r < ROWS; ++r) {
        const int64_t k = k0 + lane;
        const bool ok = (j0 + r < N) && k < K;
        detail::cp_async4(&dst[r * LDW + lane], ok ? W + (j0 + r) * ldw + k : W, ok ? 4u : 0u);
      }
    }
    detail::cp_async_commit();
  };

  // Stages past K are skipped: they would only add fma(0, 0, p).
  const int64_t left = K - kc0;
  const int n_stages = static_cast<int>((left >= KC ? KC : left) + SK - 1) / SK;

  float p = 0.0f;
  load_stage(0, 0);   // also commits the x copies
  for (int s = 0; s < n_stages; ++s) {
    if (s + 1 < n_stages) {
      load_stage((s + 1) % STAGES, s + 1);
      detail::cp_async_wait<1>();
    } else {
      detail::cp_async_wait<0>();
    }
    __syncwarp();
    const float* row = ws + (s % STAGES) * ROWS * LDW + lane * LDW;
    const float* xk = xs + s * SK;
#pragma unroll
    for (int k = 0; k < SK; k += 4) {
      const float4 w = *reinterpret_cast<const float4*>(row + k);
      const float4 xv = *reinterpret_cast<const float4*>(xk + k);
      p = __fmaf_rn(xv.x, w.x, p);
      p = __fmaf_rn(xv.y, w.y, p);
      p = __fmaf_rn(xv.z, w.z, p);
      p = __fmaf_rn(xv.w, w.w, p);
    }
    __syncwarp();   // the stage is refilled by the next iteration's copies
  }
  if (j0 + lane < N) partial[c * N + j0 + lane] = p;
}

// ---- Fused variant ------------------------------------------------------------------------
// A block owns FROWS = 32 consecutive outputs and all of K, so the chunk sums are added inside
// the block (no scratch, no second kernel) and one wave of blocks covers N = 8192 on an H100.
// Warp w runs chunks w, w + FW, w + 2 FW, ... (a round is FW consecutive chunks), lane r the
// chain of output r, with an FS-stage cp.async ring that keeps prefetching across chunk and
// round ends. A stage is 32 rows x 32 k of W plus the 32 x values it needs. After each round the
// warps' partials meet in shared memory (double-buffered, one block barrier per round) and warp
// 0 adds them into acc in ascending chunk order.
constexpr int FROWS = 32;
constexpr int FSK = 32;
constexpr int FSTEPS = KC / FSK;                       // stages per full chunk
constexpr int FSTAGE_FLOATS = FROWS * LDW + FSK;       // W tile, then x
constexpr size_t fused_smem_bytes(int warps, int stages) {
  return (static_cast<size_t>(warps) * stages * FSTAGE_FLOATS + 2 * warps * FROWS) * sizeof(float);
}

template <bool VEC, int FW, int FS>
__global__ void __launch_bounds__(FW * 32)
gemv_nk_fused(int64_t N, int64_t K, const float* __restrict__ x, const float* __restrict__ W,
              int64_t ldw, const float* __restrict__ bias, float* __restrict__ y) {
  static_assert(FS >= 2, "the ring needs two stages");
  extern __shared__ __align__(16) float smem[];
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const int64_t j0 = static_cast<int64_t>(blockIdx.x) * FROWS;
  const int64_t n_chunks = (K + KC - 1) / KC;          // >= 1 (the host handles K == 0)
  const int64_t rounds = (n_chunks + FW - 1) / FW;
  float* ring = smem + warp * FS * FSTAGE_FLOATS;
  float* part = smem + FW * FS * FSTAGE_FLOATS;        // [2][FW][FROWS]

  // This warp's steps: FSTEPS per chunk, fewer in the global last chunk (steps wholly past K
  // would only add fma(0, 0, p)).
  const int64_t mine = warp < n_chunks ? (n_chunks - 1 - warp) / FW + 1 : 0;
  const int last_steps = static_cast<int>((K - (n_chunks - 1) * KC + FSK - 1) / FSK);
  const bool owns_last = mine > 0 && (n_chunks - 1) % FW == warp;
  const int64_t total = mine * FSTEPS - (owns_last ? FSTEPS - last_steps : 0);

  auto issue = [&](int64_t i) {
    if (i < total) {
      float* dst = ring + (i % FS) * FSTAGE_FLOATS;
      const int64_t k0 = ((i / FSTEPS) * FW + warp) * KC + (i % FSTEPS) * FSK;
      if constexpr (VEC) {
        // A lane copies 16 bytes; 8 lanes cover one row's 128 bytes, 4 rows per instruction.
        const int q = lane % 8;
#pragma unroll
        for (int u = 0; u < FROWS / 4; ++u) {
          const int r = lane / 8 + 4 * u;
          const int64_t k = k0 + 4 * q;
          int64_t avail = (j0 + r < N) ? K - k : 0;
          avail = avail < 0 ? 0 : (avail > 4 ? 4 : avail);
          const float* src = avail > 0 ? W + (j0 + r) * ldw + k : W;
          detail::cp_async16(&dst[r * LDW + 4 * q], src, static_cast<uint32_t>(avail * 4));
        }
      } else {
#pragma unroll 8
        for (int r = 0; r < FROWS; ++r) {
          const int64_t k = k0 + lane;
          const bool ok = (j0 + r < N) && k < K;
          detail::cp_async4(&dst[r * LDW + lane], ok ? W + (j0 + r) * ldw + k : W, ok ? 4u : 0u);
        }
      }
      const bool ok = k0 + lane < K;
      detail::cp_async4(&dst[FROWS * LDW + lane], ok ? x + k0 + lane : x, ok ? 4u : 0u);
    }
    detail::cp_async_commit();   // empty groups too: the wait count below stays uniform
  };

#pragma unroll
  for (int i = 0; i < FS - 1; ++i) issue(i);

  float acc = 0.0f;   // warp 0 only
  int64_t i = 0;      // next step to compute
  for (int64_t t = 0; t < rounds; ++t) {
    const int64_t c = t * FW + warp;
    if (c < n_chunks) {
      const int steps = c == n_chunks - 1 ? last_steps : FSTEPS;
      float p = 0.0f;
      for (int s = 0; s < steps; ++s, ++i) {
        detail::cp_async_wait<FS - 2>();
        __syncwarp();   // step i is visible to the warp; step i - 1's slot is free
        issue(i + FS - 1);
        const float* st = ring + (i % FS) * FSTAGE_FLOATS;
        const float* row = st + lane * LDW;
        const float* xk = st + FROWS * LDW;
#pragma unroll
        for (int k = 0; k < FSK; k += 4) {
          const float4 w = *reinterpret_cast<const float4*>(row + k);
          const float4 xv = *reinterpret_cast<const float4*>(xk + k);
          p = __fmaf_rn(xv.x, w.x, p);
          p = __fmaf_rn(xv.y, w.y, p);
          p = __fmaf_rn(xv.z, w.z, p);
          p = __fmaf_rn(xv.w, w.w, p);
        }
      }
      part[(t % 2) * FW * FROWS + warp * FROWS + lane] = p;
    }
    __syncthreads();
    if (warp == 0) {
      const int64_t in_round = n_chunks - t * FW < FW ? n_chunks - t * FW : FW;
      const float* pr = part + (t % 2) * FW * FROWS;
      for (int u = 0; u < in_round; ++u) acc = acc + pr[u * FROWS + lane];
    }
  }
  if (warp == 0 && j0 + lane < N) {
    if (bias) acc = acc + bias[j0 + lane];
    y[j0 + lane] = acc;
  }
}

// acc = +0; acc = acc + p_c for c ascending; then + bias.
__global__ void gemv_combine(int64_t N, int64_t n_chunks, const float* __restrict__ partial,
                             const float* __restrict__ bias, float* __restrict__ y) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= N) return;
  float acc = 0.0f;
  for (int64_t c = 0; c < n_chunks; ++c) acc = acc + partial[c * N + j];
  if (bias) acc = acc + bias[j];
  y[j] = acc;
}

// B stored [K, N], one row of A: lanes take consecutive outputs, so every load is coalesced
// without staging. One thread per (output, chunk); the same combine kernel follows.
__global__ void gemv_kn_partials(int64_t N, int64_t K, const float* __restrict__ x,
                                 const float* __restrict__ B, int64_t ldb, int64_t n_chunks,
                                 float* __restrict__ partial) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t c = blockIdx.y;
  if (j >= N) return;
  const int64_t k0 = c * KC;
  const int64_t k1 = k0 + KC < K ? k0 + KC : K;
  float p = 0.0f;
#pragma unroll 8
  for (int64_t k = k0; k < k1; ++k) p = __fmaf_rn(x[k], B[k * ldb + j], p);
  partial[c * N + j] = p;
}

}  // namespace atoma::cuda::gemv_detail
