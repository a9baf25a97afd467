// Canonical sampling of one row of device logits (docs/canonical-arithmetic.md "Sampling"); the
// kernels and the order of work are in sample_kernel.cuh. Only the 8-byte token comes back.
#include "common.cuh"
#include "sample_kernel.cuh"

namespace atoma::cuda {
namespace {

using namespace sampling;

constexpr int kThreads = 1024;             // threads per block of every sampling kernel
constexpr uint64_t kChunk = 2 * kThreads;  // keys sorted per shared-memory chunk

uint64_t padded_size(int64_t n) {
  uint64_t p = kChunk;
  while (p < static_cast<uint64_t>(n)) p <<= 1;
  return p;
}

unsigned grid_for(uint64_t work) {
  const uint64_t g = (work + kThreads - 1) / kThreads;
  return static_cast<unsigned>(g < 1 ? 1 : (g > 65535 ? 65535 : g));
}

}  // namespace

int64_t sample(const float* logits, int64_t n, double temperature, int64_t top_k, double top_p,
               uint64_t seed, uint64_t step, Stream s) {
  detail::require(n >= 0 && n <= INT32_MAX, "sample: the row length must fit an int32 token id");
  detail::require(top_k >= 0, "sample: top_k must be >= 0");
  const canon::SampleParams p = canon::make_sample_params(temperature, top_k, top_p, seed, step);
  detail::Scratch out(sizeof(int64_t), s);
  if (p.greedy) {
    greedy_kernel<kThreads><<<1, kThreads, 0, s>>>(logits, n, out.as<int64_t>());
    detail::check_launch("sample greedy");
  } else {
    const uint64_t padded = padded_size(n);
    detail::Scratch keys(padded * sizeof(uint64_t), s);
    detail::Scratch z(static_cast<size_t>(n ? n : 1) * sizeof(float), s);
    detail::Scratch c(static_cast<size_t>(n ? n : 1) * sizeof(float), s);
    uint64_t* k = keys.as<uint64_t>();
    keys_kernel<kThreads><<<grid_for(padded), kThreads, 0, s>>>(logits, n, static_cast<int64_t>(padded),
                                                               p.temperature, z.as<float>(), k);
    detail::check_launch("sample keys");
    const unsigned chunks = static_cast<unsigned>(padded / kChunk);
    chunk_kernel<kThreads><<<chunks, kThreads, 0, s>>>(k, 0);
    detail::check_launch("sample sort");
    for (uint64_t size = 2 * kChunk; size <= padded; size <<= 1) {
      for (uint64_t j = size >> 1; j >= kChunk; j >>= 1) {
        global_kernel<kThreads><<<grid_for(padded / 2), kThreads, 0, s>>>(k, padded, size, j);
        detail::check_launch("sample merge");
      }
      chunk_kernel<kThreads><<<chunks, kThreads, 0, s>>>(k, size);
      detail::check_launch("sample merge");
    }
    finish_kernel<kThreads><<<1, kThreads, 0, s>>>(k, z.as<float>(), n, p, c.as<float>(), out.as<int64_t>());
    detail::check_launch("sample finish");
  }
  int64_t token = -1;
  detail::check(cudaMemcpyAsync(&token, out.as<int64_t>(), sizeof(token), cudaMemcpyDeviceToHost, s),
                "cudaMemcpyAsync(token)");
  detail::check(cudaStreamSynchronize(s), "cudaStreamSynchronize(sample)");
  return token;
}

}  // namespace atoma::cuda
