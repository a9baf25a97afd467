// CUDA against CPU, bit for bit, for every binary32 input of exp, log, tanh, sin, cos, silu and
// gelu from native/canon/math.h (the CPU side is what math_exhaustive.cc proves correctly
// rounded). Also times the device functions.
//
//   nvcc -std=c++17 -O3 -arch=sm_90 -ftz=false -prec-div=true -prec-sqrt=true -fmad=false \
//     -Xcompiler -ffp-contract=off -Inative native/test/math_cuda_test.cu -o math_cuda_test
#include <cuda_runtime.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "canon/math.h"

using namespace atoma::canon;

namespace {

ATOMA_HD float apply(int fn, float x) {
  switch (fn) {
    case 0: return exp_f32(x);
    case 1: return log_f32(x);
    case 2: return tanh_f32(x);
    case 3: return sin_f32(x);
    case 4: return cos_f32(x);
    case 5: return silu_f32(x);
    default: return gelu_f32(x);
  }
}
const char* kNames[] = {"exp", "log", "tanh", "sin", "cos", "silu", "gelu"};

__global__ void eval(int fn, uint64_t base, uint64_t n, float* out) {
  uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = apply(fn, bits_f32((uint32_t)(base + i)));
}

#define CHECK(x)                                                                  \
  do {                                                                            \
    cudaError_t e_ = (x);                                                         \
    if (e_ != cudaSuccess) {                                                      \
      std::fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e_));               \
      std::exit(2);                                                               \
    }                                                                             \
  } while (0)

}  // namespace

int main(int argc, char** argv) {
  uint64_t stride_log2 = argc > 1 ? std::atoi(argv[1]) : 0;  // 0: all 2^32 inputs
  const uint64_t chunk = 1ull << 28;
  float* dev = nullptr;
  CHECK(cudaMalloc(&dev, chunk * sizeof(float)));
  std::vector<float> host(chunk);
  int threads = (int)std::thread::hardware_concurrency();
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, host threads %d\n", prop.name, threads);
  uint64_t total_bad = 0;
  for (int fn = 0; fn < 7; ++fn) {
    std::atomic<uint64_t> bad{0}, checked{0};
    double gpu_s = 0;
    for (uint64_t base = 0; base < (1ull << 32); base += chunk << stride_log2) {
      cudaEvent_t a, b;
      CHECK(cudaEventCreate(&a));
      CHECK(cudaEventCreate(&b));
      CHECK(cudaEventRecord(a));
      eval<<<(unsigned)((chunk + 255) / 256), 256>>>(fn, base, chunk, dev);
      CHECK(cudaEventRecord(b));
      CHECK(cudaEventSynchronize(b));
      float ms = 0;
      CHECK(cudaEventElapsedTime(&ms, a, b));
      gpu_s += ms / 1e3;
      CHECK(cudaMemcpy(host.data(), dev, chunk * sizeof(float), cudaMemcpyDeviceToHost));
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
          uint64_t local_bad = 0;
          for (uint64_t i = t; i < chunk; i += threads) {
            float x = bits_f32((uint32_t)(base + i));
            float c = apply(fn, x), g = host[i];
            bool same = (c != c) ? (g != g) : f32_bits(c) == f32_bits(g);
            if (!same && local_bad++ < 3)
              std::printf("  %s x=%a (0x%08x) cpu 0x%08x gpu 0x%08x\n", kNames[fn], x,
                          f32_bits(x), f32_bits(c), f32_bits(g));
          }
          bad += local_bad;
          checked += (chunk + threads - 1 - t) / threads;
        });
      for (auto& th : pool) th.join();
    }
    std::printf("%-5s checked %llu  cpu/gpu differences %llu  gpu %.3f ns/element\n", kNames[fn],
                (unsigned long long)checked.load(), (unsigned long long)bad.load(),
                gpu_s * 1e9 / (double)checked.load());
    std::fflush(stdout);
    total_bad += bad;
  }
  std::printf("TOTAL cpu/gpu differences: %llu\n", (unsigned long long)total_bad);
  return total_bad == 0 ? 0 : 1;
}
