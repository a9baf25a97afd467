// Canonical causal grouped-query attention (DETERMINISM.md sections 3-5). A query row's output
// depends only on that row, its position and the keys/values it can see: never on other rows,
// the batch, prefill vs decode, the ISA path or the thread count.
#pragma once
#include <stdint.h>

namespace atoma {

// q [n_q, n_heads, head_dim]; k, v [n_kv, n_kv_heads, head_dim] (key j has position j);
// out [n_q, n_heads, head_dim]. Head h reads kv head h / (n_heads / n_kv_heads); n_heads must be
// a multiple of n_kv_heads (else ERR_SHAPE). Query i sees keys j <= q_pos[i], and
// 0 <= q_pos[i] < n_kv (else ERR_RANGE).
// s_j = chunked_dot(q, k_j, head_dim) * (1.0f / sqrt((float)head_dim)); p = softmax(s) over the
// visible keys; out[d] = chunked dot over visible keys j of p_j * v_j[d].
void attention(const float* q, int64_t n_q, int64_t n_heads, const float* k, const float* v,
               int64_t n_kv, int64_t n_kv_heads, int64_t head_dim, const int32_t* q_pos,
               float* out);

}  // namespace atoma
