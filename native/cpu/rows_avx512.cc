#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")
// GCC 12's AVX-512 headers build their "undefined" vectors from self-initialised locals, which
// -Wall reports inside the header (GCC bug 105593); the code is fine.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// AVX-512 row kernels. Each one performs, per lane and per output, exactly the operations of the
// reference forms in canon/reduce.h in the same order: the 32 lanes of a row sum are two zmm
// accumulators, dot products over a head dimension run across 16 keys at once (one key per
// lane), and P x V runs across the head dimension (one output per lane). Only the intrinsics
// header is included here (see rows_kernels.h for why).
#include <immintrin.h>
#include <stdint.h>

#include "rows_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

namespace atoma::rows_detail {
namespace {

constexpr int kChunk = 256;  // section 3

inline __mmask16 lanes_mask(int64_t r) {
  return r >= 16 ? static_cast<__mmask16>(0xFFFF) : r <= 0 ? static_cast<__mmask16>(0) : static_cast<__mmask16>((1u << r) - 1u);
}

// Section 4 fold of 32 lanes held as p[0..15] = lo, p[16..31] = hi: for s = 16, 8, 4, 2, 1 the
// upper s lanes of the live prefix are added onto the lower s.
inline float fold32(__m512 lo, __m512 hi) {
  __m512 v = _mm512_add_ps(lo, hi);                                                       // s = 16
  __m256 w = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));      // s = 8
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(w), _mm256_extractf128_ps(w, 1));          // s = 4
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));                                                 // s = 2
  x = _mm_add_ss(x, _mm_shuffle_ps(x, x, 1));                                             // s = 1
  return _mm_cvtss_f32(x);
}

float v_sum(const float* x, int64_t n) {
  __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
  int64_t t = 0;
  for (; t + 32 <= n; t += 32) {
    a = _mm512_add_ps(a, _mm512_loadu_ps(x + t));
    b = _mm512_add_ps(b, _mm512_loadu_ps(x + t + 16));
  }
  if (t < n) {  // lanes past the end are left exactly as they are
    __mmask16 ma = lanes_mask(n - t), mb = lanes_mask(n - t - 16);
    a = _mm512_mask_add_ps(a, ma, a, _mm512_maskz_loadu_ps(ma, x + t));
    if (mb) b = _mm512_mask_add_ps(b, mb, b, _mm512_maskz_loadu_ps(mb, x + t + 16));
  }
  return fold32(a, b);
}

float v_sumsq(const float* x, int64_t n) {
  __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
  int64_t t = 0;
  for (; t + 32 <= n; t += 32) {
    __m512 xa = _mm512_loadu_ps(x + t), xb = _mm512_loadu_ps(x + t + 16);
    a = _mm512_fmadd_ps(xa, xa, a);
    b = _mm512_fmadd_ps(xb, xb, b);
  }
  if (t < n) {
    __mmask16 ma = lanes_mask(n - t), mb = lanes_mask(n - t - 16);
    __m512 xa = _mm512_maskz_loadu_ps(ma, x + t);
    a = _mm512_mask3_fmadd_ps(xa, xa, a, ma);
    if (mb) {
      __m512 xb = _mm512_maskz_loadu_ps(mb, x + t + 16);
      b = _mm512_mask3_fmadd_ps(xb, xb, b, mb);
    }
  }
  return fold32(a, b);
}

// Lowest t with x[t] == m (so +0 and -0 match each other), or -1.
int64_t first_equal(const float* x, int64_t n, float m) {
  const __m512 mv = _mm512_set1_ps(m);
  for (int64_t t = 0; t < n; t += 16) {
    __mmask16 k = lanes_mask(n - t);
    __mmask16 eq = _mm512_mask_cmp_ps_mask(k, _mm512_maskz_loadu_ps(k, x + t), mv, _CMP_EQ_OQ);
    if (eq) return t + __builtin_ctz(eq);
  }
  return -1;
}

