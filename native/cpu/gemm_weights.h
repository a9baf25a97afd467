// Matrix products against stored model weights (f32, f16, bf16 or GGUF q8_0), W stored [N, K].
// The canonical definition (docs/canonical-arithmetic.md, "Quantized weights"): widen every
// weight EXACTLY to f32 (f16 and bf16 widen losslessly; a q8_0 value is f32(d) * q, exact in f32
// because 11 + 8 significant bits fit in 24), then run the canonical f32 gemm with b_is_nk. The
// conversion happens on the fly, panel by panel, so W is never materialised as f32 whole, and
// the bytes equal dequantize-then-gemm on every ISA path and thread count.
#pragma once
#include <cstdint>

namespace atoma {

// Q8_0x128 is q8_0 repacked for decode (pack_q8_0x128 below): the same scales and int8 values,
// so the same canonical weight values, laid out so that the decode kernel reads them in order.
// F32x16 is f32 repacked for decode the same way (pack_f32x16): the same floats, regrouped.
// Q4_0 .. Mxfp4 are GGUF's block-quantized types, stored as GGUF stores them (quant_blocks.h has
// the layouts); they are widened by the generic path on every ISA.
enum class WeightFormat : int {
  F32 = 0, F16 = 1, Bf16 = 2, Q8_0 = 3, Q8_0x128 = 4, F32x16 = 5,
  Q4_0 = 6, Q4_1 = 7, Q5_0 = 8, Q5_1 = 9, Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14,
  Iq4_Nl = 15, Iq4_Xs = 16, Mxfp4 = 17
};

constexpr int64_t kQ8Block = 32;        // weights per q8_0 block
constexpr int64_t kQ8BlockBytes = 34;   // f16 scale d, then 32 int8 q
constexpr int64_t kQ8PanelRows = 128;   // rows per panel of the q8_0x128 layout
constexpr int64_t kF32PanelRows = 16;    // rows per panel of the f32x16 layout

// Bytes of one stored row of K weights. Throws ERR_SHAPE when K is not a whole number of the
// format's blocks (32 weights, or 256 for the K-quants and iq4_xs). For
// q8_0x128 and f32x16 it is the row's share of its panel (34 bytes per 32 weights, 4 per weight).
int64_t weight_row_bytes(WeightFormat format, int64_t K);

// Rows a stored [N, K] weight occupies: N, or N rounded up to whole panels (128 rows for
// q8_0x128, 16 for f32x16).
// Its byte size is weight_stored_rows(format, N) * weight_row_bytes(format, K).
int64_t weight_stored_rows(WeightFormat format, int64_t N);

// Parses "f32" | "f16" | "bf16" | "q8_0" | "q8_0x128" | "f32x16" | "q4_0" | "q4_1" | "q5_0" |
// "q5_1" | "q2_k" | "q3_k" | "q4_k" | "q5_k" | "q6_k" | "iq4_nl" | "iq4_xs" | "mxfp4";
// throws ERR_WEIGHT_FORMAT otherwise.
WeightFormat parse_weight_format(const char* name);

// Repacks a GGUF q8_0 weight [N, K] (W_bytes = N * weight_row_bytes(Q8_0, K)) into the q8_0x128
// layout, out_bytes = weight_stored_rows(Q8_0x128, N) * weight_row_bytes(Q8_0x128, K). Layout:
// panels of 128 rows (the last one padded with zero rows); inside a panel, for each 32-weight
// block b in order: the 128 rows' f16 scales (256 bytes), then for k = 0..31 the 128 rows' int8
// q of weight 32b + k (128 bytes each). Only bytes move, so every weight keeps its value. Why:
// the decode kernel puts 16 rows in the lanes of a vector; row-major q8_0 makes it transpose
// every block in registers, this layout gives it each k's 16 rows as one 16-byte load, and a
// whole panel is one sequential stream.
void pack_q8_0x128(const void* W, int64_t W_bytes, int64_t N, int64_t K, void* out, int64_t out_bytes);

// Repacks an f32 weight [N, K] (W_bytes = N * K * 4, any alignment) into the f32x16 layout,
// out_bytes = weight_stored_rows(F32x16, N) * K * 4: panels of 16 rows (the last padded with
// zero rows), inside a panel for k = 0..K-1 the 16 rows' weight k (64 bytes, one cache line).
// Why: the f32 decode GEMV loads 16 rows x 16 k and transposes them in registers, one stream per
// row; in this layout each k's 16 outputs are one aligned load and the matrix is one sequential
// stream, which the hardware prefetchers follow at full bandwidth.
void pack_f32x16(const void* W, int64_t W_bytes, int64_t N, int64_t K, void* out, int64_t out_bytes);

// The canonical widening: out[r * K + k] = f32 value of weight (r, k), rows [0, rows).
void dequantize_weights(WeightFormat format, const void* W, int64_t rows, int64_t K, float* out);

// C[i*ldc + j] = sum_k A[i*lda + k] * w(j, k) (+ bias[j]); w(j, k) the f32 value of weight row j.
// W_bytes must be exactly N * weight_row_bytes(format, K) (ERR_WEIGHT_BYTES otherwise).
// Same argument rules as atoma::gemm (C must not alias A, W or bias).
void gemm_weights(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const void* W,
                  int64_t W_bytes, WeightFormat format, float* C, int64_t ldc, const float* bias);

// One product of gemm_weights_many: C[i*ldc + j] = A row i . weight row j (+ bias[j]), j < N.
struct WeightProduct {
  const void* W;
  int64_t W_bytes;
  WeightFormat format;
  int64_t N;
  float* C;
  int64_t ldc;
  const float* bias;   // may be null
};

// Several products that share the input rows A[M, K] (a layer's Q, K and V; gate and up), each
// with exactly the bytes gemm_weights would give it alone. Why: at decode (M = 1) a product of a
// few hundred KiB is latency-bound, and one thread-pool dispatch over all their columns replaces
// one per weight. Same argument checks as gemm_weights, per product; no C may alias another.
void gemm_weights_many(int64_t M, int64_t K, const float* A, int64_t lda, const WeightProduct* products,
                       int64_t count);

// The gated MLP input of a SwiGLU block: gate = A x Wg^T, up = A x Wu^T (each [M, N], bytes as
// gemm_weights), then act[i*N + j] = canon::silu_f32(gate[i*N + j]) * up[i*N + j] -- the bytes of
// unary silu followed by an f32 multiply. Why fused: at decode each thread takes the same column
// range of both weights and applies the (scalar, correctly rounded) silu to its own columns, so
// the silu is spread over the threads with no second dispatch. gate, up and act are dense
// (leading dimension N) and must not overlap one another, A, the weights or bias.
void gemm_weights_swiglu(int64_t M, int64_t K, const float* A, int64_t lda, const WeightProduct& gate,
                         const WeightProduct& up, float* act);

// act[i] = canon::silu_f32(gate[i]) * up[i] for i < n: the epilogue alone (for devices that
// computed gate and up elsewhere).
void swiglu(const float* gate, const float* up, float* act, int64_t n);

}  // namespace atoma
