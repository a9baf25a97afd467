// A per-thread float buffer, 64-byte aligned, grown on demand and kept for the next call: the
// GEMMs' packing and conversion buffers (one thread_local each), so a hot loop never allocates.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <string>
#include "../core/error.h"

namespace atoma {

class Scratch {
 public:
  // `what` names the buffer in the out-of-memory error.
  explicit Scratch(const char* what) : what_(what) {}
  ~Scratch() { std::free(p_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  float* get(size_t n) {
    if (n > cap_) {
      std::free(p_);
      p_ = static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64));
      cap_ = p_ ? n : 0;
      if (!p_) throw Error("ERR_OUT_OF_MEMORY", std::string(what_) + ": cannot allocate a buffer of " + std::to_string(n) + " floats");
    }
    return p_;
  }

 private:
  const char* what_;
  float* p_ = nullptr;
  size_t cap_ = 0;
};

}  // namespace atoma
