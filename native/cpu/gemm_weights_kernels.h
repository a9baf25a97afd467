// Internal: per-ISA converters of weight rows to f32. Conversion is exact, so which converter
// runs never changes a byte; the SIMD ones only make decode (which is bandwidth-bound on the
// stored bytes) faster.
#pragma once
#include <stdint.h>

namespace atoma::wq_detail {

// dst[r * ldd + k] = weight(r, k0 + k) for r < rows, k < kc. src points at row 0's bytes;
// rows are row_bytes apart. For q8_0, k0 and kc are multiples of 32.
using ConvertRows = void (*)(const uint8_t* src, int64_t row_bytes, int64_t rows, int64_t k0,
                             int64_t kc, float* dst, int64_t ldd);

struct Converters {
  ConvertRows f32, f16, bf16, q8_0;
};

const Converters& portable_converters();
#if defined(__x86_64__) || defined(_M_X64)
const Converters& avx512_converters();
#endif

// Decode-sized A x W^T read straight from the stored rows (no f32 panel): C rows 0..M-1, columns
// j0..j1-1, each output in the canonical chunked order, so the bytes equal widen-then-f32-gemm.
// W points at row 0's bytes; rows are row_bytes apart, and 32 * row_bytes fits in int32.
using FusedGemv = void (*)(int64_t M, int64_t j0, int64_t j1, int64_t K, const float* A,
                           int64_t lda, const uint8_t* W, int64_t row_bytes, float* C, int64_t ldc,
                           const float* bias);

struct FusedGemvs {
  FusedGemv f16, bf16, q8_0;   // nullptr: no fused kernel for that format
  int64_t max_m;               // handles 1 <= M <= max_m
  int64_t group;               // column ranges should be multiples of this
  // q8_0x128 (W is the packed matrix, row_bytes its rows' share; j0 must be a multiple of 128).
  FusedGemv q8_0x128 = nullptr;
};

#if defined(__x86_64__) || defined(_M_X64)
const FusedGemvs& avx512_fused_gemvs();
const FusedGemvs& avx2_fused_gemvs();
#endif

// The exact f16 -> f32 widening (NaNs keep their payload and come out quiet, as F16C does).
float half_to_float(uint16_t h);

}  // namespace atoma::wq_detail
