// Philox4x32-10 (Random123) and the spec's seeded test values (DETERMINISM.md section 1).
#pragma once
#include "hd.h"

namespace atoma::canon {

struct Philox4 { uint32_t v[4]; };

ATOMA_HD void mulhilo32(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  uint64_t p = (uint64_t)a * (uint64_t)b;
  *hi = (uint32_t)(p >> 32);
  *lo = (uint32_t)p;
}

ATOMA_HD Philox4 philox4x32_10(Philox4 ctr, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo32(0xD2511F53u, ctr.v[0], &hi0, &lo0);
    mulhilo32(0xCD9E8D57u, ctr.v[2], &hi1, &lo1);
    Philox4 next = {{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    ctr = next;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return ctr;
}

// Word 0 of Philox at counter (lo32(i), hi32(i), stream, 0), key (lo32(seed), hi32(seed)).
ATOMA_HD uint32_t philox_word(uint64_t seed, uint32_t stream, uint64_t i) {
  Philox4 c = {{(uint32_t)i, (uint32_t)(i >> 32), stream, 0u}};
  return philox4x32_10(c, (uint32_t)seed, (uint32_t)(seed >> 32)).v[0];
}

// Uniform in [0, 1) with 24 bits: exact in binary32.
ATOMA_HD float philox_unit(uint64_t seed, uint32_t stream, uint64_t i) {
  return (float)(philox_word(seed, stream, i) >> 8) * 5.9604644775390625e-08f;  // 2^-24
}

// The seeded test tensor element, exact in [-1, 1).
ATOMA_HD float seeded_value(uint64_t seed, uint32_t stream, uint64_t i) {
  return 2.0f * philox_unit(seed, stream, i) - 1.0f;
}

}  // namespace atoma::canon
