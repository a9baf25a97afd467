// Rotary position embedding, in place on x [tokens, heads, head_dim] (same contract as
// atoma::rope). inv_freq[i] = exp(-((float)(2i) / (float)rot_dims) * log(theta)) is computed
// once per call in that order; angle = (float)pos * inv_freq[i] is one multiply; the rotation is
// y0 = x0*c - x1*s, y1 = x0*s + x1*c with every product rounded (no fma). With freq_divisors
// (device memory, rot_dims/2 floats) inv_freq[i] is then divided by freq_divisors[i] (RoPE scaling),
// as canon::rope_scaled_inv_freq_f32 on the CPU.
#include "common.cuh"
#include "rope_kernel.cuh"

namespace atoma::cuda {
using namespace rope_detail;

void rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t rot_dims,
          const int32_t* positions, float theta, bool neox, const float* freq_divisors, Stream stream) {
  detail::require(tokens >= 0 && heads >= 0 && head_dim >= 0 && rot_dims >= 0,
                  "rope: negative size");
  detail::require(rot_dims <= head_dim && rot_dims % 2 == 0,
                  "rope: rot_dims must be even and <= head_dim");
  const int64_t half = rot_dims / 2;
  if (half == 0 || heads == 0 || tokens == 0) return;
  cudaStream_t s = stream;
  detail::Scratch inv(static_cast<size_t>(half) * sizeof(float), s);
  inv_freq_kernel<<<detail::grid_1d(half, 128), 128, 0, s>>>(half, rot_dims, theta, freq_divisors,
                                                                   inv.as<float>());
  detail::check_launch("rope inv_freq");
  rope_kernel<<<detail::grid_1d(tokens * half, 128), 128, 0, s>>>(x, tokens, heads, head_dim, half,
                                                                  positions, inv.as<float>(), neox);
  detail::check_launch("rope");
}

}  // namespace atoma::cuda
