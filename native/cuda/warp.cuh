// Section 4 reductions by one warp. The spec's 32 lane partials are the 32 lanes: lane l adds
// x[l], x[l+32], ... in ascending order, then the fold s = 16, 8, 4, 2, 1 is p[l] += p[l+s],
// which is exactly __shfl_down_sync with offsets 16..1. Results are broadcast to every lane.
#pragma once
#include <cstdint>

#include "../canon/hd.h"

namespace atoma::cuda::detail {

constexpr unsigned kFullMask = 0xFFFFFFFFu;

__device__ __forceinline__ float warp_fold(float p) {
#pragma unroll
  for (int s = 16; s >= 1; s >>= 1) p = __fadd_rn(p, __shfl_down_sync(kFullMask, p, s));
  return __shfl_sync(kFullMask, p, 0);
}

__device__ __forceinline__ float warp_lane_sum(const float* x, int64_t n) {
  const int lane = threadIdx.x % 32;
  float p = 0.0f;
  for (int64_t t = lane; t < n; t += 32) p = __fadd_rn(p, x[t]);
  return warp_fold(p);
}

__device__ __forceinline__ float warp_lane_sumsq(const float* x, int64_t n) {
  const int lane = threadIdx.x % 32;
  float p = 0.0f;
  for (int64_t t = lane; t < n; t += 32) {
    const float v = x[t];
    p = __fmaf_rn(v, v, p);
  }
  return warp_fold(p);
}

// The first maximum (lowest index among the elements comparing equal to the maximum; NaN never
// selected). Its value is what canon::row_max returns bit for bit (the sequential scan keeps the
// first of equal values, e.g. of +0 and -0), its index what canon::row_argmax returns. With no
// candidate (empty or all-NaN row) the index is -1 and the value -inf.
struct ArgMax {
  float v;
  int64_t i;
};

__device__ __forceinline__ ArgMax warp_argmax(const float* x, int64_t n) {
  const int lane = threadIdx.x % 32;
  ArgMax b{-__int_as_float(0x7F800000), INT64_MAX};
  for (int64_t t = lane; t < n; t += 32) {
    const float v = x[t];
    if (v > b.v || (b.i == INT64_MAX && v == b.v)) {
      b.v = v;
      b.i = t;
    }
  }
#pragma unroll
  for (int s = 16; s >= 1; s >>= 1) {
    const float ov = __shfl_xor_sync(kFullMask, b.v, s);
    const int64_t oi = __shfl_xor_sync(kFullMask, b.i, s);
    if (ov > b.v || (ov == b.v && oi < b.i)) {
      b.v = ov;
      b.i = oi;
    }
  }
  if (b.i == INT64_MAX) b.i = -1;
  return b;
}

}  // namespace atoma::cuda::detail
