// Causal grouped-query attention (same contract as atoma::attention). One block per (query,
// head): scores s_j = chunked_dot(q, k_j, head_dim) * scale, one thread per key; the softmax by
// warp 0 in the section 4/5 order (its lanes are the 32 lane partials); then out[d], one thread
// per d, as the section 3 chunked dot over the visible keys of p_j * v_j[d]. The scores live in
// shared memory, or in global scratch when a row of them does not fit.
#include <algorithm>

#include "attention_kernel.cuh"
#include "common.cuh"

namespace atoma::cuda {
using namespace attention_detail;

void attention(const float* q, int64_t n_q, int64_t n_heads, const float* k, const float* v,
               int64_t n_kv, int64_t n_kv_heads, int64_t head_dim, const int32_t* q_pos,
               float* out, Stream stream) {
  detail::require(n_q >= 0 && n_heads >= 0 && n_kv >= 0 && n_kv_heads >= 0 && head_dim >= 0,
                  "attention: negative size");
  if (n_q == 0 || n_heads == 0 || head_dim == 0) return;
  detail::require(n_kv_heads > 0 && n_heads % n_kv_heads == 0,
                  "attention: n_heads must be a multiple of n_kv_heads");
  detail::require(n_kv > 0, "attention: no keys");
  cudaStream_t s = stream;

  int dev = 0, optin = 0;
  detail::check(cudaGetDevice(&dev), "cudaGetDevice");
  detail::check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev),
                "cudaDeviceGetAttribute");
  const int64_t pairs = n_q * n_heads;
  const size_t q_bytes = static_cast<size_t>(head_dim) * sizeof(float);
  const size_t s_bytes = static_cast<size_t>(n_kv) * sizeof(float);
  detail::require(q_bytes <= static_cast<size_t>(optin), "attention: head_dim too large");

  if (q_bytes + s_bytes <= static_cast<size_t>(optin)) {
    const size_t smem = q_bytes + s_bytes;
    detail::check(cudaFuncSetAttribute(attention_kernel,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(smem)),
                  "cudaFuncSetAttribute(attention)");
    for (int64_t p0 = 0; p0 < pairs; p0 += 0x7FFFFFFF) {
      const int64_t cnt = std::min<int64_t>(pairs - p0, 0x7FFFFFFF);
      attention_kernel<<<static_cast<unsigned>(cnt), THREADS, smem, s>>>(
          q, n_heads, k, v, n_kv, n_kv_heads, head_dim, q_pos, out, p0, nullptr);
      detail::check_launch("attention");
    }
    return;
  }
  // Very long contexts: score rows in global scratch, at most 256 MiB of them at a time.
  const int64_t per_batch = std::max<int64_t>(1, (int64_t{256} << 20) / static_cast<int64_t>(s_bytes));
  const int64_t batch = std::min<int64_t>(pairs, std::min<int64_t>(per_batch, 0x7FFFFFFF));
  detail::Scratch scratch(static_cast<size_t>(batch) * s_bytes, s);
  detail::check(cudaFuncSetAttribute(attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(q_bytes)),
                "cudaFuncSetAttribute(attention)");
  for (int64_t p0 = 0; p0 < pairs; p0 += batch) {
    const int64_t cnt = std::min<int64_t>(pairs - p0, batch);
    attention_kernel<<<static_cast<unsigned>(cnt), THREADS, q_bytes, s>>>(
        q, n_heads, k, v, n_kv, n_kv_heads, head_dim, q_pos, out, p0, scratch.as<float>());
    detail::check_launch("attention");
  }
}

}  // namespace atoma::cuda
