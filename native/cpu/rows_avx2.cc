#pragma GCC target("avx2,fma")
// AVX2 + FMA row kernels. Each one performs, per lane and per output, exactly the operations of
// the reference forms in canon/reduce.h in the same order: the 32 lanes of a row sum are four ymm
// accumulators, dot products over a head dimension run across 8 keys at once (one key per lane),
// and P x V runs across the head dimension (one output per lane). Only the intrinsics header is
// included here (see rows_kernels.h for why).
#include <immintrin.h>
#include <stdint.h>

#include "rows_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

namespace atoma::rows_detail {
namespace {

constexpr int kChunk = 256;  // section 3

// All-ones in the first r lanes (r clamped to 0..8), for maskload/maskstore/blendv.
inline __m256i lanes_mask(int64_t r) {
  const int c = r <= 0 ? 0 : r >= 8 ? 8 : static_cast<int>(r);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Section 4 fold of 32 lanes held as p[0..7] = a0, p[8..15] = a1, p[16..23] = a2, p[24..31] = a3.
inline float fold32(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  a0 = _mm256_add_ps(a0, a2);  // s = 16
  a1 = _mm256_add_ps(a1, a3);
  a0 = _mm256_add_ps(a0, a1);  // s = 8
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(a0), _mm256_extractf128_ps(a0, 1));  // s = 4
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));                                           // s = 2
  x = _mm_add_ss(x, _mm_shuffle_ps(x, x, 1));                                       // s = 1
  return _mm_cvtss_f32(x);
}

float v_sum(const float* x, int64_t n) {
  __m256 a[4];
  for (int v = 0; v < 4; ++v) a[v] = _mm256_setzero_ps();
  int64_t t = 0;
  for (; t + 32 <= n; t += 32)
    for (int v = 0; v < 4; ++v) a[v] = _mm256_add_ps(a[v], _mm256_loadu_ps(x + t + 8 * v));
  if (t < n) {  // lanes past the end are left exactly as they are
    for (int v = 0; v < 4; ++v) {
      const __m256i m = lanes_mask(n - t - 8 * v);
      if (_mm256_testz_si256(m, m)) break;
      __m256 s = _mm256_add_ps(a[v], _mm256_maskload_ps(x + t + 8 * v, m));
      a[v] = _mm256_blendv_ps(a[v], s, _mm256_castsi256_ps(m));
    }
  }
  return fold32(a[0], a[1], a[2], a[3]);
}

float v_sumsq(const float* x, int64_t n) {
  __m256 a[4];
  for (int v = 0; v < 4; ++v) a[v] = _mm256_setzero_ps();
  int64_t t = 0;
  for (; t + 32 <= n; t += 32)
    for (int v = 0; v < 4; ++v) {
      const __m256 xv = _mm256_loadu_ps(x + t + 8 * v);
      a[v] = _mm256_fmadd_ps(xv, xv, a[v]);
    }
  if (t < n) {
    for (int v = 0; v < 4; ++v) {
      const __m256i m = lanes_mask(n - t - 8 * v);
      if (_mm256_testz_si256(m, m)) break;
      const __m256 xv = _mm256_maskload_ps(x + t + 8 * v, m);
      a[v] = _mm256_blendv_ps(a[v], _mm256_fmadd_ps(xv, xv, a[v]), _mm256_castsi256_ps(m));
    }
  }
  return fold32(a[0], a[1], a[2], a[3]);
}

// Lowest t with x[t] == m (so +0 and -0 match each other), or -1.
int64_t first_equal(const float* x, int64_t n, float m) {
  const __m256 mv = _mm256_set1_ps(m);
  for (int64_t t = 0; t < n; t += 8) {
    const __m256i k = lanes_mask(n - t);
    const __m256 eq = _mm256_and_ps(_mm256_cmp_ps(_mm256_maskload_ps(x + t, k), mv, _CMP_EQ_OQ), _mm256_castsi256_ps(k));
    const int bits = _mm256_movemask_ps(eq);
    if (bits) return t + __builtin_ctz(static_cast<unsigned>(bits));
  }
  return -1;
}

// Largest non-NaN value (-inf if none). Signs of zero are not resolved here.
float max_value(const float* x, int64_t n) {
  __m256 m = _mm256_set1_ps(-__builtin_inff());
  int64_t t = 0;
  for (; t + 8 <= n; t += 8) m = _mm256_max_ps(_mm256_loadu_ps(x + t), m);  // (x > m) ? x : m
  if (t < n) {
    const __m256i k = lanes_mask(n - t);
    m = _mm256_blendv_ps(m, _mm256_max_ps(_mm256_maskload_ps(x + t, k), m), _mm256_castsi256_ps(k));
  }
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
  return _mm_cvtss_f32(h);
}

// The sequential scan keeps the first element of the largest value; values that compare equal
// have equal bits except for +0 / -0, so only a zero maximum needs the first zero looked up.
float v_max(const float* x, int64_t n) {
  float m = max_value(x, n);
  if (m == 0.0f) return x[first_equal(x, n, m)];
  return m;
}

int64_t v_argmax(const float* x, int64_t n) {
  int64_t i = first_equal(x, n, max_value(x, n));
  return i < 0 ? 0 : i;
}

void v_add(const float* a, const float* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  if (i < n) {
    const __m256i k = lanes_mask(n - i);
    _mm256_maskstore_ps(y + i, k, _mm256_add_ps(_mm256_maskload_ps(a + i, k), _mm256_maskload_ps(b + i, k)));
  }
}

