// One decoder per GGUF block-quantized type: a block's bytes -> its f32 weights, in the exact f32
// operation order of docs/canonical-arithmetic.md ("GGUF block types"), which is ggml's reference
// dequantisation. Every product below is exact in f32 (its integer factors have few enough
// significant bits), so the only rounding a value sees is the final add or subtract of a min,
// and it is one IEEE operation: the file must be compiled with -ffp-contract=off.
// Header-only and free of host-only calls so that a CUDA translation unit can include it.
#pragma once
#include <stdint.h>

#if defined(__CUDACC__)
#define ATOMA_QB_FN __host__ __device__ inline
#else
#define ATOMA_QB_FN inline
#endif

namespace atoma::qb {

constexpr int kSmallBlock = 32;   // weights per Q4_0/Q4_1/Q5_0/Q5_1/IQ4_NL/MXFP4 block
constexpr int kSuperBlock = 256;  // weights per K-quant / IQ4_XS super-block

ATOMA_QB_FN uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
ATOMA_QB_FN uint32_t u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

// The exact f16 -> f32 widening (subnormals normalised, NaN payload kept and quieted).
ATOMA_QB_FN float f16(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13) | (mant ? 0x00400000u : 0u);
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    int e = -1;
    do {
      mant <<= 1;
      ++e;
    } while ((mant & 0x400u) == 0);
    bits = sign | (static_cast<uint32_t>(112 - e) << 23) | ((mant & 0x3ffu) << 13);
  }
  union { uint32_t u; float f; } v{bits};
  return v.f;
}

ATOMA_QB_FN float bits_f32(uint32_t bits) {
  union { uint32_t u; float f; } v{bits};
  return v.f;
}

// The 4-bit non-linear codebook of IQ4_NL / IQ4_XS.
ATOMA_QB_FN int iq4nl_value(int i) {
  constexpr int8_t t[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  return t[i];
}
// E2M1 values, doubled (the E8M0 scale is halved to match).
ATOMA_QB_FN int fp4x2_value(int i) {
  constexpr int8_t t[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  return t[i];
}

// Q4_0, 18 bytes: f16 d, 16 bytes of nibbles. y[j] = (lo(qs[j]) - 8) * d, y[j+16] = (hi - 8) * d.
ATOMA_QB_FN void q4_0(const uint8_t* b, float* y) {
  const float d = f16(u16(b));
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((b[2 + j] & 0xF) - 8) * d;
    y[j + 16] = static_cast<float>((b[2 + j] >> 4) - 8) * d;
  }
}

// Q4_1, 20 bytes: f16 d, f16 m, 16 bytes of nibbles. y = q * d + m.
ATOMA_QB_FN void q4_1(const uint8_t* b, float* y) {
  const float d = f16(u16(b)), m = f16(u16(b + 2));
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(b[4 + j] & 0xF) * d + m;
    y[j + 16] = static_cast<float>(b[4 + j] >> 4) * d + m;
  }
}

// Q5_0, 22 bytes: f16 d, u32 qh (bit j: high bit of weight j), 16 bytes of nibbles.
ATOMA_QB_FN void q5_0(const uint8_t* b, float* y) {
  const float d = f16(u16(b));
  const uint32_t qh = u32(b + 2);
  for (int j = 0; j < 16; ++j) {
    const int h0 = static_cast<int>((qh >> j) & 1u) << 4, h1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
    y[j] = static_cast<float>(((b[6 + j] & 0xF) | h0) - 16) * d;
    y[j + 16] = static_cast<float>(((b[6 + j] >> 4) | h1) - 16) * d;
  }
}

// Q5_1, 24 bytes: f16 d, f16 m, u32 qh, 16 bytes of nibbles. y = q * d + m.
ATOMA_QB_FN void q5_1(const uint8_t* b, float* y) {
  const float d = f16(u16(b)), m = f16(u16(b + 2));
  const uint32_t qh = u32(b + 4);
  for (int j = 0; j < 16; ++j) {
    const int h0 = static_cast<int>((qh >> j) & 1u) << 4, h1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
    y[j] = static_cast<float>((b[8 + j] & 0xF) | h0) * d + m;
    y[j + 16] = static_cast<float>((b[8 + j] >> 4) | h1) * d + m;
  }
}

// IQ4_NL, 18 bytes: f16 d, 16 bytes of codebook indices. y = d * table[i].
ATOMA_QB_FN void iq4_nl(const uint8_t* b, float* y) {
  const float d = f16(u16(b));
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(iq4nl_value(b[2 + j] & 0xF));
    y[j + 16] = d * static_cast<float>(iq4nl_value(b[2 + j] >> 4));
  }
}

