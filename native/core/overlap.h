// Whether two byte ranges share memory: an output must never alias an input (the kernels would
// read values they already overwrote). An empty range overlaps nothing.
#pragma once
#include <cstdint>

namespace atoma {

inline bool bytes_overlap(const void* a, int64_t a_bytes, const void* b, int64_t b_bytes) {
  const auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  return a_bytes > 0 && b_bytes > 0 && pa < pb + static_cast<uintptr_t>(b_bytes) && pb < pa + static_cast<uintptr_t>(a_bytes);
}

}  // namespace atoma
