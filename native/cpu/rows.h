// Canonical row kernels (DETERMINISM.md sections 4 and 5). Every function gives the same bytes on
// the scalar, AVX2 and AVX-512 paths and for any thread count: rows are split into tasks and each
// output element is written by exactly one task. All float pointers are contiguous row-major.
// Bad arguments throw atoma::Error ("ERR_SHAPE" for negative or inconsistent sizes, "ERR_RANGE"
// for an index out of range).
#pragma once
#include <stdint.h>

namespace atoma {

// Section 4: 32-lane sum (equals canon::lane_sum).
float sum(const float* x, int64_t n);
// out[r] = sum(x + r*n, n).
void row_sums(const float* x, int64_t rows, int64_t n, float* out);

// Elementwise y = a + b, y = a * b over n elements (y may alias a or b).
void add(const float* a, const float* b, float* y, int64_t n);
void mul(const float* a, const float* b, float* y, int64_t n);

// Broadcast one [n] vector over [rows, n]: y[r][i] = a[r][i] + row[i] (bias) or * row[i] (scale).
void add_rows(const float* a, int64_t rows, int64_t n, const float* row, float* y);
void mul_rows(const float* a, int64_t rows, int64_t n, const float* row, float* y);

// Section 5: ms = lane_sumsq(x)/(float)n, r = 1/sqrt(ms + eps), y = (x*r)*w.
void rmsnorm(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps);

// Section 5: m = row_max, e = exp_f32(x - m), s = lane_sum(e), y = e / s.
void softmax(const float* x, float* y, int64_t rows, int64_t n);

// Per element via native/canon/math.h.
enum class Unary { Exp, Log, Tanh, Sin, Cos, Silu, Gelu };
void unary(Unary op, const float* x, float* y, int64_t n);

// Rotary position embedding, in place on x [tokens, heads, head_dim]. Pairs are (x[2i], x[2i+1])
// when !neox (GGUF llama layout) or (x[i], x[i + rot_dims/2]) when neox (HF layout); dimensions
// >= rot_dims pass through. rot_dims must be even and <= head_dim. freq_divisors, when given,
// holds rot_dims/2 per-pair divisors of the inverse frequencies (RoPE scaling: linear, Llama 3,
// GGUF rope_freqs), each finite and >= 1 (ERR_RANGE otherwise); nullptr means no scaling.
void rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t rot_dims,
          const int32_t* positions, float theta, bool neox, const float* freq_divisors = nullptr);

// The inverse frequencies rope uses: out[i] = canon::rope_scaled_inv_freq_f32(i, rot_dims, theta,
// freq_divisors ? freq_divisors[i] : 1) for i < rot_dims/2 (a model derives Llama 3 divisors
// from these).
void rope_inv_freqs(int64_t rot_dims, float theta, const float* freq_divisors, float* out);

// ERR_RANGE naming the first divisor that is not finite and >= 1 (shared with the CUDA bindings).
void check_rope_divisors(const float* freq_divisors, int64_t half);

// out[i] = table[ids[i]] for n ids; table is [vocab, dim], out is [n, dim].
void embedding(const float* table, int64_t vocab, int64_t dim, const int32_t* ids, int64_t n,
               float* out);

// out[r] = lowest index among the row's maxima; NaN is never selected (all-NaN or empty row: 0).
void argmax_rows(const float* x, int64_t rows, int64_t n, int32_t* out);

}  // namespace atoma
