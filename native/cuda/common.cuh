// Internal helpers of the CUDA backend: error conversion and argument checks.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "../core/error.h"
#include "api.h"

namespace atoma::cuda::detail {

// Every CUDA failure becomes atoma::Error; "no device" gets its own code so callers can fall
// back to the CPU.
[[noreturn]] void raise(cudaError_t e, const char* what);

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) raise(e, what);
}

// Launch errors (bad configuration) surface at once; faults inside a kernel surface at the next
// synchronising call, which converts them the same way.
inline void check_launch(const char* what) { check(cudaGetLastError(), what); }

[[noreturn]] void shape_error(const std::string& message);

inline void require(bool ok, const char* message) {
  if (!ok) shape_error(message);
}

inline unsigned grid_1d(int64_t n, int block) {
  int64_t g = (n + block - 1) / block;
  return static_cast<unsigned>(g < 1 ? 1 : (g > 0x7FFFFFFF ? 0x7FFFFFFF : g));
}

// Stream-ordered scratch memory for a kernel's intermediate values.
class Scratch {
 public:
  Scratch(size_t bytes, cudaStream_t s) : s_(s) {
    if (bytes) check(cudaMallocAsync(&p_, bytes, s), "cudaMallocAsync");
  }
  ~Scratch() {
    if (p_) cudaFreeAsync(p_, s_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <typename T> T* as() const { return static_cast<T*>(p_); }

 private:
  void* p_ = nullptr;
  cudaStream_t s_;
};

}  // namespace atoma::cuda::detail