// Largest non-NaN value (-inf if none). Signs of zero are not resolved here.
float max_value(const float* x, int64_t n) {
  __m512 m = _mm512_set1_ps(-__builtin_inff());
  int64_t t = 0;
  for (; t + 16 <= n; t += 16) m = _mm512_max_ps(_mm512_loadu_ps(x + t), m);  // (x > m) ? x : m
  if (t < n) {
    __mmask16 k = lanes_mask(n - t);
    m = _mm512_mask_max_ps(m, k, _mm512_maskz_loadu_ps(k, x + t), m);
  }
  return _mm512_reduce_max_ps(m);
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
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
  if (i < n) {
    __mmask16 k = lanes_mask(n - i);
    _mm512_mask_storeu_ps(y + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i)));
  }
}

void v_mul(const float* a, const float* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
  if (i < n) {
    __mmask16 k = lanes_mask(n - i);
    _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i)));
  }
}

void v_mul_scalar(const float* x, float s, float* y, int64_t n) {
  const __m512 sv = _mm512_set1_ps(s);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), sv));
  if (i < n) {
    __mmask16 k = lanes_mask(n - i);
    _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), sv));
  }
}

void v_div_scalar(const float* x, float s, float* y, int64_t n) {
  const __m512 sv = _mm512_set1_ps(s);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_div_ps(_mm512_loadu_ps(x + i), sv));
  if (i < n) {
    __mmask16 k = lanes_mask(n - i);
    _mm512_mask_storeu_ps(y + i, k, _mm512_div_ps(_mm512_maskz_loadu_ps(k, x + i), sv));
  }
}

void v_scale_mul(const float* x, float r, const float* w, float* y, int64_t n) {
  const __m512 rv = _mm512_set1_ps(r);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), rv), _mm512_loadu_ps(w + i)));
  if (i < n) {
    __mmask16 k = lanes_mask(n - i);
    __m512 xr = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), rv);
    _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(xr, _mm512_maskz_loadu_ps(k, w + i)));
  }
}

// Rows j0..j0+15 of K at dims d0..d0+rem-1 (rem <= 8), transposed so that c[dd] lane l holds
// K[j0+l][d0+dd]. Keys past n_valid and dims past rem read as zero and are never used.
inline void load_transposed(const float* k, int64_t k_stride, int64_t n_valid, int64_t d0, int64_t rem,
                            __m512 c[8]) {
  const __mmask8 dm = static_cast<__mmask8>(rem >= 8 ? 0xFF : (1u << rem) - 1u);
  __m512 r[8];
  for (int j = 0; j < 8; ++j) {
    __m256 lo = j < n_valid ? _mm256_maskz_loadu_ps(dm, k + j * k_stride + d0) : _mm256_setzero_ps();
    __m256 hi = j + 8 < n_valid ? _mm256_maskz_loadu_ps(dm, k + (j + 8) * k_stride + d0) : _mm256_setzero_ps();
    r[j] = _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
  }
  // The usual 8x8 transpose, done on both 256-bit halves (keys j and j+8) at once.
  __m512 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i + 0] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  // c[i] = 128-bit lanes (u[i].0, u[i+4].0, u[i].2, u[i+4].2); c[i+4] the same with lanes 1, 3.
  const __m512i lo_idx = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
  const __m512i hi_idx = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
  for (int i = 0; i < 4; ++i) {
    c[i] = _mm512_permutex2var_ps(u[i], lo_idx, u[i + 4]);
    c[i + 4] = _mm512_permutex2var_ps(u[i], hi_idx, u[i + 4]);
  }
}

// A key's (or value's) `dim` floats for one head: the rows of a KV cache are a whole layer wide,
// so at decode, after the weights' stream has gone through the caches, attention walks a strided
// pattern the hardware prefetchers follow poorly. The kernels below ask for rows ahead (measured
// at decode of an 11-layer 768-wide model: attention about 20% faster; longer distances slower).
inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

inline void prefetch_row(const float* row, int64_t dim) {
  for (int64_t d = 0; d < dim; d += 16) _mm_prefetch(reinterpret_cast<const char*>(row + d), _MM_HINT_T0);
}

