// Runs the CUDA sampling kernels (native/cuda/sample_kernel.cuh) on the CPU through
// native/test/cuda_emu.h, with the launch sequence of native/cuda/sample.cu (keys, chunk sort,
// global bitonic passes, finish; or the greedy reduction), and compares every token with the
// CPU path canon::sample_host: rows with ties, NaN, +-inf, -0, subnormals, huge and tiny
// temperatures, top-k and top-p. Small blocks (32, 64 threads) make a few hundred logits span
// many chunks, so the global passes run; one case uses the real 1024-thread blocks.
//
//   g++ -std=c++20 -O2 -ffp-contract=off -Inative -Inative/test native/test/cuda_sample_emu_test.cc -pthread
#include <cstdio>
#include <string>
#include <vector>

#define __shared__ static   // fixed-size shared arrays: one per kernel, blocks run in turn
#include "cuda_emu.h"

#include "canon/philox.h"
#include "cuda/sample_kernel.cuh"

using namespace atoma;
using cuda_emu::launch;

static int g_cases = 0, g_fail = 0;

// sample.cu's sequence of launches, with THREADS threads per block.
template <int THREADS>
static int64_t device_sample(const std::vector<float>& logits, const canon::SampleParams& p) {
  using namespace cuda::sampling;
  const int64_t n = static_cast<int64_t>(logits.size());
  int64_t out = -2;
  if (p.greedy) {
    launch(dim3{1, 1, 1}, THREADS, [&] { greedy_kernel<THREADS>(logits.data(), n, &out); });
    return out;
  }
  constexpr uint64_t CH = 2 * THREADS;
  uint64_t padded = CH;
  while (padded < static_cast<uint64_t>(n)) padded <<= 1;
  std::vector<uint64_t> keys(padded);
  std::vector<float> z(n ? n : 1), c(n ? n : 1);
  const unsigned grid = static_cast<unsigned>((padded + THREADS - 1) / THREADS);
  launch(dim3{grid > 3 ? 3u : grid, 1, 1}, THREADS,   // fewer blocks than work: the grid-stride loop
         [&] { keys_kernel<THREADS>(logits.data(), n, static_cast<int64_t>(padded), p.temperature, z.data(), keys.data()); });
  const unsigned chunks = static_cast<unsigned>(padded / CH);
  launch(dim3{chunks, 1, 1}, THREADS, [&] { chunk_kernel<THREADS>(keys.data(), 0); });
  for (uint64_t size = 2 * CH; size <= padded; size <<= 1) {
    for (uint64_t j = size >> 1; j >= CH; j >>= 1)
      launch(dim3{static_cast<unsigned>((padded / 2 + THREADS - 1) / THREADS), 1, 1}, THREADS,
             [&] { global_kernel<THREADS>(keys.data(), padded, size, j); });
    launch(dim3{chunks, 1, 1}, THREADS, [&] { chunk_kernel<THREADS>(keys.data(), size); });
  }
  for (uint64_t i = 1; i < padded; ++i)
    if (keys[i - 1] > keys[i] || (keys[i - 1] == keys[i] && keys[i] != canon::kSamplePadKey)) {
      std::printf("keys not sorted at %llu\n", static_cast<unsigned long long>(i));
      return -3;
    }
  launch(dim3{1, 1, 1}, THREADS, [&] { finish_kernel<THREADS>(keys.data(), z.data(), n, p, c.data(), &out); });
  return out;
}

static float pick_value(uint64_t seed, uint64_t i, int kind) {
  const float u = canon::seeded_value(seed, 11, i);
  const uint32_t w = canon::philox_word(seed, 12, i);
  switch (kind) {
    case 0: return u * 8.0f;                                      // plain
    case 1: return static_cast<float>(static_cast<int>(u * 4.0f)); // many ties
    default:
      switch (w % 16) {
        case 0: return canon::bits_f32(0x7FC00000u);  // NaN
        case 1: return -__builtin_inff();
        case 2: return w & 0x100 ? __builtin_inff() : -0.0f;
        case 3: return canon::bits_f32(1u + (w >> 12));   // subnormal
        case 4: return 0.0f;
        case 5: return u * 1e30f;
        default: return u * 30.0f;
      }
  }
}

template <int THREADS>
static void run_cases(int rounds, int64_t max_n) {
  for (int r = 0; r < rounds; ++r) {
    const uint64_t seed = 1000 + r;
    const uint32_t w = canon::philox_word(seed, 13, 0);
    const int64_t n = static_cast<int64_t>(w % static_cast<uint32_t>(max_n + 1));
    const int kind = static_cast<int>((w >> 10) % 3);
    std::vector<float> x(n);
    for (int64_t i = 0; i < n; ++i) x[i] = pick_value(seed, i, kind);
    if (r % 17 == 5)
      for (auto& v : x) v = canon::bits_f32(0x7FC00000u);   // all NaN
    if (r % 19 == 7)
      for (auto& v : x) v = -__builtin_inff();
    const double temps[] = {0.0, 1.0, 0.7, 1e-3, 1e-50, 3.0e38, 2.5};
    const double tps[] = {1.0, 0.9, 0.5, 1e-9, 0.999999999};
    const double temperature = temps[(w >> 14) % 7];
    const int64_t top_k = (w >> 17) % 3 == 0 ? 0 : ((w >> 19) % 3 == 0 ? 1 : (w >> 21) % 50);
    const double top_p = tps[(w >> 27) % 5];
    const canon::SampleParams p = canon::make_sample_params(temperature, top_k, top_p, seed * 7, r);
    const int64_t want = canon::sample_host(x.data(), n, p);
    const int64_t got = device_sample<THREADS>(x, p);
    ++g_cases;
    if (got != want) {
      ++g_fail;
      std::printf("MISMATCH threads=%d round=%d n=%lld T=%g k=%lld p=%g: device %lld, cpu %lld\n", THREADS, r,
                  static_cast<long long>(n), temperature, static_cast<long long>(top_k), top_p,
                  static_cast<long long>(got), static_cast<long long>(want));
    }
  }
}

int main() {
  run_cases<32>(300, 500);
  run_cases<64>(30, 1500);
  run_cases<1024>(1, 5000);
  std::printf("sampling kernels: %d cases, %d mismatches\n%s\n", g_cases, g_fail, g_fail ? "FAIL" : "PASS");
  return g_fail ? 1 : 0;
}
