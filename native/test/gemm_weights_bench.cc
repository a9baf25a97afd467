// Decode throughput of atoma::gemm_weights (M = 1..8, W stored [N, K]): microseconds per call and
// GB/s of stored weight bytes read, per format, at 1 and 2 threads. f32 is the yardstick: the same
// product with 4 bytes per weight instead of 34/32 (q8_0) or 2 (f16, bf16). ATOMA_ISA picks the
// path (default: best).
//   g++ -std=c++17 -O3 -ffp-contract=off -Inative native/test/gemm_weights_bench.cc
//       $(node -p "require('./native/sources.json').cpu.join(' ')") -pthread -o /tmp/gwb && /tmp/gwb
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "canon/philox.h"
#include "cpu/gemm_weights.h"
#include "cpu/isa.h"
#include "cpu/thread_pool.h"

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Best of `reps` timed batches, each long enough (~2 ms) for the clock to resolve; seconds/call.
template <typename F>
double best_time(int reps, F f) {
  f();
  int inner = 1;
  for (double t0 = now(); now() - t0 < 2e-3; ++inner) f();
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now();
    for (int i = 0; i < inner; ++i) f();
    best = std::min(best, (now() - t0) / inner);
  }
  return best;
}

std::vector<uint8_t> stored_weights(atoma::WeightFormat f, int64_t N, int64_t K) {
  const int64_t rb = atoma::weight_row_bytes(f, K);
  std::vector<uint8_t> w(static_cast<size_t>(N * rb));
  for (int64_t j = 0; j < N; ++j) {
    uint8_t* row = w.data() + j * rb;
    for (int64_t k = 0; k < K; ++k) {
      const float v = atoma::canon::seeded_value(5, static_cast<uint32_t>(j), static_cast<uint64_t>(k));
      uint32_t b;
      std::memcpy(&b, &v, 4);
      if (f == atoma::WeightFormat::F32) std::memcpy(row + 4 * k, &v, 4);
      if (f == atoma::WeightFormat::Bf16) { const uint16_t h = static_cast<uint16_t>(b >> 16); std::memcpy(row + 2 * k, &h, 2); }
      if (f == atoma::WeightFormat::F16) { const uint16_t h = static_cast<uint16_t>(0x3000u | (b & 0x83ffu)); std::memcpy(row + 2 * k, &h, 2); }
    }
    if (f == atoma::WeightFormat::Q8_0) {
      for (int64_t blk = 0; blk < K / 32; ++blk) {
        uint8_t* p = row + blk * 34;
        const uint16_t d = 0x2000;
        std::memcpy(p, &d, 2);
        for (int i = 0; i < 32; ++i) p[2 + i] = static_cast<uint8_t>(atoma::canon::philox_word(6, static_cast<uint32_t>(j), static_cast<uint64_t>(blk * 32 + i)));
      }
    }
  }
  return w;
}

void bench(int64_t M, int64_t N, int64_t K) {
  const atoma::WeightFormat fmts[] = {atoma::WeightFormat::F32, atoma::WeightFormat::Q8_0,
                                      atoma::WeightFormat::F16, atoma::WeightFormat::Bf16};
  const char* names[] = {"f32", "q8_0", "f16", "bf16"};
  std::vector<float> x(static_cast<size_t>(M * K)), y(static_cast<size_t>(M * N));
  for (size_t i = 0; i < x.size(); ++i) x[i] = atoma::canon::seeded_value(7, 0, i);
  for (int fi = 0; fi < 4; ++fi) {
    const auto f = fmts[fi];
    const std::vector<uint8_t> w = stored_weights(f, N, K);
    for (size_t threads : {1, 2}) {
      atoma::set_thread_count(threads);
      const double t = best_time(15, [&] {
        atoma::gemm_weights(M, N, K, x.data(), K, w.data(), static_cast<int64_t>(w.size()), f, y.data(), N, nullptr);
      });
      std::printf("M=%lld N=%5lld K=%5lld %-4s %zu thr: %8.1f us  %6.1f GB/s stored  %6.1f GFLOP/s\n",
                  (long long)M, (long long)N, (long long)K, names[fi], threads, t * 1e6,
                  double(w.size()) / t * 1e-9, 2.0 * M * N * K / t * 1e-9);
    }
  }
}

}  // namespace

int main() {
  std::printf("isa %s\n", atoma::isa_name(atoma::active_isa()));
  bench(1, 3072, 768);
  bench(1, 4096, 4096);
  bench(4, 4096, 4096);
  bench(8, 4096, 4096);
  return 0;
}