// One key per lane, 16 keys at a time (more in flight ran slower: register pressure). Each lane
// runs chunked_dot's own sequence: fma from +0 over a chunk of the head dimension in d order,
// then acc + p. Blocks of 8 dims never straddle a chunk (256 is a multiple of 8), and dims past
// the end are skipped, not fed as zeros (an fma with 0*0 would turn a -0 partial into +0).
void v_scores(const float* q, const float* k, int64_t k_stride, int64_t n_keys, int64_t dim,
              float scale, float* out) {
  const __m512 sv = _mm512_set1_ps(scale);
  constexpr int64_t kAhead = 32;   // keys
  for (int64_t j = 0; j < min64(kAhead, n_keys); ++j) prefetch_row(k + j * k_stride, dim);
  for (int64_t j0 = 0; j0 < n_keys; j0 += 16) {
    for (int64_t j = j0 + kAhead; j < min64(j0 + kAhead + 16, n_keys); ++j) prefetch_row(k + j * k_stride, dim);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t c0 = 0; c0 < dim; c0 += kChunk) {
      const int64_t end = c0 + kChunk < dim ? c0 + kChunk : dim;
      __m512 p = _mm512_setzero_ps();
      for (int64_t d0 = c0; d0 < end; d0 += 8) {
        const int64_t rem = end - d0 < 8 ? end - d0 : 8;
        __m512 col[8];
        load_transposed(k + j0 * k_stride, k_stride, n_keys - j0, d0, rem, col);
        for (int64_t dd = 0; dd < rem; ++dd) p = _mm512_fmadd_ps(_mm512_set1_ps(q[d0 + dd]), col[dd], p);
      }
      acc = _mm512_add_ps(acc, p);
    }
    const __mmask16 m = lanes_mask(n_keys - j0);
    _mm512_mask_storeu_ps(out + j0, m, _mm512_mul_ps(acc, sv));
  }
}

// One output dimension per lane, 64 at a time; keys in order, chunks of 256 keys.
void v_mix(const float* p, const float* v, int64_t v_stride, int64_t n_keys, int64_t dim,
           float* out) {
  constexpr int V = 4;
  constexpr int64_t kAhead = 16;   // keys
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t j = 0; j < min64(kAhead, n_keys); ++j) prefetch_row(v + j * v_stride, min64(dim, 16 * V));
  for (int64_t d0 = 0; d0 < dim; d0 += 16 * V) {
    __mmask16 m[V];
    __m512 acc[V];
    for (int u = 0; u < V; ++u) {
      m[u] = lanes_mask(dim - d0 - 16 * u);
      acc[u] = zero;
    }
    for (int64_t c = 0; c < n_keys; c += kChunk) {
      const int64_t end = c + kChunk < n_keys ? c + kChunk : n_keys;
      __m512 part[V];
      for (int u = 0; u < V; ++u) part[u] = zero;
      for (int64_t j = c; j < end; ++j) {
        const __m512 pj = _mm512_set1_ps(p[j]);
        const float* row = v + j * v_stride + d0;
        if (j + kAhead < n_keys) prefetch_row(row + kAhead * v_stride, min64(dim - d0, 16 * V));
        for (int u = 0; u < V; ++u)
          if (m[u]) part[u] = _mm512_fmadd_ps(pj, _mm512_maskz_loadu_ps(m[u], row + 16 * u), part[u]);
      }
      for (int u = 0; u < V; ++u) acc[u] = _mm512_add_ps(acc[u], part[u]);
    }
    for (int u = 0; u < V; ++u)
      if (m[u]) _mm512_mask_storeu_ps(out + d0 + 16 * u, m[u], acc[u]);
  }
}

const Kernels kAvx512 = {v_sum,        v_sumsq,      v_max,       v_argmax, v_add, v_mul,
                         v_mul_scalar, v_div_scalar, v_scale_mul, v_scores, v_mix};

}  // namespace

const Kernels& avx512_kernels() { return kAvx512; }

}  // namespace atoma::rows_detail

#endif
