// The kernels of native/cuda/sample.cu: canonical sampling of one row of logits on the device.
// In a header so that native/test/cuda_sample_emu_test.cc runs this exact code on the CPU.
//
// Order of work (all on one stream, nothing copied to the host but the token):
//  1. keys_kernel: z_i = f32(logit_i / T) and the u64 order key of (z_i, i) (canon/sample.h),
//     padded to N = a power of two >= the chunk size with keys that sort last;
//  2. a bitonic sort of the keys, ascending: chunks of CH = 2 * THREADS keys sorted in shared
//     memory, then for each merge size k > CH the strides j >= CH as global passes and the
//     strides below CH in shared memory. The keys are unique, so the result is THE sorted order,
//     whatever the network (the CPU uses std::sort and gets the same permutation);
//  3. finish_kernel (one block): the NaN keys sit at the end, so the valid count is a binary
//     search; p_i in parallel; the cumulative sums c_i by one thread in the canonical sequential
//     order (staged through shared memory); the top-p prefix and the draw as first-index searches (integer minima: any
//     reduction order gives the same index).
// Greedy rows skip all this: the greedy choice is the minimum order key of the raw logits
// (largest value, lowest id, NaN never), one block's u64 min-reduction.
#pragma once
#include <stdint.h>

#include "../canon/sample.h"

namespace atoma::cuda::sampling {

using canon::SampleParams;

// Thread t of a bitonic stage with stride j handles the pair (i, i + j) of the t-th such pair.
__device__ __forceinline__ uint64_t pair_low(uint64_t t, uint64_t j) { return 2 * j * (t / j) + (t % j); }

// Ascending within blocks of size k whose index bit k is clear, descending where it is set.
__device__ __forceinline__ void compare_exchange(uint64_t& a, uint64_t& b, bool ascending) {
  if ((a > b) == ascending) {
    const uint64_t t = a;
    a = b;
    b = t;
  }
}

template <int THREADS>
__global__ void __launch_bounds__(THREADS)
keys_kernel(const float* __restrict__ logits, int64_t n, int64_t padded, float temperature,
            float* __restrict__ z, uint64_t* __restrict__ keys) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * THREADS;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * THREADS + threadIdx.x; i < padded; i += stride) {
    if (i < n) {
      const float zi = canon::sample_z(logits[i], temperature);
      z[i] = zi;
      keys[i] = canon::sample_key(zi, static_cast<uint32_t>(i));
    } else {
      keys[i] = canon::kSamplePadKey;
    }
  }
}

// The strides j < CH of merge size k (k == 0: sort the chunk from scratch, every k <= CH).
template <int THREADS>
__global__ void __launch_bounds__(THREADS)
chunk_kernel(uint64_t* __restrict__ keys, uint64_t k_fixed) {
  constexpr uint64_t CH = 2 * THREADS;
  __shared__ uint64_t s[CH];
  const uint64_t base = static_cast<uint64_t>(blockIdx.x) * CH;
  s[threadIdx.x] = keys[base + threadIdx.x];
  s[threadIdx.x + THREADS] = keys[base + threadIdx.x + THREADS];
  __syncthreads();
  const uint64_t k_first = k_fixed ? k_fixed : 2, k_last = k_fixed ? k_fixed : CH;
  for (uint64_t k = k_first; k <= k_last; k <<= 1) {
    for (uint64_t j = (k >> 1 < CH >> 1 ? k >> 1 : CH >> 1); j > 0; j >>= 1) {
      const uint64_t i = pair_low(threadIdx.x, j);
      compare_exchange(s[i], s[i + j], ((base + i) & k) == 0);
      __syncthreads();
    }
  }
  keys[base + threadIdx.x] = s[threadIdx.x];
  keys[base + threadIdx.x + THREADS] = s[threadIdx.x + THREADS];
}

// One stride j >= CH of merge size k over all `padded` keys.
template <int THREADS>
__global__ void __launch_bounds__(THREADS)
global_kernel(uint64_t* __restrict__ keys, uint64_t padded, uint64_t k, uint64_t j) {
  const uint64_t t = static_cast<uint64_t>(blockIdx.x) * THREADS + threadIdx.x;
  if (t >= padded / 2) return;
  const uint64_t i = pair_low(t, j);
  uint64_t a = keys[i], b = keys[i + j];
  const bool asc = (i & k) == 0;
  if ((a > b) == asc) {
    keys[i] = b;
    keys[i + j] = a;
  }
}

