// Matrix products against stored model weights (f32, f16, bf16 or GGUF q8_0), W stored [N, K].
// The canonical definition (docs/canonical-arithmetic.md, "Quantized weights"): widen every
// weight EXACTLY to f32 (f16 and bf16 widen losslessly; a q8_0 value is f32(d) * q, exact in f32
// because 11 + 8 significant bits fit in 24), then run the canonical f32 gemm with b_is_nk. The
// conversion happens on the fly, panel by panel, so W is never materialised as f32 whole, and
// the bytes equal dequantize-then-gemm on every ISA path and thread count.
#pragma once
#include <cstdint>

namespace atoma {

enum class WeightFormat : int { F32 = 0, F16 = 1, Bf16 = 2, Q8_0 = 3 };

constexpr int64_t kQ8Block = 32;        // weights per q8_0 block
constexpr int64_t kQ8BlockBytes = 34;   // f16 scale d, then 32 int8 q

// Bytes of one stored row of K weights. Throws ERR_SHAPE when q8_0 and K % 32 != 0.
int64_t weight_row_bytes(WeightFormat format, int64_t K);

// Parses "f32" | "f16" | "bf16" | "q8_0"; throws ERR_WEIGHT_FORMAT otherwise.
WeightFormat parse_weight_format(const char* name);

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
