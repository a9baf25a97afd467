// Internal: per-ISA converters of weight rows to f32. Conversion is exact, so which converter
// runs never changes a byte; the SIMD ones only make decode (which is bandwidth-bound on the
// stored bytes) faster.
#pragma once
#include <stdint.h>

namespace atoma {
enum class WeightFormat : int;
}

namespace atoma::wq_detail {

// dst[r * ldd + k] = weight(r, k0 + k) for r < rows, k < kc. src points at row 0's bytes;
// rows are row_bytes apart. For q8_0, k0 and kc are multiples of 32.
using ConvertRows = void (*)(const uint8_t* src, int64_t row_bytes, int64_t rows, int64_t k0,
                             int64_t kc, float* dst, int64_t ldd);

// Blocks [b0, b1) of one q8_0x128 panel P (K weights per row) widened to f32 in [K, 128]
// order: dst[(32 b + k) * ldd + r] = weight(r, 32 b + k) for all 128 rows r of the panel
// (padding rows are zero). Why k-major: the panel stores each k's 128 rows side by side, so the
// widening is a straight vector stream, and the f32 gemm takes B as [K, N] with the same bytes.
using UnpackPanelKn = void (*)(const uint8_t* P, int64_t b0, int64_t b1, float* dst, int64_t ldd);

struct Converters {
  ConvertRows f32, f16, bf16, q8_0;
  UnpackPanelKn q8_0x128_kn;
};

const Converters& portable_converters();

// A GGUF block-quantized type (quant_blocks.h): weights and bytes per block, and its row
// converter (k0 and kc multiples of the block). Generic C++ on every ISA: the values are exact.
struct BlockType {
  const char* name;
  int64_t weights, bytes;
  ConvertRows convert;
};
// Fills *out and returns true for Q4_0 .. Mxfp4; false for every other format.
bool block_type(WeightFormat f, BlockType* out);
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
  // f32x16 (W the packed matrix; j0 must be a multiple of 16).
  FusedGemv f32x16 = nullptr;
};

#if defined(__x86_64__) || defined(_M_X64)
// Any M: C rows 0..M-1, columns j0..j1-1 (j0 a multiple of 16) of A x W^T for an f32x16 W, in the
// canonical chunked order, read from the panels in place (gemm_weights_avx512.cc).
void avx512_gemm_f32x16(int64_t M, int64_t j0, int64_t j1, int64_t K, const float* A, int64_t lda,
                        const uint8_t* W, float* C, int64_t ldc, const float* bias);
const FusedGemvs& avx512_fused_gemvs();
const FusedGemvs& avx2_fused_gemvs();
#endif

// The exact f16 -> f32 widening (NaNs keep their payload and come out quiet, as F16C does).
float half_to_float(uint16_t h);

}  // namespace atoma::wq_detail
