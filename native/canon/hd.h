// One marker for functions that must compile for both the CPU and CUDA devices. The canonical
// per-element arithmetic lives in headers that use it, so the CPU tests exercise the exact code
// the GPU runs.
#pragma once
#include <stdint.h>

#if defined(__CUDACC__)
#define ATOMA_HD __host__ __device__ __forceinline__
#else
#define ATOMA_HD inline
#endif

namespace atoma::canon {

// Explicit fused multiply-add, the only fma the spec allows (the compilers run with
// -ffp-contract=off / -fmad=false, so a*b+c is never fused behind our back).
ATOMA_HD float fmaf_(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return __builtin_fmaf(a, b, c);
#endif
}
ATOMA_HD double fma_(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return __fma_rn(a, b, c);
#else
  return __builtin_fma(a, b, c);
#endif
}

ATOMA_HD uint32_t f32_bits(float f) {
  union { float f; uint32_t u; } v;
  v.f = f;
  return v.u;
}
ATOMA_HD float bits_f32(uint32_t u) {
  union { float f; uint32_t u; } v;
  v.u = u;
  return v.f;
}

}  // namespace atoma::canon
