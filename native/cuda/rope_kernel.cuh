// The kernels of rope.cu (see there). In a header so that a host emulation test
// (native/test/cuda_rows_emu_test.cc) runs this exact code on the CPU.
#pragma once
#include <cstdint>

#include "../canon/math.h"

namespace atoma::cuda::rope_detail {

// divisors (device, rot_dims/2 entries, each finite and >= 1, checked by the host) or nullptr:
// the RoPE scaling of the model; dividing by 1 is exact, so nullptr equals all-ones.
__global__ void inv_freq_kernel(int64_t half, int64_t rot_dims, float theta, const float* __restrict__ divisors,
                                float* inv_freq) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= half) return;
  const float log_theta = atoma::canon::log_f32(theta);
  const float a = __fdiv_rn(static_cast<float>(2 * i), static_cast<float>(rot_dims));
  const float inv = atoma::canon::exp_f32(__fmul_rn(-a, log_theta));
  inv_freq[i] = divisors ? __fdiv_rn(inv, divisors[i]) : inv;
}

// One thread per (token, pair): the angle's cos and sin serve every head of the token.
__global__ void rope_kernel(float* x, int64_t tokens, int64_t heads, int64_t head_dim,
                            int64_t half, const int32_t* __restrict__ positions,
                            const float* __restrict__ inv_freq, bool neox) {
  const int64_t id = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (id >= tokens * half) return;
  const int64_t t = id / half, i = id % half;
  const float angle = __fmul_rn(static_cast<float>(positions[t]), inv_freq[i]);
  const float c = atoma::canon::cos_f32(angle);
  const float s = atoma::canon::sin_f32(angle);
  const int64_t lo = neox ? i : 2 * i;
  const int64_t hi = neox ? i + half : 2 * i + 1;
  float* xt = x + t * heads * head_dim;
  for (int64_t h = 0; h < heads; ++h) {
    float* xh = xt + h * head_dim;
    const float x0 = xh[lo], x1 = xh[hi];
    xh[lo] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
    xh[hi] = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
  }
}

}  // namespace atoma::cuda::rope_detail
