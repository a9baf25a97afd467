// Row kernels: argument checks, the split into thread-pool tasks, the scalar reference table and
// the choice of table by ISA. Transcendentals are evaluated here, one element at a time, with the
// same code whatever the ISA, so only the table entries (exact by construction) differ per path.
#include "rows.h"

#include <string.h>

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "../canon/math.h"
#include "../canon/reduce.h"
#include "../core/error.h"
#include "isa.h"
#include "rows_kernels.h"
#include "thread_pool.h"

namespace atoma {
namespace rows_detail {
namespace {

// ---- scalar table: the reference forms, written out as the spec states them ----

float s_sum(const float* x, int64_t n) { return canon::lane_sum(x, n); }
float s_sumsq(const float* x, int64_t n) { return canon::lane_sumsq(x, n); }
float s_max(const float* x, int64_t n) { return canon::row_max(x, n); }
int64_t s_argmax(const float* x, int64_t n) { return canon::row_argmax(x, n); }

void s_add(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}
void s_mul(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}
void s_mul_scalar(const float* x, float s, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * s;
}
void s_div_scalar(const float* x, float s, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] / s;
}
void s_scale_mul(const float* x, float r, const float* w, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float xr = x[i] * r;
    y[i] = xr * w[i];
  }
}
void s_scores(const float* q, const float* k, int64_t k_stride, int64_t n_keys, int64_t dim,
              float scale, float* out) {
  for (int64_t j = 0; j < n_keys; ++j) {
    float d = canon::chunked_dot(q, 1, k + j * k_stride, 1, dim);
    out[j] = d * scale;
  }
}
void s_mix(const float* p, const float* v, int64_t v_stride, int64_t n_keys, int64_t dim,
           float* out) {
  for (int64_t d = 0; d < dim; ++d) out[d] = canon::chunked_dot(p, 1, v + d, v_stride, n_keys);
}

const Kernels kScalar = {s_sum,        s_sumsq,      s_max,       s_argmax, s_add, s_mul,
                         s_mul_scalar, s_div_scalar, s_scale_mul, s_scores, s_mix};

}  // namespace

const Kernels& scalar_kernels() { return kScalar; }

const Kernels& active_kernels() {
#if defined(__x86_64__) || defined(_M_X64)
  switch (active_isa()) {
    case Isa::Avx512: return avx512_kernels();
    case Isa::Avx2: return avx2_kernels();
    case Isa::Scalar: break;
  }
#endif
  return kScalar;
}

void softmax_row(const Kernels& k, const float* x, float* y, int64_t n) {
  if (n == 0) return;
  float m = k.max(x, n);
  for (int64_t t = 0; t < n; ++t) y[t] = canon::exp_f32(x[t] - m);
  float s = k.sum(y, n);
  k.div_scalar(y, s, y, n);
}

}  // namespace rows_detail

namespace {

using rows_detail::Kernels;
using rows_detail::active_kernels;

// Roughly how many element operations make a task worth handing to another thread.
constexpr int64_t kTaskWork = 1 << 15;

void check_size(const char* what, int64_t v) {
  if (v < 0) throw Error("ERR_SHAPE", std::string(what) + " must be >= 0, got " + std::to_string(v));
}

// rows * n, refusing negative sizes and products that do not fit.
int64_t checked_elems(const char* op, int64_t rows, int64_t n) {
  check_size("rows", rows);
  check_size("n", n);
  if (n != 0 && rows > std::numeric_limits<int64_t>::max() / n)
    throw Error("ERR_SHAPE", std::string(op) + ": " + std::to_string(rows) + " x " + std::to_string(n) +
                                 " elements do not fit in 64 bits");
  return rows * n;
}

// Calls fn(begin, end) over [0, n_items) in blocks. Each item is handled by exactly one call, so
// the block size and the number of threads never change a result.
template <class F>
void for_blocks(int64_t n_items, int64_t cost_per_item, const F& fn) {
  if (n_items <= 0) return;
  int64_t per_task = std::max<int64_t>(1, kTaskWork / std::max<int64_t>(1, cost_per_item));
  int64_t n_tasks = (n_items + per_task - 1) / per_task;
  if (n_tasks <= 1 || thread_count() <= 1) {
    fn(int64_t{0}, n_items);
    return;
  }
  parallel_for(static_cast<size_t>(n_tasks), [&](size_t task) {
    int64_t b = static_cast<int64_t>(task) * per_task;
    fn(b, std::min(n_items, b + per_task));
  });
}

}  // namespace

