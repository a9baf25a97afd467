// The BLAKE3 kernels of blake3.cu (see there). In a header so that a host emulation test
// (native/test/cuda_warp_emu_test.cc) runs this exact code on the CPU.
#pragma once
#include <cstdint>

#include "blake3.cuh"

namespace atoma::cuda::b3 {

constexpr int WARPS = kGroup / 32;

// Merges the count CVs in cv[] (shared) into cv[0]; root marks the last merge when this group is
// the whole tree.
__device__ void group_reduce(uint32_t (*cv)[9], int count, bool whole_tree) {
  const int t = threadIdx.x;
  while (count > 1) {
    const int pairs = count / 2;
    uint32_t res[8];
    bool have = false;
    if (t < pairs) {
      uint32_t l[8], r[8];
      for (int i = 0; i < 8; ++i) {
        l[i] = cv[2 * t][i];
        r[i] = cv[2 * t + 1][i];
      }
      parent(l, r, whole_tree && count == 2, res);
      have = true;
    } else if (t == pairs && (count & 1)) {
      for (int i = 0; i < 8; ++i) res[i] = cv[count - 1][i];
      have = true;
    }
    __syncthreads();
    if (have)
      for (int i = 0; i < 8; ++i) cv[t][i] = res[i];
    __syncthreads();
    count = (count + 1) / 2;
  }
}

// Chunk CVs of kGroup consecutive chunks per block, merged to one CV per block (written to
// out[block]) or, when one block holds the whole message, to the root words (out[0]).
template <class Src>
__global__ void __launch_bounds__(kGroup)
chunks_kernel(Src src, uint64_t len, uint64_t n_chunks, uint32_t* __restrict__ out) {
  __shared__ uint32_t stage[WARPS][32 * 17];
  __shared__ uint32_t cvs[kGroup][9];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const uint64_t warp_chunk0 = static_cast<uint64_t>(blockIdx.x) * kGroup + warp * 32;
  const uint64_t chunk = warp_chunk0 + lane;
  const bool live = chunk < n_chunks;
  const uint32_t clen = live ? chunk_bytes(len, chunk) : 0;
  const uint32_t nb = live ? chunk_blocks(clen) : 0;
  const bool root_chunk = n_chunks == 1;
  uint32_t* st = stage[warp];

  uint32_t cv[8];
  for (int i = 0; i < 8; ++i) cv[i] = iv(i);
  // A warp walks the blocks of its chunks together; 16 lanes read one block's 64 bytes.
  const uint32_t warp_nb = static_cast<uint32_t>(__reduce_max_sync(0xFFFFFFFFu, nb));
  for (uint32_t b = 0; b < warp_nb; ++b) {
#pragma unroll 4
    for (int it = 0; it < 16; ++it) {
      const int idx = it * 32 + lane;
      const int lc = idx / 16, w = idx % 16;
      const uint64_t g = (warp_chunk0 + lc) * (kChunkLen / 4) + b * 16 + w;
      st[lc * 17 + w] = src.word(g);
    }
    __syncwarp();
    if (b < nb) {
      uint32_t m[16];
      for (int i = 0; i < 16; ++i) m[i] = st[lane * 17 + i];
      chunk_block(cv, m, chunk, clen, b, root_chunk);
    }
    __syncwarp();
  }

  const uint64_t first = static_cast<uint64_t>(blockIdx.x) * kGroup;
  const int count = static_cast<int>(n_chunks - first < kGroup ? n_chunks - first : kGroup);
  for (int i = 0; i < 8; ++i) cvs[threadIdx.x][i] = cv[i];
  __syncthreads();
  group_reduce(cvs, count, gridDim.x == 1);
  if (threadIdx.x < 8) out[static_cast<uint64_t>(blockIdx.x) * 8 + threadIdx.x] = cvs[0][threadIdx.x];
}

// One tree level of groups: n > 1 CVs in, one CV per kGroup of them out (the root if one group).
__global__ void __launch_bounds__(kGroup)
merge_kernel(const uint32_t* __restrict__ in, uint64_t n, uint32_t* __restrict__ out) {
  __shared__ uint32_t cvs[kGroup][9];
  const uint64_t first = static_cast<uint64_t>(blockIdx.x) * kGroup;
  const int count = static_cast<int>(n - first < kGroup ? n - first : kGroup);
  if (threadIdx.x < count)
    for (int i = 0; i < 8; ++i) cvs[threadIdx.x][i] = in[(first + threadIdx.x) * 8 + i];
  __syncthreads();
  group_reduce(cvs, count, gridDim.x == 1);
  if (threadIdx.x < 8) out[static_cast<uint64_t>(blockIdx.x) * 8 + threadIdx.x] = cvs[0][threadIdx.x];
}

}  // namespace atoma::cuda::b3
