// The kernels of rows.cu (see there). In a header so that a host emulation test
// (native/test/cuda_rows_emu_test.cc) runs this exact code on the CPU.
#pragma once
#include <cstdint>

#include "../canon/math.h"
#include "api.h"
#include "warp.cuh"

namespace atoma::cuda::row_kernels {

constexpr int ROW_WARPS = 8;   // rows per block

enum class RowOp { Sum, SumSq, Max };

template <RowOp OP>
__global__ void row_reduce_kernel(const float* __restrict__ x, int64_t rows, int64_t n,
                                  float* __restrict__ out) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * ROW_WARPS + threadIdx.x / 32;
  if (r >= rows) return;
  const float* xr = x + r * n;
  float v;
  if constexpr (OP == RowOp::Sum) v = detail::warp_lane_sum(xr, n);
  else if constexpr (OP == RowOp::SumSq) v = detail::warp_lane_sumsq(xr, n);
  else v = detail::warp_argmax(xr, n).v;
  if (threadIdx.x % 32 == 0) out[r] = v;
}

__global__ void argmax_kernel(const float* __restrict__ x, int64_t rows, int64_t n,
                              int32_t* __restrict__ out) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * ROW_WARPS + threadIdx.x / 32;
  if (r >= rows) return;
  const detail::ArgMax b = detail::warp_argmax(x + r * n, n);
  if (threadIdx.x % 32 == 0) out[r] = b.i < 0 ? 0 : static_cast<int32_t>(b.i);
}

// ms = sumsq / (float)n, r = 1 / sqrt(ms + eps), y = (x * r) * w.
__global__ void rmsnorm_kernel(const float* __restrict__ x, const float* __restrict__ w,
                               float* __restrict__ y, int64_t rows, int64_t n, float eps) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * ROW_WARPS + threadIdx.x / 32;
  if (r >= rows) return;
  const float* xr = x + r * n;
  float* yr = y + r * n;
  const float ss = detail::warp_lane_sumsq(xr, n);
  const float ms = __fdiv_rn(ss, static_cast<float>(n));
  const float inv = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(ms, eps)));
  for (int64_t t = threadIdx.x % 32; t < n; t += 32) yr[t] = __fmul_rn(__fmul_rn(xr[t], inv), w[t]);
}

// m = max, e = exp(x - m), s = lane sum of e, y = e / s. Lane l writes and rereads only its own
// elements t = l mod 32, so y may alias x.
__global__ void softmax_kernel(const float* x, float* y, int64_t rows, int64_t n) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * ROW_WARPS + threadIdx.x / 32;
  if (r >= rows) return;
  const int lane = threadIdx.x % 32;
  const float* xr = x + r * n;
  float* yr = y + r * n;
  const float m = detail::warp_argmax(xr, n).v;
  float p = 0.0f;
  for (int64_t t = lane; t < n; t += 32) {
    const float e = atoma::canon::exp_f32(__fsub_rn(xr[t], m));
    yr[t] = e;
    p = __fadd_rn(p, e);
  }
  const float s = detail::warp_fold(p);
  for (int64_t t = lane; t < n; t += 32) yr[t] = __fdiv_rn(yr[t], s);
}

__global__ void add_kernel(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = __fadd_rn(a[i], b[i]);
}

__global__ void mul_kernel(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = __fmul_rn(a[i], b[i]);
}

template <bool MUL>
__global__ void broadcast_rows_kernel(const float* a, int64_t rows, int64_t n, const float* row,
                                      float* y) {
  const int64_t total = rows * n;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float b = row[i % n];
    y[i] = MUL ? __fmul_rn(a[i], b) : __fadd_rn(a[i], b);
  }
}

template <Unary OP>
__global__ void unary_kernel(const float* x, float* y, int64_t n) {
  using namespace atoma::canon;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float v = x[i];
    float r;
    if constexpr (OP == Unary::Exp) r = exp_f32(v);
    else if constexpr (OP == Unary::Log) r = log_f32(v);
    else if constexpr (OP == Unary::Tanh) r = tanh_f32(v);
    else if constexpr (OP == Unary::Sin) r = sin_f32(v);
    else if constexpr (OP == Unary::Cos) r = cos_f32(v);
    else if constexpr (OP == Unary::Silu) r = silu_f32(v);
    else r = gelu_f32(v);
    y[i] = r;
  }
}

__global__ void embedding_kernel(const float* __restrict__ table, int64_t vocab, int64_t dim,
                                 const int32_t* __restrict__ ids, int64_t n,
                                 float* __restrict__ out) {
  const int64_t total = n * dim;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t id = ids[i / dim];
    // The host cannot see device ids without a sync; a bad id reads row 0 instead of faulting.
    if (id < 0 || id >= vocab) id = 0;
    out[i] = table[id * dim + i % dim];
  }
}

}  // namespace atoma::cuda::row_kernels
