// Reference (one element at a time) forms of the spec's reductions, sections 3 and 4. SIMD and
// CUDA paths must produce exactly these values; the tests compare them bit for bit.
#pragma once
#include "hd.h"

namespace atoma::canon {

constexpr int kLanes = 32;    // section 4: row reductions use 32 partial sums
constexpr int kChunk = 256;   // section 3: dot products add one chunk of 256 products at a time

// Folds 32 lane partials in the spec's tree order: s = 16, 8, 4, 2, 1.
ATOMA_HD float fold_lanes(float* p) {
  for (int s = 16; s >= 1; s >>= 1)
    for (int l = 0; l < s; ++l) p[l] = p[l] + p[l + s];
  return p[0];
}

ATOMA_HD float lane_sum(const float* x, int64_t n, int64_t stride = 1) {
  float p[kLanes];
  for (int l = 0; l < kLanes; ++l) p[l] = 0.0f;
  for (int64_t t = 0; t < n; ++t) p[t % kLanes] = p[t % kLanes] + x[t * stride];
  return fold_lanes(p);
}

ATOMA_HD float lane_sumsq(const float* x, int64_t n) {
  float p[kLanes];
  for (int l = 0; l < kLanes; ++l) p[l] = 0.0f;
  for (int64_t t = 0; t < n; ++t) p[t % kLanes] = fmaf_(x[t], x[t], p[t % kLanes]);
  return fold_lanes(p);
}

ATOMA_HD float row_max(const float* x, int64_t n) {
  float m = -__builtin_inff();
  for (int64_t t = 0; t < n; ++t) m = (x[t] > m) ? x[t] : m;
  return m;
}

// Lowest index among the maxima; NaN never wins. An all-NaN (or empty) row gives 0.
ATOMA_HD int64_t row_argmax(const float* x, int64_t n) {
  float m = -__builtin_inff();
  int64_t best = 0;
  bool any = false;
  for (int64_t t = 0; t < n; ++t) {
    if (x[t] > m || (!any && x[t] == m)) { m = x[t]; best = t; any = true; }
  }
  return best;
}

// Section 3: dot of a[k*sa] and b[k*sb], chunks of 256 fmas, chunk sums added in order.
ATOMA_HD float chunked_dot(const float* a, int64_t sa, const float* b, int64_t sb, int64_t K) {
  float acc = 0.0f;
  for (int64_t c = 0; c < K; c += kChunk) {
    int64_t end = c + kChunk < K ? c + kChunk : K;
    float p = 0.0f;
    for (int64_t k = c; k < end; ++k) p = fmaf_(a[k * sa], b[k * sb], p);
    acc = acc + p;
  }
  return acc;
}

}  // namespace atoma::canon
