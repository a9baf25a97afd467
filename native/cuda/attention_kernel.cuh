// The kernels of attention.cu (see there). In a header so that a host emulation test
// (native/test/cuda_rows_emu_test.cc) runs this exact code on the CPU.
#pragma once
#include <cstdint>

#include "../canon/math.h"
#include "../canon/reduce.h"
#include "warp.cuh"

namespace atoma::cuda::attention_detail {

constexpr int THREADS = 128;

__global__ void __launch_bounds__(THREADS)
attention_kernel(const float* __restrict__ q, int64_t n_heads, const float* __restrict__ k,
                 const float* __restrict__ v, int64_t n_kv, int64_t n_kv_heads, int64_t head_dim,
                 const int32_t* __restrict__ q_pos, float* __restrict__ out, int64_t pair0,
                 float* __restrict__ scores_global) {
  extern __shared__ __align__(16) float smem[];
  const int64_t pair = pair0 + blockIdx.x;   // = query * n_heads + head
  const int64_t i = pair / n_heads, h = pair % n_heads;
  const int64_t kvh = h / (n_heads / n_kv_heads);
  const int64_t kv_stride = n_kv_heads * head_dim;

  float* qs = smem;
  float* sc = scores_global ? scores_global + static_cast<int64_t>(blockIdx.x) * n_kv
                            : smem + head_dim;

  int64_t pos = q_pos[i];
  pos = pos < 0 ? 0 : (pos >= n_kv ? n_kv - 1 : pos);
  const int64_t n_vis = pos + 1;

  const float* qi = q + pair * head_dim;
  for (int64_t d = threadIdx.x; d < head_dim; d += THREADS) qs[d] = qi[d];
  __syncthreads();

  const float scale = __fdiv_rn(1.0f, __fsqrt_rn(static_cast<float>(head_dim)));
  const float* kh = k + kvh * head_dim;
  for (int64_t j = threadIdx.x; j < n_vis; j += THREADS)
    sc[j] = __fmul_rn(atoma::canon::chunked_dot(qs, 1, kh + j * kv_stride, 1, head_dim), scale);
  __syncthreads();

  if (threadIdx.x < 32) {
    const int lane = threadIdx.x;
    const float m = detail::warp_argmax(sc, n_vis).v;
    float p = 0.0f;
    for (int64_t j = lane; j < n_vis; j += 32) {
      const float e = atoma::canon::exp_f32(__fsub_rn(sc[j], m));
      sc[j] = e;
      p = __fadd_rn(p, e);
    }
    const float s = detail::warp_fold(p);
    for (int64_t j = lane; j < n_vis; j += 32) sc[j] = __fdiv_rn(sc[j], s);
  }
  __syncthreads();

  const float* vh = v + kvh * head_dim;
  float* oi = out + pair * head_dim;
  for (int64_t d = threadIdx.x; d < head_dim; d += THREADS)
    oi[d] = atoma::canon::chunked_dot(sc, 1, vh + d, kv_stride, n_vis);
}

}  // namespace atoma::cuda::attention_detail