// MXFP4, 17 bytes: E8M0 exponent e, 16 bytes of E2M1 codes. d = 2^(e-128) (half the E8M0 scale,
// built bit by bit: subnormal for e < 2), y = fp4x2[i] * d.
ATOMA_QB_FN void mxfp4(const uint8_t* b, float* y) {
  const uint8_t e = b[0];
  const float d = bits_f32(e < 2 ? (0x00200000u << e) : (static_cast<uint32_t>(e - 1) << 23));
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(fp4x2_value(b[1 + j] & 0xF)) * d;
    y[j + 16] = static_cast<float>(fp4x2_value(b[1 + j] >> 4)) * d;
  }
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K block's 12 scale bytes.
ATOMA_QB_FN void scale_min_k4(int j, const uint8_t* s, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q2_K, 84 bytes: 16 scale bytes (lo nibble scale, hi nibble min), 64 bytes of 2-bit q, f16 d,
// f16 dmin. Sub-block of 16: dl = d * sc, ml = dmin * m, y = dl * q - ml.
ATOMA_QB_FN void q2_k(const uint8_t* b, float* y) {
  const uint8_t* sc = b;
  const uint8_t* q = b + 16;
  const float d = f16(u16(b + 80)), dmin = f16(u16(b + 82));
  int is = 0;
  for (int n = 0; n < 256; n += 128, q += 32)
    for (int shift = 0; shift < 8; shift += 2)
      for (int half = 0; half < 2; ++half, ++is) {
        const float dl = d * static_cast<float>(sc[is] & 0xF), ml = dmin * static_cast<float>(sc[is] >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[16 * half + l] >> shift) & 3) - ml;
      }
}

// Q3_K, 110 bytes: 32 bytes hmask, 64 bytes of 2-bit q, 12 bytes of 6-bit scales, f16 d.
// Sub-block of 16: dl = d * (s - 32), y = dl * (q - (hmask bit ? 0 : 4)).
ATOMA_QB_FN void q3_k(const uint8_t* b, float* y) {
  const uint8_t* hm = b;
  const uint8_t* q = b + 32;
  const uint8_t* s = b + 96;
  const float d = f16(u16(b + 108));
  int sc[16];
  for (int i = 0; i < 16; ++i) {
    const int lo = i < 8 ? (s[i] & 0xF) : (s[i - 8] >> 4);
    const int hi = (s[8 + (i & 3)] >> (2 * (i >> 2))) & 3;
    sc[i] = lo | (hi << 4);
  }
  int is = 0;
  uint8_t m = 1;
  for (int n = 0; n < 256; n += 128, q += 32)
    for (int shift = 0; shift < 8; shift += 2, m = static_cast<uint8_t>(m << 1))
      for (int half = 0; half < 2; ++half, ++is) {
        const float dl = d * static_cast<float>(sc[is] - 32);
        for (int l = 0; l < 16; ++l) {
          const int v = ((q[16 * half + l] >> shift) & 3) - ((hm[16 * half + l] & m) ? 0 : 4);
          *y++ = dl * static_cast<float>(v);
        }
      }
}

// Q4_K, 144 bytes: f16 d, f16 dmin, 12 scale bytes, 128 bytes of nibbles. Per 64 weights, two
// sub-blocks of 32: d1 = d * sc, m1 = dmin * m, y = d1 * q - m1 (low nibbles first, then high).
ATOMA_QB_FN void q4_k(const uint8_t* b, float* y) {
  const float d = f16(u16(b)), dmin = f16(u16(b + 2));
  const uint8_t* s = b + 4;
  const uint8_t* q = b + 16;
  for (int j = 0; j < 4; ++j, q += 32) {
    int sc, m;
    scale_min_k4(2 * j, s, &sc, &m);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
    scale_min_k4(2 * j + 1, s, &sc, &m);
    const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
  }
}

// Q5_K, 176 bytes: f16 d, f16 dmin, 12 scale bytes, 32 bytes qh, 128 bytes of nibbles. As Q4_K
// with q = nibble + 16 * (bit 2j of qh[l] for the low half, bit 2j+1 for the high half).
ATOMA_QB_FN void q5_k(const uint8_t* b, float* y) {
  const float d = f16(u16(b)), dmin = f16(u16(b + 2));
  const uint8_t* s = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* q = b + 48;
  for (int j = 0; j < 4; ++j, q += 32) {
    int sc, m;
    scale_min_k4(2 * j, s, &sc, &m);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
    scale_min_k4(2 * j + 1, s, &sc, &m);
    const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
    const int u1 = 1 << (2 * j), u2 = 2 << (2 * j);
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((q[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((q[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
  }
}

// Q6_K, 210 bytes: 128 bytes ql, 64 bytes qh, 16 int8 scales, f16 d. y = (d * sc) * (q - 32).
ATOMA_QB_FN void q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = f16(u16(b + 208));
  for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8)
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
}

// IQ4_XS, 136 bytes: f16 d, u16 scales_h, 4 bytes scales_l, 128 bytes of codebook indices. Per 32:
// ls = 4 bits of scales_l | 2 bits of scales_h << 4, dl = d * (ls - 32), y = dl * table[i].
ATOMA_QB_FN void iq4_xs(const uint8_t* b, float* y) {
  const float d = f16(u16(b));
  const uint16_t sh = u16(b + 2);
  const uint8_t* sl = b + 4;
  const uint8_t* q = b + 8;
  for (int ib = 0; ib < 8; ++ib, y += 32, q += 16) {
    const int ls = ((sl[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((sh >> (2 * ib)) & 3) << 4);
    const float dl = d * static_cast<float>(ls - 32);
    for (int j = 0; j < 16; ++j) {
      y[j] = dl * static_cast<float>(iq4nl_value(q[j] & 0xF));
      y[j + 16] = dl * static_cast<float>(iq4nl_value(q[j] >> 4));
    }
  }
}

}  // namespace atoma::qb
