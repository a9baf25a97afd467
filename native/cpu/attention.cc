// Causal grouped-query attention, one (query row, head) pair per unit of work. A pair reads only
// its own query, position and the visible keys/values, so its bytes cannot depend on the batch,
// on prefill vs decode, or on how pairs are spread over threads.
#include "attention.h"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "../core/error.h"
#include "rows_kernels.h"
#include "thread_pool.h"

namespace atoma {

namespace {
void check_size(const char* what, int64_t v) {
  if (v < 0) throw Error("ERR_SHAPE", std::string("attention: ") + what + " must be >= 0, got " + std::to_string(v));
}
int64_t mul_checked(int64_t a, int64_t b) {
  if (b != 0 && a > std::numeric_limits<int64_t>::max() / b)
    throw Error("ERR_SHAPE", "attention: tensor size does not fit in 64 bits");
  return a * b;
}
}  // namespace

void attention(const float* q, int64_t n_q, int64_t n_heads, const float* k, const float* v,
               int64_t n_kv, int64_t n_kv_heads, int64_t head_dim, const int32_t* q_pos,
               float* out) {
  check_size("n_q", n_q);
  check_size("n_heads", n_heads);
  check_size("n_kv", n_kv);
  check_size("n_kv_heads", n_kv_heads);
  check_size("head_dim", head_dim);
  if (n_kv_heads == 0 || n_heads % n_kv_heads != 0)
    throw Error("ERR_SHAPE", "attention: n_heads (" + std::to_string(n_heads) +
                                 ") must be a multiple of n_kv_heads (" + std::to_string(n_kv_heads) + ")");
  const int64_t q_stride = mul_checked(n_heads, head_dim);
  const int64_t kv_stride = mul_checked(n_kv_heads, head_dim);
  mul_checked(n_q, q_stride);
  mul_checked(n_kv, kv_stride);
  for (int64_t i = 0; i < n_q; ++i) {
    if (q_pos[i] < 0 || q_pos[i] >= n_kv)
      throw Error("ERR_RANGE", "attention: query " + std::to_string(i) + " has position " +
                                   std::to_string(q_pos[i]) + ", outside the " + std::to_string(n_kv) +
                                   " keys [0, " + std::to_string(n_kv) + ")");
  }
  if (n_q == 0 || n_heads == 0 || head_dim == 0) return;

  const int64_t group = n_heads / n_kv_heads;
  const float scale = 1.0f / __builtin_sqrtf(static_cast<float>(head_dim));
  const rows_detail::Kernels& kern = rows_detail::active_kernels();

  auto one = [&](int64_t pair, std::vector<float>& p) {
    const int64_t i = pair / n_heads, h = pair % n_heads, kvh = h / group;
    const int64_t n_vis = static_cast<int64_t>(q_pos[i]) + 1;
    p.resize(static_cast<size_t>(n_vis));
    kern.scores(q + i * q_stride + h * head_dim, k + kvh * head_dim, kv_stride, n_vis, head_dim, scale, p.data());
    rows_detail::softmax_row(kern, p.data(), p.data(), n_vis);
    kern.mix(p.data(), v + kvh * head_dim, kv_stride, n_vis, head_dim, out + i * q_stride + h * head_dim);
  };

  // Pairs are grouped into tasks of roughly equal work; the grouping never changes a byte.
  const int64_t n_pairs = n_q * n_heads;
  const int64_t pair_cost = std::max<int64_t>(1, (n_kv / 2 + 1) * head_dim * 2);
  const int64_t per_task = std::max<int64_t>(1, (int64_t{1} << 15) / pair_cost);
  const int64_t n_tasks = (n_pairs + per_task - 1) / per_task;
  if (n_tasks <= 1 || thread_count() <= 1) {
    std::vector<float> p;
    for (int64_t pair = 0; pair < n_pairs; ++pair) one(pair, p);
    return;
  }
  parallel_for(static_cast<size_t>(n_tasks), [&](size_t task) {
    std::vector<float> p;
    const int64_t b = static_cast<int64_t>(task) * per_task;
    const int64_t e = std::min(n_pairs, b + per_task);
    for (int64_t pair = b; pair < e; ++pair) one(pair, p);
  });
}

}  // namespace atoma
