// The CUDA side of the kernel bindings (compiled only when ATOMA_WITH_CUDA): each function takes
// the same host arrays as its CPU counterpart, copies the inputs to the GPU on its own stream,
// runs the CUDA kernel, copies the result back and waits, so the caller sees the CPU contract
// and the CPU's bytes. What the device kernels do not check (token ids, positions) is checked
// here on the host first, raising the CPU's typed errors with the CPU's messages.
#pragma once
#include <cstdint>

#include "../cpu/gemm_weights.h"
#include "../cpu/rows.h"

namespace atoma::addon::gpu {

void gemm(int64_t M, int64_t N, int64_t K, const float* A, const float* B, bool b_is_nk, float* C,
          const float* bias);
// W: N rows of K weights in `format`, widened exactly on the host, then the CUDA gemm.
void gemm_weights(int64_t M, int64_t N, int64_t K, const float* A, const void* W,
                  WeightFormat format, float* C, const float* bias);
void add(const float* a, const float* b, float* y, int64_t n);
void mul(const float* a, const float* b, float* y, int64_t n);
void add_rows(const float* a, int64_t rows, int64_t n, const float* row, float* y);
void mul_rows(const float* a, int64_t rows, int64_t n, const float* row, float* y);
void row_sums(const float* x, int64_t rows, int64_t n, float* out);
void rmsnorm(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps);
void softmax(const float* x, float* y, int64_t rows, int64_t n);
void unary(Unary op, const float* x, float* y, int64_t n);
void rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t rot_dims,
          const int32_t* positions, float theta, bool neox, const float* freq_divisors);
void attention(const float* q, int64_t n_q, int64_t n_heads, const float* k, const float* v,
               int64_t n_kv, int64_t n_kv_heads, int64_t head_dim, const int32_t* q_pos, float* out);
void embedding(const float* table, int64_t vocab, int64_t dim, const int32_t* ids, int64_t n,
               float* out);
void argmax_rows(const float* x, int64_t rows, int64_t n, int32_t* out);
// The canonical sampled token of n host logits (canon/sample.h); -1 when every one is NaN.
int64_t sample(const float* logits, int64_t n, double temperature, int64_t top_k, double top_p,
               uint64_t seed, uint64_t step);

}  // namespace atoma::addon::gpu