// The lowest index in [0, count) satisfying pred, or `count` when none: each thread scans its
// strided share, then a shared-memory minimum. Called by every thread of the block.
template <int THREADS, class Pred>
__device__ int64_t block_first(int64_t count, const Pred& pred, int64_t* red) {
  int64_t first = count;
  for (int64_t i = threadIdx.x; i < count; i += THREADS)
    if (pred(i)) {
      first = i;
      break;
    }
  red[threadIdx.x] = first;
  __syncthreads();
  for (int s = THREADS / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s && red[threadIdx.x + s] < red[threadIdx.x])
      red[threadIdx.x] = red[threadIdx.x + s];
    __syncthreads();
  }
  const int64_t r = red[0];
  __syncthreads();
  return r;
}

// After the sort: writes the token (or -1 when every logit is NaN) to *out. c has n floats.
template <int THREADS>
__global__ void __launch_bounds__(THREADS)
finish_kernel(const uint64_t* __restrict__ keys, const float* __restrict__ z, int64_t n,
              SampleParams p, float* __restrict__ c, int64_t* __restrict__ out) {
  constexpr int64_t STAGE = 4 * THREADS;
  __shared__ int64_t red[THREADS];
  __shared__ float stage[STAGE];
  __shared__ int64_t valid_s;
  if (threadIdx.x == 0) {
    int64_t lo = 0, hi = n;   // first NaN (or pad) key: the keys are sorted
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (canon::sample_key_is_nan(keys[mid])) hi = mid;
      else lo = mid + 1;
    }
    valid_s = lo;
  }
  __syncthreads();
  const int64_t valid = valid_s;
  if (valid == 0) {
    if (threadIdx.x == 0) *out = -1;
    return;
  }
  const int64_t kept = p.top_k > 0 && p.top_k < valid ? p.top_k : valid;
  const float z0 = z[canon::sample_key_id(keys[0])];
  for (int64_t i = threadIdx.x; i < kept; i += THREADS)
    c[i] = canon::sample_weight(z[canon::sample_key_id(keys[i])], z0);
  __syncthreads();
  // The sequential sums run in one thread over pieces staged in shared memory by the whole block
  // (shared loads are short and independent, so the chain of f32 additions is the only wait).
  float acc = 0.0f;   // meaningful in thread 0 only
  for (int64_t base = 0; base < kept; base += STAGE) {
    const int64_t len = kept - base < STAGE ? kept - base : STAGE;
    for (int64_t i = threadIdx.x; i < len; i += THREADS) stage[i] = c[base + i];
    __syncthreads();
    if (threadIdx.x == 0) acc = canon::sample_cumulate(stage, len, acc);
    __syncthreads();
    for (int64_t i = threadIdx.x; i < len; i += THREADS) c[base + i] = stage[i];
    __syncthreads();
  }
  int64_t m = kept;
  if (p.cut) {
    const float cut = canon::sample_cut(p, c[kept - 1]);
    const int64_t stop = block_first<THREADS>(kept, [&](int64_t j) { return canon::sample_cut_stops(c[j], cut); }, red);
    m = stop + 1 < kept ? stop + 1 : kept;
  }
  const float t = canon::sample_threshold(p, c[m - 1]);
  int64_t pick = block_first<THREADS>(m, [&](int64_t i) { return canon::sample_picks(c[i], t); }, red);
  if (pick == m) pick = m - 1;
  if (threadIdx.x == 0) *out = static_cast<int64_t>(canon::sample_key_id(keys[pick]));
}

// Greedy: the minimum order key of the raw logits; -1 when every one is NaN.
template <int THREADS>
__global__ void __launch_bounds__(THREADS)
greedy_kernel(const float* __restrict__ logits, int64_t n, int64_t* __restrict__ out) {
  __shared__ uint64_t red[THREADS];
  uint64_t best = canon::kSamplePadKey;
  for (int64_t i = threadIdx.x; i < n; i += THREADS) {
    const uint64_t k = canon::sample_key(logits[i], static_cast<uint32_t>(i));
    if (k < best) best = k;
  }
  red[threadIdx.x] = best;
  __syncthreads();
  for (int s = THREADS / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s && red[threadIdx.x + s] < red[threadIdx.x])
      red[threadIdx.x] = red[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0)
    *out = canon::sample_key_is_nan(red[0]) ? int64_t{-1} : static_cast<int64_t>(canon::sample_key_id(red[0]));
}

}  // namespace atoma::cuda::sampling