void v_mul(const float* a, const float* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  if (i < n) {
    const __m256i k = lanes_mask(n - i);
    _mm256_maskstore_ps(y + i, k, _mm256_mul_ps(_mm256_maskload_ps(a + i, k), _mm256_maskload_ps(b + i, k)));
  }
}

void v_mul_scalar(const float* x, float s, float* y, int64_t n) {
  const __m256 sv = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), sv));
  if (i < n) {
    const __m256i k = lanes_mask(n - i);
    _mm256_maskstore_ps(y + i, k, _mm256_mul_ps(_mm256_maskload_ps(x + i, k), sv));
  }
}

void v_div_scalar(const float* x, float s, float* y, int64_t n) {
  const __m256 sv = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_div_ps(_mm256_loadu_ps(x + i), sv));
  if (i < n) {
    const __m256i k = lanes_mask(n - i);
    _mm256_maskstore_ps(y + i, k, _mm256_div_ps(_mm256_maskload_ps(x + i, k), sv));
  }
}

void v_scale_mul(const float* x, float r, const float* w, float* y, int64_t n) {
  const __m256 rv = _mm256_set1_ps(r);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), rv), _mm256_loadu_ps(w + i)));
  if (i < n) {
    const __m256i k = lanes_mask(n - i);
    const __m256 xr = _mm256_mul_ps(_mm256_maskload_ps(x + i, k), rv);
    _mm256_maskstore_ps(y + i, k, _mm256_mul_ps(xr, _mm256_maskload_ps(w + i, k)));
  }
}

// Rows j0..j0+7 of K at dims d0..d0+rem-1 (rem <= 8), transposed so that c[dd] lane l holds
// K[j0+l][d0+dd]. Keys past n_valid and dims past rem read as zero and are never used.
inline void load_transposed(const float* k, int64_t k_stride, int64_t n_valid, int64_t d0, int64_t rem,
                            __m256 c[8]) {
  const __m256i dm = lanes_mask(rem);
  __m256 r[8];
  for (int j = 0; j < 8; ++j)
    r[j] = j < n_valid ? _mm256_maskload_ps(k + j * k_stride + d0, dm) : _mm256_setzero_ps();
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    c[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    c[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

// One key per lane, 8 keys at a time (more in flight ran slower: register pressure). Each lane
// runs chunked_dot's own sequence: fma from +0 over a chunk of the head dimension in d order,
// then acc + p. Blocks of 8 dims never straddle a chunk (256 is a multiple of 8), and dims past
// the end are skipped, not fed as zeros (an fma with 0*0 would turn a -0 partial into +0).
void v_scores(const float* q, const float* k, int64_t k_stride, int64_t n_keys, int64_t dim,
              float scale, float* out) {
  const __m256 sv = _mm256_set1_ps(scale);
  for (int64_t j0 = 0; j0 < n_keys; j0 += 8) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t c0 = 0; c0 < dim; c0 += kChunk) {
      const int64_t end = c0 + kChunk < dim ? c0 + kChunk : dim;
      __m256 p = _mm256_setzero_ps();
      for (int64_t d0 = c0; d0 < end; d0 += 8) {
        const int64_t rem = end - d0 < 8 ? end - d0 : 8;
        __m256 col[8];
        load_transposed(k + j0 * k_stride, k_stride, n_keys - j0, d0, rem, col);
        for (int64_t dd = 0; dd < rem; ++dd) p = _mm256_fmadd_ps(_mm256_set1_ps(q[d0 + dd]), col[dd], p);
      }
      acc = _mm256_add_ps(acc, p);
    }
    _mm256_maskstore_ps(out + j0, lanes_mask(n_keys - j0), _mm256_mul_ps(acc, sv));
  }
}

// One output dimension per lane, 32 at a time; keys in order, chunks of 256 keys.
void v_mix(const float* p, const float* v, int64_t v_stride, int64_t n_keys, int64_t dim,
           float* out) {
  constexpr int V = 4;
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t d0 = 0; d0 < dim; d0 += 8 * V) {
    __m256i m[V];
    bool live[V];
    __m256 acc[V];
    for (int u = 0; u < V; ++u) {
      m[u] = lanes_mask(dim - d0 - 8 * u);
      live[u] = d0 + 8 * u < dim;
      acc[u] = zero;
    }
    for (int64_t c = 0; c < n_keys; c += kChunk) {
      const int64_t end = c + kChunk < n_keys ? c + kChunk : n_keys;
      __m256 part[V];
      for (int u = 0; u < V; ++u) part[u] = zero;
      for (int64_t j = c; j < end; ++j) {
        const __m256 pj = _mm256_set1_ps(p[j]);
        const float* row = v + j * v_stride + d0;
        for (int u = 0; u < V; ++u)
          if (live[u]) part[u] = _mm256_fmadd_ps(pj, _mm256_maskload_ps(row + 8 * u, m[u]), part[u]);
      }
      for (int u = 0; u < V; ++u) acc[u] = _mm256_add_ps(acc[u], part[u]);
    }
    for (int u = 0; u < V; ++u)
      if (live[u]) _mm256_maskstore_ps(out + d0 + 8 * u, m[u], acc[u]);
  }
}

const Kernels kAvx2 = {v_sum,        v_sumsq,      v_max,       v_argmax, v_add, v_mul,
                       v_mul_scalar, v_div_scalar, v_scale_mul, v_scores, v_mix};

}  // namespace

const Kernels& avx2_kernels() { return kAvx2; }

}  // namespace atoma::rows_detail

#endif