float sum(const float* x, int64_t n) {
  check_size("n", n);
  return active_kernels().sum(x, n);
}

void row_sums(const float* x, int64_t rows, int64_t n, float* out) {
  checked_elems("row_sums", rows, n);
  const Kernels& k = active_kernels();
  for_blocks(rows, n + 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) out[r] = k.sum(x + r * n, n);
  });
}

void add(const float* a, const float* b, float* y, int64_t n) {
  check_size("n", n);
  const Kernels& k = active_kernels();
  for_blocks(n, 1, [&](int64_t i0, int64_t i1) { k.add(a + i0, b + i0, y + i0, i1 - i0); });
}

void mul(const float* a, const float* b, float* y, int64_t n) {
  check_size("n", n);
  const Kernels& k = active_kernels();
  for_blocks(n, 1, [&](int64_t i0, int64_t i1) { k.mul(a + i0, b + i0, y + i0, i1 - i0); });
}

void add_rows(const float* a, int64_t rows, int64_t n, const float* row, float* y) {
  checked_elems("add_rows", rows, n);
  const Kernels& k = active_kernels();
  for_blocks(rows, n + 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) k.add(a + r * n, row, y + r * n, n);
  });
}

void mul_rows(const float* a, int64_t rows, int64_t n, const float* row, float* y) {
  checked_elems("mul_rows", rows, n);
  const Kernels& k = active_kernels();
  for_blocks(rows, n + 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) k.mul(a + r * n, row, y + r * n, n);
  });
}

void rmsnorm(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps) {
  checked_elems("rmsnorm", rows, n);
  if (n == 0) return;
  const Kernels& k = active_kernels();
  const float nf = static_cast<float>(n);
  for_blocks(rows, 2 * n + 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * n;
      float ms = k.sumsq(xr, n) / nf;
      float r_inv = 1.0f / __builtin_sqrtf(ms + eps);
      k.scale_mul(xr, r_inv, w, y + r * n, n);
    }
  });
}

void softmax(const float* x, float* y, int64_t rows, int64_t n) {
  checked_elems("softmax", rows, n);
  const Kernels& k = active_kernels();
  for_blocks(rows, 16 * n + 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) rows_detail::softmax_row(k, x + r * n, y + r * n, n);
  });
}

namespace {
template <float (*F)(float)>
void map_elems(const float* x, float* y, int64_t n) {
  for_blocks(n, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) y[i] = F(x[i]);
  });
}
}  // namespace

void unary(Unary op, const float* x, float* y, int64_t n) {
  check_size("n", n);
  switch (op) {
    case Unary::Exp: return map_elems<canon::exp_f32>(x, y, n);
    case Unary::Log: return map_elems<canon::log_f32>(x, y, n);
    case Unary::Tanh: return map_elems<canon::tanh_f32>(x, y, n);
    case Unary::Sin: return map_elems<canon::sin_f32>(x, y, n);
    case Unary::Cos: return map_elems<canon::cos_f32>(x, y, n);
    case Unary::Silu: return map_elems<canon::silu_f32>(x, y, n);
    case Unary::Gelu: return map_elems<canon::gelu_f32>(x, y, n);
  }
  throw Error("ERR_RANGE", "unknown unary op " + std::to_string(static_cast<int>(op)));
}

void check_rope_divisors(const float* freq_divisors, int64_t half) {
  if (freq_divisors == nullptr) return;
  for (int64_t i = 0; i < half; ++i)
    if (!canon::rope_divisor_ok(freq_divisors[i]))
      throw Error("ERR_RANGE", "rope: frequency divisor " + std::to_string(i) + " is " +
                                   std::to_string(freq_divisors[i]) + "; divisors must be finite and >= 1");
}

void rope_inv_freqs(int64_t rot_dims, float theta, const float* freq_divisors, float* out) {
  check_size("rot_dims", rot_dims);
  if (rot_dims % 2 != 0) throw Error("ERR_SHAPE", "rope: rot_dims must be even, got " + std::to_string(rot_dims));
  const int64_t half = rot_dims / 2;
  check_rope_divisors(freq_divisors, half);
  for (int64_t i = 0; i < half; ++i)
    out[i] = canon::rope_scaled_inv_freq_f32(static_cast<uint32_t>(i), static_cast<uint32_t>(rot_dims), theta,
                                             freq_divisors ? freq_divisors[i] : 1.0f);
}

void rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t rot_dims,
          const int32_t* positions, float theta, bool neox, const float* freq_divisors) {
  check_size("tokens", tokens);
  check_size("heads", heads);
  check_size("head_dim", head_dim);
  check_size("rot_dims", rot_dims);
  if (rot_dims > head_dim || rot_dims % 2 != 0)
    throw Error("ERR_SHAPE", "rope: rot_dims must be even and <= head_dim (" + std::to_string(head_dim) +
                                 "), got " + std::to_string(rot_dims));
  int64_t row = checked_elems("rope", heads, head_dim);
  checked_elems("rope", tokens, row);
  const int64_t half = rot_dims / 2;
  // Angles reach pos * inv_freq[0] = pos: the canonical sin/cos domain is |angle| <= 2^24, and
  // (float)pos is exact only up to 2^24, so larger or negative positions are refused.
  for (int64_t t = 0; t < tokens; ++t)
    if (positions[t] < 0 || positions[t] > (1 << 24))
      throw Error("ERR_RANGE", "rope: position " + std::to_string(positions[t]) + " of token " + std::to_string(t) +
                                   " is outside 0..16777216");
  check_rope_divisors(freq_divisors, half);
  if (half == 0 || heads == 0) return;

  // Computed once per call, in the documented order (canon::rope_scaled_inv_freq_f32).
  std::vector<float> inv_freq(static_cast<size_t>(half));
  rope_inv_freqs(rot_dims, theta, freq_divisors, inv_freq.data());

  const int64_t lo_step = neox ? 1 : 2;   // x0 of pair i sits at i*lo_step
  const int64_t hi_off = neox ? half : 1; // x1 sits hi_off after x0
  for_blocks(tokens, heads * rot_dims + 32 * half, [&](int64_t t0, int64_t t1) {
    std::vector<float> cs(static_cast<size_t>(2 * half));
    for (int64_t t = t0; t < t1; ++t) {
      for (int64_t i = 0; i < half; ++i) {
        float angle = canon::rope_angle_f32(static_cast<uint32_t>(positions[t]), inv_freq[i]);
        cs[2 * i] = canon::cos_f32(angle);
        cs[2 * i + 1] = canon::sin_f32(angle);
      }
      for (int64_t h = 0; h < heads; ++h) {
        float* xh = x + t * row + h * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const float c = cs[2 * i], s = cs[2 * i + 1];
          float* p0 = xh + i * lo_step;
          float* p1 = p0 + hi_off;
          const float x0 = *p0, x1 = *p1;
          float x0c = x0 * c, x1s = x1 * s, x0s = x0 * s, x1c = x1 * c;
          *p0 = x0c - x1s;
          *p1 = x0s + x1c;
        }
      }
    }
  });
}

void embedding(const float* table, int64_t vocab, int64_t dim, const int32_t* ids, int64_t n,
               float* out) {
  check_size("vocab", vocab);
  checked_elems("embedding", vocab, dim);
  checked_elems("embedding", n, dim);
  // All ids are checked before any row is written, so a bad id leaves out untouched.
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= vocab)
      throw Error("ERR_RANGE", "embedding: token id " + std::to_string(ids[i]) + " at position " +
                                   std::to_string(i) + " is outside the vocabulary [0, " +
                                   std::to_string(vocab) + ")");
  }
  if (dim == 0) return;
  for_blocks(n, dim, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      memcpy(out + i * dim, table + static_cast<int64_t>(ids[i]) * dim, static_cast<size_t>(dim) * sizeof(float));
  });
}

void argmax_rows(const float* x, int64_t rows, int64_t n, int32_t* out) {
  checked_elems("argmax_rows", rows, n);
  if (n > std::numeric_limits<int32_t>::max())
    throw Error("ERR_SHAPE", "argmax_rows: row length " + std::to_string(n) + " does not fit an int32 index");
  const Kernels& k = active_kernels();
  for_blocks(rows, n + 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) out[r] = static_cast<int32_t>(k.argmax(x + r * n, n));
  });
}

}  // namespace atoma
