// What the native GEMM test programs share (gemm_test, gemm_weights_test and the decode-layout
// tests): the failure counter, float bits, a seeded generator, activations, the place a mismatch
// is reported at, and the typed-error check. Header-only: each test is one translation unit.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>
#include "core/error.h"
#include "cpu/isa.h"

namespace test_support {

inline int g_failures = 0;
inline long g_checks = 0;

inline void fail(const std::string& what) {
  if (++g_failures <= 20) std::fprintf(stderr, "FAIL: %s\n", what.c_str());
}

inline uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// A 64-bit LCG: reproducible inputs without <random>'s implementation-defined distributions.
struct Rng {
  uint64_t s;
  uint32_t next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(s >> 33);
  }
};

// Activations: a spread of magnitudes with low bits set, so any change of order shows in the sums.
inline std::vector<float> floats(size_t n, Rng& rng) {
  std::vector<float> v(n);
  for (float& x : v) x = (static_cast<int32_t>(rng.next() % 4001) - 2000) / 1024.0f + std::ldexp(1.0f, -22) * (rng.next() % 5);
  return v;
}

inline std::string where(const char* what, int64_t M, int64_t N, int64_t K, size_t T, atoma::Isa isa) {
  return std::string(what) + " M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K) +
         " threads=" + std::to_string(T) + " isa=" + atoma::isa_name(isa);
}

template <typename F>
void expect_error(const char* code, F f, const char* what) {
  ++g_checks;
  try {
    f();
  } catch (const atoma::Error& e) {
    if (e.code != code) fail(std::string(what) + ": got " + e.code + ", expected " + code);
    return;
  }
  fail(std::string(what) + ": no error");
}

}  // namespace test_support
