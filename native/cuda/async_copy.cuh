// cp.async (sm_80+) wrappers. A copy whose source lies outside the matrix is issued with a
// source size of 0, which writes zeros: zero padding at the K edge never changes a chunk sum
// (fma(0, 0, p) only turns p = -0 into +0, and acc, which starts at +0, is never -0).
#pragma once
#include <cstdint>
#include <cstring>

namespace atoma::cuda::detail {

#if defined(ATOMA_CUDA_EMULATE)
// Host emulation (native/test/cuda_gemm_emu_test.cc): copies happen at issue time, which is
// equivalent because a stage is only written after the barrier that ends all reads of it.
inline void cp_async4(void* smem, const void* gmem, uint32_t src_bytes) {
  std::memset(smem, 0, 4);
  if (src_bytes) std::memcpy(smem, gmem, 4);
}
inline void cp_async16(void* smem, const void* gmem, uint32_t src_bytes) {
  std::memset(smem, 0, 16);
  if (src_bytes) std::memcpy(smem, gmem, src_bytes);
}
inline void cp_async_commit() {}
template <int N>
inline void cp_async_wait() {}
#else

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Copies src_bytes (0 or 4) and zero-fills the rest of the 4-byte destination.
__device__ __forceinline__ void cp_async4(void* smem, const void* gmem, uint32_t src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_addr(smem)), "l"(gmem),
               "r"(src_bytes));
}

// Copies src_bytes (0..16) and zero-fills the rest of the 16-byte destination.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, uint32_t src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem)), "l"(gmem),
               "r"(src_bytes));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

#endif

}  // namespace atoma::cuda::detail
