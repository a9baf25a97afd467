// Throughput of atoma::gemm: square products in GFLOP/s, decode-sized A x W^T in GB/s of W read,
// against a 2-thread memcpy of 64 MiB as the memory yardstick. ATOMA_ISA and ATOMA_THREADS pick
// the path and the pool size (default: best ISA, all cores).
//   g++ -std=c++17 -O3 -ffp-contract=off -Inative native/test/gemm_bench.cc native/cpu/gemm*.cc
//       native/cpu/isa.cc native/cpu/thread_pool.cc -pthread -o /tmp/gemm_bench && /tmp/gemm_bench
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "canon/philox.h"
#include "cpu/gemm.h"
#include "cpu/isa.h"
#include "cpu/thread_pool.h"

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <typename F>
double best_time(int reps, F f) {
  f();
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now();
    f();
    best = std::min(best, now() - t0);
  }
  return best;
}

std::vector<float> seeded(size_t n, uint32_t stream) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = atoma::canon::seeded_value(9, stream, i);
  return v;
}

void bench_square(int64_t n, bool nk, int reps) {
  const std::vector<float> A = seeded(n * n, 1), B = seeded(n * n, 2);
  std::vector<float> C(n * n);
  const double t = best_time(reps, [&] {
    atoma::gemm(n, n, n, A.data(), n, B.data(), n, nk, C.data(), n, nullptr);
  });
  std::printf("gemm %4lld^3 %s: %7.3f ms  %6.1f GFLOP/s\n", (long long)n, nk ? "nk" : "kn", t * 1e3,
              2.0 * n * n * n / t * 1e-9);
}

void bench_gemv(int64_t M, int64_t N, int64_t K, int reps, double copy_gbs) {
  const std::vector<float> x = seeded(M * K, 3), W = seeded(N * K, 4);
  std::vector<float> y(M * N);
  const double t = best_time(reps, [&] {
    atoma::gemm(M, N, K, x.data(), K, W.data(), K, true, y.data(), N, nullptr);
  });
  const double gbs = double(N) * K * sizeof(float) / t * 1e-9;
  std::printf("gemm M=%2lld N=%lld K=%lld nk: %7.3f ms  %6.1f GB/s of W  (%.2fx copy)  %6.1f GFLOP/s\n",
              (long long)M, (long long)N, (long long)K, t * 1e3, gbs, gbs / copy_gbs,
              2.0 * M * N * K / t * 1e-9);
}

// Bytes copied per second (each byte is read once and written once) by the pool's threads.
double bench_copy(size_t bytes, int reps) {
  std::vector<char> src(bytes, 1), dst(bytes, 0);
  const size_t parts = atoma::thread_count();
  const double t = best_time(reps, [&] {
    atoma::parallel_for(parts, [&](size_t p) {
      const size_t a = bytes * p / parts, b = bytes * (p + 1) / parts;
      std::memcpy(dst.data() + a, src.data() + a, b - a);
    });
  });
  const double gbs = double(bytes) / t * 1e-9;
  std::printf("memcpy %zu MiB, %zu threads: %6.1f GB/s copied (%.1f GB/s read + written)\n",
              bytes >> 20, parts, gbs, 2 * gbs);
  return gbs;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "quick";
  std::printf("isa %s, %zu threads\n", atoma::isa_name(atoma::active_isa()), atoma::thread_count());
  const double copy = bench_copy(64u << 20, 10);
  for (int64_t M : {1, 2, 4, 8, 16}) bench_gemv(M, 4096, 4096, 20, copy);
  bench_square(1024, false, 10);
  bench_square(1024, true, 10);
  if (!quick) {
    bench_square(2048, false, 5);
    bench_square(2048, true, 5);
  }
  return 0;
}
