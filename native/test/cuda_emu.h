// A small host emulation of the CUDA execution model for the emulation tests: each CUDA thread
// of a block is a std::thread, blocks run one after another, __syncthreads/__syncwarp are
// barriers and warp shuffles exchange through a per-warp buffer between two barriers. Include it
// before the kernel headers, after defining __shared__ (empty for `extern __shared__` buffers
// that the test defines, `static` for fixed-size ones). Only what the kernels use is here.
#pragma once
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#define ATOMA_CUDA_EMULATE 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __align__(n)

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
inline thread_local dim3 threadIdx;
inline dim3 blockIdx, blockDim, gridDim;
struct alignas(16) float4 {
  float x, y, z, w;
};

namespace cuda_emu {
inline std::barrier<>* block_barrier = nullptr;
inline std::vector<std::unique_ptr<std::barrier<>>> warp_barriers;
inline uint64_t exchange[32][32];   // [warp][lane]

inline void launch(dim3 grid, unsigned threads, const std::function<void()>& kernel) {
  gridDim = grid;
  blockDim = dim3{threads, 1, 1};
  for (unsigned by = 0; by < grid.y; ++by)
    for (unsigned bx = 0; bx < grid.x; ++bx) {
      blockIdx = dim3{bx, by, 1};
      std::barrier<> bar(threads);
      block_barrier = &bar;
      warp_barriers.clear();
      for (unsigned w = 0; w < (threads + 31) / 32; ++w) warp_barriers.emplace_back(new std::barrier<>(32));
      std::vector<std::thread> ts;
      for (unsigned t = 0; t < threads; ++t)
        ts.emplace_back([t, &kernel] {
          threadIdx = dim3{t, 0, 0};
          kernel();
        });
      for (auto& th : ts) th.join();
    }
}

template <class T>
inline T shuffle(T v, int src_lane) {
  const int lane = threadIdx.x % 32, w = threadIdx.x / 32;
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  exchange[w][lane] = bits;
  warp_barriers[w]->arrive_and_wait();
  bits = exchange[w][src_lane];
  warp_barriers[w]->arrive_and_wait();
  T r;
  std::memcpy(&r, &bits, sizeof(T));
  return r;
}
}  // namespace cuda_emu

inline void __syncthreads() { cuda_emu::block_barrier->arrive_and_wait(); }
inline void __syncwarp(unsigned = 0xFFFFFFFFu) { cuda_emu::warp_barriers[threadIdx.x / 32]->arrive_and_wait(); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline float __int_as_float(int i) {
  float f;
  std::memcpy(&f, &i, 4);
  return f;
}
template <class T>
inline T __shfl_sync(unsigned, T v, int src) { return cuda_emu::shuffle(v, src); }
template <class T>
inline T __shfl_down_sync(unsigned, T v, int s) {
  const int lane = threadIdx.x % 32;
  return cuda_emu::shuffle(v, lane + s < 32 ? lane + s : lane);
}
template <class T>
inline T __shfl_xor_sync(unsigned, T v, int s) { return cuda_emu::shuffle(v, (threadIdx.x % 32) ^ s); }
inline unsigned __reduce_max_sync(unsigned, unsigned v) {
  const int w = threadIdx.x / 32;
  cuda_emu::exchange[w][threadIdx.x % 32] = v;
  cuda_emu::warp_barriers[w]->arrive_and_wait();
  unsigned m = 0;
  for (int l = 0; l < 32; ++l) m = std::max<unsigned>(m, static_cast<unsigned>(cuda_emu::exchange[w][l]));
  cuda_emu::warp_barriers[w]->arrive_and_wait();
  return m;
}
