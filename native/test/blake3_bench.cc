// BLAKE3 file-hashing throughput: hash_file (mmap) on the given file, best of `reps` runs.
//
//   g++ -std=c++17 -O3 -ffp-contract=off -Inative native/test/blake3_bench.cc
//       native/hash/blake3*.cc native/cpu/isa.cc native/cpu/thread_pool.cc -pthread -o /tmp/b3b
//   /tmp/b3b FILE [threads=1] [reps=2]      (ATOMA_ISA=scalar|avx2|avx512 picks the path)
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cpu/isa.h"
#include "cpu/thread_pool.h"
#include "hash/blake3.h"

// Process CPU seconds (user + system, all threads): less disturbed than wall time when other
// work shares the machine.
static double cpu_seconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         1e-6 * double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE [threads=1] [reps=2]\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  const size_t threads = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1;
  const int reps = argc > 3 ? std::atoi(argv[3]) : 2;
  atoma::set_thread_count(threads);
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    std::perror(path.c_str());
    return 1;
  }
  const double gib = double(st.st_size) / double(1u << 30);
  double best = 1e30, best_cpu = 1e30;
  uint8_t out[32];
  for (int r = 0; r < reps; ++r) {
    const double c0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    atoma::blake3::hash_file(path, out, threads > 1);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, s);
    best_cpu = std::min(best_cpu, cpu_seconds() - c0);
  }
  std::printf("%s  %s isa=%s threads=%zu  hash_file %.3f s  %.2f GiB/s  (cpu %.3f s)\n",
              atoma::blake3::to_hex(out, 32).c_str(), path.c_str(),
              atoma::isa_name(atoma::active_isa()), threads, best, gib / best, best_cpu);
  if (std::getenv("B3_BENCH_MEM")) {
    // Compute alone: the same bytes already in (pre-faulted) process memory.
    std::vector<uint8_t> buf(size_t(st.st_size));
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f || std::fread(buf.data(), 1, buf.size(), f) != buf.size()) return 1;
    std::fclose(f);
    best = 1e30;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      atoma::blake3::hash(buf.data(), buf.size(), out, threads > 1);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (s < best) best = s;
    }
    std::printf("%s  in-memory hash %.3f s  %.2f GiB/s\n", atoma::blake3::to_hex(out, 32).c_str(),
                best, gib / best);
  }
  return 0;
}
