// Internal: the per-ISA building blocks of rows.cc and attention.cc. Each ISA file fills one
// table; every entry must return exactly what the scalar table (the canon/reduce.h reference
// forms) returns. This header declares only plain data and function pointers: the ISA files are
// compiled with wider target flags, so they must not instantiate inline code that a portable
// translation unit could end up linking against.
#pragma once
#include <stdint.h>

namespace atoma::rows_detail {

struct Kernels {
  float (*sum)(const float* x, int64_t n);          // canon::lane_sum
  float (*sumsq)(const float* x, int64_t n);        // canon::lane_sumsq
  float (*max)(const float* x, int64_t n);          // canon::row_max
  int64_t (*argmax)(const float* x, int64_t n);     // canon::row_argmax
  void (*add)(const float* a, const float* b, float* y, int64_t n);
  void (*mul)(const float* a, const float* b, float* y, int64_t n);
  void (*mul_scalar)(const float* x, float s, float* y, int64_t n);                 // x * s
  void (*div_scalar)(const float* x, float s, float* y, int64_t n);                 // x / s
  void (*scale_mul)(const float* x, float r, const float* w, float* y, int64_t n);  // (x*r)*w
  // out[j] = canon::chunked_dot(q, 1, k + j*k_stride, 1, dim) * scale, j < n_keys.
  void (*scores)(const float* q, const float* k, int64_t k_stride, int64_t n_keys, int64_t dim,
                 float scale, float* out);
  // out[d] = canon::chunked_dot(p, 1, v + d, v_stride, n_keys), d < dim.
  void (*mix)(const float* p, const float* v, int64_t v_stride, int64_t n_keys, int64_t dim,
              float* out);
};

const Kernels& scalar_kernels();
#if defined(__x86_64__) || defined(_M_X64)
const Kernels& avx2_kernels();
const Kernels& avx512_kernels();
#endif

// The table for atoma::active_isa().
const Kernels& active_kernels();

// Section 5 softmax of one row with the given table (y may alias x); shared with attention.
void softmax_row(const Kernels& k, const float* x, float* y, int64_t n);

}  // namespace atoma::rows_detail
